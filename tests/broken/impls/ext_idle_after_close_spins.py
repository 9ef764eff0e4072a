"""BROKEN: declares the 'idle-after-close' extension, but after server_close() its loop spins
(PollSelector) or raises (SelectSelector) as the stdlib's does."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("EXT-004",)

# BROKEN: the promise is declared, the stdlib loop is kept.
__socketserver_extensions__ = frozenset({"idle-after-close"})
