"""HANGS: a stream server's get_request() (accept) blocks forever, even with a connection pending."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "get_request() (accept) never returns"
#: the check that owns the hung call (bench/precision.py reads it); the probes find the hang
#: once per process and the checks that need the call end PRECONDITION_FAILED naming it
BREAKS = {"PIPELINE-013": "TIMEOUT"}


def get_request(self):
    threading.Event().wait()


TCPServer.get_request = get_request  # UnixStreamServer inherits it; UDPServer has its own
