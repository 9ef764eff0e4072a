"""BROKEN: __socketserver_api__ is a version_info-like triple, not a (major, minor) pair."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("API-027",)

# BROKEN: a triple; its level is the running Python's (the source executed above), so the only
# defect is the shape (a (3, 13, 0) on a 3.11 source also claimed ForkingUnix*, which API-004 saw missing)
__socketserver_api__ = (sys.version_info[0], sys.version_info[1], 0)
