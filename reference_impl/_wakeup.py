"""The wake-up channel that lets ``shutdown()`` stop ``serve_forever`` at once.

Theory of operation
-------------------
The standard library's ``serve_forever`` sleeps in ``select()`` for up to
``poll_interval`` seconds and only then notices that ``shutdown()`` set its
flag, so stopping a server costs up to half a second by default.  Here the
loop also watches the reading end of a connected *socket pair*; ``shutdown()``
sets the flag and then writes one byte to the other end, which makes the
loop's ``select()`` return immediately.

Why a socket pair: Windows' ``select()`` accepts sockets only, so a pipe (the
classic self-pipe trick) would not work there.  ``socket.socketpair()``
exists on every platform (on Windows CPython emulates it over loopback
TCP).  When it is unusable -- for instance when ``AF_UNIX`` is missing on a
POSIX system -- :func:`socket_pair` builds the same loopback TCP pair
itself, checking that the accepted peer really is the socket it connected.

Lifetime: a :class:`Waker` is created when ``serve_forever`` starts and
closed when it returns, so a server that is not serving holds no extra
descriptors and nothing can leak past ``server_close()``.  Writing and
closing happen under a lock: ``shutdown()`` may run in another thread just
as the loop closes the pair, and without the lock the byte could be
written to a descriptor number that the OS had already handed to somebody
else.  The lock is taken only by ``wake()`` and ``close()``, never per
request.

A forked child inherits the pair.  ``wake()`` therefore does nothing in a
process other than the one that created the waker: a child calling
``shutdown()`` must not wake its parent's loop.

If no pair can be created at all (no descriptors left), ``Waker.open()``
returns ``None`` and the server falls back to the standard library's
behaviour: the flag is seen after at most ``poll_interval``.  :func:`pause`
hides that difference from the loop.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from typing import Tuple

from ._features import ServerSelector

#: How long :func:`pause` sleeps per step when there is no waker and the
#: caller asked to wait without a bound.  Only reached when no socket pair
#: could be created; the loop then re-checks its shutdown flag this often.
FALLBACK_TICK = 0.5


def _loopback_pair() -> Tuple[socket.socket, socket.socket]:
    """A connected TCP pair over 127.0.0.1, the way Windows builds one."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            client.connect(listener.getsockname())
            server, peer = listener.accept()
        except BaseException:
            client.close()
            raise
    finally:
        listener.close()
    if peer != client.getsockname():
        # Another local process raced us to the temporary listener.
        server.close()
        client.close()
        raise OSError("wake-up pair: unexpected peer on the loopback listener")
    return server, client


def socket_pair() -> Tuple[socket.socket, socket.socket]:
    """Two connected stream sockets, with a loopback TCP fallback."""
    try:
        return socket.socketpair()
    except (OSError, AttributeError):
        return _loopback_pair()


class Waker:
    """One end is watched by the serving loop; writing to the other wakes it."""

    def __init__(self, reader: socket.socket, writer: socket.socket):
        reader.setblocking(False)
        writer.setblocking(False)
        self.reader = reader
        self._writer: socket.socket | None = writer
        self._owner_pid = os.getpid()
        self._lock = threading.Lock()
        self._idle_selector: selectors.BaseSelector | None = None

    @classmethod
    def open(cls) -> Waker | None:
        """A new waker, or ``None`` when no socket pair can be created."""
        try:
            reader, writer = socket_pair()
        except OSError:
            return None
        return cls(reader, writer)

    def fileno(self) -> int:
        return self.reader.fileno()

    def wake(self) -> None:
        """Make the reading end readable.  Safe from any thread, at any time."""
        if os.getpid() != self._owner_pid:
            # A forked child: never touch the lock, which may have been
            # held by another thread of the parent at the moment of fork.
            return
        with self._lock:
            writer = self._writer
            if writer is None:
                return
            try:
                writer.send(b"\0")
            except OSError:
                # A full buffer is already readable; a broken pair leaves
                # the loop on its poll interval.  Either way: nothing to do.
                pass

    def drain(self) -> bool:
        """Consume pending wake-up bytes; ``False`` if the pair is broken."""
        try:
            data = self.reader.recv(4096)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        return bool(data)

    def pause(self, timeout: float | None) -> None:
        """Wait until woken or until ``timeout`` elapses (``None``: until woken)."""
        if self._idle_selector is None:
            self._idle_selector = ServerSelector()
            self._idle_selector.register(self.reader, selectors.EVENT_READ)
        if self._idle_selector.select(timeout):
            self.drain()

    def close(self) -> None:
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._idle_selector is not None:
            self._idle_selector.close()
            self._idle_selector = None
        self.reader.close()


def pause(waker: Waker | None, timeout: float | None) -> None:
    """Wait for a wake-up or ``timeout``; without a waker, simply sleep."""
    if waker is not None:
        waker.pause(timeout)
    else:
        time.sleep(FALLBACK_TICK if timeout is None else timeout)
