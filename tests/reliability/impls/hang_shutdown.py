"""HANGS: shutdown() asks the loop to stop, then never returns (it waits on nothing that is ever set)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))


HANGS = "shutdown() never returns"
#: the checks that own the hung behaviour (bench/precision.py reads them)
BREAKS = {"SHUTDOWN-001": "TIMEOUT", "SHUTDOWN-010": "FAIL"}


def shutdown(self):
    self._BaseServer__shutdown_request = True  # the loop does stop ...
    threading.Event().wait()  # ... but shutdown() never returns


BaseServer.shutdown = shutdown
