"""BROKEN: the plain (synchronous) servers run every handler in a thread of its own."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# SHUTDOWN-007 needs a handler's SystemExit to escape serve_forever(), which a handler thread's
# never does: PRECONDITION_FAILED naming PIPELINE-009
# SHUTDOWN-001 needs the loop busy in its handler, which runs in a thread of its own here:
# PRECONDITION_FAILED naming CONCURRENCY-001
BREAKS = {"CONCURRENCY-001": "FAIL", "CONCURRENCY-004": "FAIL", "TUTORIAL-005": "FAIL", "PIPELINE-008": "FAIL",
          "PIPELINE-009": "FAIL", "SHUTDOWN-007": "PRECONDITION_FAILED", "SHUTDOWN-001": "PRECONDITION_FAILED"}


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
