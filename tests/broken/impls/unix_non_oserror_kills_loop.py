"""BROKEN: only OSError from a request goes to handle_error; anything else ends the serving loop."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# PIPELINE-005 owns "an Exception in the handler goes to handle_error()": the probes find the
# loop ended by a handler's ValueError, and UNIX-010 (its reply's TypeError) ends
# PRECONDITION_FAILED naming it (prec-conc)
BREAKS = ("PIPELINE-005",)


def _handle_request_noblock(self):
    try:
        request, client_address = self.get_request()
    except OSError:
        return
    if self.verify_request(request, client_address):
        try:
            self.process_request(request, client_address)
        except OSError:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise
    else:
        self.shutdown_request(request)


BaseServer._handle_request_noblock = _handle_request_noblock  # noqa: F821
