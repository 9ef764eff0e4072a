"""BROKEN: ThreadingMixIn handles requests inline in the serving thread (no threads at all)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# The probe of ThreadingMixIn finds no thread per request (THREADING-001 owns it): every check
# needing a Threading* server ends PRECONDITION_FAILED naming it.
BREAKS = {"THREADING-001": "FAIL", "THREADING-002": "PRECONDITION_FAILED", "THREADING-003": "PRECONDITION_FAILED",
          "THREADING-012": "PRECONDITION_FAILED", "UNIX-007": "PRECONDITION_FAILED"}


del ThreadingMixIn.process_request  # noqa: F821  (BaseServer.process_request runs the handler inline)
