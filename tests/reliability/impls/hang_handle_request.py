"""HANGS: handle_request() never returns, with or without a pending request or a timeout."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "handle_request() never returns"
#: the check that owns the hung call (bench/precision.py reads it); the probes find the hang
#: once per process and the checks that need the call end PRECONDITION_FAILED naming it
BREAKS = {"SERVE-001": "TIMEOUT"}


def handle_request(self):
    threading.Event().wait()


BaseServer.handle_request = handle_request
