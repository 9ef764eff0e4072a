"""BROKEN: serve_forever() treats any accept() error as fatal and stops serving."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: every check whose clause says an accept() error ends nothing: SERVE-012 (a failed accept),
#: SERVE-013 (EMFILE: "serves the client once accept() works again"), SERVE-016 (EMFILE with no
#: socket pair: "requests are served"), and SHUTDOWN-012 (server_close() under the loop makes
#: accept() fail: "it may end early only by raising"; this loop returns quietly)
BREAKS = ("SERVE-012", "SERVE-013", "SERVE-016", "SHUTDOWN-012")


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError:
        self._BaseServer__shutdown_request = True  # BROKEN: the loop ends quietly
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
