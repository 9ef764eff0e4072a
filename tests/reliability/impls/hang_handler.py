"""HANGS: the handler base never returns: BaseRequestHandler.__init__ runs setup/handle/finish, then blocks forever."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "a handler never returns"
#: the check that owns the hung call (bench/precision.py reads it); the probes find the hang
#: once per process and the checks that need the call end PRECONDITION_FAILED naming it
BREAKS = {"HANDLER-001": "TIMEOUT"}

_original_init = BaseRequestHandler.__init__


def __init__(self, request, client_address, server):
    _original_init(self, request, client_address, server)
    threading.Event().wait()  # HANGS: finish_request() never returns, the request is never shut down


BaseRequestHandler.__init__ = __init__  # Stream- and DatagramRequestHandler inherit it
