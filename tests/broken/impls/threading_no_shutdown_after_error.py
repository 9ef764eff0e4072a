"""BROKEN: a request thread calls shutdown_request only when the handler succeeded."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-004",)


def process_request_thread(self, request, client_address):
    try:
        self.finish_request(request, client_address)
        self.shutdown_request(request)
    except Exception:
        self.handle_error(request, client_address)


ThreadingMixIn.process_request_thread = process_request_thread  # noqa: F821
