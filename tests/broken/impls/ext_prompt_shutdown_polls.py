"""BROKEN: declares the 'prompt-shutdown' extension but, like the stdlib, polls for shutdown()."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("EXT-001",)

# BROKEN: the promise is declared; serve_forever() still only sees shutdown() every poll_interval.
__socketserver_extensions__ = frozenset({"prompt-shutdown"})
