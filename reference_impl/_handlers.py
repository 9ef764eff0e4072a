"""Request handlers: ``BaseRequestHandler`` and its stream/datagram forms.

Theory of operation
-------------------
A handler object *is* one request: the server instantiates
``RequestHandlerClass(request, client_address, server)`` and the
constructor does all the work -- ``setup()``, ``handle()``, and
``finish()`` in a ``finally`` so that it runs even when ``handle()``
raises (but not when ``setup()`` does).

``StreamRequestHandler`` turns a connected socket into two file objects.
``rfile`` is ``makefile('rb', rbufsize)`` -- buffered by default, so
``readline()`` works.  ``wfile`` depends on ``wbufsize``: the default 0
gives a :class:`_SocketWriter`, a ``BufferedIOBase`` whose ``write()`` is a
full ``sendall`` (so it needs no flush, is never partial, and returns the
byte count); any other value gives ``makefile('wb', wbufsize)``, which
``finish()`` flushes.  A flush error there (the client already left) is
swallowed, because there is nobody left to tell.

``DatagramRequestHandler`` offers the same two attributes over one
datagram: ``rfile`` reads the received bytes, ``wfile`` collects the
reply, and ``finish()`` always sends whatever was collected back to the
client -- an empty datagram if the handler wrote nothing.
"""

from __future__ import annotations

import io
import socket


class BaseRequestHandler:
    """Base class for request handler classes.

    This class is instantiated for each request to be handled.  The
    constructor sets the instance variables ``request``,
    ``client_address`` and ``server``, and then calls ``setup()``,
    ``handle()`` and ``finish()``.  Override those to implement a service.
    """

    def __init__(self, request, client_address, server):
        self.request = request
        self.client_address = client_address
        self.server = server
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self):
        """Prepare for ``handle()``; the default does nothing."""

    def handle(self):
        """Service the request; the default does nothing."""

    def finish(self):
        """Clean up after ``handle()``; the default does nothing."""


class _SocketWriter(io.BufferedIOBase):
    """A write-only file over a socket whose ``write`` sends everything at once."""

    def __init__(self, sock):
        super().__init__()
        self._sock = sock

    def writable(self):
        return True

    def write(self, b):
        self._sock.sendall(b)
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self):
        return self._sock.fileno()


class StreamRequestHandler(BaseRequestHandler):
    """Define ``self.rfile`` and ``self.wfile`` for stream sockets."""

    #: ``makefile`` buffering for ``rfile`` (-1: the default buffer size).
    rbufsize = -1
    #: 0: unbuffered ``wfile`` that sends on every write; else a buffer size.
    wbufsize = 0
    #: Applied with ``settimeout`` to the connection when not ``None``.
    timeout = None
    #: Set ``TCP_NODELAY`` on the connection (TCP only).
    disable_nagle_algorithm = False

    def setup(self):
        self.connection = self.request
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = self.connection.makefile("rb", self.rbufsize)
        if self.wbufsize == 0:
            self.wfile = _SocketWriter(self.connection)
        else:
            self.wfile = self.connection.makefile("wb", self.wbufsize)

    def finish(self):
        if not self.wfile.closed:
            try:
                self.wfile.flush()
            except OSError:
                pass  # the client is gone; nothing useful to report
        try:
            self.wfile.close()  # may flush again and raise; that still reaches handle_error
        finally:
            # ...but the reader is closed either way, so its descriptor does not
            # wait for the garbage collector (PyPy has no reference counting).
            self.rfile.close()


class DatagramRequestHandler(BaseRequestHandler):
    """Define ``self.rfile`` and ``self.wfile`` for datagram sockets."""

    def setup(self):
        self.packet, self.socket = self.request
        self.rfile = io.BytesIO(self.packet)
        self.wfile = io.BytesIO()

    def finish(self):
        self.socket.sendto(self.wfile.getvalue(), self.client_address)
