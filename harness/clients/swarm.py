"""Many concurrent clients against one server, every message verified.

Theory of operation
-------------------
A swarm is ``clients`` clients, each sending ``messages`` messages of
``size`` bytes to a server that echoes them (an ``echo``/``echo_line``
handler of :mod:`harness.serving.instrument`, or any echo server).  Every message
is unique and verifiable: ``b"c<client>-m<i>-<fill>\\n"``, where the fill
is a rotation of the alphabet chosen by ``(client, i)``, so a reply that
is truncated, altered, reordered or belongs to another client is caught.
A client sends message *i*, waits for its echo (bounded by
``reply_timeout``), compares, and only then sends *i + 1*; the time from
the first byte sent to the last byte of the echo is the message's
round-trip latency.

"Released together" (the default): every client connects first, so that
all connections are held at the same time, and only when every connect
has completed or failed does any client send.  This is what stresses a
server: N established connections, then N requests at once.

Two drivers run the same protocol:

``selectors`` (large N)
    One non-blocking event loop on ``selectors.DefaultSelector``.
    Connects are started in batches (``connect_batch`` in flight), because
    a server's listen backlog is small (``request_queue_size = 5``) and on
    Linux the SYNs that overflow it are dropped silently and retransmitted
    by the kernel only after 1 s, 3 s, 7 s...  A connect attempt that does
    not complete within :data:`FIRST_ATTEMPT` (doubling per attempt) or
    gets ``EAGAIN`` (AF_UNIX with a full backlog) is retried with a fresh
    socket while the client's ``connect_timeout`` lasts; one that is
    refused or reset (Windows answers a full backlog with RST) is retried
    up to ``connect_attempts`` times.  Per-client deadlines live in a heap of
    timers, so the loop never scans all clients per event.
    ``selectors.SelectSelector`` (Windows, or simulated absence of the
    ``poll`` capability) is limited to 512 sockets per ``select()`` call
    on Windows, so the clients are split into chunks of
    :data:`SELECT_CHUNK`, one loop thread per chunk, and the chunks share
    one release gate.

``threads`` (small N, blocking semantics)
    One thread per client with a blocking socket whose every call has a
    timeout derived from the budget; release is a countdown gate.

Nothing waits without a bound: the whole run is bounded by ``budget``
(default :func:`harness.core.timeouts.long`), each client's connecting (all
attempts) by ``connect_timeout`` (``short()``) and each echo by
``reply_timeout`` (``medium()`` on a stream, where a segment that met a
full accept queue is only retransmitted after 1 s, 3 s, 7 s...;
``short()`` for a datagram, which is simply lost).  A client's *last* datagram is judged lost
only after the *server* has been silent for that long: while it still answers other clients of
the swarm (:class:`_Progress`), the client keeps waiting for its reply, up to the swarm's budget.
An earlier datagram is lost after the reply timeout, as the next one tests the server again (a
server that answers others sparsely, e.g. one tied to a single client, would otherwise keep
every client waiting until the budget: a TIMEOUT instead of the FAIL its losses deserve).  A loaded
machine therefore makes a forking datagram server slow (each reply waits for its fork), not
lossy: with a per-message deadline alone, 100 datagrams released together against a
``ForkingUDPServer`` at load 37 counted 52 lost (CONCURRENCY-006, a clean reference, this
kit's mutation round 4).  A dead or hung server therefore gives
errors in the summary, never a hang; clients still unfinished when the
budget runs out are recorded with the error type ``HarnessTimeout``.

Accounting, per message: ``ok`` (echoed intact), ``corrupted`` (a reply
arrived and differs), ``lost`` (sent, but no reply before EOF, an error or
the reply timeout) and ``unsent`` (never sent because the client failed
earlier).  A client is *served* when all its messages are ``ok``.  Errors
carry the exception type, ``errno``, its symbolic name and ``winerror``.

:func:`raise_nofile_limit` raises ``RLIMIT_NOFILE`` toward the hard limit
(capability ``rlimit``) so that 10,000 sockets fit in one process;
:func:`run_swarm` raises it to what its own clients need (and a server in
the same process) before it opens a socket.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno as errno_module
import heapq
import os
import selectors
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

from harness.core import addresses, clock, timeouts
from harness.core.capabilities import caps

#: The most clients one swarm may run (the kit's target is 10,000).
MAX_CLIENTS = 10_000
#: The most clients in ``threads`` mode (one OS thread each).
MAX_THREAD_CLIENTS = 2_000
#: The most messages per client and the largest message.
MAX_MESSAGES = 100_000
MAX_SIZE = 65_000
#: Sockets per ``SelectSelector`` (Windows' select() takes at most 512).
SELECT_CHUNK = 500
#: Read size per ``recv`` call.
RECV_SIZE = 65_536

_ALPHABET = b"abcdefghijklmnopqrstuvwxyz"
_IN_PROGRESS = {errno_module.EINPROGRESS, errno_module.EALREADY}
if hasattr(errno_module, "WSAEWOULDBLOCK"):  # Windows: a non-blocking connect reports 10035
    _IN_PROGRESS.add(errno_module.WSAEWOULDBLOCK)
#: errno family -> retry policy of a failed connect (see :func:`connect_retry`).  An AF_UNIX
#: listener whose queue is full answers EAGAIN on Linux (unix(7): "EAGAIN ... the backlog of
#: the listening socket is full") and ECONNREFUSED on macOS and the BSDs (XNU and FreeBSD
#: unp_connect: sonewconn() fails -> ECONNREFUSED; unix(4), connect(2)).  The swarm's listener
#: exists, so for AF_UNIX these mean "full, try again": retried while the connect window lasts.
_UNIX_QUEUE_FULL = {errno_module.EAGAIN, errno_module.EWOULDBLOCK, errno_module.ECONNREFUSED}
#: Errors worth a new attempt, at most ``connect_attempts`` times: a refused or reset TCP handshake.
_COUNTED = {errno_module.ECONNREFUSED, errno_module.ECONNRESET}
#: The first connect attempt's timeout; each timed-out attempt doubles it.  A
#: loopback handshake is done by the kernels in microseconds, without the
#: server process, so an attempt still pending after this long had its SYN
#: dropped by a full accept queue.  The kernel would resend it only after
#: 1 s (then 3 s, 7 s...); a fresh socket retries at once instead.
FIRST_ATTEMPT = 0.02
#: Backoff between connect retries (grows to the maximum); a timer, not a sleep.
_RETRY_FIRST = 0.001
_RETRY_MAX = 0.05


class SwarmConfigError(ValueError):
    """The swarm configuration is invalid or cannot run here."""


# --------------------------------------------------------------------------
# configuration, messages, outcomes


@dataclasses.dataclass
class SwarmConfig:
    """What to run.  ``None`` timeouts take the named budgets of :mod:`harness.core.timeouts`."""

    address: Any
    family: Any = "inet"  # "inet" | "inet6" | "unix" or a socket.AF_* constant
    kind: str = "stream"  # "stream" | "dgram"
    clients: int = 100
    messages: int = 1  # per client
    size: int = 64  # bytes per message (at least the header and the newline)
    mode: str = "selectors"  # "selectors" | "threads"
    release_together: bool = True
    connect_timeout: Optional[float] = None  # per client, all attempts; default short()
    reply_timeout: Optional[float] = None  # per message; default medium() (stream), short() (dgram)
    budget: Optional[float] = None  # the whole run; default long()
    connect_batch: int = 16  # connects in flight at once per selector loop
    connect_attempts: int = 3  # attempts per client that end in an error (refused, reset)
    first_attempt_timeout: Optional[float] = None  # default FIRST_ATTEMPT x the multiplier
    selector_class: Optional[type] = None  # default: see selector_plan()
    selector_chunk: Optional[int] = None  # sockets per selector; default: see selector_plan()

    def family_constant(self) -> int:
        return family_constant(self.family)

    def validate(self) -> None:
        if self.kind not in ("stream", "dgram"):
            raise SwarmConfigError(f"kind must be 'stream' or 'dgram', not {self.kind!r}")
        if self.mode not in ("selectors", "threads"):
            raise SwarmConfigError(f"mode must be 'selectors' or 'threads', not {self.mode!r}")
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise SwarmConfigError(f"clients must be 1..{MAX_CLIENTS}, not {self.clients}")
        if self.mode == "threads" and self.clients > MAX_THREAD_CLIENTS:
            raise SwarmConfigError(
                f"threads mode runs one OS thread per client and is capped at {MAX_THREAD_CLIENTS}; "
                f"use mode='selectors' for {self.clients} clients"
            )
        if not 1 <= self.messages <= MAX_MESSAGES:
            raise SwarmConfigError(f"messages must be 1..{MAX_MESSAGES}, not {self.messages}")
        if not 1 <= self.size <= MAX_SIZE:
            raise SwarmConfigError(f"size must be 1..{MAX_SIZE}, not {self.size}")
        if self.connect_batch < 1 or self.connect_attempts < 1:
            raise SwarmConfigError("connect_batch and connect_attempts must be at least 1")
        if self.selector_chunk is not None and self.selector_chunk < 1:
            raise SwarmConfigError("selector_chunk must be at least 1")
        self.family_constant()  # refuses a family this platform (or the simulation) lacks

    def resolved(self) -> Dict[str, float]:
        return {
            "connect_timeout": self.connect_timeout if self.connect_timeout is not None else timeouts.short(),
            "first_attempt_timeout": self.first_attempt_timeout
            if self.first_attempt_timeout is not None
            else FIRST_ATTEMPT * timeouts.multiplier(),
            "reply_timeout": self.reply_timeout
            if self.reply_timeout is not None
            else (timeouts.medium() if self.kind == "stream" else timeouts.short()),
            "budget": self.budget if self.budget is not None else timeouts.long(),
        }

    def as_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["address"] = _json_address(self.address)
        data["family"] = family_name(self.family)
        data["selector_class"] = self.selector_class.__name__ if self.selector_class else None
        data.update(self.resolved())
        return data


def family_constant(family: Any) -> int:
    """``"inet"``/``"inet6"``/``"unix"`` (or a constant) to ``socket.AF_*``; refuses absent families."""
    try:
        return addresses.socket_family(family)
    except addresses.UnsupportedFeature as exc:
        raise SwarmConfigError(str(exc)) from None
    except ValueError as exc:
        raise SwarmConfigError(str(exc)) from None


def family_name(family: Any) -> str:
    return addresses.family_name(family)


def _json_address(address: Any) -> Any:
    if isinstance(address, bytes):
        return address.decode("utf-8", "backslashreplace")
    if isinstance(address, tuple):
        return list(address)
    return address


def message(client: int, index: int, size: int) -> bytes:
    """The unique, verifiable message ``index`` of ``client`` (``size`` bytes when it fits)."""
    head = b"c%d-m%d-" % (client, index)
    fill_len = max(0, size - len(head) - 1)
    start = (client * 31 + index * 7) % len(_ALPHABET)
    rotated = _ALPHABET[start:] + _ALPHABET[:start]
    fill = (rotated * (fill_len // len(rotated) + 1))[:fill_len]
    return head + fill + b"\n"


def frame_length(buffer: Union[bytes, bytearray], expected: bytes) -> Optional[int]:
    """How many bytes of ``buffer`` form the reply to ``expected`` on a stream.

    The reply ends at the first newline or after ``len(expected)`` bytes,
    whichever comes first (a corrupting server that drops the newline or
    shortens the line still yields one comparable reply); ``None`` means
    more bytes are needed.
    """
    limit = len(expected)
    newline = buffer.find(b"\n", 0, limit)
    if newline >= 0:
        return newline + 1
    if len(buffer) >= limit:
        return limit
    return None


@dataclasses.dataclass
class ErrorInfo:
    """One client's first error: where it happened and what the OS said."""

    phase: str  # connect | release | send | recv | budget
    type: str  # exception class name, "EOF" or "HarnessTimeout"
    errno: Optional[int] = None
    errno_name: Optional[str] = None
    winerror: Optional[int] = None
    message: str = ""

    def key(self) -> str:
        """The grouping key of the summary's ``errors`` table."""
        parts = [self.type]
        if self.errno_name:
            parts.append(self.errno_name)
        elif self.errno is not None:
            parts.append(f"errno {self.errno}")
        if self.winerror is not None:
            parts.append(f"WinError {self.winerror}")
        return " ".join(parts) + f" ({self.phase})"

    @classmethod
    def from_exception(cls, exc: BaseException, phase: str) -> ErrorInfo:
        code = getattr(exc, "errno", None)
        code = code if isinstance(code, int) else None
        return cls(
            phase=phase,
            type=_type_name(exc),
            errno=code,
            errno_name=errno_module.errorcode.get(code) if code is not None else None,
            winerror=getattr(exc, "winerror", None),
            message=str(exc)[:200],
        )


