"""BROKEN: ForkingMixIn forks, but the parent waits for each child before it accepts again."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: slow-hang: FORKING-012 too: this process_request never adds its child to active_children, whose
#: clause is that it holds each running child's pid (its message: active_children [] while the child runs)
BREAKS = ("CONCURRENCY-003", "CONCURRENCY-006", "TUTORIAL-007", "FORKING-001", "FORKING-009", "FORKING-012")


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
