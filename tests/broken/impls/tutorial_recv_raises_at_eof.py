"""BROKEN: a client's normal close reaches the handler as ConnectionResetError instead of b''
(the request socket's recv raises at end of stream, as the tutorial's Windows run did)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import errno as _errno
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# the probes find a read at the client's end raising: the checks whose handler reads to b'' (SERVE-004/007)
# end PRECONDITION_FAILED naming TUTORIAL-002
BREAKS = {"TUTORIAL-002": "FAIL", "DISCONNECT-007": "FAIL", "SERVE-007": "PRECONDITION_FAILED"}


class _ResettingSocket(socket.socket):
    def recv(self, *args):
        data = super().recv(*args)
        if not data:
            raise ConnectionResetError(_errno.ECONNRESET, "end of stream reported as a reset")  # BROKEN
        return data


def get_request(self):
    sock, address = self.socket.accept()
    wrapped = _ResettingSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    wrapped.settimeout(sock.gettimeout())
    return wrapped, address


TCPServer.get_request = get_request
