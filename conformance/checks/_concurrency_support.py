"""Serve any server kind with an instrumented handler, wherever it must run.

Theory of operation
-------------------
The CONCURRENCY and TUTORIAL checks run the same proof against every
server kind (``TCPServer`` ... ``ForkingUnixDatagramServer``).  A
non-forking server is served in a thread of the check's process
(:func:`harness.serving.servers.serve_in_thread`); a forking server always in a
process of its own (:func:`harness.processes.server_process.serve_in_process`),
because its children would inherit the check's client sockets.  Either
way the handler is an :func:`harness.serving.instrument.instrumented` one writing
to an :class:`~harness.serving.instrument.EventLog` file, so the check reads the
same events (``phase`` edges with pid and thread, ``hold`` events) from
both.  :func:`serve_kind` hides the difference and yields a
:class:`Served`.

:func:`held_stream_clients` is the stream proof of "N handlers at once"
with the ``echo`` behaviour: each client sends one line and reads its
echo, which only a running handler can produce; an ``echo`` handler ends
only when its client closes (or after its bounded read timeout), so N
echoes received before any client closes means N handlers were in
``handle()`` together.  The proof stops at the first client whose echo
does not come within one ``absence()`` window, which is what a
serialising server gives while earlier clients stay connected; that is
an observation for the check, not a harness timeout.

:func:`hold_datagrams` is the datagram proof with the ``hold`` behaviour:
a handler logs ``hold`` with its datagram's text and answers only after
:func:`harness.serving.instrument.release` names that text.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import sys
from typing import Any, Dict, Iterator, List, Optional

from harness.clients import clients
from harness.core import addresses, timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.processes.server_process import serve_in_process
from harness.serving import instrument
from harness.serving.instrument import EventLog, Interval
from harness.serving.servers import ServeError, build_server, serve_in_thread, server_class

#: Every server kind, by family and flavour: the parameter grid of the checks.
STREAM_KINDS = {
    ("inet", "sync"): "TCPServer",
    ("inet", "threading"): "ThreadingTCPServer",
    ("inet", "forking"): "ForkingTCPServer",
    ("unix", "sync"): "UnixStreamServer",
    ("unix", "threading"): "ThreadingUnixStreamServer",
    ("unix", "forking"): "ForkingUnixStreamServer",
}
DGRAM_KINDS = {
    ("inet", "sync"): "UDPServer",
    ("inet", "threading"): "ThreadingUDPServer",
    ("inet", "forking"): "ForkingUDPServer",
    ("unix", "sync"): "UnixDatagramServer",
    ("unix", "threading"): "ThreadingUnixDatagramServer",
    ("unix", "forking"): "ForkingUnixDatagramServer",
}


@dataclasses.dataclass
class Served:
    class_name: str
    address: Any
    family: str
    log: EventLog
    where: str  # "thread" | "process" | "agent"
    server_pid: Optional[int] = None


def is_forking_name(class_name: str) -> bool:
    return class_name.startswith("Forking")


def require_kind(module: Any, class_name: str) -> None:
    """End the check UNSUPPORTED when this variant's server kind cannot run
    here (a capability is absent, also when simulated) or the implementation
    has neither the class nor the mix-in and base to compose it."""
    from harness.core.capabilities import caps

    from ._helpers import UNSUPPORTED_PREFIX, unsupported

    needed = []
    if "Unix" in class_name:
        needed.append("af_unix")
    if is_forking_name(class_name):
        needed.append("fork")
    missing = [name for name in needed if not caps().has(name)]
    if missing:
        import pytest

        pytest.skip(UNSUPPORTED_PREFIX + "capability absent: " + ", ".join(missing))
    try:
        server_class(module, class_name)
    except (AttributeError, addresses.UnsupportedFeature) as exc:
        unsupported(str(exc))


@contextlib.contextmanager
def serve_kind(impl: Any, class_name: str, behaviour: str, *, handler_base: Optional[str] = None,
               options: Optional[Dict[str, Any]] = None, **attrs: Any) -> Iterator[Served]:
    """Serve ``class_name`` of the implementation with an instrumented
    ``behaviour`` handler: in this process, or in a server process when it forks."""
    family = addresses.family_for_class(class_name)
    subject = getattr(impl, "subject", None)
    if subject is not None:  # the implementation lives in another interpreter (harness.subject)
        with subject.serve(class_name, behaviour, family=family, attrs=attrs, handler_base=handler_base,
                           options=options) as proc:
            yield Served(class_name, proc.address, family, proc.log, "agent", proc.pid)
        return
    if is_forking_name(class_name):
        with serve_in_process(impl.spec, class_name, behaviour, family=family, attrs=attrs,
                              handler_base=handler_base, options=options) as proc:
            yield Served(class_name, proc.address, family, proc.log, "process", proc.pid)
        return
    module = impl.module
    if handler_base is None:
        handler_base = ("DatagramRequestHandler" if addresses.is_datagram_class(class_name)
                        else "StreamRequestHandler")
    with addresses.private_dir() as directory:
        log = EventLog.create(directory)
        handler = instrument.instrumented(getattr(module, handler_base), behaviour, log, **(options or {}))
        address = addresses.server_address_for(family, directory, name="srv")
        server = build_server(module, class_name, handler, address, **attrs)
        with serve_in_thread(server) as served:
            yield Served(class_name, served.address, family, log, "thread")


@contextlib.contextmanager
def serve_observed(server: Any, died: Dict[str, Any]) -> Iterator[Any]:
    """:func:`harness.serving.servers.serve_in_thread`, except that ``serve_forever``
    dying is recorded in ``died`` for the check to judge instead of raised:
    a server that stops serving is a FAIL of the check, not an ERROR.

    If it died before its loop was ready (a request already waiting killed
    it on the first iteration), the block runs with ``None`` for the served
    server.
    """
    context = serve_in_thread(server)
    try:
        served = context.__enter__()
    except (HarnessTimeout, ServeError, PreconditionFailed):
        raise
    except Exception as exc:  # serve_forever's own exception, re-raised after teardown
        died["serve_forever_died"] = instrument.describe_exception(exc)
        died["when"] = "before its loop was ready"
        yield None
        return
    try:
        yield served
    except BaseException:
        if not context.__exit__(*sys.exc_info()):
            raise
        return
    try:
        context.__exit__(None, None, None)
    except Exception as exc:
        if served.serve_error is not exc:
            raise
        died["serve_forever_died"] = instrument.describe_exception(exc)
        died["when"] = "while serving"


# --------------------------------------------------------------------------- log queries


def handle_edges(log: EventLog, edge: str) -> List[Dict[str, Any]]:
    return instrument.select(log.read(), kind="phase", phase="handle", edge=edge)


def wait_handle_edges(log: EventLog, edge: str, count: int, budget: Optional[float] = None) -> int:
    """Wait (bounded, no raise) until ``count`` handle ``edge`` events exist; how many do."""
    budget = timeouts.short() if budget is None else budget
    try:
        log.wait_for(lambda events: len(instrument.select(events, kind="phase", phase="handle",
                                                          edge=edge)) >= count,
                     budget, f"{count} handle {edge} events")
    except HarnessTimeout:
        pass
    return len(handle_edges(log, edge))


def intervals_of(log: EventLog, requests: Optional[List[str]] = None) -> List[Interval]:
    found = instrument.intervals(log.read(), "handle")
    if requests is None:
        return found
    wanted = set(requests)
    return [iv for iv in found if iv.request in wanted]


def timeline_rows(items: List[Interval]) -> List[Dict[str, Any]]:
    return [{"start": iv.start, "end": iv.end, "pid": iv.pid, "tid": iv.tid}
            for iv in items if iv.end is not None]


# --------------------------------------------------------------------------- stream proof


class HeldStream:
    """Clients of ``echo`` handlers that stay connected (their handlers stay in handle())."""

    def __init__(self, served: Served):
        self.served = served
        self.sockets: List[socket.socket] = []
        self.echoed: List[bytes] = []

    def connect(self) -> socket.socket:
        sock = clients.connect(self.served.address, self.served.family)
        self.sockets.append(sock)
        return sock

    def line(self, index: int) -> bytes:
        return b"held client %d\n" % index

    def send(self, index: int) -> None:
        clients.sendall(self.sockets[index], self.line(index))

    def read_echo(self, index: int, budget: float) -> Optional[bytes]:
        """The echo of client ``index``'s line, or None if none came within ``budget``."""
        try:
            data = clients.recv_line(self.sockets[index], timeouts.Deadline(budget, "an echo"))
        except HarnessTimeout:
            return None
        return data

    def close(self, index: int) -> None:
        self.sockets[index].close()


