"""The ready-made combinations: a concurrency mix-in first, then a server.

Theory of operation
-------------------
Each class here is just ``class X(MixIn, Server): pass``; the mix-in comes
first so that its ``process_request`` and ``server_close`` override the
server's.  Which combinations exist depends on the platform, as in the
standard library:

* ``Threading{TCP,UDP}Server`` -- everywhere;
* ``Forking{TCP,UDP}Server`` -- where ``os.fork`` exists;
* ``ThreadingUnix{Stream,Datagram}Server`` -- where ``AF_UNIX`` exists;
* ``ForkingUnix{Stream,Datagram}Server`` -- where both exist.

A name that the platform cannot support is simply not defined.
"""

from __future__ import annotations

from ._features import HAVE_AF_UNIX, HAVE_FORK
from ._inet import TCPServer, UDPServer
from ._mixins import ForkingMixIn, ThreadingMixIn


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    pass


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    pass


if HAVE_FORK:

    class ForkingUDPServer(ForkingMixIn, UDPServer):
        pass

    class ForkingTCPServer(ForkingMixIn, TCPServer):
        pass


if HAVE_AF_UNIX:
    from ._unix import UnixDatagramServer, UnixStreamServer

    class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
        pass

    class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
        pass

    if HAVE_FORK:

        class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer):
            pass

        class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer):
            pass
