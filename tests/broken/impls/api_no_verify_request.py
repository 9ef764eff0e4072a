"""BROKEN: BaseServer has no verify_request"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: serve_forever() dies on its first request (AttributeError): the probes find it once and every
#: later loop ends PRECONDITION_FAILED naming SERVE-007, whose clause (serve_forever() serves) it violates
BREAKS = ('API-020', 'SERVE-007')

del BaseServer.verify_request  # noqa: F821
