"""BROKEN: the plain (synchronous) servers run every handler in a thread of its own."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("CONCURRENCY-001", "CONCURRENCY-004", "TUTORIAL-005", "PIPELINE-008", "PIPELINE-009")


def process_request(self, request, client_address):
    def run():
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    threading.Thread(target=run, daemon=True).start()  # BROKEN: TCPServer is documented synchronous


BaseServer.process_request = process_request
