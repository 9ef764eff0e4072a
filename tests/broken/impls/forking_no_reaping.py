"""BROKEN: serve_forever does not reap children (service_actions does not collect them)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-003", "FORKING-005", "FORKING-002")


ForkingMixIn.service_actions = lambda self: None  # noqa: F821
