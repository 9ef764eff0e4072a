"""``ThreadingMixIn`` and ``ForkingMixIn``: one request, one thread or process.

Theory of operation
-------------------
A concurrency mix-in overrides just two hooks of the server it is mixed
into -- it must come *first* in the bases so that its methods win:

``process_request``
    Instead of running the handler inline, start a thread (or fork a
    child) that runs ``finish_request`` and then ``shutdown_request``,
    and return to the loop immediately.
``server_close``
    Close the listening socket, then -- if ``block_on_close`` (the
    default) -- wait for the workers that are still running.

Threads.  Each request gets a new ``threading.Thread`` whose ``daemon``
flag is ``daemon_threads``.  An ``Exception`` in the handler goes to
``handle_error`` in that thread; any other exception escapes the thread
and reaches ``threading.excepthook``; the request is shut down either way.
To join the non-daemon threads at ``server_close`` the server remembers
them in ``self._threads`` (the attribute name is the standard library's:
its own test suite reads it).  The list must not grow with every request
ever served, and pruning it must not cost a scan per request either, so
it is pruned *amortised*: only when it reaches a high-water mark, which
is then set to twice the number of threads still alive.  Only the serving
thread appends, so no lock is needed.

Processes.  ``os.fork()`` per request.  The parent records the child in
``active_children`` (a set, ``None`` until the first fork) and only
*closes* its copy of the request -- a half-close would cut the child's
connection too.  The child runs ``finish_request``, reports an
``Exception`` through ``handle_error``, always calls ``shutdown_request``,
and leaves with ``os._exit``: status 0 if the handler succeeded, 1 after
any exception including ``SystemExit``.  ``os._exit`` skips the parent's
``atexit`` handlers, ``finally`` blocks and buffered output that the child
inherited.

Children are reaped by ``collect_children()``, which the loop runs from
``service_actions()`` (every iteration) and ``handle_request`` from
``handle_timeout()``.  It never waits on a process it did not start --
except when ``max_children`` are alive: then it blocks in
``waitpid(-1)`` until one exits, which is how the limit is enforced (and
which may reap an unrelated child, as in the standard library).
"""

from __future__ import annotations

import os
import threading


class _NoThreads:
    """The bookkeeping of a server that does not join its threads."""

    def append(self, thread):
        pass

    def join(self):
        pass

    def __len__(self):
        return 0

    def __iter__(self):
        return iter(())


class _Threads(list):
    """Non-daemon request threads still worth joining, pruned amortised."""

    _FIRST_MARK = 8

    def __init__(self):
        super().__init__()
        self._mark = self._FIRST_MARK

    def append(self, thread):
        if thread.daemon:
            return
        if len(self) >= self._mark:
            self[:] = [alive for alive in self if alive.is_alive()]
            self._mark = max(self._FIRST_MARK, 2 * len(self))
        super().append(thread)

    def join(self):
        """Join every remembered thread, including ones added meanwhile."""
        while self:
            self.pop().join()


class ThreadingMixIn:
    """Mix-in class to handle each request in a new thread."""

    #: Whether request threads are daemons (the process may exit under them).
    daemon_threads = False
    #: Whether ``server_close`` waits for non-daemon request threads.
    block_on_close = True
    #: Replaced per instance by a :class:`_Threads` when threads are joined.
    _threads = _NoThreads()

    def process_request_thread(self, request, client_address):
        """The body of a request thread."""
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def process_request(self, request, client_address):
        """Start a thread to process the request."""
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address)
        )
        thread.daemon = self.daemon_threads
        thread.start()
        # Remembered only once started: joining a thread that never
        # started would make server_close() raise.
        if self.block_on_close:
            threads = self.__dict__.get("_threads")
            if threads is None:
                threads = self._threads = _Threads()
            threads.append(thread)

    def server_close(self):
        super().server_close()
        self._threads.join()


class ForkingMixIn:
    """Mix-in class to handle each request in a new process."""

    #: ``handle_request`` waits at most this long, then reaps children.
    timeout: float | None = 300
    #: Pids of children not yet reaped; ``None`` until the first fork.
    active_children = None
    #: With this many children alive, reaping blocks until one exits.
    max_children = 40
    #: Whether ``server_close`` waits for all children.
    block_on_close = True

    def collect_children(self, *, blocking=False):
        """Reap finished children; with ``blocking``, wait for all of them."""
        children = self.active_children
        if children is None:
            return
        # At the limit: wait for *any* child to exit before going on.
        while len(children) >= self.max_children:
            try:
                pid, _status = os.waitpid(-1, 0)
            except ChildProcessError:
                children.clear()  # nothing left to wait for
            except OSError:
                break
            else:
                children.discard(pid)
        flags = 0 if blocking else os.WNOHANG
        for pid in list(children):
            try:
                reaped, _status = os.waitpid(pid, flags)
            except ChildProcessError:
                children.discard(pid)  # already reaped elsewhere
            except OSError:
                pass
            else:
                if reaped:
                    children.discard(pid)

    def handle_timeout(self):
        """Reap children when ``handle_request`` times out."""
        self.collect_children()

    def service_actions(self):
        """Reap children on every ``serve_forever`` iteration."""
        self.collect_children()

    def process_request(self, request, client_address):
        """Fork a child to process the request."""
        pid = os.fork()
        if pid:
            if self.active_children is None:
                self.active_children = set()
            self.active_children.add(pid)
            self.close_request(request)
            return
        self.__run_child(request, client_address)

    def __run_child(self, request, client_address):
        """The child's whole life: handle, report, shut down, ``_exit``."""
        status = 1
        try:
            self.finish_request(request, client_address)
            status = 0
        except Exception:
            self.handle_error(request, client_address)
        finally:
            try:
                self.shutdown_request(request)
            finally:
                os._exit(status)

    def server_close(self):
        super().server_close()
        self.collect_children(blocking=self.block_on_close)
