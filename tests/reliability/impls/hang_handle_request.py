"""HANGS: handle_request() never returns, with or without a pending request or a timeout."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "handle_request() never returns"
#: the checks that own the hung behaviour (bench/precision.py reads them)
BREAKS = {"PIPELINE-001": "TIMEOUT", "SERVE-001": "TIMEOUT", "SERVE-009": "TIMEOUT"}


def handle_request(self):
    threading.Event().wait()


BaseServer.handle_request = handle_request
