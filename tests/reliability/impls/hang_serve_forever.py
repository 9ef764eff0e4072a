"""HANGS: serve_forever() ignores shutdown(): its loop never looks at the request, so shutdown() waits forever."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "serve_forever() ignores shutdown()"
#: the checks that own the hung behaviour (bench/precision.py reads them)
BREAKS = {"SHUTDOWN-001": "TIMEOUT", "SHUTDOWN-010": "FAIL"}


def serve_forever(self, poll_interval=0.5):
    self._BaseServer__is_shut_down.clear()
    with _ServerSelector() as selector:
        selector.register(self, selectors.EVENT_READ)
        while True:  # HANGS: never checks the shutdown request; ends only if select() raises
            ready = selector.select(poll_interval)
            if ready:
                self._handle_request_noblock()
            self.service_actions()


BaseServer.serve_forever = serve_forever
