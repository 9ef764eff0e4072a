"""BROKEN: ForkingMixIn forks, but the parent waits for each child before it accepts again."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: slow-hang: FORKING-012 too: this process_request never adds its child to active_children, whose
#: clause is that it holds each running child's pid (its message: active_children [] while the child runs)
#: fork-probe: CONCURRENCY-003/006 and TUTORIAL-007 end PRECONDITION_FAILED naming FORKING-001 at
#: once: the forking-overlap probe (conformance/tools/forking_overlap.py) saw 1 of 2 held handlers
BREAKS = {"FORKING-001": "FAIL", "FORKING-009": "FAIL", "FORKING-012": "FAIL",
          "CONCURRENCY-003": "PRECONDITION_FAILED", "CONCURRENCY-006": "PRECONDITION_FAILED",
          "TUTORIAL-007": "PRECONDITION_FAILED"}


def process_request(self, request, client_address):
    pid = os.fork()
    if pid:
        self.close_request(request)
        os.waitpid(pid, 0)  # BROKEN: one child at a time
        return
    status = 1
    try:
        self.finish_request(request, client_address)
        status = 0
    except Exception:
        self.handle_error(request, client_address)
    finally:
        try:
            self.shutdown_request(request)
        finally:
            os._exit(status)


if "ForkingMixIn" in globals():  # only where os.fork exists (not on Windows)
    ForkingMixIn.process_request = process_request