def _type_name(exc: BaseException) -> str:
    # socket.timeout is TimeoutError from 3.10 on; on 3.9 it is its own class
    if isinstance(exc, socket.timeout):
        return "TimeoutError"
    return type(exc).__name__


def os_error(code: int) -> OSError:
    """The exception the OS error ``code`` maps to (ConnectionRefusedError for ECONNREFUSED...)."""
    return OSError(code, os.strerror(code))


@dataclasses.dataclass
class ClientOutcome:
    index: int
    connected: bool = False
    connect_time: Optional[float] = None  # from the first attempt to completion, seconds
    connect_attempts: int = 0
    connected_at: Optional[float] = None  # harness.core.clock.now() when the connect completed
    first_sent_at: Optional[float] = None  # harness.core.clock.now() when the first message began
    bytes_sent: int = 0
    bytes_received: int = 0
    ok: int = 0
    corrupted: int = 0
    lost: int = 0
    unsent: int = 0
    late: int = 0  # datagram replies to an earlier, already-lost message (ignored)
    latencies: List[float] = dataclasses.field(default_factory=list)
    error: Optional[ErrorInfo] = None
    corruption_sample: Optional[Dict[str, str]] = None

    def served(self, messages: int) -> bool:
        return self.ok == messages

    def fail(self, info: ErrorInfo) -> None:
        if self.error is None:
            self.error = info

    def as_dict(self) -> Dict[str, Any]:
        data = dataclasses.asdict(self)
        data["error"] = dataclasses.asdict(self.error) if self.error else None
        return data


