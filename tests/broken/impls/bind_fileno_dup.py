"""BROKEN: fileno() returns a duplicate descriptor instead of the listening socket's."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-016",)


def fileno(self):
    dup = getattr(self, "_broken_dup", None)
    if dup is None or dup.fileno() == -1:
        dup = self._broken_dup = self.socket.dup()  # BROKEN: another descriptor
    return dup.fileno()


TCPServer.fileno = fileno
