"""BROKEN: serve_forever does not reap children (service_actions does not collect them)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# FORKING-005 (the children's exit status) reads the status where a child is reaped, the lab's
# teardown included: this defect does not change it
BREAKS = ("FORKING-003", "FORKING-002")


ForkingMixIn.service_actions = lambda self: None  # noqa: F821
