"""One client exchange whose failure is an observation, not an exception.

Theory of operation
-------------------
:func:`try_roundtrip` (connect, send, half-close, read to EOF) and
:func:`read_to_eof` return ``{"data", "eof", "error"}`` instead of raising,
so that a missing reply is something the check can *verify*: a broken
implementation then ends FAIL, not TIMEOUT or ERROR.  Every step is bounded
by the caller's budget (default ``short()``).  The raising client helpers
are :mod:`harness.clients.bounded`.

serve-dead: a caller that runs the serving loop itself may pass it as
``loop`` (a :class:`conformance.tools.running.LoopThread` or a ``serve_forever``
:class:`~conformance.tools.running.Background`).  The read then waits in
``poll()`` slices, and once ``loop.ended()`` says the loop that would answer has
ended (returned or raised, on a server that finishes each request in the loop's
own thread) and one more whole slice brought nothing, it stops at once: nothing
is left that could still send the reply or the EOF.  That is certain, not a
guess from time (serve_accept_error_ends_loop waited out 5 s per check for a
reply a dead loop could never send); the result's ``error`` says the loop
ended.
"""

from __future__ import annotations

import errno
import socket
from typing import Any, Dict, Optional

from harness.clients import bounded as clients
from harness.core import prerequisites, timeouts
from harness.core.timeouts import HarnessTimeout


def _raise_if_abortive(exc: Exception) -> None:
    """A reset met by a client of an implementation found to end its requests with a reset:
    the check cannot tell its reply from that defect, so it ends PRECONDITION_FAILED naming
    PIPELINE-002, which owns it (harness.core.prerequisites.abortive_close)."""
    # a send or shutdown() after the reset arrived reports ENOTCONN instead
    reset = isinstance(exc, ConnectionResetError) or getattr(exc, "errno", None) == errno.ENOTCONN
    broken = prerequisites.abortive_close() if reset else None
    if broken is not None:
        raise broken from exc


def _never_ends(served: Any) -> None:
    """slow-teardown: raise :class:`PreconditionFailed` naming PIPELINE-002 before a client
    waits for the end of a request that ``served`` (a lab's :class:`Built` or a
    :class:`SpecServer` whose ``handle_request()`` served it) is known not to end: the probes
    latched its class's request-ending functions as ``request_ends`` in this run.  That EOF
    never comes, so the read would wait out its whole budget (5 s per check in
    tutorial_keeps_connection_open) only to miss what it needs to judge a complete reply."""
    cls = getattr(served, "local_class", None)
    broken = prerequisites.serving_needs(cls, ("request_ends",)) if isinstance(cls, type) else None
    if broken is not None:
        raise broken


def read_to_eof(sock: socket.socket, budget: float, served: Any = None, loop: Any = None) -> Dict[str, Any]:
    """Read until EOF within ``budget``: ``{"data", "eof", "error"}``.  ``served``: the
    server whose request this is (see :func:`_never_ends`), when the check knows it;
    ``loop``: the serving loop that would answer (see the module doc)."""
    _never_ends(served)
    deadline = timeouts.Deadline(budget, "EOF from the server")
    data = bytearray()
    ended: Optional[str] = None
    for _ in range(10_000 if loop is None else 100_000):
        remaining = deadline.remaining()
        if remaining <= 0:
            return {"data": bytes(data), "eof": False, "error": f"no EOF within {budget:.2f}s"}
        if loop is not None and ended is None:
            ended = loop.ended()  # seen before the slice: whatever it sent arrives within it
        sock.settimeout(remaining if loop is None else min(remaining, timeouts.poll()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            if ended is not None:
                return {"data": bytes(data), "eof": False, "error": f"no EOF: {ended}"}
            if loop is not None:
                continue
            return {"data": bytes(data), "eof": False, "error": f"no EOF within {budget:.2f}s"}
        except OSError as exc:
            _raise_if_abortive(exc)
            return {"data": bytes(data), "eof": False, "error": f"{type(exc).__name__}: {exc}"}
        if not chunk:
            return {"data": bytes(data), "eof": True, "error": None}
        data += chunk
    return {"data": bytes(data), "eof": False, "error": "too many reads"}


def try_roundtrip(address: Any, payload: bytes, family: str = "inet",
                  budget: Optional[float] = None, loop: Any = None) -> Dict[str, Any]:
    """Connect, send, half-close, read to EOF: ``{"data", "eof", "error"}``; ``loop``:
    the serving loop that would answer (see the module doc)."""
    budget = timeouts.short() if budget is None else budget
    try:
        sock = clients.connect(address, family, timeout=budget)
    except (HarnessTimeout, OSError) as exc:
        _raise_if_abortive(exc)  # the server may have replied and reset before connect() returned
        return {"data": b"", "eof": False, "error": f"connect: {type(exc).__name__}: {exc}"}
    with sock:
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            _raise_if_abortive(exc)
            return {"data": b"", "eof": False, "error": f"send: {type(exc).__name__}: {exc}"}
        return read_to_eof(sock, budget, loop=loop)


__all__ = ["read_to_eof", "try_roundtrip"]
