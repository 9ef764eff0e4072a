"""BROKEN: an Exception in a request thread escapes to threading.excepthook instead of handle_error."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probes find a handler thread's error never reaching handle_error(): DISCONNECT-003 on
# ThreadingTCPServer (the reset's error goes to handle_error) ends PRECONDITION_FAILED naming THREADING-004
BREAKS = {"THREADING-004": "FAIL", "DISCONNECT-003": "PRECONDITION_FAILED"}


def process_request_thread(self, request, client_address):
    try:
        self.finish_request(request, client_address)
    finally:
        self.shutdown_request(request)


ThreadingMixIn.process_request_thread = process_request_thread  # noqa: F821
