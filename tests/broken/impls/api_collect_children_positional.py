"""BROKEN: ForkingMixIn.collect_children takes blocking as a positional-or-keyword parameter."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("API-024",)

if "ForkingMixIn" in globals():  # only where os.fork exists (not on Windows)
    _original_collect = ForkingMixIn.collect_children

    def collect_children(self, blocking=False):  # BROKEN: not keyword-only
        return _original_collect(self, blocking=blocking)

    ForkingMixIn.collect_children = collect_children
