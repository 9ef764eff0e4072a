"""THREADING-*: ThreadingMixIn runs each request in a thread of its own.

Every check serves in this process (``serve_in_thread``, or a bounded
``handle_request`` when the check must call ``server_close`` itself) and
proves its claim from what the handlers recorded: the ``Thread`` objects
they ran in, the order of named steps (:class:`~conformance.tools.recorder.Recorder`), or the
intervals of an event log written by ``hold`` handlers.  Nothing is
inferred from elapsed time; the only idle waits are single
``timeouts.absence()`` windows that give a wrong implementation the chance
to show itself (``server_close`` returning too early).

Clauses: ``ThreadingMixIn`` in CPython's Lib/socketserver.py at v3.13.0
(``process_request_thread``, ``_Threads``), and the documentation of ``daemon_threads`` and
``block_on_close``.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import weakref

import pytest

from conformance.api import REQUIRED, VERSION, check, verify, verify_equal, verify_returned
from conformance.tools.event_log import handle_intervals, timeline, wait_count
from conformance.tools.held_clients import datagram_reply, held_clients
from conformance.tools.remote_bench import bench_server, handler_threads, recorder_for, times_of
from conformance.tools.running import Background, serving, serving_thread
from conformance.tools.serving import serve_kind
from harness.clients import bounded as clients
from harness.core import addresses, prerequisites, timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument, servers
from harness.serving.servers import build_server, call_bounded, run_handle_request, serve_in_thread

INET = addresses.loopback("inet")


#: Sequential requests in the bookkeeping check, and how many finished
#: threads the server may still reference after them (3.7 kept all of them).
BOOKKEEPING_REQUESTS = 50
BOOKKEEPING_BOUND = 16
#: Bursts of concurrent requests in the pruning check, their size, and how
#: many finished threads the server may still reference after them: the
#: last burst's threads, and as many again for an amortised prune (CPython
#: prunes on every new thread; 3.7 kept all 60).
BURSTS = 5
BURST_SIZE = 12
BURST_BOUND = 2 * BURST_SIZE


class _Escape(BaseException):
    """Raised by a handler: not an Exception, so not for handle_error."""


def _bench(impl, recorder, **attrs):
    """A ThreadingTCPServer (a bench server) whose handler records its thread, reads the
    request and replies b"ok"."""
    return bench_server(impl, recorder, "reads_replies", class_name="ThreadingTCPServer", hooks={},
                        harness_build=True, **attrs)


@check("THREADING-001", REQUIRED,
       clause="ThreadingMixIn: one new threading.Thread per request, daemon = daemon_threads "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L685-L706]")
# coll-server: block_on_close=False too, whose servers keep no thread list: a process_request() that
# needs the list runs no thread there (THREADING-007[block_on_close=False] names this check then)
# every variant sets daemon_threads itself: its default is API-014's clause, not this check's
@pytest.mark.parametrize("attrs", [{"daemon_threads": False}, {"daemon_threads": True},
                                   {"block_on_close": False, "daemon_threads": False}],
                         ids=["daemon_threads=False", "daemon_threads=True", "block_on_close=False"])
def test_one_thread_per_request(impl, observe, attrs):
    """Each request runs in a new thread whose daemon flag is daemon_threads."""
    daemon_threads = attrs["daemon_threads"]
    recorder = recorder_for(impl)
    server = _bench(impl, recorder, **attrs)
    failed = None
    with contextlib.ExitStack() as stack:
        served = stack.enter_context(serving(server))
        replies = [clients.roundtrip(served.address, payload=b"x") for _ in range(3)]
        teardown = stack.pop_all()
    try:
        teardown.close()
    except PreconditionFailed:
        raise
    except Exception as exc:  # coll-server: e.g. server_close() failing: this check's verdict comes first
        failed = exc
    seen = recorder.infos("handler_thread")
    observe("replies", replies)
    observe("threads", [{"name": t["thread_name"], "daemon": t["daemon"]} for t in seen])
    distinct = len({thread["token"] for thread in seen})  # one token per Thread object
    verify_equal("distinct handler threads for 3 requests", 3, distinct)
    if failed is not None:
        raise failed
    verify_equal("replies", [b"ok"] * 3, replies)
    daemons = [thread["daemon"] for thread in seen]
    verify(all(flag is daemon_threads for flag in daemons), f"handler thread daemon flags (daemon_threads={daemon_threads})",
           [daemon_threads] * 3, daemons)


@check("THREADING-002", REQUIRED,
       clause="ThreadingMixIn.process_request starts a new thread: the handler never runs in the "
              "serving thread "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L698-L706]")
def test_handler_thread_is_not_the_serving_thread(impl, observe):
    """The handler's thread (ident, name) differs from the serve_forever thread."""
    recorder = recorder_for(impl)
    server = _bench(impl, recorder)
    with serving(server) as served:
        serving_facts = serving_thread(served)
        reply = clients.roundtrip(served.address, payload=b"x")
    facts = [{"name": f["thread_name"], "ident": f["thread"], "daemon": f["daemon"], "main": f["main"]}
             for f in recorder.infos("handler_thread")]
    observe("serving_thread", serving_facts)
    observe("handler_thread", facts)
    verify_equal("reply", b"ok", reply)
    verify_equal("handler invocations", 1, len(facts))
    handler = facts[0]
    verify(handler["ident"] != serving_facts["ident"], "handler thread ident", f"not {serving_facts['ident']} (the serving thread)",
           handler["ident"])
    verify(handler["name"] != serving_facts["name"], "handler thread name", f"not {serving_facts['name']!r}", handler["name"])
    verify(not handler["main"], "handler thread", "not the main thread", handler)


