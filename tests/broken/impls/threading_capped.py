"""BROKEN: at most 8 request threads at once: the serving loop waits for a free slot."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-010",)


_slots = threading.BoundedSemaphore(8)  # noqa: F821
_process_request = ThreadingMixIn.process_request  # noqa: F821
_process_request_thread = ThreadingMixIn.process_request_thread  # noqa: F821


def process_request_thread(self, request, client_address):
    try:
        _process_request_thread(self, request, client_address)
    finally:
        _slots.release()


def process_request(self, request, client_address):
    _slots.acquire()
    _process_request(self, request, client_address)


ThreadingMixIn.process_request = process_request  # noqa: F821
ThreadingMixIn.process_request_thread = process_request_thread  # noqa: F821
