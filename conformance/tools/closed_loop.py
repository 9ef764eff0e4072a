"""``server_close()`` under a running loop: one scenario, run in process and in a child.

Theory of operation
-------------------
SHUTDOWN-012 closes the listening socket under a running ``serve_forever``
and then calls ``shutdown()``.  What happens depends on the selector the
implementation picked *when it was imported*: with ``PollSelector`` (Linux,
macOS) CPython spins until ``shutdown()``; with ``SelectSelector`` (Windows)
``select()`` raises and ``serve_forever`` ends with that error.  Both
CPython and ``reference_impl`` choose their selector at import time from
``hasattr(selectors, "PollSelector")``, and no public hook changes the choice
afterwards, so the ``SelectSelector`` path cannot be simulated in the test
process.  :func:`closed_under_loop` is therefore a plain function of the
module under test that returns JSON-able observations: the SHUTDOWN and EXT
checks call it in process (the native selector), and
:mod:`conformance.children.no_poll` runs it in a fresh interpreter without
``PollSelector`` (started by
:func:`conformance.tools.child_runs.closed_under_loop_without_poll`).
Every wait in the scenario is bounded by :mod:`harness.core.timeouts`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Dict

from harness.core import clock, timeouts
from harness.core.observations import summary
from harness.serving.servers import call_bounded

from . import remote_bench
from .recorder import Recorder
from .running import LoopThread

#: The poll interval of the loop whose socket is closed under it.
INTERVAL = 0.05


def closed_under_loop(ss: Any, interval: float = INTERVAL, in_loop: bool = False, impl: Any = None) -> Dict[str, Any]:
    """``server_close()`` under a running ``serve_forever(interval)``, then ``shutdown()``.

    ``in_loop``: the loop's own ``service_actions()`` closes the socket, so the
    next ``select()`` is a fresh call on a closed descriptor (a close from
    another thread mostly lands during ``select()``, which then reports the
    socket readable instead).

    Returns the observations: the loop's waits in its selector
    (:class:`harness.serving.servers.LoopCounter`, no hook needed) in one
    ``absence()`` window after the close, whether the loop returned in that
    window (before ``shutdown()`` was called) and with which error, whether
    ``shutdown()`` returned and the loop ended, and the behaviour summary
    (``spins`` / ``idles`` / ``raises ...``).
    """
    close_now = threading.Event()
    remote = impl is not None and remote_bench.subject_of(impl) is not None
    if remote:
        # ``impl`` in the subject: the same plain TCPServer, a bench server of its agent; in_loop
        # (ext): its service_actions() closes it once the check releases it
        recorder = remote_bench.LogRecorder()
        server = remote_bench.bench_server(
            impl, recorder, hooks={"service_actions": "close_on_release" if in_loop else "record"})
    else:
        recorder = Recorder()

        class Server(ss.TCPServer):
            def service_actions(self) -> None:
                recorder.add("service_actions")
                if close_now.is_set() and not recorder.count("closed"):
                    self.server_close()
                    recorder.add("closed")
                ss.TCPServer.service_actions(self)

        server = Server(("127.0.0.1", 0), ss.BaseRequestHandler)
    loop = LoopThread(server, interval, recorder=recorder, count_waits=True).start()
    try:
        loop.counter.wait_waits(2)  # its second wait: one whole iteration ran
        if in_loop:
            if remote:
                recorder.add("release")
            close_now.set()
            recorder.wait_count("closed", 1)
        else:
            call_bounded(server.server_close, what="server.server_close()")
        before = loop.counter.waits
        start = clock.now()
        returned_early = loop.returned_within(timeouts.absence())
        window = clock.now() - start
        calls = loop.counter.waits - before
        stopped = True
        if not returned_early:
            try:
                call_bounded(server.shutdown, what="server.shutdown()")
            except timeouts.HarnessTimeout:
                stopped = False
        ended = stopped and loop.returned_within(timeouts.short())
        error = loop.error
        idle = window / interval
        if error is not None:
            behaviour = "raises " + summary(error)
        elif calls > 20 * max(idle, 1.0):
            behaviour = "spins"
        else:
            behaviour = "idles"
        result = {
            "loop_waits_in_window": calls,
            "window": round(window, 3),
            "idle_calls_expected": round(idle, 1),
            "serve_forever_error": summary(error) if error is not None else None,
            "serve_forever_error_type": type(error).__name__ if error is not None else None,
            "error_is_oserror_or_valueerror": isinstance(error, (OSError, ValueError)),
            "returned_before_shutdown": returned_early,
            "shutdown_returned": stopped,
            "loop_ended": ended,
            "behaviour": behaviour,
        }
    except BaseException:
        with contextlib.suppress(BaseException):
            loop.stop(timeouts.absence())
        raise
    if ended:
        loop.stop()
    # else: a loop that cannot be stopped is reported; its daemon thread is left behind
    return result


__all__ = ["INTERVAL", "closed_under_loop"]