@check("THREADING-003", REQUIRED,
       clause="ThreadingMixIn: N blocking handlers run concurrently "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L698-L706]")
def test_handlers_overlap(impl, observe):
    """Four held handlers all start before any is released (max overlap 4)."""
    count = 4
    with serve_kind(impl, "ThreadingTCPServer", "hold") as served:
        with held_clients(served.address, "inet", count, served.log) as held:
            started = held.started
            echoes = held.release_all() if started == count else []
        intervals = handle_intervals(served.log, started)
    overlap = instrument.max_overlap(intervals, "handle")
    observe("held_before_release", started)
    observe("max_overlap", overlap)
    observe.timeline(timeline(intervals))
    verify_equal("handlers holding at once before any release", count, started)
    verify_equal("echoes of the release lines", [b"release\n"] * count, echoes)
    verify_equal("max_overlap of handle() intervals", count, overlap)


def _error_recording_server(ss, handler, events, requests, **attrs):
    """A server recording handle_error/shutdown_request as (name, thread,
    whether ``request`` is the one the handler in that thread was given).
    Only weak references to requests are kept, so a request nobody shuts
    down is still closed when its thread ends (the client sees EOF)."""
    base = servers.server_class(ss, "ThreadingTCPServer")

    def same(request):
        ref = requests.get(threading.current_thread())
        return ref is not None and ref() is request

    def handle_error(self, request, client_address):
        events.append(("handle_error", threading.current_thread(), same(request)))

    def shutdown_request(self, request):
        events.append(("shutdown_request", threading.current_thread(), same(request)))
        base.shutdown_request(self, request)

    return build_server(ss, "ThreadingTCPServer", handler, INET, handle_error=handle_error,
                        shutdown_request=shutdown_request, **attrs)


@check("THREADING-004", REQUIRED,
       clause="an Exception in a handler thread goes to handle_error in that thread; "
              "shutdown_request is always called "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L685-L706]")
