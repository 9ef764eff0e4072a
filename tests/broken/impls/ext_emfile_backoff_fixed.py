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


def _handle_request_noblock(self):
    """The stdlib's, with a pause after an accept() that ran out of descriptors."""
    try:
        request, client_address = self.get_request()
    except OSError as exc:
        if exc.errno in (_errno.EMFILE, _errno.ENFILE, _errno.ENOBUFS, _errno.ENOMEM):
            _time.sleep(0.001)  # BROKEN: a fixed 1 ms; the promise doubles it up to min(0.1 s, poll_interval)
        return
    if self.verify_request(request, client_address):
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except:  # noqa: E722 - the stdlib's bare except: close, then re-raise
            self.shutdown_request(request)
            raise
    else:
        self.shutdown_request(request)


BaseServer._handle_request_noblock = _handle_request_noblock
