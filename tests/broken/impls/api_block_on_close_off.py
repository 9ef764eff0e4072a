"""BROKEN: ThreadingMixIn.block_on_close defaults to False"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-018',)

ThreadingMixIn.block_on_close = False  # noqa: F821
