"""BROKEN: ThreadingMixIn handles requests inline in the serving thread (no threads at all)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# shutdown() from a handler that runs on the serving thread deadlocks: a hang (TIMEOUT).
BREAKS = {"THREADING-001": "FAIL", "THREADING-002": "FAIL", "THREADING-003": "FAIL", "THREADING-010": "FAIL",
          "THREADING-011": "FAIL", "THREADING-012": "TIMEOUT", "UNIX-007": "FAIL", "UNIX-008": "FAIL"}


del ThreadingMixIn.process_request  # noqa: F821  (BaseServer.process_request runs the handler inline)