def test_exception_goes_to_handle_error_in_thread(impl, observe):
    """handle_error runs in the failing handler's thread, and shutdown_request runs for every request."""
    recorder = recorder_for(impl)
    # the calls record the calling thread and id() of the request (no reference: a request nobody
    # shuts down is still closed when its thread ends, and the client sees EOF)
    server = bench_server(impl, recorder, "raises_on_request", class_name="ThreadingTCPServer", harness_build=True,
                          hooks={"handle_error": "record_only", "shutdown_request": "record_request"})
    with serving(server) as served:
        failed = clients.roundtrip(served.address, payload=b"raise")
        succeeded = clients.roundtrip(served.address, payload=b"fine")
    handled = {info["payload"].encode("latin-1"): info for info in recorder.infos("handler_request")}
    events = [(name, info["token"], info["request"]) for name, info in recorder.events
              if name in ("handle_error", "shutdown_request")]
    observe("replies", [failed, succeeded])
    observe("events", [(name, token, request == _own(handled, token))
                       for name, token, request in events])
    verify_equal("replies (EOF after the failure, then 'ok')", [b"", b"ok"], [failed, succeeded])
    verify(b"raise" in handled and b"fine" in handled, "handled payloads", [b"raise", b"fine"], sorted(handled))
    for payload, expected in ((b"raise", ["handle_error", "shutdown_request"]), (b"fine", ["shutdown_request"])):
        own = handled[payload]
        calls = [(name, request == own["request"]) for name, token, request in events if token == own["token"]]
        verify_equal(f"server calls made in the handler thread of the {payload.decode()!r} request, in order", expected,
                     [name for name, _ in calls])
        verify(all(same for _, same in calls), f"request passed to {expected}", "the handler's own request", calls)
    tokens = {info["token"] for info in handled.values()}
    other = [(name, token) for name, token, _ in events if token not in tokens]
    verify(not other, "server calls made outside the handler threads", "none", other)


def _own(handled, token):
    """id() of the request the handler in the thread ``token`` was given."""
    for info in handled.values():
        if info["token"] == token:
            return info["request"]
    return None


@check("THREADING-005", REQUIRED,
       clause="a BaseException in a handler thread goes to threading.excepthook, not handle_error "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L685-L696, "
              "https://docs.python.org/3/library/threading.html#threading.excepthook]")
def test_base_exception_goes_to_excepthook(ss, observe):
    """A BaseException escapes the handler thread to threading.excepthook; shutdown_request still runs."""
    events = []
    requests = {}
    threads = []
    hooked = []

    class Handler(ss.BaseRequestHandler):
        def handle(self):
            requests[threading.current_thread()] = weakref.ref(self.request)
            threads.append(threading.current_thread())
            self.request.recv(64)  # read the request: closing with unread data would reset the client
            raise _Escape("not an Exception")

    def hook(args):
        hooked.append((args.exc_type, args.thread))

    server = _error_recording_server(ss, Handler, events, requests)
    previous = threading.excepthook
    threading.excepthook = hook
    try:
        with serve_in_thread(server) as served:
            reply = clients.roundtrip(served.address, payload=b"x")
            verify_equal("handler invocations", 1, len(threads))
            timeouts.join_thread(threads[0], timeouts.short(), "the handler thread to end")
    finally:
        threading.excepthook = previous
    names = [name for name, _, _ in events]
    observe("reply", reply)
    observe("excepthook", [(exc_type.__name__, getattr(thread, "name", None)) for exc_type, thread in hooked])
    observe("server_calls", names)
    verify_equal("reply (EOF)", b"", reply)
    verify("handle_error" not in names, "handle_error calls", "none for a BaseException", names)
    verify_equal("exceptions seen by threading.excepthook", [_Escape], [exc_type for exc_type, _ in hooked])
    verify(hooked[0][1] is threads[0], "thread reported to excepthook", threads[0].name,
           getattr(hooked[0][1], "name", None))
    verify_equal("server calls for the request", ["shutdown_request"], names)


@contextlib.contextmanager
def _held_request(impl, **attrs):
    """A threading server (a bench server) with one request held in its handler thread
    (``waits_for_release``: bounded); yields its recorder, the server, and a Background
    ``server_close()`` the check starts.  On exit the handler is released and its end
    waited for (bounded), and the server is closed if the check did not."""
    recorder = recorder_for(impl)
    server = bench_server(impl, recorder, "waits_for_release", class_name="ThreadingTCPServer", hooks={},
                          harness_build=True, **attrs)
    closer = Background(server.server_close, what="server.server_close()")
    try:
        with clients.connect(server.server_address):
            run_handle_request(server)
            try:
                recorder.wait_count("hold", 1, timeouts.short())
            except HarnessTimeout as exc:  # coll-server: no handler ran, so nothing to judge here
                raise PreconditionFailed("threading_spawns", f"no handler ran for a request of a ThreadingTCPServer "
                                         f"with {attrs} ({exc})") from exc
            yield recorder, server, closer
    finally:
        if not recorder.count("release"):
            recorder.add("release")
        if recorder.count("hold"):  # slow-serve: a handler that never started has no end to wait for
            recorder.wait_count("handler_done", 1, timeouts.short())  # the held handler thread ended
        if closer.thread.ident is not None:
            if not closer.finished_within(timeouts.short()):
                raise HarnessTimeout("server_close() to return", timeouts.short())
        else:
            call_bounded(server.server_close, what="server.server_close()")


