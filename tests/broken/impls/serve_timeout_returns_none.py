"""BROKEN: handle_request() calls handle_timeout() but returns None (2.7 behaviour)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SERVE-002",)


def handle_request(self):
    timeout = self.socket.gettimeout()
    if timeout is None:
        timeout = self.timeout
    elif self.timeout is not None:
        timeout = min(timeout, self.timeout)
    if timeout is not None:
        deadline = time() + timeout
    with _ServerSelector() as selector:
        selector.register(self, selectors.EVENT_READ)
        while True:
            if selector.select(timeout):
                return self._handle_request_noblock()
            else:
                if timeout is not None:
                    timeout = deadline - time()
                    if timeout < 0:
                        self.handle_timeout()
                        return None  # BROKEN: the value is dropped


BaseServer.handle_request = handle_request