def percentile(values: Sequence[float], fraction: float) -> Optional[float]:
    """Nearest-rank percentile (``fraction`` in 0..1); ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))  # ceil
    return ordered[min(rank, len(ordered)) - 1]


@dataclasses.dataclass
class SwarmResult:
    config: SwarmConfig
    clients: List[ClientOutcome]
    wall_time: float
    connect_phase: float  # from the start to the release
    exchange_phase: float  # from the release to the end
    selector: str
    loops: int

    @property
    def summary(self) -> Dict[str, Any]:
        m = self.config.messages
        connect_times = [c.connect_time for c in self.clients if c.connect_time is not None]
        latencies = [lat for c in self.clients for lat in c.latencies]
        errors: Dict[str, int] = collections.Counter(c.error.key() for c in self.clients if c.error)
        ok = sum(c.ok for c in self.clients)
        return {
            "clients": len(self.clients),
            "connected": sum(1 for c in self.clients if c.connected),
            "served": sum(1 for c in self.clients if c.served(m)),
            "messages_expected": len(self.clients) * m,
            "messages_ok": ok,
            "lost": sum(c.lost for c in self.clients),
            "corrupted": sum(c.corrupted for c in self.clients),
            "unsent": sum(c.unsent for c in self.clients),
            "late": sum(c.late for c in self.clients),
            "errors": dict(sorted(errors.items())),
            "bytes_sent": sum(c.bytes_sent for c in self.clients),
            "bytes_received": sum(c.bytes_received for c in self.clients),
            "wall_time": round(self.wall_time, 4),
            "connect_phase": round(self.connect_phase, 4),
            "exchange_phase": round(self.exchange_phase, 4),
            "messages_per_s": round(ok / self.exchange_phase, 1) if self.exchange_phase > 0 else None,
            "connect_p50": _round(percentile(connect_times, 0.50)),
            "connect_p99": _round(percentile(connect_times, 0.99)),
            "connect_max": _round(max(connect_times) if connect_times else None),
            "latency_p50": _round(percentile(latencies, 0.50)),
            "latency_p99": _round(percentile(latencies, 0.99)),
            "latency_max": _round(max(latencies) if latencies else None),
            "selector": self.selector,
            "loops": self.loops,
        }

    @property
    def ok(self) -> bool:
        """Every client served: nothing lost, corrupted or unsent, no error."""
        s = self.summary
        return s["served"] == s["clients"] and not s["errors"]

    def as_dict(self, per_client: bool = False) -> Dict[str, Any]:
        data: Dict[str, Any] = {"config": self.config.as_dict(), "summary": self.summary}
        if per_client:
            data["clients"] = [c.as_dict() for c in self.clients]
        else:
            samples = [c.as_dict() for c in self.clients if c.error or c.corrupted][:5]
            data["sample_failures"] = samples
        return data

    def text(self) -> str:
        s = self.summary
        c = self.config
        lines = [
            f"swarm: {s['clients']} {family_name(c.family)}/{c.kind} clients x {c.messages} messages "
            f"of {c.size} B, mode={c.mode} ({s['selector']}, {s['loops']} loop(s)), "
            f"released {'together' if c.release_together else 'as connected'}",
            f"  connected {s['connected']}, served {s['served']}, lost {s['lost']}, "
            f"corrupted {s['corrupted']}, unsent {s['unsent']}",
            f"  wall {s['wall_time']:.3f}s (connect {s['connect_phase']:.3f}s, exchange {s['exchange_phase']:.3f}s), "
            f"{s['messages_per_s']} messages/s",
            f"  connect p50 {_ms(s['connect_p50'])} p99 {_ms(s['connect_p99'])} max {_ms(s['connect_max'])}; "
            f"latency p50 {_ms(s['latency_p50'])} p99 {_ms(s['latency_p99'])} max {_ms(s['latency_max'])}",
        ]
        for key, count in s["errors"].items():
            lines.append(f"  error x{count}: {key}")
        return "\n".join(lines)


def _round(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value, 6)


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value * 1000:.2f}ms"


# --------------------------------------------------------------------------
# selector choice


@dataclasses.dataclass(frozen=True)
class SelectorPlan:
    selector_class: type
    chunk: Optional[int]  # sockets per selector loop; None: all in one loop
    reason: str


def selector_plan(selector_class: Optional[type] = None, chunk: Optional[int] = None) -> SelectorPlan:
    """Which selector the ``selectors`` driver uses, and how many sockets per loop.

    Without the ``poll`` capability (Windows, or simulated) the only
    selector is ``SelectSelector``, whose ``select()`` takes at most 512
    sockets on Windows: the clients are split into loops of
    :data:`SELECT_CHUNK`.  ``SelectSelector`` on POSIX is limited by fd
    *value* (< FD_SETSIZE, 1024) instead; registering a larger fd fails
    and is reported as that client's error.
    """
    if selector_class is None:
        selector_class = selectors.DefaultSelector if caps().poll else selectors.SelectSelector
    if chunk is not None:
        return SelectorPlan(selector_class, chunk, "chunk size given explicitly")
    if issubclass(selector_class, selectors.SelectSelector):
        return SelectorPlan(
            selector_class, SELECT_CHUNK, f"SelectSelector: at most 512 sockets per select() on Windows; chunks of {SELECT_CHUNK}"
        )
    return SelectorPlan(selector_class, None, f"{selector_class.__name__}: no per-call socket limit")


# --------------------------------------------------------------------------
# the release gate


class _Gate:
    """A countdown: opens when ``parties`` have arrived; waits are bounded."""

    def __init__(self, parties: int):
        self._remaining = parties
        self._lock = threading.Lock()
        self._open = threading.Event()
        self.opened_at: Optional[float] = None
        if parties <= 0:
            self._open_now()

    def _open_now(self) -> None:
        self.opened_at = clock.now()
        self._open.set()

    def arrive(self) -> None:
        with self._lock:
            self._remaining -= 1
            if self._remaining == 0:
                self._open_now()

    def wait(self, budget: float) -> bool:
        return self._open.wait(budget)


# --------------------------------------------------------------------------
# per-client shared helpers


@contextlib.contextmanager
def _client_dir(config: SwarmConfig) -> Iterator[Optional[str]]:
    """A private 0700 directory for AF_UNIX datagram client paths (else ``None``)."""
    if config.kind != "dgram" or family_name(config.family) != "unix":
        yield None
        return
    with addresses.private_dir("ssc-swarm-") as path:
        yield str(path)


def _new_socket(config: SwarmConfig, index: int, client_dir: Optional[str]) -> socket.socket:
    fam = config.family_constant()
    kind = socket.SOCK_STREAM if config.kind == "stream" else socket.SOCK_DGRAM
    sock = socket.socket(fam, kind)
    try:
        if client_dir is not None:  # AF_UNIX dgram: the server replies to this path
            path = addresses.unix_address(client_dir, f"c{index}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            sock.bind(path)
    except BaseException:
        sock.close()
        raise
    return sock


def connect_retry(exc: BaseException, unix: bool) -> str:
    """How the swarm treats a failed connect, by errno family, not by exception class:
    ``"window"`` (retry until the client's connect window closes: a timed-out
    attempt, or a full AF_UNIX queue), ``"counted"`` (retry up to
    ``connect_attempts``: a refused or reset TCP handshake) or ``"fatal"``."""
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "window"
    number = getattr(exc, "errno", None)
    if unix and number in _UNIX_QUEUE_FULL:
        return "window"
    if number in _COUNTED or isinstance(exc, (ConnectionRefusedError, ConnectionResetError)):
        return "counted"
    return "fatal"


# --------------------------------------------------------------------------
# selectors driver


class _Client:
    __slots__ = (
        "out", "sock", "state", "gen", "attempt_start", "first_start", "msg_index",
        "expected", "send_offset", "sent_at", "buffer", "registered", "retry_delay", "tries",
        "attempt_timeout",
    )

    def __init__(self, index: int):
        self.out = ClientOutcome(index)
        self.sock: Optional[socket.socket] = None
        self.state = "idle"  # idle connecting retry connected sending receiving done failed
        self.gen = 0  # invalidates stale timers
        self.attempt_start = 0.0
        self.first_start: Optional[float] = None
        self.msg_index = 0
        self.expected = b""
        self.send_offset = 0
        self.sent_at = 0.0
        self.buffer = bytearray()
        self.registered = 0  # selector events currently registered
        self.retry_delay = _RETRY_FIRST
        self.tries = 0  # connect attempts that ended in an error (refused, reset)
        self.attempt_timeout = 0.0

    def live_sock(self) -> socket.socket:
        """The socket, for the states that have one (connecting to failed/done)."""
        assert self.sock is not None, f"client {self.out.index} has no socket in state {self.state!r}"
        return self.sock


class _SelectorLoop:
    """One event loop driving a chunk of clients (see module docstring)."""

    def __init__(self, config, indices, deadline, gate, plan, client_dir, limits) -> None:
        self.config = config
        self.clients = [_Client(i) for i in indices]
        self.deadline = deadline
        self.gate = gate
        self.plan = plan
        self.client_dir = client_dir
        self.connect_timeout = limits["connect_timeout"]
        self.first_attempt = limits["first_attempt_timeout"]
        self.reply_timeout = limits["reply_timeout"]
        self.progress: _Progress = limits["progress"]
        self.address = config.address
        self.dgram = config.kind == "dgram"
        self.unix = family_name(config.family) == "unix"
        self.timers: List[tuple] = []
        self._seq = 0
        self.sel = plan.selector_class()
        self.released = not config.release_together
        self.unfinished = len(self.clients)  # clients not done/failed
        self.connecting = 0  # clients still in the connect phase (idle/connecting/retry)
        self.inflight = 0
        self.crash: Optional[BaseException] = None

    # -- timers and registration

    def _timer(self, client: _Client, delay: float, kind: str) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (clock.now() + delay, self._seq, client, client.gen, kind))

    def _register(self, client: _Client, events: int) -> None:
        sock = client.sock
        if client.registered == events:
            return
        if client.registered == 0:
            self.sel.register(sock, events, client)
        elif events == 0:
            self.sel.unregister(sock)
        else:
            self.sel.modify(sock, events, client)
        client.registered = events

    def _close(self, client: _Client) -> None:
        if client.sock is None:
            return
        if client.registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.sel.unregister(client.sock)
            client.registered = 0
        client.sock.close()
        client.sock = None

    # -- state transitions

    def _leave_connect_phase(self, client: _Client) -> None:
        self.connecting -= 1
        if client.first_start is not None:  # it held a connect slot
            self.inflight -= 1

    def _finish(self, client: _Client, state: str) -> None:
        client.gen += 1
        self._close(client)
        client.state = state
        self.unfinished -= 1

    def _fail(self, client: _Client, info: ErrorInfo) -> None:
        out = client.out
        out.fail(info)
        if client.state in ("idle", "connecting", "retry"):
            self._leave_connect_phase(client)
        if client.state in ("sending", "receiving"):
            out.lost += 1
            out.unsent += self.config.messages - client.msg_index - 1
        elif client.state not in ("done", "failed"):
            out.unsent += self.config.messages - client.msg_index
        self._finish(client, "failed")

    def _start_connect(self, client: _Client) -> None:
        now = clock.now()
        if client.first_start is None:
            client.first_start = now
            client.attempt_timeout = self.first_attempt
            self.inflight += 1
        client.attempt_start = now
        client.gen += 1
        client.out.connect_attempts += 1
        client.state = "connecting"
        try:
            client.sock = _new_socket(self.config, client.out.index, self.client_dir)
            client.sock.setblocking(False)
            code = client.sock.connect_ex(self.address)
        except OSError as exc:
            self._connect_failed(client, exc)
            return
        if code == 0 or code == getattr(errno_module, "EISCONN", -1):
            self._connected(client)
        elif code in _IN_PROGRESS and not self.dgram:
            try:
                self._register(client, selectors.EVENT_WRITE)
            except (ValueError, OSError) as exc:  # e.g. fd >= FD_SETSIZE with select()
                self._fail(client, ErrorInfo.from_exception(exc, "connect"))
                return
            self._timer(client, min(client.attempt_timeout, self._window_left(client)), "connect_timeout")
        else:
            self._connect_failed(client, os_error(code))

    def _connect_failed(self, client: _Client, exc: BaseException) -> None:
        self._retry(client, exc, connect_retry(exc, self.unix))

    def _window_left(self, client: _Client) -> float:
        return max(0.0, (client.first_start or client.attempt_start) + self.connect_timeout - clock.now())

    def _retry(self, client: _Client, exc: BaseException, policy: str) -> None:
        """Close the failed attempt; start another after a backoff timer, or fail the client.

        ``policy`` comes from :func:`connect_retry`: ``"counted"`` errors
        (refused, reset) are limited by ``connect_attempts``; ``"window"``
        ones (a timed-out attempt, a full AF_UNIX backlog) are retried while
        the client's connect window lasts.
        """
        self._close(client)
        client.gen += 1
        if policy == "counted":
            client.tries += 1
            retry = client.tries < self.config.connect_attempts
        else:
            retry = policy == "window" and self._window_left(client) > 0
        if not retry or self.deadline.expired():
            self._fail(client, ErrorInfo.from_exception(exc, "connect"))
            return
        client.state = "retry"
        self._timer(client, client.retry_delay, "retry")
        client.retry_delay = min(client.retry_delay * 2, _RETRY_MAX)

    def _connected(self, client: _Client) -> None:
        client.gen += 1
        out = client.out
        out.connected = True
        out.connected_at = clock.now()
        out.connect_time = out.connected_at - (client.first_start or client.attempt_start)
        self._leave_connect_phase(client)
        client.state = "connected"
        try:
            self._register(client, 0)
        except (ValueError, OSError, KeyError):
            pass
        if self.released:
            self._send_next(client)

    def _send_next(self, client: _Client) -> None:
        client.gen += 1
        client.expected = message(client.out.index, client.msg_index, self.config.size)
        client.send_offset = 0
        client.sent_at = clock.now()
        if client.out.first_sent_at is None:
            client.out.first_sent_at = client.sent_at
        client.state = "sending"
        self._timer(client, self.reply_timeout, "reply_timeout")
        self._pump_send(client)

    def _pump_send(self, client: _Client) -> None:
        data = client.expected
        while client.send_offset < len(data):
            try:
                if self.dgram:
                    n = client.live_sock().send(data)
                    if n != len(data):
                        raise OSError(errno_module.EMSGSIZE, f"datagram sent short: {n} of {len(data)} bytes")
                else:
                    n = client.live_sock().send(data[client.send_offset :])
            except (BlockingIOError, InterruptedError):
                self._want(client, selectors.EVENT_READ | selectors.EVENT_WRITE)
                return
            except OSError as exc:
                self._fail(client, ErrorInfo.from_exception(exc, "send"))
                return
            client.send_offset += n
            client.out.bytes_sent += n
        client.state = "receiving"
        self._want(client, selectors.EVENT_READ)
        self._check_reply(client)

    def _want(self, client: _Client, events: int) -> None:
        try:
            self._register(client, events)
        except (ValueError, OSError) as exc:
            self._fail(client, ErrorInfo.from_exception(exc, "send"))

    def _on_readable(self, client: _Client) -> None:
        try:
            data = client.live_sock().recv(RECV_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(client, ErrorInfo.from_exception(exc, "recv"))
            return
        if self.dgram:
            self._on_datagram(client, data)
            return
        if not data:
            done = client.msg_index
            self._fail(
                client,
                ErrorInfo(
                    phase="recv",
                    type="EOF",
                    message=f"the server closed the connection after {done} of {self.config.messages} replies"
                    + (f" ({len(client.buffer)} bytes of a partial reply)" if client.buffer else ""),
                ),
            )
            return
        client.out.bytes_received += len(data)
        client.buffer += data
        self._check_reply(client)

    def _check_reply(self, client: _Client) -> None:
        if self.dgram or client.state != "receiving":
            return
        n = frame_length(client.buffer, client.expected)
        if n is None:
            return
        reply = bytes(client.buffer[:n])
        del client.buffer[:n]
        self._judge(client, reply)

    def _on_datagram(self, client: _Client, data: bytes) -> None:
        client.out.bytes_received += len(data)
        self.progress.note()
        if client.state != "receiving":
            client.out.late += 1
            return
        late_prefix = [b"c%d-m%d-" % (client.out.index, i) for i in range(max(0, client.msg_index - 3), client.msg_index)]
        if data != client.expected and any(data.startswith(p) for p in late_prefix):
            client.out.late += 1  # the echo of a message already counted lost
            return
        self._judge(client, data)

    def _judge(self, client: _Client, reply: bytes) -> None:
        out = client.out
        if reply == client.expected:
            out.ok += 1
            out.latencies.append(clock.now() - client.sent_at)
        else:
            out.corrupted += 1
            if out.corruption_sample is None:
                out.corruption_sample = {"expected": repr(client.expected[:80]), "received": repr(reply[:80])}
        self._advance(client)

    def _advance(self, client: _Client) -> None:
        client.msg_index += 1
        if client.msg_index < self.config.messages:
            self._send_next(client)
        else:
            self._finish(client, "done")

    def _on_timer(self, client: _Client, kind: str) -> None:
        if kind == "retry":
            self._start_connect(client)
        elif kind == "connect_timeout":
            client.attempt_timeout *= 2
            self._retry(client, socket.timeout(f"connect timed out after {self.connect_timeout:.2f}s"), "window")
        elif kind == "reply_timeout":
            if self.dgram:
                last = client.msg_index + 1 >= self.config.messages
                more = self.progress.wait_more(self.reply_timeout, last, self.deadline)
                if more is not None:  # the server still answers others
                    self._timer(client, more, "reply_timeout")
                    return
                # lost: the server has been silent for the reply timeout; go on with the next message
                client.out.lost += 1
                self._advance(client)
            else:
                info = ErrorInfo(phase="recv", type="TimeoutError", message=f"no echo within {self.reply_timeout:.2f}s")
                self._fail(client, info)

    # -- the loop

    def _on_event(self, client: _Client, events: int) -> None:
        if client.state == "connecting":
            code = client.live_sock().getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code == 0:
                self._connected(client)
            else:
                self._connect_failed(client, os_error(code))
            return
        if events & selectors.EVENT_READ and client.state in ("sending", "receiving", "connected"):
            self._on_readable(client)
        if events & selectors.EVENT_WRITE and client.state == "sending":
            self._pump_send(client)

    def _release(self) -> None:
        if self.released:
            return
        if self.gate is not None:
            self.gate.arrive()
            if not self.gate.wait(self.deadline.remaining()):
                for client in self.clients:
                    if client.state == "connected":
                        self._fail(client, ErrorInfo(phase="release", type="HarnessTimeout", message="the release gate never opened"))
                self.released = True
                return
        self.released = True
        for client in self.clients:
            if client.state == "connected":
                self._send_next(client)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # a bug must not leave sockets open or peers waiting
            self.crash = exc
            if not self.released and self.gate is not None:
                self.gate.arrive()
            raise
        finally:
            for client in self.clients:
                if client.state not in ("done", "failed"):
                    phase = client.state if client.state != "idle" else "connect"
                    if phase in ("retry", "connecting"):
                        phase = "connect"
                    self._fail(client, ErrorInfo(phase=phase, type="HarnessTimeout", message=f"budget of {self.deadline.budget:.1f}s ran out"))
            self.sel.close()

    def _run(self) -> None:
        pending = collections.deque(self.clients)
        self.connecting = len(self.clients)
        batch = self.config.connect_batch
        while self.unfinished and not self.deadline.expired():
            while pending and self.inflight < batch:
                self._start_connect(pending.popleft())
            if not self.released and self.connecting == 0:
                self._release()
                continue
            timeout = self.deadline.remaining()
            if self.timers:
                timeout = min(timeout, max(0.0, self.timers[0][0] - clock.now()))
            if self.sel.get_map():
                events = self.sel.select(timeout)
            else:
                events = []
                if timeout > 0:  # nothing registered: only timers are due; wait for the first
                    threading.Event().wait(timeout)
            for key, mask in events:
                client = key.data
                if client.sock is not None and client.sock is key.fileobj:
                    self._on_event(client, mask)
            now = clock.now()
            while self.timers and self.timers[0][0] <= now:
                _, _, client, gen, kind = heapq.heappop(self.timers)
                if gen == client.gen and client.state not in ("done", "failed"):
                    self._on_timer(client, kind)


def _run_selectors(config: SwarmConfig, deadline: timeouts.Deadline, limits, client_dir) -> tuple:
    plan = selector_plan(config.selector_class, config.selector_chunk)
    indices = list(range(config.clients))
    chunk = plan.chunk or len(indices)
    groups = [indices[i : i + chunk] for i in range(0, len(indices), chunk)]
    gate = _Gate(len(groups)) if config.release_together else None
    loops = [_SelectorLoop(config, g, deadline, gate, plan, client_dir, limits) for g in groups]
    if len(loops) == 1:
        loops[0].run()
    else:
        threads = [threading.Thread(target=_quiet(loop.run), name=f"swarm-loop-{n}", daemon=True) for n, loop in enumerate(loops)]
        for thread in threads:
            thread.start()
        joined = timeouts.Deadline(deadline.remaining() + timeouts.short(), "the swarm selector loops to finish")
        for thread in threads:  # one deadline for all: every loop is itself bounded by the budget
            timeouts.join_thread(thread, joined.remaining(), joined.what)
    for loop in loops:
        if loop.crash is not None:
            raise loop.crash
    outcomes = [c.out for loop in loops for c in loop.clients]
    return outcomes, gate.opened_at if gate else None, plan.selector_class.__name__, len(loops)


def _quiet(run):
    def target():
        with contextlib.suppress(BaseException):  # the crash is kept on the loop and re-raised
            run()

    return target


# --------------------------------------------------------------------------
# threads driver


def _thread_connect(config, index, deadline, limits, client_dir, out: ClientOutcome) -> Optional[socket.socket]:
    """Connect one blocking client with the retry policy of the selectors driver; ``None`` on failure."""
    start = clock.now()
    window = timeouts.Deadline(min(limits["connect_timeout"], deadline.remaining()), "a connect")
    attempt_timeout = limits["first_attempt_timeout"]
    backoff = _RETRY_FIRST
    errors = 0
    while True:
        out.connect_attempts += 1
        sock = _new_socket(config, index, client_dir)
        sock.settimeout(max(0.001, min(attempt_timeout, window.remaining())))
        try:
            sock.connect(config.address)
        except OSError as exc:
            sock.close()
            policy = connect_retry(exc, family_name(config.family) == "unix")
            if isinstance(exc, socket.timeout):
                attempt_timeout *= 2
            if policy == "counted":
                errors += 1
                retry = errors < config.connect_attempts
            else:
                retry = policy == "window" and not window.expired()
            if not retry or deadline.expired():
                if isinstance(exc, socket.timeout):
                    exc = socket.timeout(f"connect timed out after {limits['connect_timeout']:.2f}s")
                out.fail(ErrorInfo.from_exception(exc, "connect"))
                return None
            if not isinstance(exc, socket.timeout):
                # A backoff between attempts, not a synchronisation: a refused
                # or EAGAIN connect returns at once, and retrying in a tight
                # loop would only starve the server that should drain its queue.
                time.sleep(min(backoff, window.remaining()))
                backoff = min(backoff * 2, _RETRY_MAX)
            continue
        out.connected = True
        out.connected_at = clock.now()
        out.connect_time = out.connected_at - start
        return sock


def _thread_exchange(config, index, sock, deadline, limits, out: ClientOutcome) -> None:
    """Send every message and judge every echo, blocking with bounded timeouts."""
    dgram = config.kind == "dgram"
    leftover = bytearray()  # stream bytes beyond the current reply
    for i in range(config.messages):
        expected = message(index, i, config.size)
        sock.settimeout(max(0.001, min(limits["reply_timeout"], deadline.remaining())))
        sent_at = clock.now()
        if out.first_sent_at is None:
            out.first_sent_at = sent_at
        try:
            if dgram:
                sock.send(expected)
            else:
                sock.sendall(expected)
            out.bytes_sent += len(expected)
        except OSError as exc:
            out.fail(ErrorInfo.from_exception(exc, "send"))
            out.unsent += config.messages - i
            return
        try:
            if dgram:
                reply: Optional[bytes] = _blocking_datagram(sock, expected, index, i, out, limits, deadline,
                                                        last=i + 1 >= config.messages)
            else:
                reply = _blocking_frame(sock, expected, leftover, out)
        except OSError as exc:  # socket.timeout included
            out.lost += 1
            if dgram and isinstance(exc, socket.timeout) and not deadline.expired():
                continue  # a lost datagram: go on with the next message
            out.fail(ErrorInfo.from_exception(exc, "recv"))
            out.unsent += config.messages - i - 1
            return
        if reply is None:
            out.fail(ErrorInfo(phase="recv", type="EOF", message=f"the server closed the connection after {i} of {config.messages} replies"))
            out.lost += 1
            out.unsent += config.messages - i - 1
            return
        if reply == expected:
            out.ok += 1
            out.latencies.append(clock.now() - sent_at)
        else:
            out.corrupted += 1
            if out.corruption_sample is None:
                out.corruption_sample = {"expected": repr(expected[:80]), "received": repr(reply[:80])}


def _blocking_datagram(sock, expected, index, i, out, limits, deadline, last: bool) -> bytes:
    progress: _Progress = limits["progress"]
    for _ in range(100_000):  # bounded: every pass receives a datagram or waits out a timeout
        try:
            data = sock.recv(RECV_SIZE)
        except socket.timeout:
            more = progress.wait_more(limits["reply_timeout"], last, deadline)
            if more is None:
                raise  # lost: the server has been silent for the reply timeout
            sock.settimeout(max(0.001, more))  # it still answers others
            continue
        progress.note()
        out.bytes_received += len(data)
        if data != expected and i > 0 and data.startswith(b"c%d-m%d-" % (index, i - 1)):
            out.late += 1  # the echo of the previous, already-lost message
            continue
        return data
    raise socket.timeout("no reply among 100000 datagrams")


def _blocking_frame(sock, expected, buffer: bytearray, out) -> Optional[bytes]:
    while True:
        n = frame_length(buffer, expected)
        if n is not None:
            reply = bytes(buffer[:n])
            del buffer[:n]
            return reply
        data = sock.recv(RECV_SIZE)
        if not data:
            return None
        out.bytes_received += len(data)
        buffer += data


def _thread_client(config, index, deadline, gate, limits, client_dir, out: ClientOutcome) -> None:
    sock: Optional[socket.socket] = None
    arrived = False
    try:
        sock = _thread_connect(config, index, deadline, limits, client_dir, out)
        if gate is not None:
            gate.arrive()
            arrived = True
        if sock is None:
            out.unsent = config.messages
            return
        if gate is not None and not gate.wait(deadline.remaining()):
            out.fail(ErrorInfo(phase="release", type="HarnessTimeout", message="the release gate never opened"))
            out.unsent = config.messages
            return
        _thread_exchange(config, index, sock, deadline, limits, out)
    except Exception as exc:  # an unexpected error is this client's error, not the run's
        out.fail(ErrorInfo.from_exception(exc, "client"))
    finally:
        if gate is not None and not arrived:
            gate.arrive()
        if sock is not None:
            sock.close()


def _run_threads(config: SwarmConfig, deadline: timeouts.Deadline, limits, client_dir) -> tuple:
    outcomes = [ClientOutcome(i) for i in range(config.clients)]
    gate = _Gate(config.clients) if config.release_together else None
    threads = [
        threading.Thread(
            target=_thread_client,
            args=(config, i, deadline, gate, limits, client_dir, outcomes[i]),
            name=f"swarm-client-{i}",
            daemon=True,
        )
        for i in range(config.clients)
    ]
    for thread in threads:
        thread.start()
    joined = timeouts.Deadline(deadline.remaining() + timeouts.short(), "the swarm client threads to finish")
    for n, thread in enumerate(threads):  # one deadline for all: every client call is bounded
        thread.join(joined.remaining())
        if thread.is_alive():
            outcomes[n].fail(ErrorInfo(phase="client", type="HarnessTimeout", message="client thread still running after the budget"))
    return outcomes, gate.opened_at if gate else None, "threads", len(threads)


class _Progress:
    """When the server last answered any client of a swarm (datagram replies): the
    silence that makes an unanswered datagram *lost*.  One float, written by every
    client thread or loop; a read races only by one reply, which a later reply repairs."""

    def __init__(self) -> None:
        self.last = clock.now()

    def note(self) -> None:
        self.last = clock.now()

    def still_answering(self, window: float) -> float:
        """Seconds left before the server has been silent for ``window``; 0 once it has."""
        return max(0.0, self.last + window - clock.now())

    def wait_more(self, window: float, last: bool, deadline: timeouts.Deadline) -> Optional[float]:
        """How much longer a client keeps waiting for the reply to a datagram whose
        ``window`` ran out: ``None`` when it is lost now.  Only a client's *last* datagram
        waits on the server's silence (an earlier one's loss is settled by the next reply);
        it waits while the server still answers others, within the swarm's ``deadline``."""
        left = self.still_answering(window) if last else 0.0
        if left <= 0 or deadline.expired():
            return None
        return min(left, deadline.remaining())


