"""BROKEN: servers are not context managers"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: SHUTDOWN-009's clause is what __enter__/__exit__ do: it sees them missing too
BREAKS = ('API-019', 'SHUTDOWN-009')

del BaseServer.__enter__  # noqa: F821
