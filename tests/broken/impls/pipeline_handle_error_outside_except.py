"""BROKEN: handle_error() is called after the except block, so sys.exc_info() is empty."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probes find handle_error() without sys.exc_info(): the checks that read what it was given
# (HANDLER-002/003/011, DISCONNECT-003) end PRECONDITION_FAILED naming PIPELINE-015
BREAKS = {"PIPELINE-010": "FAIL", "PIPELINE-015": "FAIL", "HANDLER-002": "PRECONDITION_FAILED"}


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError:
        return
    if self.verify_request(request, client_address):
        failed = False
        try:
            self.process_request(request, client_address)
        except Exception:
            failed = True
        except BaseException:
            self.shutdown_request(request)
            raise
        if failed:
            self.handle_error(request, client_address)  # BROKEN: outside the except block
            self.shutdown_request(request)
    else:
        self.shutdown_request(request)


BaseServer._handle_request_noblock = _handle_request_noblock