def run_swarm(config: SwarmConfig) -> SwarmResult:
    """Run the swarm described by ``config``; never raises for a dead or broken server."""
    config.validate()
    # Each client is a descriptor, and two when the server shares this process; macOS starts
    # processes with a soft limit of 256, which 120 clients already exceed (capability-guarded).
    raise_nofile_limit(fds_needed(config.clients, server_in_process=True))
    limits: Dict[str, Any] = dict(config.resolved(), progress=_Progress())
    deadline = timeouts.Deadline(limits["budget"], "the swarm")
    start = clock.now()
    with _client_dir(config) as client_dir:
        if config.mode == "selectors":
            outcomes, released_at, selector, loops = _run_selectors(config, deadline, limits, client_dir)
        else:
            outcomes, released_at, selector, loops = _run_threads(config, deadline, limits, client_dir)
    end = clock.now()
    if released_at is None:  # not released together: the exchange overlaps the connects
        released_at = start
    released_at = min(max(released_at, start), end)
    return SwarmResult(
        config=config,
        clients=outcomes,
        wall_time=end - start,
        connect_phase=released_at - start,
        exchange_phase=end - released_at,
        selector=selector,
        loops=loops,
    )


# --------------------------------------------------------------------------
# RLIMIT_NOFILE


@dataclasses.dataclass(frozen=True)
class NofileResult:
    before: Optional[int]
    after: Optional[int]
    raised: bool
    note: str

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


