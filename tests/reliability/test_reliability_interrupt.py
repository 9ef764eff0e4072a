"""An interrupt (Ctrl-C, or the SIGINT ``ssconform run`` sends when its bound runs out)
must stop the run even while the kit is waiting for a hung implementation.

Theory of operation
-------------------
Against a hanging implementation most of a run's time is spent inside the
kit's bounded teardown waits (``shutdown()`` in a helper thread, the join of
the serve thread).  A ``KeyboardInterrupt`` raised there must leave the
teardown and reach pytest, which then ends the session and the plugin writes
the record of the checks that ended.  If a teardown step catches
``BaseException`` and records it as one more teardown problem, the interrupt
is lost: the run goes on (or is killed without a record).

The test serves ``impls/hang_shutdown.py``'s (and ``hang_serve_forever.py``'s) ``TCPServer`` with
:func:`harness.servers.serve_in_thread` and arranges for SIGINT to arrive
while the teardown waits for the hung ``shutdown()`` (a one-shot interval
timer; Python's default SIGINT handler raises ``KeyboardInterrupt`` in the
main thread).  ``KeyboardInterrupt`` must come out of the ``with`` block.
"""

from __future__ import annotations

import importlib.util
import signal
import threading

import pytest
import reliability_support as rs

from harness import capabilities, servers, timeouts

pytestmark = pytest.mark.skipif(
    not (capabilities.caps().signals and hasattr(signal, "setitimer")), reason="needs POSIX interval timers")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"ssc_rel_{name}", rs.IMPLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["hang_shutdown", "hang_serve_forever"])
def test_an_interrupt_during_a_hung_teardown_is_not_swallowed(name):
    """hang_shutdown: only the shutdown() wait is interrupted.  hang_serve_forever: the
    later join of the serve thread times out as well, and that HarnessTimeout must not
    replace the interrupt."""
    assert threading.current_thread() is threading.main_thread()
    hang = _load(name)
    server = hang.TCPServer(("127.0.0.1", 0), hang.BaseRequestHandler)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    budget = timeouts.short()
    outcome = None
    try:
        try:
            with servers.serve_in_thread(server, shutdown_budget=budget, check_leaks=False):
                # leaving the block starts the teardown; SIGINT arrives half-way through its wait
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, lambda *a: signal.raise_signal(signal.SIGINT))
                signal.setitimer(signal.ITIMER_REAL, budget / 2)
        except KeyboardInterrupt:
            outcome = "KeyboardInterrupt"
        except BaseException as exc:  # what the teardown turned the interrupt into
            outcome = f"{type(exc).__name__}: {exc}"
        else:
            outcome = "nothing"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, previous)
        _end_abandoned_loop(server)
    assert outcome == "KeyboardInterrupt", f"the interrupt was swallowed by the teardown: {outcome}"


class _Abandon(BaseException):
    pass


def _end_abandoned_loop(server) -> None:
    """Stop a serve_forever loop the teardown gave up on (hang_serve_forever ignores
    shutdown()): its next service_actions() call raises, then the socket is closed.
    Closing first would make the loop spin on a closed descriptor for the rest of the session."""
    def abandon(*args, **kwargs):
        raise _Abandon()

    server.service_actions = abandon
    try:
        timeouts.wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("ssc-serve:")],
                            timeouts.short(), "the abandoned serve_forever() loop to end")
    finally:
        server.socket.close()
