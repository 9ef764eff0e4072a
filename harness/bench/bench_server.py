"""The server side of ``ssconform bench``: one server per process, nothing else in it.

Theory of operation
-------------------
:mod:`harness.bench.runner` measures implementations against each other, so the
server process must contain the implementation and as little harness as
possible: no instrumented handler, no event log, no leak probes -- those
cost the same for every implementation and would only dilute the
difference being measured.  ``python -m harness.bench.bench_server SPEC`` takes a
JSON spec (``version``, ``mode``, ``impl`` and mode-specific fields) and
runs one of three modes:

``echo``
    Build ``impl.<server_class>`` (composed by :func:`harness.serving.servers.build_server`,
    with ``attrs`` as class attributes) around :func:`echo_handler`, a
    ``StreamRequestHandler`` of the *implementation* that echoes lines until
    EOF, and run ``serve_forever(poll_interval)`` in a thread.  Prints
    ``{"event": "ready", "address", "pid", "cpu"}`` and serves until stdin
    says ``stop`` or closes (or ``lifetime`` ends), then ``shutdown()`` and
    ``server_close()``, each bounded, and ``{"event": "done", "cpu", ...}``.
    ``cpu`` is :func:`cpu_seconds`; ``server_close()`` reaps a forking
    server's children first, so their CPU is in the difference too.
``trivial``
    A minimal ``selectors`` echo loop (non-blocking sockets, one thread,
    no socketserver at all): the ceiling of what the client swarm can
    measure on this machine.  With ``"per_connection": "thread"`` each
    connection gets a daemon thread running ``recv``/``sendall`` instead,
    the cheapest server for a single client's ping-pong (a selector loop
    costs more Python per message than one blocking client's thread).
    Same ready/stop protocol.
Before serving, ``echo`` and ``trivial`` run a full ``gc.collect()``
(:func:`_settle_gc`), so every server starts from the same collector state.

``shutdown``
    ``shutdowns`` times: build a ``TCPServer`` (``server_class``), serve it
    in a thread with ``poll_interval``, prove the loop runs with one echo
    round trip, wait until the loop has called ``service_actions()`` after
    that request, leave the server idle for ``idle`` seconds (part of the
    scenario: "shut down a server that has been idle"; the standard
    library's loop then sleeps in ``select()`` for the rest of its poll
    interval), and time ``shutdown()`` with ``time.perf_counter()`` in the
    calling thread.  Prints ``{"event": "result", "latencies": [...]}``.

Protocol: the real stdout is kept as a private descriptor for JSON lines
and fd 1 is pointed at stderr, so an implementation that prints cannot
corrupt it; forked handler children close that descriptor.  The process
leaves with ``os._exit``, so a stuck handler thread cannot keep it alive.
Every wait is bounded by :mod:`harness.core.timeouts` budgets; the handler's
reads time out after ``medium()`` (equal for every implementation).

Adapters with a ``bootstrap`` (gevent, eventlet) are bootstrapped before
``socket``/``threading`` are imported, as in :mod:`harness.processes.server_process`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any, Dict, List, Optional

from harness.processes.child_protocol import Protocol, bootstrap, take_stdout

SPEC_VERSION = 1
STOP = "stop"
MODES = ("echo", "trivial", "shutdown")
#: The most lines one echo connection is served (a bounded loop).
MAX_LINES = 1_000_000
#: The longest line the echo handler reads at once.
MAX_LINE = 65_536
#: Iterations of the trivial loop (a bound; it normally stops on request).
MAX_ITERATIONS = 100_000_000


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads) and of its reaped children.

    ``time.process_time()`` is precise (not in clock ticks); children come
    from ``getrusage(RUSAGE_CHILDREN)`` where the ``resource`` module exists,
    else from ``os.times()`` (zero on Windows, which has no forking server).
    """
    import time

    own = time.process_time()
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own + usage.ru_utime + usage.ru_stime
    except (ImportError, OSError, AttributeError):
        t = os.times()
        return own + t.children_user + t.children_system


def echo_handler(module: Any, read_timeout: float) -> type:
    """A ``module.StreamRequestHandler`` that echoes every line until EOF."""

    class BenchEcho(module.StreamRequestHandler):
        timeout = read_timeout

        def handle(self) -> None:
            readline = self.rfile.readline
            write = self.wfile.write
            for _ in range(MAX_LINES):
                line = readline(MAX_LINE)
                if not line:
                    return
                write(line)

    return BenchEcho