def fds_needed(clients: int, server_in_process: bool = False, margin: int = 64) -> int:
    """File descriptors a swarm needs: one per client, two when the server shares the process."""
    return clients * (2 if server_in_process else 1) + margin


def raise_nofile_limit(wanted: int) -> NofileResult:
    """Raise the ``RLIMIT_NOFILE`` soft limit toward ``wanted`` (at most the hard limit).

    Never raises: without the ``rlimit`` capability (Windows has no
    ``resource`` module; its socket count is bounded by memory, not a
    per-process limit) or when the OS refuses, the note says so.
    """
    if not caps().rlimit:
        return NofileResult(
            None, None, False,
            "capability 'rlimit' absent (no resource module, e.g. Windows): RLIMIT_NOFILE cannot be read or raised here",
        )
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinity = resource.RLIM_INFINITY
    if soft == infinity or soft >= wanted:
        return NofileResult(soft, soft, False, f"soft limit {soft} already covers {wanted}")
    target = wanted if hard == infinity else min(wanted, hard)
    notes = []
    for candidate in (target, min(target, 10240)):  # macOS refuses more than OPEN_MAX (10240)
        if candidate <= soft:
            continue
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
            break
        except (ValueError, OSError) as exc:
            notes.append(f"setrlimit({candidate}) refused: {exc}")
    after = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if after >= wanted:
        notes.append(f"soft limit raised from {soft} to {after}")
    elif after > soft:
        notes.append(f"soft limit raised from {soft} to {after}, short of {wanted}: the hard limit is {hard}")
    else:
        notes.append(f"soft limit stays {soft}, short of {wanted} (hard limit {hard}; raise it with ulimit -Hn)")
    return NofileResult(soft, after, after > soft, "; ".join(notes))


__all__ = [
    "MAX_CLIENTS",
    "MAX_THREAD_CLIENTS",
    "SELECT_CHUNK",
    "ClientOutcome",
    "ErrorInfo",
    "NofileResult",
    "SelectorPlan",
    "SwarmConfig",
    "SwarmConfigError",
    "SwarmResult",
    "fds_needed",
    "connect_retry",
    "family_constant",
    "frame_length",
    "message",
    "percentile",
    "raise_nofile_limit",
    "run_swarm",
    "selector_plan",
]
