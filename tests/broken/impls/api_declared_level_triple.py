"""BROKEN: __socketserver_api__ is a version_info-like triple, not a (major, minor) pair."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("API-027",)

__socketserver_api__ = (3, 13, 0)  # BROKEN: the kit tests (3, 13), the module claims something else
