"""BROKEN: an exception from a handler escapes serve_forever (no handle_error), stopping the server."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# PIPELINE-005 owns "an Exception in the handler goes to handle_error() and handle_request()
# returns"; the DISCONNECT checks whose vanished client makes the handler raise end
# PRECONDITION_FAILED naming it (the probes find the loop ended by a handler's error)
BREAKS = ("PIPELINE-005",)


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError:
        return
    if self.verify_request(request, client_address):
        try:
            self.process_request(request, client_address)
        except BaseException:  # BROKEN: no handle_error; the error ends serve_forever
            self.shutdown_request(request)
            raise
    else:
        self.shutdown_request(request)


BaseServer._handle_request_noblock = _handle_request_noblock
