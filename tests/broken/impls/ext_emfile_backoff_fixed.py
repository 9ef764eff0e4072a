"""BROKEN: declares the 'emfile-backoff' extension and does pause after an EMFILE accept()
failure, but always for 1 ms: the pause never doubles towards its cap."""
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
    """The stdlib's, then a pause if get_request() ran out of descriptors."""
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
        _time.sleep(0.001)  # BROKEN: a fixed 1 ms; the promise doubles it up to min(0.1 s, poll_interval)


BaseServer._handle_request_noblock = _handle_request_noblock
