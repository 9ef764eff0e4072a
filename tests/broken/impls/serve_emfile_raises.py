"""BROKEN: an accept() failing with EMFILE escapes serve_forever()."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import errno as _errno
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: SERVE-016 too: its clause says that with EMFILE (no socket pair, accept() failing) "requests
#: are served", and this loop dies on the first EMFILE from accept()
BREAKS = ("SERVE-013", "SERVE-016")


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError as exc:
        if exc.errno == _errno.EMFILE:
            raise  # BROKEN: "too many open files" ends the serving loop
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
