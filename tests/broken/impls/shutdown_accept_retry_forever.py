"""BROKEN: _handle_request_noblock() retries a failing accept() until it succeeds, so a closed socket traps the loop."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: PIPELINE-004 too: "an OSError from get_request() is swallowed: handle_request() returns" --
#: this one retries the failed accept() instead, and handle_request() does not return (FAIL:
#: the check decides on the second get_request() call, the retry, without waiting out its budget)
BREAKS = {"SHUTDOWN-012": "FAIL", "PIPELINE-004": "FAIL"}


def _handle_request_noblock(self):
    give_up = time() + 30  # bounded, so the broken loop does not outlive the run
    while True:
        try:
            request, client_address = self.get_request()
            break
        except OSError:
            if time() > give_up:  # BROKEN: retries instead of dropping the request
                return
    if self.verify_request(request, client_address):
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise
    else:
        self.shutdown_request(request)


BaseServer._handle_request_noblock = _handle_request_noblock
