"""BROKEN: a handler Exception makes the server close itself."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probes find the listening socket closed after a handler's error: every other check that
# fails in the run (HANDLER-003's second client, a DISCONNECT scenario's next client) ends
# PRECONDITION_FAILED naming PIPELINE-006
BREAKS = {"PIPELINE-006": "FAIL", "HANDLER-003": "PRECONDITION_FAILED"}


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError:
        return
    if self.verify_request(request, client_address):
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
            self.server_close()  # BROKEN: gives up after an error
        except BaseException:
            self.shutdown_request(request)
            raise
    else:
        self.shutdown_request(request)


BaseServer._handle_request_noblock = _handle_request_noblock
