"""BROKEN: handle_request() without any timeout gives up after 0.1 s instead of blocking."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SERVE-003",)


def handle_request(self):
    timeout = self.socket.gettimeout()
    if timeout is None:
        timeout = self.timeout
    elif self.timeout is not None:
        timeout = min(timeout, self.timeout)
    if timeout is None:
        timeout = 0.1  # BROKEN: an invented default
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
                        return self.handle_timeout()


BaseServer.handle_request = handle_request