def _settle_gc() -> None:
    """Start every measured server from the same garbage-collector state.

    The generation counters at the moment serving starts depend on how many
    objects the process allocated while importing (which differs between
    implementations); a forked child inherits them, and whether its first
    allocations trigger a collection decides how many pages it touches and
    copies on write.  Without this, a forking server's CPU per request
    differed by 15% between two implementations with identical request
    paths, depending only on their import history.
    """
    import gc

    gc.collect()


def _stop_watcher(on_stop: Any) -> Any:
    """A daemon thread that calls ``on_stop()`` when stdin says stop or closes."""
    import threading

    def watch() -> None:
        try:
            for _ in range(1_000_000):
                line = sys.stdin.readline()
                if not line or line.strip() == STOP:
                    break
        finally:
            on_stop()

    thread = threading.Thread(target=watch, name="bench-stdin", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------------------- echo


def _serve_echo(spec: Dict[str, Any], proto: Protocol) -> int:
    import threading
    import time

    from harness.core import addresses, timeouts
    from harness.implementations import resolve
    from harness.serving import servers

    module = resolve(spec["impl"]).module
    handler = echo_handler(module, timeouts.medium())
    family = spec.get("family") or "inet"
    server = servers.build_server(module, spec["server_class"], handler, addresses.loopback(family),
                                  **spec.get("attrs", {}))
    poll_interval = spec.get("poll_interval")
    poll_interval = 0.5 if poll_interval is None else poll_interval
    served: Dict[str, Any] = {}

    def serve() -> None:
        try:
            server.serve_forever(poll_interval)
        except BaseException as exc:  # reported in the "done" line
            served["error"] = f"{type(exc).__name__}: {exc}"

    stop = threading.Event()
    _stop_watcher(stop.set)
    _settle_gc()
    thread = threading.Thread(target=serve, name="bench-serve", daemon=True)
    thread.start()
    proto.send(event="ready", address=list(server.server_address), pid=os.getpid(),
               server_class=spec["server_class"], cpu=cpu_seconds())
    lifetime = float(spec.get("lifetime") or 3 * timeouts.long())
    stop.wait(lifetime)
    timings: Dict[str, Any] = {}
    problems: List[str] = []
    for name, call, budget in (("shutdown", server.shutdown, timeouts.short()),
                               ("server_close", server.server_close, timeouts.medium())):
        start = time.perf_counter()
        try:
            servers.call_bounded(call, budget=budget, what=f"server.{name}()")
        except BaseException as exc:
            problems.append(f"{name}: {type(exc).__name__}: {exc}")
        timings[name] = round(time.perf_counter() - start, 6)
    if "error" in served:
        problems.append(f"serve_forever: {served['error']}")
    proto.send(event="done", timings=timings, problems=problems, cpu=cpu_seconds())
    return 0 if not problems else 3


# ---------------------------------------------------------------------------- trivial


def _serve_trivial(spec: Dict[str, Any], proto: Protocol) -> int:
    import selectors
    import socket
    import threading

    from harness.core import addresses, timeouts

    family = spec.get("family") or "inet"
    listener = socket.socket(addresses.socket_family(family), socket.SOCK_STREAM)
    listener.bind(addresses.loopback(family))
    listener.listen(1024)
    listener.setblocking(False)
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, "listen")
    sel.register(wake_r, selectors.EVENT_READ, "wake")
    stopped: List[bool] = []

    def on_stop() -> None:
        stopped.append(True)
        with contextlib.suppress(OSError):
            wake_w.send(b"\0")

    _stop_watcher(on_stop)
    _settle_gc()
    proto.send(event="ready", address=list(listener.getsockname()), pid=os.getpid(),
               server_class="trivial", cpu=cpu_seconds())
    deadline = timeouts.Deadline(float(spec.get("lifetime") or 3 * timeouts.long()), "trivial server")
    pending: Dict[socket.socket, bytearray] = {}
    connections = 0

    def close(conn: socket.socket) -> None:
        pending.pop(conn, None)
        sel.unregister(conn)
        conn.close()

    def echo_blocking(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(timeouts.medium())
            for _ in range(MAX_LINES):
                try:
                    data = conn.recv(65536)
                    if not data:
                        return
                    conn.sendall(data)
                except OSError:
                    return

    per_thread = spec.get("per_connection") == "thread"

    for _ in range(MAX_ITERATIONS):
        if stopped or deadline.expired():
            break
        for key, mask in sel.select(deadline.remaining()):
            if key.data == "listen":
                for _ in range(64):
                    try:
                        conn, _peer = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    connections += 1
                    if per_thread:
                        threading.Thread(target=echo_blocking, args=(conn,), daemon=True).start()
                        continue
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ, "conn")
                continue
            if key.data == "wake":
                with contextlib.suppress(OSError):
                    wake_r.recv(64)
                continue
            fileobj = key.fileobj
            assert isinstance(fileobj, socket.socket)  # only sockets are registered
            conn = fileobj
            if mask & selectors.EVENT_READ:
                try:
                    data = conn.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    close(conn)
                    continue
                if data == b"":
                    close(conn)
                    continue
                if data:
                    pending.setdefault(conn, bytearray()).extend(data)
            buffer = pending.get(conn)
            if buffer:
                try:
                    sent = conn.send(buffer)
                except (BlockingIOError, InterruptedError):
                    sent = 0
                except OSError:
                    close(conn)
                    continue
                del buffer[:sent]
            wants = selectors.EVENT_READ | (selectors.EVENT_WRITE if buffer else 0)
            if wants != key.events:  # a syscall only when the interest changes
                sel.modify(conn, wants, "conn")
    for key in list(sel.get_map().values()):
        registered = key.fileobj
        assert isinstance(registered, socket.socket)  # listener, wake_r, connections
        registered.close()
    sel.close()
    wake_w.close()
    proto.send(event="done", timings={}, problems=[], connections=connections, cpu=cpu_seconds())
    return 0


