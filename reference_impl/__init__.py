"""A clean-room implementation of Python 3.13's ``socketserver`` API.

Theory of operation
-------------------
``socketserver`` is a framework for network servers built from three
independent choices:

* the **socket**: ``TCPServer`` (IP stream), ``UDPServer`` (IP datagram),
  ``UnixStreamServer`` and ``UnixDatagramServer`` (``AF_UNIX``);
* the **concurrency**: synchronous (one request at a time), or a mix-in --
  ``ThreadingMixIn`` (a thread per request) or ``ForkingMixIn`` (a process
  per request) -- listed *first* among the bases;
* the **handler**: a ``BaseRequestHandler`` subclass, usually
  ``StreamRequestHandler`` or ``DatagramRequestHandler``, instantiated once
  per request.

::

        BaseServer
            |
        TCPServer ------------- UnixStreamServer
            |
        UDPServer ------------- UnixDatagramServer

The package keeps one concern per module: :mod:`._features` (platform
probes), :mod:`._base` (``BaseServer``: the request pipeline and serving
loop), :mod:`._wakeup` (the socket pair that makes ``shutdown()``
immediate), :mod:`._inet` and :mod:`._unix` (the servers), :mod:`._mixins`
(threads and processes), :mod:`._handlers` and :mod:`._combined` (the
ready-made ``Threading*``/``Forking*`` classes).

Compatibility contract: every public name, default and observable
behaviour of CPython 3.13's ``socketserver``, with the same platform
gating -- ``Forking*`` only where ``os.fork`` exists, ``Unix*`` only where
``socket.AF_UNIX`` exists.  Deliberate differences, none of which changes
a documented result: ``shutdown()`` does not wait for ``poll_interval``;
the serving loop does not spin when ``accept()`` runs out of descriptors
or when the socket is closed under it; thread bookkeeping is pruned in
amortised constant time.  Public classes report ``__module__ ==
"reference_impl"`` so that ``__all__`` can be checked the way CPython
checks its own.  The first three differences are promises, declared in
``__socketserver_extensions__`` so that the conformance kit verifies them
(its EXT checks) rather than taking them on trust.
"""

from __future__ import annotations

from ._base import BaseServer
from ._combined import ThreadingTCPServer, ThreadingUDPServer
from ._features import HAVE_AF_UNIX as _HAVE_AF_UNIX
from ._features import HAVE_FORK as _HAVE_FORK
from ._handlers import BaseRequestHandler, DatagramRequestHandler, StreamRequestHandler
from ._inet import TCPServer, UDPServer
from ._mixins import ThreadingMixIn

__version__ = "1.0"
#: The ``socketserver`` API level this package implements, on any interpreter.
__socketserver_api__ = (3, 13)
#: Promises beyond the standard library's contract, verified by the
#: conformance kit's EXT checks (vocabulary: harness/core/extensions.toml).
__socketserver_extensions__ = frozenset({"prompt-shutdown", "no-socketpair", "emfile-backoff", "idle-after-close"})

__all__ = [
    "BaseServer",
    "TCPServer",
    "UDPServer",
    "ThreadingUDPServer",
    "ThreadingTCPServer",
    "BaseRequestHandler",
    "StreamRequestHandler",
    "DatagramRequestHandler",
    "ThreadingMixIn",
]

if _HAVE_FORK:
    from ._combined import ForkingTCPServer, ForkingUDPServer
    from ._mixins import ForkingMixIn

    __all__ += ["ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"]

if _HAVE_AF_UNIX:
    from ._combined import ThreadingUnixDatagramServer, ThreadingUnixStreamServer
    from ._unix import UnixDatagramServer, UnixStreamServer

    __all__ += [
        "UnixStreamServer",
        "UnixDatagramServer",
        "ThreadingUnixStreamServer",
        "ThreadingUnixDatagramServer",
    ]
    if _HAVE_FORK:
        from ._combined import ForkingUnixDatagramServer, ForkingUnixStreamServer

        __all__ += ["ForkingUnixStreamServer", "ForkingUnixDatagramServer"]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
