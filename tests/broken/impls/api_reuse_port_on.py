"""BROKEN: allow_reuse_port is True (and present below the 3.11 API)"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# SO_REUSEPORT on an AF_UNIX socket fails (EOPNOTSUPP), so no Unix stream server can be
# constructed: UNIX-001 owns that, every other check needing one ends PRECONDITION_FAILED
# naming it; a second TCP server on a live port binds (BIND-008) and BIND-010 owns the option
BREAKS = {"API-017": "FAIL", "BIND-008": "FAIL", "BIND-010": "FAIL", "UNIX-001": "FAIL"}

TCPServer.allow_reuse_port = True  # noqa: F821
