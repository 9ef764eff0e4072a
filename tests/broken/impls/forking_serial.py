"""BROKEN: ForkingMixIn handles requests inline in the server process (no fork)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-001", "FORKING-006", "FORKING-007", "FORKING-008", "FORKING-009", "UNIX-009")


if "ForkingMixIn" in globals():  # only where os.fork exists (not on Windows)
    del ForkingMixIn.process_request  # noqa: F821  (BaseServer.process_request runs the handler inline)
