"""BROKEN: ThreadingMixIn.process_request calls the handler inline, in the serving thread."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("CONCURRENCY-002", "CONCURRENCY-005", "TUTORIAL-004")


def process_request(self, request, client_address):
    self.process_request_thread(request, client_address)  # BROKEN: no thread


ThreadingMixIn.process_request = process_request
