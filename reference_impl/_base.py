"""``BaseServer``: the request pipeline and the serving loop.

Theory of operation
-------------------
A server is a *template method*.  The drivers -- ``serve_forever()``,
``handle_request()`` and ``shutdown()`` -- call a fixed chain of small
hooks, each with a trivial default that subclasses and mix-ins override::

    get_request -> verify_request -> process_request -> finish_request
                                  \\-> shutdown_request -> close_request
    errors:  handle_error           timeouts:  handle_timeout
    every loop iteration:  service_actions

Exceptions.  An ``OSError`` from ``get_request`` (the client vanished, the
process ran out of descriptors) drops that request silently.  An
``Exception`` raised while processing goes to ``handle_error`` and the
request is then shut down; anything else (``SystemExit``,
``KeyboardInterrupt``) shuts the request down and propagates to the
caller of ``handle_request``/``serve_forever``.

The serving loop.  ``serve_forever`` selects on two things: the server's
listening socket and the reading end of a :class:`~._wakeup.Waker`.
``shutdown()`` sets a flag, pokes the waker and waits for an event that the
loop sets on the way out, so it returns as soon as the current iteration
ends instead of up to ``poll_interval`` later.  Everything else follows
the standard library:

* the flag is checked before every ``select`` and again right after it,
  so a connection that became readable together with the shutdown is not
  accepted (bpo-35017);
* ``service_actions()`` runs once per iteration -- after each request and
  after each ``poll_interval`` without one;
* the flag is cleared only when ``serve_forever`` returns, so a
  ``shutdown()`` issued while no loop runs is remembered and makes the
  *next* ``serve_forever`` return at once (and then it is cleared);
* whatever way the loop ends, ``shutdown()`` waiters are released.

Two failure modes of the standard library's loop are fixed without
changing what a caller can observe otherwise:

* *Descriptor exhaustion.*  When ``accept()`` fails with ``EMFILE``,
  ``ENFILE``, ``ENOBUFS`` or ``ENOMEM`` the pending connection keeps the
  listening socket readable and a naive loop spins.  Here the loop backs
  off -- 1 ms, doubling up to ``min(poll_interval, 0.1 s)`` -- waiting on
  the waker so that ``shutdown()`` still interrupts it, and resumes normal
  service as soon as an accept succeeds.
* *Closed under the loop.*  If ``server_close()`` closes the listening
  socket while the loop runs in another thread, ``poll`` reports the dead
  descriptor as ready forever (or ``select`` raises).  The loop notices
  that ``fileno()`` is now ``-1`` and thereafter only waits for
  ``shutdown()``, calling ``service_actions()`` once per ``poll_interval``.

The private names ``_BaseServer__shutdown_request`` and
``_BaseServer__is_shut_down`` are spelled as in the standard library on
purpose: existing programs set the first one to ``True`` from a handler to
stop a synchronous server, and that keeps working.
"""

from __future__ import annotations

import errno
import selectors
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING

from ._features import ServerSelector
from ._wakeup import Waker, pause

#: ``accept()`` errors that mean "no resources right now" rather than "this
#: one connection failed"; they make the serving loop back off.
_EXHAUSTION_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EMFILE", "ENFILE", "ENOBUFS", "ENOMEM")
    if hasattr(errno, name)
)

_MIN_BACKOFF = 0.001
_MAX_BACKOFF = 0.1


def _next_backoff(previous: float, poll_interval: float | None) -> float:
    """The pause after one more failed accept: doubling, bounded."""
    cap = _MAX_BACKOFF
    if poll_interval is not None and poll_interval > 0:
        cap = min(cap, poll_interval)
    cap = max(cap, _MIN_BACKOFF)
    return min(cap, max(_MIN_BACKOFF, previous * 2))


def _effective_timeout(sock, server_timeout: float | None) -> float | None:
    """``handle_request``'s wait: the smaller of the two timeouts that are set."""
    sock_timeout = sock.gettimeout() if sock is not None else None
    if sock_timeout is None:
        return server_timeout
    if server_timeout is None:
        return sock_timeout
    return min(sock_timeout, server_timeout)


