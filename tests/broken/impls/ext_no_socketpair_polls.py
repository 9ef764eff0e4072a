"""BROKEN: declares 'prompt-shutdown' and 'no-socketpair'; shutdown() wakes the loop through a
socket.socketpair(), but when socketpair() fails there is no loopback stand-in: the loop polls."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("EXT-002",)

__socketserver_extensions__ = frozenset({"prompt-shutdown", "no-socketpair"})

_polling_serve_forever = BaseServer.serve_forever


def serve_forever(self, poll_interval=0.5):
    """The stdlib loop, also watching a socket pair that shutdown() writes to."""
    try:
        reader, writer = socket.socketpair()
    except OSError:
        return _polling_serve_forever(self, poll_interval)  # BROKEN: no loopback TCP pair instead
    self._BaseServer__is_shut_down.clear()
    self._wake_writer = writer
    try:
        with _ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(reader, selectors.EVENT_READ)
            while not self._BaseServer__shutdown_request:
                ready = selector.select(poll_interval)
                if self._BaseServer__shutdown_request:
                    break
                if any(key.fileobj is self for key, _events in ready):
                    self._handle_request_noblock()
                self.service_actions()
    finally:
        self._wake_writer = None
        reader.close()
        writer.close()
        self._BaseServer__shutdown_request = False
        self._BaseServer__is_shut_down.set()


def shutdown(self):
    self._BaseServer__shutdown_request = True
    writer = getattr(self, "_wake_writer", None)
    if writer is not None:
        try:
            writer.send(b"\0")
        except OSError:
            pass
    self._BaseServer__is_shut_down.wait()


BaseServer.serve_forever = serve_forever
BaseServer.shutdown = shutdown