def _steps(recorder, server, closer):
    """The steps in the order they happened, on one clock (the subject's, remotely):
    close_called, close_returned, release, handler_end."""
    called, returned = times_of(server, "server_close", closer)
    release, done = recorder.first("release"), recorder.first("handler_done")
    stamped = [("close_called", called), ("close_returned", returned),
               ("release", release and release["t"]), ("handler_end", done and done["t"])]
    return [name for name, t in sorted((s for s in stamped if s[1] is not None), key=lambda s: s[1])]


def _before(steps, first, second):
    return first in steps and second in steps and steps.index(first) < steps.index(second)


@check("THREADING-006", VERSION,
       clause="server_close() joins non-daemon handler threads when block_on_close (3.7+) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L700-L710]")
def test_server_close_joins_handler_threads(impl, observe):
    """With block_on_close, server_close returns only after a running handler ended."""
    with _held_request(impl, block_on_close=True, daemon_threads=False) as (recorder, server, closer):
        closer.start()
        early = closer.finished_within(timeouts.absence())
        recorder.add("release")
        if not closer.finished_within(timeouts.short()):
            raise HarnessTimeout("server_close() to return after the release", timeouts.short())
    steps = _steps(recorder, server, closer)
    observe("steps", steps)
    joins = impl.api_at_least(3, 7)
    observe.expected("server_close waits for the handler", joins)
    if joins:
        held = recorder.first("hold") or {}
        if early and held.get("daemon") is True:  # coll-server: not a thread server_close() joins
            raise PreconditionFailed("handler_daemon_flag", f"the held handler's thread {held.get('thread_name')!r} "
                                     "is a daemon although daemon_threads=False")
        verify(not early, "server_close while the handler is held", "still blocked", "returned")
        verify(_before(steps, "handler_end", "close_returned"), "order of steps",
               "handler_end before close_returned", steps)
    else:
        verify(_before(steps, "close_returned", "release"), "order of steps (API < 3.7)",
               "close_returned before release", steps)


@check("THREADING-007", REQUIRED,
       clause="with daemon_threads=True or block_on_close=False, server_close() does not wait for "
              "handlers "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L700-L710]")
@pytest.mark.parametrize("attrs", [{"daemon_threads": True}, {"block_on_close": False}],
                         ids=["daemon_threads=True", "block_on_close=False"])
def test_server_close_does_not_join(impl, observe, attrs):
    """server_close returns while a handler thread is still running."""
    with _held_request(impl, **attrs) as (recorder, server, closer):
        closer.start()
        returned_early = closer.finished_within(timeouts.short())
        recorder.add("release")
    steps = _steps(recorder, server, closer)
    observe("steps", steps)
    verify(returned_early, "server_close while a handler is held", "returns", "still blocked after short()")
    verify(_before(steps, "close_returned", "handler_end"), "order of steps", "close_returned before handler_end",
           steps)


@check("THREADING-008", VERSION,
       clause="thread bookkeeping stays bounded across many sequential requests (3.8+, bpo-37193) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L640-L659]")
def test_finished_threads_are_not_retained(impl, observe):
    """After 50 sequential requests the server references few finished threads."""
    recorder = recorder_for(impl)
    server = _bench(impl, recorder, block_on_close=True, daemon_threads=False)
    with serving(server) as served:
        for _ in range(BOOKKEEPING_REQUESTS):
            clients.roundtrip(served.address, payload=b"x")
        timeouts.wait_until(lambda: handler_threads(recorder)["alive"] == 0, timeouts.short(),
                            "the handler threads to end")
        threads = handler_threads(recorder, collect=True)
        retained = threads["retained"]
    observe("requests", threads["count"])
    observe("finished_threads_retained", retained)
    verify_equal("handler invocations", BOOKKEEPING_REQUESTS, threads["count"])
    if impl.api_at_least(3, 8):
        observe.expected("finished_threads_retained", f"<= {BOOKKEEPING_BOUND}")
        verify(retained <= BOOKKEEPING_BOUND, f"finished threads still referenced after {BOOKKEEPING_REQUESTS} requests",
               f"<= {BOOKKEEPING_BOUND} (bounded)", retained)


