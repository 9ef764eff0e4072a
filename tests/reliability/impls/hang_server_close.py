"""HANGS: server_close() blocks forever (and never closes the socket)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "server_close() never returns"
#: the checks that own the hung behaviour (bench/precision.py reads them)
BREAKS = {"BIND-015": "TIMEOUT", "SHUTDOWN-008": "TIMEOUT", "SERVE-007": "TIMEOUT", "PIPELINE-001": "TIMEOUT"}


def server_close(self):
    threading.Event().wait()


BaseServer.server_close = server_close
TCPServer.server_close = server_close  # UDP/Unix servers and both mix-ins call up to it