@contextlib.contextmanager
def held_stream_clients(served: Served) -> Iterator[HeldStream]:
    held = HeldStream(served)
    try:
        yield held
    finally:
        for sock in held.sockets:
            sock.close()


# --------------------------------------------------------------------------- datagram proof


class HeldDatagrams:
    """Datagram clients of ``hold`` handlers: one client socket per token."""

    def __init__(self, served: Served, stack: contextlib.ExitStack):
        self.served = served
        self.stack = stack
        self.sockets: Dict[str, socket.socket] = {}

    def send(self, token: str) -> None:
        sock = self.stack.enter_context(clients.dgram_client(self.served.family))
        self.sockets[token] = sock
        sock.sendto(token.encode("ascii"), self.served.address)

    def holds(self) -> List[str]:
        return [e.get("token") for e in self.served.log.read() if e.get("kind") == "hold"]

    def wait_holds(self, count: int, budget: Optional[float] = None) -> int:
        budget = timeouts.short() if budget is None else budget
        try:
            self.served.log.wait_for(
                lambda events: sum(1 for e in events if e.get("kind") == "hold") >= count,
                budget, f"{count} held datagrams")
        except HarnessTimeout:
            pass
        return len(self.holds())

    def release(self, token: str) -> bytes:
        """Release ``token``'s handler; its reply (b'' if none came)."""
        instrument.release(self.served.log, token)
        try:
            data, _ = clients.recvfrom(self.sockets[token])
        except HarnessTimeout:
            return b""
        return data


@contextlib.contextmanager
def hold_datagrams(served: Served) -> Iterator[HeldDatagrams]:
    """Datagram clients of ``hold`` handlers; on exit every handler still
    holding (or holding later) is released, so teardown never waits for one."""
    with contextlib.ExitStack() as stack:
        stack.callback(instrument.release, served.log, None)
        yield HeldDatagrams(served, stack)


__all__ = [
    "DGRAM_KINDS",
    "HeldDatagrams",
    "HeldStream",
    "STREAM_KINDS",
    "Served",
    "handle_edges",
    "held_stream_clients",
    "hold_datagrams",
    "intervals_of",
    "is_forking_name",
    "require_kind",
    "serve_kind",
    "serve_observed",
    "timeline_rows",
    "wait_handle_edges",
]
