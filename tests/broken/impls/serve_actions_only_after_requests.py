"""BROKEN: serve_forever() calls service_actions() only after a request, never when idle."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: FORKING-003 too ("finished children are reaped while serving"): ForkingMixIn reaps in
#: service_actions(), which this loop never calls while idle; and SERVE-008, whose clause is
#: measured in idle service_actions() calls ("~10 calls/s at 0.1") and fails stating that
BREAKS = ("SERVE-005", "SERVE-008", "FORKING-003")


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
                    self.service_actions()  # BROKEN: not after idle polls
    finally:
        self._BaseServer__shutdown_request = False
        self._BaseServer__is_shut_down.set()


BaseServer.serve_forever = serve_forever
