"""``UnixStreamServer`` and ``UnixDatagramServer``: the AF_UNIX variants.

Theory of operation
-------------------
The Unix-domain servers are the IP servers with ``address_family =
AF_UNIX``; nothing else changes.  The address is a filesystem path (or,
on Linux, an abstract name starting with a NUL byte).  Binding creates the
path; ``server_close()`` does **not** unlink it, exactly like the standard
library: the caller that chose the path removes it.

This module refers to ``socket.AF_UNIX`` at class-creation time, so it is
imported only where that constant exists (see
:data:`reference_impl._features.HAVE_AF_UNIX`).
"""

from __future__ import annotations

import socket

from ._inet import TCPServer, UDPServer


class UnixStreamServer(TCPServer):
    """Stream server on a Unix-domain socket."""

    address_family = socket.AF_UNIX


class UnixDatagramServer(UDPServer):
    """Datagram server on a Unix-domain socket."""

    address_family = socket.AF_UNIX
