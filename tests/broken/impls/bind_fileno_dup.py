"""BROKEN: fileno() returns a duplicate descriptor instead of the listening socket's."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: the duplicate, a listening socket too, stays open after server_close(): clients still connect
#: (SHUTDOWN-008's clause: they are refused), the port cannot be bound again even with
#: allow_reuse_address (BIND-009's), and every teardown's leak check names SHUTDOWN-008
BREAKS = ("BIND-016", "SHUTDOWN-008", "BIND-009")


def fileno(self):
    dup = getattr(self, "_broken_dup", None)
    if dup is None or dup.fileno() == -1:
        dup = self._broken_dup = self.socket.dup()  # BROKEN: another descriptor
    return dup.fileno()


TCPServer.fileno = fileno
