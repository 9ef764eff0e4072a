"""BROKEN: handle_request() handles every pending request, not one."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("SERVE-009",)


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
                self._handle_request_noblock()
                for _ in range(100):  # BROKEN: drains the backlog
                    if not selector.select(0):
                        break
                    self._handle_request_noblock()
                return None
            else:
                if timeout is not None:
                    timeout = deadline - time()
                    if timeout < 0:
                        return self.handle_timeout()


BaseServer.handle_request = handle_request
