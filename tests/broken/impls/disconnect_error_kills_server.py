"""BROKEN: an exception from a handler escapes serve_forever (no handle_error), stopping the server."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("DISCONNECT-002", "DISCONNECT-003", "DISCONNECT-004", "DISCONNECT-006")
# Windows fails accept() for a connection reset in the backlog (WSAECONNRESET,
# https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-accept): no handler
# runs for it, so DISCONNECT-006 cannot show this breakage there.
NOT_ON = {"DISCONNECT-006": ("windows",)}


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
