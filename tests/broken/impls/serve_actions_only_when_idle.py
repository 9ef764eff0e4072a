"""BROKEN: serve_forever() calls service_actions() only after idle polls, not after requests."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: FORKING-002 too ("never more than max_children children: at the limit collect_children
#: waits"): ForkingMixIn enforces max_children in service_actions(), which a burst of requests
#: now never reaches, so the server forks past the limit
BREAKS = ("SERVE-006", "FORKING-002")


def serve_forever(self, poll_interval=0.5):
    self._BaseServer__is_shut_down.clear()
    try:
        with _ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            while not self._BaseServer__shutdown_request:
                ready = selector.select(poll_interval)
                if self._BaseServer__shutdown_request:
                    break
                if ready:
                    self._handle_request_noblock()
                else:
                    self.service_actions()  # BROKEN: skipped after a request
    finally:
        self._BaseServer__shutdown_request = False
        self._BaseServer__is_shut_down.set()


BaseServer.serve_forever = serve_forever
