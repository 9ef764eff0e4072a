"""BROKEN: ThreadingMixIn.daemon_threads defaults to True"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-014',)

ThreadingMixIn.daemon_threads = True  # noqa: F821
