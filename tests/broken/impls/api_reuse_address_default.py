"""BROKEN: TCPServer.allow_reuse_address defaults to True"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: BIND-007's clause is also that the default leaves SO_REUSEADDR 0 (its tcp variant sees it set)
BREAKS = ('API-010', 'BIND-007')

TCPServer.allow_reuse_address = True  # noqa: F821
