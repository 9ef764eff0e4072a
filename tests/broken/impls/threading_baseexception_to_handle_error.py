"""BROKEN: request threads send every BaseException to handle_error (2.7 behaviour)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-005",)


def process_request_thread(self, request, client_address):
    try:
        self.finish_request(request, client_address)
    except BaseException:
        self.handle_error(request, client_address)
    finally:
        self.shutdown_request(request)


ThreadingMixIn.process_request_thread = process_request_thread  # noqa: F821