@check("THREADING-009", REQUIRED,
       clause="server_close() on a threading server that never handled a request succeeds "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L662-L670]")
@pytest.mark.parametrize("class_name", ["ThreadingTCPServer", "ThreadingUDPServer"])
def test_server_close_without_requests(impl, observe, class_name):
    """server_close on an unused threading server returns and closes the socket."""
    server = bench_server(impl, recorder_for(impl), class_name=class_name, hooks={}, harness_build=True)
    try:
        call_bounded(server.server_close, what="server_close() of an unused server")
        outcome = None
    except HarnessTimeout:
        raise  # server_close() hung: TIMEOUT, not an observation
    except Exception as exc:  # the observation: server_close raised
        outcome = exc
        server.socket.close()
    try:
        fileno_after = server.socket.fileno()
    except OSError as exc:  # the observation (Python 2's closed socket raises EBADF)
        fileno_after = f"raised {type(exc).__name__} errno={exc.errno}"
    observe("server_close", "returned" if outcome is None else repr(outcome))
    verify(outcome is None, "server_close() of an unused server", "returns", repr(outcome))
    verify_equal("listening socket fileno after server_close", -1, fileno_after)


@check("THREADING-010", REQUIRED, clause="ThreadingMixIn has no built-in cap on concurrent "
                                         "threads "
                                         "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L698-L706]")
def test_no_thread_cap(impl, observe):
    """Twenty held handlers all run at the same time."""
    count = 20
    with serve_kind(impl, "ThreadingTCPServer", "hold") as served:
        with held_clients(served.address, "inet", count, served.log, sequential=True) as held:
            started = held.started
            if started == count:
                held.release_all()
        intervals = handle_intervals(served.log, started)
    overlap = instrument.max_overlap(intervals, "handle")
    threads = len({iv.tid for iv in intervals})
    observe("held_at_once", started)
    observe("max_overlap", overlap)
    observe.timeline(timeline(intervals))
    verify_equal("handlers holding at once", count, started)
    verify_equal("max_overlap of handle() intervals", count, overlap)
    verify_equal("distinct handler threads", count, threads)


@check("THREADING-011", REQUIRED,
       clause="ThreadingUDPServer handlers reply through the shared server socket to their own "
              "client "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L535-L537]")
def test_threading_udp_replies_reach_their_client(impl, observe):
    """Three held datagram handlers, released in reverse order, each answer their own client."""
    tokens = ["t0", "t1", "t2"]
    with serve_kind(impl, "ThreadingUDPServer", "hold") as served:
        log = served.log
        with contextlib.ExitStack() as stack:
            socks = [stack.enter_context(clients.dgram_client("inet")) for _ in tokens]
            for sock, token in zip(socks, tokens):
                sock.sendto(token.encode() + b"\n", served.address)
            held = wait_count(log, len(tokens), kind="hold")
            replies = {}
            for sock, token in reversed(list(zip(socks, tokens))):
                instrument.release(log, token)
                if held == len(tokens):
                    replies[token] = datagram_reply(log, sock, token) or (None, None)
            if held < len(tokens):
                instrument.release(log)
            intervals = handle_intervals(log, held)
    observe("held_at_once", held)
    observe("replies", {token: [data, sender] for token, (data, sender) in replies.items()})
    observe.timeline(timeline(intervals))
    verify_equal("datagram handlers holding at once", len(tokens), held)
    for token in tokens:
        data, sender = replies[token]
        verify_equal(f"reply received by the client that sent {token}", b"released " + token.encode() + b"\n", data)
        verify_equal(f"sender of the reply to {token} (the server socket)", served.address, sender)


@check("THREADING-012", REQUIRED,
       clause="shutdown() called from a ThreadingMixIn handler thread returns once the loop exits "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L247-L255]")
