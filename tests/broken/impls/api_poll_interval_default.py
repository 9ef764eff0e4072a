"""BROKEN: serve_forever polls every second by default"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-021',)

_serve_forever = BaseServer.serve_forever  # noqa: F821


def _slow_serve_forever(self, poll_interval=1.0):
    return _serve_forever(self, poll_interval)


BaseServer.serve_forever = _slow_serve_forever  # noqa: F821