class BaseServer:
    """Base class for server classes.

    Methods for the caller:

    - __init__(server_address, RequestHandlerClass)
    - serve_forever(poll_interval=0.5)
    - shutdown()
    - handle_request()  # if you do not use serve_forever()
    - fileno() -> int   # provided by subclasses, for selectors

    Methods that may be overridden:

    - server_bind()
    - server_activate()
    - get_request() -> request, client_address
    - handle_timeout()
    - verify_request(request, client_address)
    - server_close()
    - process_request(request, client_address)
    - shutdown_request(request)
    - close_request(request)
    - service_actions()
    - handle_error()

    Methods for derived classes:

    - finish_request(request, client_address)

    Class variables that may be overridden by derived classes or
    instances:

    - timeout

    Instance variables:

    - server_address
    - RequestHandlerClass
    - socket (provided by subclasses)
    """

    timeout: float | None = None

    if TYPE_CHECKING:
        # Provided by the socket-owning subclasses (as in the standard
        # library); declared here only so that the checker knows a server is
        # selectable.  Not defined at run time: ``BaseServer`` alone has no
        # descriptor.
        def fileno(self) -> int: ...

    def __init__(self, server_address, RequestHandlerClass):
        """Remember the address and handler class; subclasses create sockets."""
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        self.__is_shut_down = threading.Event()
        self.__shutdown_request = False
        self.__waker: Waker | None = None

    # -- hooks with trivial defaults ---------------------------------------

    def server_activate(self):
        """Called by the constructor to activate the server; may be overridden."""

    def service_actions(self):
        """Called once per ``serve_forever`` iteration; may be overridden."""

    def handle_timeout(self):
        """Called when ``handle_request`` times out; its value is returned."""

    def verify_request(self, request, client_address):
        """Return ``True`` to process the request; the default accepts all."""
        return True

    def process_request(self, request, client_address):
        """Run the handler, then shut the request down (mix-ins override this)."""
        self.finish_request(request, client_address)
        self.shutdown_request(request)

    def server_close(self):
        """Clean up the server; may be overridden."""

    def finish_request(self, request, client_address):
        """Instantiate ``RequestHandlerClass``, which handles the request."""
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request):
        """End one request explicitly; by default just ``close_request``."""
        self.close_request(request)

    def close_request(self, request):
        """Release one request's resources; may be overridden."""

    def handle_error(self, request, client_address):
        """Report an exception raised while processing a request.

        The default prints a traceback framed by dashed lines to stderr and
        lets the server carry on.
        """
        print("-" * 40, file=sys.stderr)
        print(
            "Exception occurred during processing of request from", client_address, file=sys.stderr
        )
        traceback.print_exc()
        print("-" * 40, file=sys.stderr)

    # -- context manager ----------------------------------------------------

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.server_close()

    # -- one request ----------------------------------------------------------

    def handle_request(self):
        """Handle one request, waiting at most the effective timeout.

        The wait is ``min(socket timeout, self.timeout)`` over those that are
        set, or unbounded when neither is.  On expiry the result of
        ``handle_timeout()`` is returned; otherwise ``None``.
        """
        timeout = _effective_timeout(getattr(self, "socket", None), self.timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        with ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            while True:
                if selector.select(timeout):
                    self._handle_request_noblock()
                    return None
                if deadline is not None:
                    timeout = deadline - time.monotonic()
                    if timeout < 0:
                        return self.handle_timeout()

    def _handle_request_noblock(self):
        """Take one pending request through the pipeline without waiting.

        Returns the ``OSError`` raised by ``get_request`` (the request was
        dropped), else ``None``.  The serving loop uses the error to decide
        whether to back off; callers that ignore the value see the standard
        library's behaviour.
        """
        try:
            request, client_address = self.get_request()
        except OSError as exc:
            return exc
        if self.verify_request(request, client_address):
            try:
                self.process_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
                self.shutdown_request(request)
            except BaseException:
                self.shutdown_request(request)
                raise
        else:
            self.shutdown_request(request)
        return None

    # -- the serving loop -----------------------------------------------------

    def serve_forever(self, poll_interval=0.5):
        """Handle requests until ``shutdown()``.

        ``poll_interval`` bounds how long the loop sleeps without running
        ``service_actions()``; ``shutdown()`` does not wait for it.
        ``self.timeout`` is ignored here.
        """
        self.__is_shut_down.clear()
        try:
            waker = Waker.open()
            # Publish the waker before the first look at the flag: a
            # concurrent shutdown() either sees the waker or set the flag
            # early enough for the loop to see it.
            self.__waker = waker
            try:
                self.__serve(poll_interval, waker)
            finally:
                self.__waker = None
                if waker is not None:
                    waker.close()
        finally:
            self.__shutdown_request = False
            self.__is_shut_down.set()

    def __serve(self, poll_interval, waker: Waker | None) -> None:
        with ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            if waker is not None:
                selector.register(waker.reader, selectors.EVENT_READ, waker)
            backoff = 0.0
            while not self.__shutdown_request:
                try:
                    ready = selector.select(poll_interval)
                except OSError:
                    # select() (not poll) rejects a descriptor closed under it.
                    if not self.__listener_closed():
                        raise
                    self.__idle_until_shutdown(poll_interval, waker)
                    return
                if self.__shutdown_request:
                    break  # bpo-35017: accept nothing once shutdown was asked
                failure = None
                for key, _events in ready:
                    if key.data is None:
                        failure = self._handle_request_noblock()
                    elif waker is not None and not waker.drain():
                        selector.unregister(waker.reader)
                        waker = None  # broken pair: fall back to polling
                self.service_actions()
                if not isinstance(failure, OSError):
                    backoff = 0.0
                elif self.__listener_closed():
                    self.__idle_until_shutdown(poll_interval, waker)
                    return
                elif failure.errno in _EXHAUSTION_ERRNOS:
                    backoff = _next_backoff(backoff, poll_interval)
                    pause(waker, backoff)

    def __listener_closed(self) -> bool:
        try:
            return self.fileno() < 0
        except (OSError, ValueError):
            return True

    def __idle_until_shutdown(self, poll_interval, waker: Waker | None) -> None:
        """The listening socket is gone: wait for ``shutdown()`` without spinning."""
        while not self.__shutdown_request:
            pause(waker, poll_interval)
            if self.__shutdown_request:
                break
            self.service_actions()

    def shutdown(self):
        """Stop ``serve_forever`` and wait until it has returned.

        Must be called from another thread than the one running
        ``serve_forever``, or it deadlocks.
        """
        self.__shutdown_request = True
        waker = self.__waker
        if waker is not None:
            waker.wake()
        self.__is_shut_down.wait()
