"""BROKEN: server_activate() ignores request_queue_size and listens with a backlog of 1."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("BIND-005", "BIND-018")


def server_activate(self):
    self.socket.listen(1)  # BROKEN: request_queue_size ignored


TCPServer.server_activate = server_activate
