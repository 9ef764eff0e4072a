"""BROKEN: TCPServer never closes a finished request: it keeps the socket (in a list) instead."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: PIPELINE-002 owns a request that never ends (no EOF after the handler): the probes find it once,
#: and the tutorial server that shows it (TUTORIAL-001) is refused naming it
#: PIPELINE-012 sees the defect itself: process_request()'s calls end at shutdown_request(), the
#: request is never closed (no close_request())
BREAKS = {"PIPELINE-002": "FAIL", "PIPELINE-012": "FAIL", "TUTORIAL-001": "PRECONDITION_FAILED"}

_KEPT = []


def shutdown_request(self, request):
    _KEPT.append(request)  # BROKEN: neither shut down nor closed; the client never sees the end


TCPServer.shutdown_request = shutdown_request
