"""HANGS: a stream server's get_request() (accept) blocks forever, even with a connection pending."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "get_request() (accept) never returns"
#: the checks that own the hung behaviour (bench/precision.py reads them)
BREAKS = {"SHUTDOWN-004": "TIMEOUT", "PIPELINE-001": "TIMEOUT", "HANDLER-005": "TIMEOUT"}


def get_request(self):
    threading.Event().wait()


TCPServer.get_request = get_request  # UnixStreamServer inherits it; UDPServer has its own
