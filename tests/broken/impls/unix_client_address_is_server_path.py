"""BROKEN: UnixStreamServer hands every handler its own path as client_address."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("UNIX-003",)


def get_request(self):
    request, _ = self.socket.accept()
    return request, self.server_address


UnixStreamServer.get_request = get_request  # noqa: F821