def test_shutdown_from_handler_thread(impl, observe):
    """A handler thread can stop serve_forever with shutdown()."""
    # the handler calls self.server.shutdown(): a server that gives its handlers something else
    # (finish_request(), PIPELINE-014's) cannot be judged here (coll-handler)
    broken = servers.class_finding(impl, "ThreadingTCPServer",
                                   lambda cls: prerequisites.handler_arguments(cls, "handler_gets_server"))
    if broken is not None:
        raise broken
    recorder = recorder_for(impl)
    server = bench_server(impl, recorder, "shuts_down_replies", class_name="ThreadingTCPServer", hooks={},
                          harness_build=True, daemon_threads=True)
    with serving(server) as served:
        # the handler may spend short() finding out that shutdown() hangs
        reply = clients.roundtrip(served.address, payload=b"x", timeout=timeouts.medium())
        if recorder.first("precondition") is None:  # slow-hang: a shutdown() known to hang stops no loop
            served.thread.join(timeouts.short())
        loop_ended = not served.thread.is_alive()
    result = recorder.first("shutdown_result")
    observe("shutdown", result and result["result"])
    observe("serve_forever_returned", loop_ended)
    precondition = recorder.first("precondition")
    if precondition is not None:  # shutdown() already hung in this run
        raise precondition["exc"]
    verify_returned(reply != b"hung", "shutdown() called from a handler thread", timeouts.short())
    verify_equal("shutdown() from the handler thread", b"returned", reply)
    verify(loop_ended, "serve_forever after shutdown() from a handler", "returned", "still running")


@check("THREADING-013", VERSION,
       clause="finished handler threads are pruned as new ones start, also after bursts of "
              "concurrent requests (3.8+, bpo-37193) "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L640-L659]")
def test_finished_threads_pruned_after_bursts(ss, impl, observe):
    """After five bursts of twelve concurrent requests the server references few finished threads."""
    refs = []
    gates = []
    lock = threading.Lock()

    class Handler(ss.BaseRequestHandler):
        def handle(self):
            gate = gates[-1]
            with lock:
                refs.append(weakref.ref(threading.current_thread()))
            gate.wait(timeouts.short())
            self.request.settimeout(timeouts.short())
            self.request.recv(64)
            self.request.sendall(b"ok")

    def all_dead():
        return all(ref() is None or not ref().is_alive() for ref in refs)

    replies = []
    server = build_server(ss, "ThreadingTCPServer", Handler, INET, block_on_close=True, daemon_threads=False)
    with serve_in_thread(server) as served:
        for burst in range(BURSTS):
            gates.append(threading.Event())
            with contextlib.ExitStack() as stack:
                socks = []
                try:
                    for index in range(BURST_SIZE):
                        # one at a time: no listen-backlog overflow, all running at once
                        socks.append(stack.enter_context(clients.connect(served.address)))
                        wanted = burst * BURST_SIZE + index + 1
                        timeouts.wait_until(lambda n=wanted: len(refs) >= n, timeouts.short(), "the handler to start")
                finally:
                    gates[-1].set()
                for sock in socks:
                    clients.sendall(sock, b"x")
                    replies.append(clients.recv_until_eof(sock))
            timeouts.wait_until(all_dead, timeouts.short(), "the burst's handler threads to end")
        gc.collect()
        retained = sum(1 for ref in refs if ref() is not None)
        remembered = getattr(server, "_threads", None)
        try:
            remembered = len(remembered or ())
        except TypeError:  # coll-server: a placeholder without a length (_NoThreads): no list kept
            remembered = None
    observe("requests", len(refs))
    observe("finished_threads_retained", retained)
    observe("len(server._threads)", remembered)
    verify_equal("handler invocations", BURSTS * BURST_SIZE, len(refs))
    verify_equal("replies", [b"ok"] * (BURSTS * BURST_SIZE), replies)
    if impl.api_at_least(3, 8):
        observe.expected("finished_threads_retained", f"<= {BURST_BOUND}")
        verify(retained <= BURST_BOUND,
               f"finished threads still referenced after {BURSTS} bursts of {BURST_SIZE} concurrent requests",
               f"<= {BURST_BOUND} (pruned)", retained)
