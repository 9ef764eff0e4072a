"""BROKEN: ThreadingMixIn handles requests inline in the serving thread (no threads at all)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-001", "THREADING-002", "THREADING-003", "THREADING-010", "THREADING-011", "THREADING-012",
          "UNIX-007", "UNIX-008")


del ThreadingMixIn.process_request  # noqa: F821  (BaseServer.process_request runs the handler inline)
