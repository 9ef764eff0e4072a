"""The one clock for interval evidence: high-resolution on every OS, comparable across processes.

Theory of operation
-------------------
"Two handlers ran at once" is proved from intervals stamped in handler
threads and, for forking servers, in different processes.  The stamps need a
clock that (a) resolves the microseconds between two handler edges and (b)
reads the same in every process of the machine.  No single Python function
gives both on every OS and on CPython 3.9-3.13:

* ``time.monotonic()`` on Windows before 3.13 is ``GetTickCount64()``,
  advancing in 15.6 ms steps (https://docs.python.org/3/whatsnew/3.13.html#time,
  gh-88494); on macOS before 3.10 it counted from the process's start
  (https://docs.python.org/3/library/time.html#time.monotonic, "Changed in
  version 3.10: On macOS, the function is now system-wide", bpo-37205).
* ``time.perf_counter()`` on Windows before 3.10 counted from the process's
  start (same page: "Changed in version 3.10: On Windows, the function is now
  system-wide").
* ``time.time()`` on Windows before 3.13 is as coarse as ``monotonic()``
  (gh-63207), and it jumps when the wall clock is set.

So :func:`now_ns` reads, in this order:

1. ``time.clock_gettime_ns(time.CLOCK_MONOTONIC)`` where it exists (every
   POSIX system; Linux and macOS since CPython 3.7): one system-wide clock
   with nanosecond (Linux) or microsecond (macOS) resolution (clock_gettime(2):
   "CLOCK_MONOTONIC: A nonsettable system-wide clock").
2. Elsewhere (Windows), ``time.perf_counter_ns()``: QueryPerformanceCounter,
   sub-microsecond and system-wide from 3.10.  On 3.9 the counter itself is
   read through ``ctypes`` (``kernel32.QueryPerformanceCounter``), because
   ``perf_counter_ns()`` subtracted a per-process offset there; where that is
   impossible the per-process ``perf_counter_ns()`` is used and
   :data:`CROSS_PROCESS` is ``False`` (on Windows every handler of a server
   runs in one process: there is no fork).

Integers in nanoseconds avoid the float's precision loss; event logs store
``now()`` (seconds, a float) only for readability.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Tuple


def _windows_qpc() -> Callable[[], int]:
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    frequency = ctypes.c_int64()
    kernel32.QueryPerformanceFrequency(ctypes.byref(frequency))
    counter = ctypes.c_int64()
    hz = frequency.value

    def qpc_ns() -> int:
        kernel32.QueryPerformanceCounter(ctypes.byref(counter))
        return counter.value * 1_000_000_000 // hz

    return qpc_ns


def choose() -> Tuple[str, Callable[[], int], bool]:
    """``(name, function returning ns, comparable across processes)`` for this interpreter."""
    clock_gettime_ns = getattr(time, "clock_gettime_ns", None)
    monotonic_id = getattr(time, "CLOCK_MONOTONIC", None)
    if clock_gettime_ns is not None and monotonic_id is not None:
        return "clock_gettime_ns(CLOCK_MONOTONIC)", lambda: clock_gettime_ns(monotonic_id), True
    if sys.version_info >= (3, 10):
        return "perf_counter_ns", time.perf_counter_ns, True
    try:
        return "QueryPerformanceCounter", _windows_qpc(), True
    except (ImportError, AttributeError, OSError):
        return "perf_counter_ns (per process before 3.10)", time.perf_counter_ns, False


NAME, now_ns, CROSS_PROCESS = choose()


def now() -> float:
    """:func:`now_ns` in seconds."""
    return now_ns() / 1e9


__all__ = ["NAME", "CROSS_PROCESS", "choose", "now", "now_ns"]
