"""BROKEN: DatagramRequestHandler.finish sends nothing when nothing was written."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("HANDLER-014", "UDP-005")


def finish(self):
    data = self.wfile.getvalue()
    if data:
        self.socket.sendto(data, self.client_address)


DatagramRequestHandler.finish = finish  # noqa: F821
