"""BROKEN: handle_request() with a timeout polls once and times out at once instead of waiting."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: SERVE-014 too: "handle_request() with self.timeout above one second waits that long" is the
#: very wait this handle_request() skips
BREAKS = ("SERVE-001", "SERVE-011", "SERVE-014")


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
            if selector.select(0 if timeout is not None else None):
                return self._handle_request_noblock()
            else:
                if timeout is not None:
                    timeout = deadline - time()
                    if True:  # BROKEN: no waiting for the deadline
                        return self.handle_timeout()


BaseServer.handle_request = handle_request
