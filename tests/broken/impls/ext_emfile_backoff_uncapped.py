"""BROKEN: declares the 'emfile-backoff' extension and doubles its pause after each EMFILE
accept() failure from 1 ms, but caps it at 0.5 s instead of min(0.1 s, poll_interval): every
pause is long enough (the lower bound holds) and the sum is about 3 s where 0.83 s was promised.
Only EXT-003's upper bound (total time to the k-th retry) can see it."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import errno as _errno
import socketserver as _stdlib
import time as _time

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("EXT-003",)

__socketserver_extensions__ = frozenset({"emfile-backoff"})


_stdlib_handle_request_noblock = BaseServer._handle_request_noblock
_EXHAUSTED = (_errno.EMFILE, _errno.ENFILE, _errno.ENOBUFS, _errno.ENOMEM)


def _handle_request_noblock(self):
    """The stdlib's, then a doubling pause if get_request() ran out of descriptors."""
    failed = []
    get_request = self.get_request

    def watched():
        try:
            return get_request()
        except OSError as exc:
            failed.append(exc.errno)
            raise

    self.get_request = watched
    try:
        _stdlib_handle_request_noblock(self)
    finally:
        del self.get_request
    if failed and failed[0] in _EXHAUSTED:
        pause = getattr(self, "_broken_pause", 0.001)
        _time.sleep(pause)
        self._broken_pause = min(0.5, pause * 2)  # BROKEN: the cap is min(0.1 s, poll_interval)
    else:
        self._broken_pause = 0.001


BaseServer._handle_request_noblock = _handle_request_noblock
