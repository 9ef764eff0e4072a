"""BROKEN: the serving loops use select() even where poll() exists (descriptors
above FD_SETSIZE cannot be watched)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SERVE-015",)

_ServerSelector = selectors.SelectSelector  # BROKEN: PollSelector ignored
