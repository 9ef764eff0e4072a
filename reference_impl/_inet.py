"""``TCPServer`` and ``UDPServer``: the socket-owning servers.

Theory of operation
-------------------
``TCPServer`` gives :class:`~._base.BaseServer` a socket.  The constructor
creates it from the class attributes ``address_family`` and
``socket_type``; with ``bind_and_activate`` (the default) it then calls
``server_bind()`` (options, ``bind``, and reading the real address back,
so port 0 becomes the chosen port) and ``server_activate()``
(``listen(request_queue_size)``).  If either raises, the socket is closed
before the exception propagates, so a failed constructor leaks nothing.

A stream request is the accepted socket.  Ending it (``shutdown_request``)
first half-closes the sending side so the client reads EOF even if a
forked child still holds a copy, then closes it; ``close_request`` only
closes, which is what a forking parent wants.

``UDPServer`` reuses all of that with ``SOCK_DGRAM``: there is no
``listen``, and a "request" is the pair ``(datagram, server socket)``
read with ``recvfrom(max_packet_size)`` (longer datagrams are truncated).
The socket is shared by every request, so ending a request must never
close it: ``shutdown_request`` and ``close_request`` do nothing.

Socket options are set only when the platform defines them:
``SO_REUSEADDR`` for ``allow_reuse_address`` and ``SO_REUSEPORT`` for
``allow_reuse_port`` (absent on Windows).
"""

from __future__ import annotations

import socket

from ._base import BaseServer


class TCPServer(BaseServer):
    """Base class for various socket-based server classes.

    Defaults to synchronous IP stream (i.e., TCP).

    Methods for the caller:

    - __init__(server_address, RequestHandlerClass, bind_and_activate=True)
    - serve_forever(poll_interval=0.5)
    - shutdown()
    - handle_request()  # if you don't use serve_forever()
    - fileno() -> int   # for selector

    Methods that may be overridden:

    - server_bind()
    - server_activate()
    - get_request() -> request, client_address
    - handle_timeout()
    - verify_request(request, client_address)
    - process_request(request, client_address)
    - shutdown_request(request)
    - close_request(request)
    - handle_error()

    Methods for derived classes:

    - finish_request(request, client_address)

    Class variables that may be overridden by derived classes or
    instances:

    - timeout
    - address_family
    - socket_type
    - request_queue_size (only for stream sockets)
    - allow_reuse_address
    - allow_reuse_port

    Instance variables:

    - server_address
    - RequestHandlerClass
    - socket
    """

    address_family = socket.AF_INET
    socket_type = socket.SOCK_STREAM
    request_queue_size = 5
    allow_reuse_address = False
    allow_reuse_port = False

    def __init__(self, server_address, RequestHandlerClass, bind_and_activate=True):
        """Create the socket; bind and listen unless told not to."""
        BaseServer.__init__(self, server_address, RequestHandlerClass)
        self.socket = socket.socket(self.address_family, self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    def server_bind(self):
        """Set the requested options, bind, and record the bound address."""
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.allow_reuse_port and hasattr(socket, "SO_REUSEPORT"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self):
        """Start listening, with a backlog of ``request_queue_size``."""
        self.socket.listen(self.request_queue_size)

    def server_close(self):
        """Close the listening socket (again is harmless)."""
        self.socket.close()

    def fileno(self):
        """The listening socket's descriptor, for selectors."""
        return self.socket.fileno()

    def get_request(self):
        """Accept a connection: ``(socket, client_address)``."""
        return self.socket.accept()

    def shutdown_request(self, request):
        """Half-close the connection so the client sees EOF, then close it."""
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the peer may already be gone (ENOTCONN)
        self.close_request(request)

    def close_request(self, request):
        """Close the connection."""
        request.close()


class UDPServer(TCPServer):
    """UDP server class: one datagram is one request."""

    allow_reuse_address = False
    allow_reuse_port = False
    socket_type = socket.SOCK_DGRAM
    max_packet_size = 8192

    def get_request(self):
        """Read one datagram: ``((data, server_socket), client_address)``."""
        data, client_address = self.socket.recvfrom(self.max_packet_size)
        return (data, self.socket), client_address

    def server_activate(self):
        """Datagram sockets do not listen."""

    def shutdown_request(self, request):
        """Nothing to shut down: the socket is shared by every request."""
        self.close_request(request)

    def close_request(self, request):
        """Nothing to close: the socket is shared by every request."""
