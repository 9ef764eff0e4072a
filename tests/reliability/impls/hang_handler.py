"""HANGS: the handler base never returns: BaseRequestHandler.__init__ runs setup/handle/finish, then blocks forever."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "a handler never returns"
#: the checks that own the hung behaviour (bench/precision.py reads them)
BREAKS = {"SHUTDOWN-004": "TIMEOUT", "PIPELINE-001": "TIMEOUT", "HANDLER-005": "TIMEOUT", "UDP-001": "TIMEOUT", "THREADING-001": "TIMEOUT"}

_original_init = BaseRequestHandler.__init__


def __init__(self, request, client_address, server):
    _original_init(self, request, client_address, server)
    threading.Event().wait()  # HANGS: finish_request() never returns, the request is never shut down


BaseRequestHandler.__init__ = __init__  # Stream- and DatagramRequestHandler inherit it
