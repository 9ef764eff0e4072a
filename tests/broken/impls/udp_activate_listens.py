"""BROKEN: UDPServer.server_activate calls listen() like TCPServer (fails: EOPNOTSUPP)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# No UDPServer can be constructed: BIND-001 (construction) owns it, and the UDP checks, which
# need a server, end PRECONDITION_FAILED naming it.  BIND-006 (UDPServer.server_activate() does
# not listen) sees the listen() call itself; UnixDatagramServer inherits server_activate() and
# UNIX-002 (it answers a datagram client) sees it fail to construct.
BREAKS = {"BIND-001": "FAIL", "BIND-006": "FAIL", "UNIX-002": "FAIL", "UDP-001": "PRECONDITION_FAILED",
          "UDP-007": "PRECONDITION_FAILED"}


UDPServer.server_activate = TCPServer.server_activate  # noqa: F821
