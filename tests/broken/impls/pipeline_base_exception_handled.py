"""BROKEN: SystemExit/KeyboardInterrupt from a handler go to handle_error() and are swallowed (2.7 behaviour)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# SHUTDOWN-007 (shutdown() waiters released when a BaseException escapes serve_forever()) needs
# the SystemExit that escapes: PRECONDITION_FAILED naming PIPELINE-009
BREAKS = {"PIPELINE-008": "FAIL", "PIPELINE-009": "FAIL", "SHUTDOWN-007": "PRECONDITION_FAILED"}


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError:
        return
    if self.verify_request(request, client_address):
        try:
            self.process_request(request, client_address)
        except BaseException:  # BROKEN: bare except, as in 2.7
            self.handle_error(request, client_address)
            self.shutdown_request(request)
    else:
        self.shutdown_request(request)


BaseServer._handle_request_noblock = _handle_request_noblock
