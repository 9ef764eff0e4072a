"""BROKEN: ThreadingMixIn.server_close does not wait for handler threads (3.6 behaviour)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-006",)


def server_close(self):
    super(ThreadingMixIn, self).server_close()  # noqa: F821


ThreadingMixIn.server_close = server_close  # noqa: F821
