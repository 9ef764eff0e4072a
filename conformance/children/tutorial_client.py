"""Child program: the original tutorial's ``socketclient``, for the killed-client scene.

Theory of operation
-------------------
TUTORIAL-003 needs a client that is a process of its own and dies without
closing its socket.  Run as ``python -m conformance.children.tutorial_client
'{"address": ..., "messages": [...]}'`` (through
:mod:`harness.processes.supervisor`), this is the tutorial's
``socketclient``: it connects, sends each message and reports what
``recv(1024)`` returned (one protocol message each, so the parent knows the
replies were *read*: unread data would turn the kernel's FIN into an RST on
Linux), then says ``ready`` and blocks on stdin until the parent kills it.
A watchdog timer bounds its life.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any, List, Optional

from harness.core import timeouts


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def client_main(argv: Optional[List[str]] = None) -> int:
    """The tutorial's socketclient.py, in a process of its own (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    watchdog = threading.Timer(float(spec.get("lifetime") or timeouts.long()), os._exit, (4,))
    watchdog.daemon = True
    watchdog.start()
    try:
        address = spec["address"]
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(timeouts.short())
        client.connect(tuple(address))
        for msg in spec["messages"]:
            client.send(msg.encode("UTF-8"))
            data = client.recv(1024)  # 接收1024字节
            _say(event="recv", data=data.decode("latin-1"))  # print("recv from server: ", data)
    except Exception as exc:
        _say(event="error", exc_type=type(exc).__name__, error=str(exc))
        os._exit(2)
    _say(event="ready", pid=os.getpid())
    sys.stdin.readline()  # killed here by the parent (or released by closing stdin)
    os._exit(0)  # as abrupt as a kill: no close(), the kernel reaps the socket
    return 0  # pragma: no cover


if __name__ == "__main__":
    client_main()
