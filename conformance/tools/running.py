"""Calls of the implementation that the check runs, and stops, under its own control.

Theory of operation
-------------------
The BIND, PIPELINE, SERVE, SHUTDOWN and EXT checks observe *when* the hooks
of a server run: the order of the request pipeline, how often
``service_actions`` runs, whether ``shutdown()`` is still blocked.  Hooks
record into a :class:`conformance.tools.recorder.Recorder`; these tools run
the calls being observed:

:class:`Background`
    Runs one call of the implementation (``shutdown()``, ``handle_request()``)
    in a daemon thread the check does *not* wait for, so it can prove that
    the call is still blocked (``done`` stays unset over one
    :func:`harness.core.timeouts.absence` window) and later that it returned.
    With ``watch_wait=True`` the thread installs a profile function
    (``sys.setprofile`` is per thread) that sets ``waiting`` when the call
    enters a Python function named ``wait`` -- ``threading.Event.wait`` in
    ``shutdown()``.  A ``shutdown()`` can only wait *after* it has asked the
    loop to stop, so ``waiting`` proves that the request is pending without
    reading private attributes.  Two things defeat the profile under
    gevent/eventlet monkey-patching: the patched ``Event.wait`` is compiled
    (no Python-level call to see), and all green threads share one OS
    thread, hence one profile function -- so a ``wait`` counts only when it
    happens in the call's own (green) thread (``threading.get_ident()``),
    and :meth:`Background.wait_waiting` also accepts the other proof: the
    call has been running, without returning, for one whole
    :func:`harness.core.timeouts.absence` window.  ``waited_by`` says which proof
    was seen (``"profile"`` or ``"blocked"``).  A ``shutdown()`` that does
    not return within a whole ``short()`` budget is a broken prerequisite
    (:mod:`harness.core.prerequisites`): the check that sees it first judges it,
    and later ones raise :class:`~harness.core.prerequisites.PreconditionFailed`
    when a ``shutdown()`` Background starts, without waiting again (TIMEOUT in
    SHUTDOWN-001, which owns the behaviour, PRECONDITION_FAILED elsewhere).

:class:`LoopThread`
    ``serve_forever`` in a daemon thread that the check controls: unlike
    :func:`harness.serving.servers.serve_in_thread` it neither waits for the loop to
    be ready nor closes the server, because the shutdown checks need to run
    ``serve_forever`` several times on one server, or to start it after
    ``shutdown()`` was called.  On exit it stops a loop that is still
    running (bounded, with :func:`harness.serving.servers.stop_loop`, so a
    ``shutdown()`` that never returns is waited for once per run) and joins
    its thread.

:func:`owned`
    Closes a server on exit (bounded).

serve-dead: ``LoopThread.ended()`` and a ``serve_forever`` ``Background``'s
``ended()`` say, once the loop has returned or raised on a server that finishes
each request in the loop's own thread
(:func:`harness.serving.servers.answers_in_loop`), that no reply can come from
it any more; :mod:`conformance.tools.roundtrip` stops a reply's wait on it.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Any, Callable, Iterator, Optional

from harness.core import clock, prerequisites, timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.serving import servers
from harness.serving.servers import call_bounded

from . import remote_bench
from .recorder import Recorder

# --------------------------------------------------------------------------- background calls


class Background:
    """One call in a daemon thread: ``done``, ``value``, ``error``, ``waiting``."""

    def __init__(self, fn: Callable[..., Any], *args: Any, what: str, watch_wait: bool = False,
                 **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.what = what
        self.watch_wait = watch_wait
        self.done = threading.Event()
        self.waiting = threading.Event()
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.started_at: Optional[float] = None
        self.ended_at: Optional[float] = None
        self.waited_by: Optional[str] = None
        self._ident: Optional[int] = None
        # a bench server in the subject (conformance.tools.remote_bench): its agent's
        # profile sees the call wait; this thread only waits for the agent's answers
        self.remote = remote_bench.is_remote(getattr(fn, "__self__", None))
        self.thread = threading.Thread(target=self._run, name="ssc-check:" + what[:60], daemon=True)

    def _profile(self, frame: Any, event: str, arg: Any) -> None:
        # green threads share the OS thread's profile: only our own calls count
        if event == "call" and frame.f_code.co_name == "wait" and threading.get_ident() == self._ident:
            if self.waited_by is None:
                self.waited_by = "profile"
            self.waiting.set()

    def _run(self) -> None:
        self._ident = threading.get_ident()
        if self.watch_wait and not self.remote:
            sys.setprofile(self._profile)
        self.started_at = clock.now()
        try:
            self.value = self.fn(*self.args, **self.kwargs)
        except BaseException as exc:  # reported to the check
            self.error = exc
            if getattr(self.fn, "__name__", "") in servers.LOOP_CALLS:  # slow-serve
                prerequisites.loop_died(exc, f"{self.fn.__name__}()")
        finally:
            if self.watch_wait and not self.remote:
                sys.setprofile(None)
            self.ended_at = clock.now()
            self.waiting.set()
            self.done.set()

    def start(self) -> Background:
        server = servers.shutdown_target(self.fn)
        stuck = servers.shutdown_stuck(server) if server is not None else None
        if stuck is not None:
            raise PreconditionFailed("shutdown_returns", stuck, timed_out=True)
        loop_of = getattr(self.fn, "__self__", None)
        if getattr(self.fn, "__name__", None) == "serve_forever" and loop_of is not None and not self.remote:
            broken = servers.loop_known_broken(loop_of)  # prec-bind: as LoopThread.start refuses it
            if broken is not None:
                raise broken
        if self.remote:  # the agent's id of an earlier call of this method is not this call's
            self.fn.__self__.current.pop(self.fn.__name__, None)
        self.loop_ran = servers.loop_running(server) if server is not None else None  # slow-serve
        self.thread.start()
        return self

    def finished_within(self, budget: float) -> bool:
        done = self.done.wait(budget)
        server = servers.shutdown_target(self.fn)
        if not done and server is not None and budget >= timeouts.short():
            servers.note_shutdown_stuck(server, budget, getattr(self, "loop_ran", None))
        return done

    def wait_waiting(self, budget: Optional[float] = None) -> None:
        """Until the call waits (or ended); HarnessTimeout otherwise.

        "Waits" is a ``wait`` call seen by the profile, or else the call
        still running one :func:`harness.core.timeouts.absence` window after it
        started (see the module doc)."""
        budget = timeouts.short() if budget is None else budget
        window = timeouts.absence()

        def blocked() -> bool:
            if self.waiting.is_set():
                return True
            started = self.started_at
            if started is not None and clock.now() - started >= window and not self.done.is_set():
                if self.waited_by is None:
                    self.waited_by = "blocked"
                self.waiting.set()
                return True
            return False

        if self.remote:
            self._wait_remote(budget, window)
            return
        if self.waiting.wait(min(window, budget)):
            return
        timeouts.wait_until(blocked, budget, f"{self.what} to start waiting", interval=timeouts.poll())

    def _remote_call(self, deadline: timeouts.Deadline) -> Optional[str]:
        """The agent's id of this call once its ``bench_start`` was answered (None: the
        call ended first, or ``deadline`` passed)."""
        server, method = self.fn.__self__, self.fn.__name__
        for _ in range(100_000):
            call = server.current.get(method)
            if call is not None or self.done.wait(min(remote_bench.SLICE, deadline.remaining())):
                return server.current.get(method)
            if deadline.expired():
                return None
        return None

    def _wait_remote(self, budget: float, window: float) -> None:
        """Both proofs of :meth:`wait_waiting`, judged by the agent: its profile saw the
        call wait, or the call has run one ``window`` on the subject's clock without
        returning (the host's clock would count the round trips before the call began,
        and prove "waiting" before the subject's shutdown() had asked anything)."""
        server = self.fn.__self__
        deadline = timeouts.Deadline(budget, f"{self.what} to start waiting")
        call = self._remote_call(deadline)
        for _ in range(100_000):
            if call is None:
                break
            state = server._wait(call, {"waiting": True}, min(remote_bench.SLICE, deadline.remaining()))
            started, clock_now = state.get("started"), state.get("clock")
            if state["waiting"] or state["done"]:
                self.waited_by = self.waited_by or "profile"
            elif started is not None and clock_now is not None and clock_now - started >= window:
                self.waited_by = self.waited_by or "blocked"
            if self.waited_by is not None:
                self.waiting.set()
                return
            if deadline.expired():
                break
        if self.done.is_set():
            self.waiting.set()
            return
        raise timeouts.HarnessTimeout(f"{self.what} to start waiting", budget)

    def ended(self) -> Optional[str]:
        """serve-dead: why a ``serve_forever()`` run by this call cannot answer any more
        (see the module doc); None while it may."""
        if getattr(self.fn, "__name__", None) != "serve_forever" or not self.done.is_set():
            return None
        if not hasattr(self, "_ended"):  # judged once: a remote server is asked
            self._ended = loop_ended(getattr(self.fn, "__self__", None), self.error)
        return self._ended

    def elapsed(self) -> Optional[float]:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at


# --------------------------------------------------------------------------- serve-dead: a loop that ended


def loop_ended(server: Any, error: Optional[BaseException]) -> Optional[str]:
    """What a ``serve_forever()`` of ``server`` that has ended (with ``error``, or None)
    leaves for a client waiting for its reply: the description of its end when nothing of
    the server can answer any more (it finishes requests in the loop's thread), else None."""
    if server is None:
        return None
    if remote_bench.is_remote(server):  # asked of the subject: the mix-ins' methods
        alone = not any(remote_bench.has_attribute(server, name)
                        for name in ("process_request_thread", "collect_children"))
    else:
        alone = servers.answers_in_loop(server)
    if not alone:
        return None
    how = f"raised {type(error).__name__}: {error}" if error is not None else "returned"
    return f"serve_forever() had ended ({how}) before it answered"


# --------------------------------------------------------------------------- serving loop


class LoopThread:
    """``server.serve_forever(poll_interval)`` in a daemon thread; see module doc."""

    def __init__(self, server: Any, poll_interval: Optional[float] = None,
                 recorder: Optional[Recorder] = None, count_waits: bool = False, untimed: bool = False) -> None:
        self.server = server
        # the loop's iterations, counted without its hooks (harness.serving.servers.LoopCounter)
        self.remote = remote_bench.is_remote(server)
        if self.remote:  # the agent counts the loop's waits, and knows its thread
            self.counter = remote_bench.RemoteCounter()
        else:
            # without counting, it only sees the loop's first wait (and removes itself): the
            # evidence of a loop that sleeps past its poll_interval, which stop_loop wakes
            self.counter = servers.LoopCounter(count=count_waits)
        # untimed: serve_forever(None), whose selector waits without a timeout (only an event wakes it)
        self.poll_interval = None if untimed else timeouts.poll() if poll_interval is None else poll_interval
        self.recorder = recorder
        self.error: Optional[BaseException] = None
        self.stopping = False  # slow-serve: stop() began (a loop ended then is not a death)
        self.returned = threading.Event()
        self.thread = threading.Thread(target=self._run, name="ssc-check:serve_forever", daemon=True)

    def _run(self) -> None:
        try:
            if self.remote:
                self.server.serve_forever(self.poll_interval, counter=self.counter)
            else:
                if self.counter is not None:
                    self.counter.install()
                self.server.serve_forever(self.poll_interval)
        except BaseException as exc:  # reported to the check
            self.error = exc
            if not self.remote:
                servers.note_loop_died(self.server, exc)
            if not self.stopping:  # slow-serve: died while the check ran
                prerequisites.loop_died(exc, "serve_forever()")
        finally:
            if self.counter is not None and not self.remote:
                sys.setprofile(None)
            self.returned.set()
            if self.recorder is not None:
                self.recorder.add("loop_returned")

    def start(self) -> LoopThread:
        broken = servers.loop_known_broken(self.server)
        if broken is not None:
            raise broken
        self.thread.start()
        return self

    def returned_within(self, budget: float) -> bool:
        return self.returned.wait(budget)

    def ended(self) -> Optional[str]:
        """serve-dead: why this loop cannot answer any more (see the module doc); None
        while it may."""
        if not self.returned.is_set():
            return None
        if not hasattr(self, "_ended"):  # judged once: a remote server is asked
            self._ended = loop_ended(self.server, self.error)
        return self._ended

    @property
    def serving_ident(self) -> Optional[int]:
        """The ident of the thread running ``serve_forever`` (the agent's, for a remote server)."""
        if self.remote:
            return self.counter.thread_ident()
        return self.thread.ident

    def stop(self, budget: Optional[float] = None) -> None:
        """Shut a running loop down and join it, each bounded by ``budget``
        (default ``short()``)."""
        if self.thread.ident is None:
            return
        self.stopping = True
        budget = timeouts.short() if budget is None else budget
        if not self.returned.is_set() and budget >= timeouts.short():
            record = servers.Teardown()
            servers.stop_loop(self.server, self.thread, record, budget)
            stuck = servers.shutdown_stuck(self.server)
            if record.hung and stuck:
                # the loop was stopped without shutdown() returning: what the check
                # did after its own shutdown() is not what it meant to judge
                raise PreconditionFailed("shutdown_returns", stuck, timed_out=True)
        elif not self.returned.is_set():  # a quick try after a failed check: judges nothing
            call_bounded(self.server.shutdown, budget=budget, what="server.shutdown()")
        timeouts.join_thread(self.thread, budget, "the serve_forever() thread to exit")

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.stop()
        else:
            # The check already failed: try briefly, then abandon the daemon
            # thread (a shutdown() that timed out has still set its request).
            with contextlib.suppress(BaseException):
                self.stop(timeouts.absence())


class _Serving:
    """What :func:`serving` yields for a remote server (``serve_in_thread``'s shape)."""

    def __init__(self, server: Any, loop: LoopThread):
        self.server = server
        self.address = server.server_address
        self.loop = loop.counter
        self.thread = loop.thread  # the host's thread waiting for the agent's call

    def serving_thread(self) -> dict:
        state = self.loop.server._wait(self.loop.call, {}, 0)
        return {"name": state["thread"]["name"], "ident": state["thread"]["ident"]}


def serving_thread(served: Any) -> dict:
    """The name and ident of the thread running ``serve_forever`` for what :func:`serving`
    yielded (the agent's thread, for a remote server)."""
    if isinstance(served, _Serving):
        return served.serving_thread()
    return {"name": served.thread.name, "ident": served.thread.ident}


@contextlib.contextmanager
def serving(server: Any, *, count_waits: bool = False) -> Iterator[Any]:
    """:func:`harness.serving.servers.serve_in_thread` for ``server``, or, for a bench
    server in the subject (:mod:`conformance.tools.remote_bench`), its ``serve_forever``
    run by the agent until its loop waited once, stopped and closed on exit (bounded)."""
    if not remote_bench.is_remote(server):
        with servers.serve_in_thread(server, count_waits=count_waits) as served:
            yield served
        return
    with owned(server):
        with LoopThread(server, timeouts.poll(), count_waits=True) as loop:
            loop.counter.wait_waits(1, timeouts.long())
            yield _Serving(server, loop)


@contextlib.contextmanager
def owned(server: Any) -> Iterator[Any]:
    """Yield ``server``; close it (bounded) on exit.  When the block failed,
    a failing ``server_close()`` does not hide the block's exception."""
    try:
        yield server
    except BaseException:
        with contextlib.suppress(BaseException):
            call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
        raise
    call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")


__all__ = ["Background", "LoopThread", "owned", "serving", "serving_thread"]
