"""Reading one line from a socket without consuming anything after it.

Theory of operation
-------------------
Both ends of a conversation sometimes read a line from a raw socket and
must leave what follows it in the kernel buffer (the next request, or data
the other side sends later).  Reading one byte at a time is the only way
to do that without a buffering file object, so :func:`read_line` does
exactly that, up to ``b"\\n"``, end of stream or ``limit`` bytes.

The caller passes the one-byte receive (``sock.recv`` as it is, or
wrapped to re-arm a deadline before each call) and may pass the buffer,
so that when its receive raises it can still say what had arrived.

The one implementation is the subject agent's (the handlers it builds, in
the subject and on the host, read lines the same way); it is stdlib only,
so the host's clients import it from there.
"""

from __future__ import annotations

from typing import Callable, Optional

from harness.subject import agent


def read_line(recv: Callable[[int], bytes], limit: int,
              into: Optional[bytearray] = None) -> bytes:
    """Bytes up to and including ``\\n`` (or up to EOF or ``limit``), one ``recv(1)`` at a time."""
    return agent.read_line(recv, limit, into)
