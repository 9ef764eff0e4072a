"""BROKEN: serve_forever() clears a pending shutdown request when it starts."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SHUTDOWN-002", "SHUTDOWN-003", "SHUTDOWN-005")


def serve_forever(self, poll_interval=0.5):
    self._BaseServer__is_shut_down.clear()
    self._BaseServer__shutdown_request = False  # BROKEN: forgets an early shutdown()
    try:
        with _ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            while not self._BaseServer__shutdown_request:
                ready = selector.select(poll_interval)
                if self._BaseServer__shutdown_request:
                    break
                if ready:
                    self._handle_request_noblock()
                self.service_actions()
    finally:
        self._BaseServer__shutdown_request = False
        self._BaseServer__is_shut_down.set()


BaseServer.serve_forever = serve_forever
