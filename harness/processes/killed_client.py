"""A client process that connects, sends, says so, and waits to be killed.

Theory of operation
-------------------
The ``killed`` disconnect scenario (:mod:`harness.clients.disconnect`) needs a peer
that vanishes the way a crashed program does: no ``close()``, no
``shutdown()``, the kernel reaping its descriptors.  Only another process
can do that, so the scenario runs::

    python -m harness.processes.killed_client '{"family": "inet", "address": ["127.0.0.1", 4711], "payload": "hello\\n"}'

This process connects, sends the payload, prints one JSON line
``{"event": "ready", "pid": ..., "sent": n}`` on stdout, and then blocks
reading stdin.  The parent kills it (``SIGKILL`` on POSIX, ``Popen.kill``
= ``TerminateProcess`` on Windows) while it waits.  If the parent instead
closes stdin (it gave up), the process exits normally.  A watchdog bounds
its life to ``lifetime`` seconds (default :func:`harness.core.timeouts.long`)
in case nobody does either, and it exits with ``os._exit`` so that
nothing (no ``close()`` in a ``finally``) runs differently from a kill.

Errors before readiness are printed as ``{"event": "error", ...}`` and
exit with status 2.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any, Dict, List, Optional

from harness.core import timeouts


def _address(spec: Dict[str, Any]) -> Any:
    address = spec["address"]
    return tuple(address) if isinstance(address, list) else address


def _family(name: str) -> int:
    if name == "inet":
        return socket.AF_INET
    if name == "inet6":
        return socket.AF_INET6
    if name == "unix" and hasattr(socket, "AF_UNIX"):
        return socket.AF_UNIX
    raise ValueError(f"unsupported family {name!r}")


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        spec = json.loads(argv[0])
        lifetime = float(spec.get("lifetime") or timeouts.long())
        sock = socket.socket(_family(spec.get("family", "inet")), socket.SOCK_STREAM)
        sock.settimeout(timeouts.short())
        sock.connect(_address(spec))
        payload = spec.get("payload", "hello\n").encode("utf-8")
        sock.sendall(payload)
    except Exception as exc:
        _say(event="error", exc_type=type(exc).__name__, error=str(exc))
        sys.stdout.flush()
        os._exit(2)
    watchdog = threading.Timer(lifetime, os._exit, (4,))
    watchdog.daemon = True
    watchdog.start()
    _say(event="ready", pid=os.getpid(), sent=len(payload))
    sys.stdin.readline()  # the parent kills us here, or closes stdin to let us go
    os._exit(0)  # as abrupt as a kill: the kernel closes the socket
    return 0  # pragma: no cover


if __name__ == "__main__":
    main()
