"""BROKEN: BaseServer has no service_actions hook"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ('API-026', 'API-029')

del BaseServer.service_actions  # noqa: F821
