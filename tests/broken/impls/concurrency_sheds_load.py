"""BROKEN: ThreadingMixIn sheds load: with 16 handler threads running it closes new requests unserved."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# The probes find the shedding once (20 held handlers, THREADING-010's count), so every other
# Threading* server is refused naming THREADING-010, CONCURRENCY-002 included: it had FAILed on
# its own swarm, and CONCURRENCY-005's datagram swarm FAILed only when load kept 16 threads alive.
BREAKS = {"THREADING-010": "FAIL", "CONCURRENCY-002": "PRECONDITION_FAILED"}

_LIMIT = 16
_original = ThreadingMixIn.process_request


def process_request(self, request, client_address):
    # the instance's own list only: the class attribute is a placeholder (_NoThreads since
    # 3.7.x, None before), which is not iterable; the list exists after the first request
    running = [t for t in list(vars(self).get("_threads") or ()) if t.is_alive()]
    if len(running) >= _LIMIT:
        self.shutdown_request(request)  # BROKEN: the client is dropped, nothing documents a cap
        return
    _original(self, request, client_address)


ThreadingMixIn.process_request = process_request
