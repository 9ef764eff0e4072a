"""BROKEN: ThreadingMixIn.process_request() runs the handler in the serving thread."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# The probe of ThreadingMixIn finds no thread per request (THREADING-001 owns it): SHUTDOWN-010,
# whose handler thread would call shutdown(), ends PRECONDITION_FAILED naming it.
BREAKS = {"THREADING-001": "FAIL", "SHUTDOWN-010": "PRECONDITION_FAILED"}


def process_request(self, request, client_address):
    self.process_request_thread(request, client_address)  # BROKEN: no thread


ThreadingMixIn.process_request = process_request
