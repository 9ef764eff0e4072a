"""BROKEN: server_close reaps without waiting for running children (3.6 behaviour)."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-004",)


def server_close(self):
    super(ForkingMixIn, self).server_close()  # noqa: F821
    self.collect_children(blocking=False)


ForkingMixIn.server_close = server_close  # noqa: F821
