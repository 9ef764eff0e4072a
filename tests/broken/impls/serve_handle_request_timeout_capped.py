"""BROKEN: handle_request() never waits longer than one second."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SERVE-014",)


def handle_request(self):
    timeout = self.socket.gettimeout()
    if timeout is None:
        timeout = self.timeout
    elif self.timeout is not None:
        timeout = min(timeout, self.timeout)
    if timeout is not None:
        timeout = min(timeout, 1.0)  # BROKEN: a cap on the wait
        deadline = time() + timeout
    with _ServerSelector() as selector:
        selector.register(self, selectors.EVENT_READ)
        while True:
            if selector.select(timeout):
                return self._handle_request_noblock()
            if timeout is not None:
                timeout = deadline - time()
                if timeout < 0:
                    return self.handle_timeout()


BaseServer.handle_request = handle_request
