"""BROKEN: server_close fails on a threading server that never handled a request."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-009",)


ThreadingMixIn._threads = None  # noqa: F821  (set per instance only by process_request)
