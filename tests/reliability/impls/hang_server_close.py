"""HANGS: server_close() blocks forever (and never closes the socket)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "server_close() never returns"
#: the check that owns the hung call (bench/precision.py reads it); the probes find the hang
#: once per process and the checks that need the call end PRECONDITION_FAILED naming it
BREAKS = {"BIND-015": "TIMEOUT"}


def server_close(self):
    threading.Event().wait()


BaseServer.server_close = server_close
TCPServer.server_close = server_close  # UDP/Unix servers and both mix-ins call up to it