# ---------------------------------------------------------------------------- shutdown


def _measure_shutdowns(spec: Dict[str, Any], proto: Protocol) -> int:
    import threading
    import time

    from harness.clients import bounded as clients
    from harness.core import addresses, timeouts
    from harness.implementations import resolve
    from harness.serving import servers

    module = resolve(spec["impl"]).module
    handler = echo_handler(module, timeouts.short())
    family = spec.get("family") or "inet"
    poll_interval = float(spec.get("poll_interval") or 0.5)
    idle = float(spec.get("idle") or 0.05)
    count = int(spec.get("shutdowns") or 5)
    latencies: List[float] = []
    problems: List[str] = []
    for index in range(count):
        server = servers.build_server(module, spec.get("server_class") or "TCPServer", handler,
                                      addresses.loopback(family), **spec.get("attrs", {}))
        after_request = threading.Event()
        original = server.service_actions

        def service_actions(original: Any = original, event: threading.Event = after_request) -> None:
            event.set()
            original()

        server.service_actions = service_actions
        thread = threading.Thread(target=server.serve_forever, args=(poll_interval,),
                                  name="bench-serve", daemon=True)
        thread.start()
        try:
            payload = b"shutdown-probe-%d\n" % index
            after_request.clear()
            reply = clients.roundtrip(server.server_address, family, payload)
            if reply != payload:
                raise RuntimeError(f"echo probe got {reply!r}, expected {payload!r}")
            timeouts.wait_event(after_request, timeouts.short(), "service_actions() after the probe")
            # The scenario: a server that has been idle for `idle` seconds is shut down.
            threading.Event().wait(idle)

            def timed_shutdown(server: Any = server) -> float:
                start = time.perf_counter()
                server.shutdown()
                return time.perf_counter() - start

            budget = timeouts.short() + poll_interval
            latencies.append(servers.call_bounded(timed_shutdown, budget=budget, what="server.shutdown()"))
            timeouts.join_thread(thread, timeouts.short(), "serve_forever() to return")
        except BaseException as exc:
            problems.append(f"shutdown {index}: {type(exc).__name__}: {exc}")
            break
        finally:
            with contextlib.suppress(BaseException):
                servers.call_bounded(server.server_close, budget=timeouts.short(), what="server_close()")
    proto.send(event="result", latencies=latencies, problems=problems, poll_interval=poll_interval,
               idle=idle, pid=os.getpid())
    return 0 if not problems else 3


# ---------------------------------------------------------------------------- main


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    proto = Protocol(take_stdout())
    try:
        spec = json.loads(argv[0] if argv and argv[0] != "-" else sys.stdin.readline())
        if spec.get("version") != SPEC_VERSION:
            raise ValueError(f"spec version {spec.get('version')!r}, expected {SPEC_VERSION}")
        mode = spec.get("mode")
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}, expected one of {', '.join(MODES)}")
        if mode != "trivial":
            bootstrap(spec["impl"])
        run = {"echo": _serve_echo, "trivial": _serve_trivial, "shutdown": _measure_shutdowns}[mode]
        code = run(spec, proto)
    except BaseException as exc:
        proto.send(event="error", exc_type=type(exc).__name__, error=str(exc),
                   capability=getattr(exc, "capability", None))
        code = 2
    sys.stderr.flush()
    os._exit(code)
    return code  # pragma: no cover


if __name__ == "__main__":
    main()
