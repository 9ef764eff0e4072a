"""BROKEN: ForkingMixIn handles requests inline in the server process (no fork)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: slow-hang: CONCURRENCY-003/006 and TUTORIAL-007 promise handlers that overlap in children (as for
#: concurrency_forking_waits), FORKING-012 that active_children holds each running child: a serial
#: mix-in breaks each clause (their messages: echoes missing while clients stay connected, 1 of 4
#: handlers holding at once, active_children [] while the handler runs)
BREAKS = ("FORKING-001", "FORKING-006", "FORKING-007", "FORKING-008", "FORKING-009", "UNIX-009",
          "CONCURRENCY-003", "CONCURRENCY-006", "TUTORIAL-007", "FORKING-012")


if "ForkingMixIn" in globals():  # only where os.fork exists (not on Windows)
    del ForkingMixIn.process_request  # noqa: F821  (BaseServer.process_request runs the handler inline)
