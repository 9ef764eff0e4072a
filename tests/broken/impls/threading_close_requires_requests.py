"""BROKEN: server_close fails on a threading server that never handled a request."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: a block_on_close=False server keeps no list either: its process_request() fails before the thread
#: starts, so no request gets a thread (THREADING-001[block_on_close=False])
BREAKS = ("THREADING-009", "THREADING-001")


ThreadingMixIn._threads = None  # noqa: F821  (set per instance only by process_request)
