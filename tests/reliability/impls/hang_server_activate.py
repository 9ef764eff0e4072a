"""HANGS: server_activate() (listen) never returns, so constructing a stream server hangs."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "server_activate() never returns"
#: the check that owns the hung call (bench/precision.py reads it); the probes find the hang
#: once per process and the checks that need the call end PRECONDITION_FAILED naming it
BREAKS = {"BIND-001": "TIMEOUT"}


def server_activate(self):
    threading.Event().wait()


BaseServer.server_activate = server_activate
TCPServer.server_activate = server_activate  # UDPServer overrides it (no listen)
