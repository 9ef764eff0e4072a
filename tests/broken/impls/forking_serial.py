"""BROKEN: ForkingMixIn handles requests inline in the server process (no fork)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: slow-hang: CONCURRENCY-003/006 and TUTORIAL-007 promise handlers that overlap in children (as for
#: concurrency_forking_waits), FORKING-012 that active_children holds each running child: a serial
#: mix-in breaks each clause (their messages: echoes missing while clients stay connected, 1 of 4
#: handlers holding at once, active_children [] while the handler runs)
#: fork-probe: CONCURRENCY-003/006 and TUTORIAL-007 end PRECONDITION_FAILED naming FORKING-001 at
#: once: the forking-overlap probe (conformance/tools/forking_overlap.py) saw 1 of 2 held handlers
BREAKS = {"FORKING-001": "FAIL", "FORKING-006": "FAIL", "FORKING-007": "FAIL", "FORKING-008": "FAIL",
          "FORKING-009": "FAIL", "UNIX-009": "FAIL", "FORKING-012": "FAIL",
          "CONCURRENCY-003": "PRECONDITION_FAILED", "CONCURRENCY-006": "PRECONDITION_FAILED",
          "TUTORIAL-007": "PRECONDITION_FAILED"}


if "ForkingMixIn" in globals():  # only where os.fork exists (not on Windows)
    del ForkingMixIn.process_request  # noqa: F821  (BaseServer.process_request runs the handler inline)
