"""BROKEN: ThreadingMixIn.process_request calls the handler inline, in the serving thread."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probe of ThreadingMixIn finds no thread per request: THREADING-001 owns that, and every
# check needing a Threading* server ends PRECONDITION_FAILED naming it
BREAKS = {"THREADING-001": "FAIL", "CONCURRENCY-002": "PRECONDITION_FAILED",
          "CONCURRENCY-005": "PRECONDITION_FAILED", "TUTORIAL-004": "PRECONDITION_FAILED"}


def process_request(self, request, client_address):
    self.process_request_thread(request, client_address)  # BROKEN: no thread


ThreadingMixIn.process_request = process_request
