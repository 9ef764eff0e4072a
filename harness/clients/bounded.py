"""Bounded client-side helpers: connect, send, read, with a deadline each.

Theory of operation
-------------------
A check's client must never wait longer than a budget from
:mod:`harness.core.timeouts`, whatever the server under test does.  Every helper
here takes either a :class:`~harness.core.timeouts.Deadline` or a budget in
seconds (``None``: ``short()``) and sets the socket timeout to what remains
of it before each blocking call.  When the time runs out the helper raises
:class:`~harness.core.timeouts.HarnessTimeout`, never ``socket.timeout``: the
pytest plugin reports the former as TIMEOUT, while a ``socket.timeout``
would look like an ordinary failure (or like something the implementation
raised on purpose).

Connection-level errors (``ConnectionResetError``, ``BrokenPipeError``...)
are passed through unchanged: they are observations, not harness failures.
A stream that ends before the expected number of bytes raises
:class:`ConnectionClosed` carrying what did arrive.

Datagram clients bind an address of their own so replies can reach them:
loopback port 0 for UDP, and for AF_UNIX a path inside a private 0700
directory (made for the purpose unless one is given), unlinked on exit.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from typing import Any, Callable, Iterator, Optional, Tuple, TypeVar, Union

from harness.core import addresses, prerequisites, timeouts
from harness.core.lines import read_line
from harness.core.timeouts import Deadline, HarnessTimeout

DeadlineLike = Union[Deadline, float, None]
T = TypeVar("T")

#: Upper bound on what one read helper accumulates (a bounded loop).
MAX_READ = 64 * 1024 * 1024


class ConnectionClosed(EOFError):
    """The peer closed before the expected data arrived; ``.data`` has what came."""

    def __init__(self, message: str, data: bytes):
        super().__init__(message)
        self.data = data


def as_deadline(deadline: DeadlineLike, what: str) -> Deadline:
    """A :class:`Deadline` from a Deadline, a budget in seconds, or None (short())."""
    if isinstance(deadline, Deadline):
        return deadline
    return Deadline(timeouts.short() if deadline is None else float(deadline), what)


def _arm(sock: socket.socket, deadline: Deadline, what: str) -> None:
    remaining = deadline.remaining()
    if remaining <= 0:
        raise HarnessTimeout(what, deadline.budget)
    sock.settimeout(remaining)


def _once(sock: socket.socket, deadline: DeadlineLike, what: str,
          operation: Callable[..., T], *args: Any) -> T:
    """One blocking socket call given what remains of the deadline."""
    deadline = as_deadline(deadline, what)
    _arm(sock, deadline, what)
    try:
        return operation(*args)
    except socket.timeout:
        raise HarnessTimeout(what, deadline.budget) from None


def _family(family) -> int:
    return addresses.socket_family(family)


def connect(address, family="inet", timeout: Optional[float] = None) -> socket.socket:
    """A connected stream socket (timeout set to the budget), or HarnessTimeout."""
    budget = timeouts.short() if timeout is None else timeout
    broken = prerequisites.unreachable(address)  # prec-bind: port 0 taken from a server that forgot its port
    if broken is not None:
        raise broken
    sock = socket.socket(_family(family), socket.SOCK_STREAM)
    try:
        sock.settimeout(budget)
        sock.connect(address)
    except socket.timeout:
        sock.close()
        raise HarnessTimeout(f"connect to {address!r}", budget) from None
    except BaseException:
        sock.close()
        raise
    return sock


def sendall(sock: socket.socket, data: bytes, deadline: DeadlineLike = None) -> None:
    """``sock.sendall`` bounded by the deadline."""
    _once(sock, deadline, f"sending {len(data)} bytes", sock.sendall, data)


def recv_some(sock: socket.socket, deadline: DeadlineLike = None, size: int = 65536) -> bytes:
    """One ``recv`` (``b''`` at EOF), bounded."""
    return _once(sock, deadline, "data from the server", sock.recv, size)


def recv_exactly(sock: socket.socket, n: int, deadline: DeadlineLike = None) -> bytes:
    """Exactly ``n`` bytes; :class:`ConnectionClosed` if EOF comes first."""
    what = f"{n} bytes from the server"
    deadline = as_deadline(deadline, what)
    data = bytearray()
    while len(data) < n:
        _arm(sock, deadline, what)
        try:
            chunk = sock.recv(min(n - len(data), 65536))
        except socket.timeout:
            raise HarnessTimeout(f"{what} (got {len(data)})", deadline.budget) from None
        if not chunk:
            raise ConnectionClosed(f"connection closed after {len(data)} of {n} bytes", bytes(data))
        data += chunk
    return bytes(data)


def recv_until_eof(sock: socket.socket, deadline: DeadlineLike = None,
                   max_bytes: int = MAX_READ) -> bytes:
    """Everything until the peer closes (at most ``max_bytes``)."""
    what = "the server to close the connection"
    deadline = as_deadline(deadline, what)
    data = bytearray()
    while len(data) <= max_bytes:
        _arm(sock, deadline, what)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise HarnessTimeout(f"{what} (got {len(data)} bytes)", deadline.budget) from None
        if not chunk:
            return bytes(data)
        data += chunk
    raise ValueError(f"more than {max_bytes} bytes before EOF")


def recv_line(sock: socket.socket, deadline: DeadlineLike = None, max_bytes: int = 65536) -> bytes:
    """Bytes up to and including ``\\n`` (or up to EOF), read one byte at a time
    so nothing after the line is consumed."""
    what = "a line from the server"
    deadline = as_deadline(deadline, what)
    data = bytearray()

    def recv(size: int) -> bytes:
        _arm(sock, deadline, what)
        return sock.recv(size)

    try:
        return read_line(recv, max_bytes, data)
    except socket.timeout:
        raise HarnessTimeout(f"{what} (got {bytes(data)!r})", deadline.budget) from None


@contextlib.contextmanager
def dgram_client(family="inet", directory: Optional[str] = None) -> Iterator[socket.socket]:
    """A bound datagram socket; AF_UNIX clients get their own path."""
    name = addresses.family_name(family)
    af = _family(name)
    with contextlib.ExitStack() as stack:
        sock = socket.socket(af, socket.SOCK_DGRAM)
        stack.callback(sock.close)
        sock.settimeout(timeouts.short())
        if name == "unix":
            if directory is None:
                directory = stack.enter_context(addresses.private_dir())
            path = addresses.unix_address(directory, "c" + uuid.uuid4().hex[:8])
            sock.bind(path)
            stack.callback(addresses.unlink_quietly, path)
        else:
            sock.bind(addresses.loopback(name))
        yield sock


def recvfrom(sock: socket.socket, deadline: DeadlineLike = None,
             size: int = 65536) -> Tuple[bytes, object]:
    """One datagram and its sender, bounded."""
    return _once(sock, deadline, "a datagram from the server", sock.recvfrom, size)


def roundtrip(address, family="inet", payload: bytes = b"", *, dgram: bool = False,
              timeout: Optional[float] = None, directory: Optional[str] = None) -> bytes:
    """Send ``payload`` and return the reply.

    Stream: connect, send, ``SHUT_WR``, read until EOF.  Datagram: one
    ``sendto`` and one ``recvfrom``.  The whole exchange shares one budget.
    """
    budget = timeouts.short() if timeout is None else timeout
    deadline = Deadline(budget, f"a reply from {address!r}")
    if dgram:
        with dgram_client(family, directory) as sock:
            _arm(sock, deadline, deadline.what)
            try:
                sock.sendto(payload, address)
            except socket.timeout:
                raise HarnessTimeout(f"sending a datagram to {address!r}", budget) from None
            data, _ = recvfrom(sock, deadline)
            return data
    sock = connect(address, family, timeout=budget)
    with sock:
        sendall(sock, payload, deadline)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            # the server already reset the connection (ENOTCONN); the read
            # below reports what the client sees (EOF or ConnectionResetError)
            pass
        return recv_until_eof(sock, deadline)
