"""harness.serving.instrument: the event log, intervals, and every behaviour on a real server."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from harness.clients import bounded as clients
from harness.core import addresses, timeouts
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument, servers
from harness.serving.instrument import EventLog, Interval


@pytest.fixture
def tmpdir_private():
    with addresses.private_dir() as directory:
        yield directory


@pytest.fixture
def log(tmpdir_private):
    return EventLog.create(tmpdir_private)


@pytest.fixture
def fast():
    saved = timeouts._multiplier
    timeouts.set_multiplier(0.2, export=False)
    yield
    timeouts.set_multiplier(saved, export=False)


# --------------------------------------------------------------------------- EventLog


def test_append_adds_identity_and_reads_back(log):
    written = log.append(kind="x", value=1)
    (event,) = log.read()
    assert event == written
    assert event["pid"] == os.getpid()
    assert event["tid"] == threading.get_ident()
    assert event["native_id"] == threading.get_native_id()
    assert abs(event["t"] - time.monotonic()) < timeouts.short()


def test_long_fields_are_truncated_below_4k(log):
    log.append(kind="big", text="a" * 100_000, data=b"b" * 10_000, many=list(range(1000)))
    with open(log.writer_path(), "rb") as handle:  # this process's file of the log
        raw = handle.read()
    assert len(raw) < 4096 and raw.endswith(b"\n")
    (event,) = log.read()
    assert event["text"].endswith("...") and len(event["text"]) <= instrument.MAX_FIELD


def test_concurrent_appends_from_processes_and_threads_stay_whole(log):
    script = textwrap.dedent(
        """
        import sys
        from harness.serving.instrument import EventLog
        log = EventLog(sys.argv[1])
        for i in range(300):
            log.append(kind="p", i=i, pad="z" * 1500)
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    procs = [subprocess.Popen([sys.executable, "-c", script, log.path], env=env) for _ in range(3)]
    threads = [threading.Thread(target=lambda: [log.append(kind="t", i=i, pad="y" * 1500)
                                                for i in range(300)]) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        timeouts.join_thread(thread, timeouts.medium(), "appending threads")
    for proc in procs:
        assert proc.wait(timeout=timeouts.long()) == 0
    events = log.read()  # json.loads would fail on an interleaved line
    assert len(events) == 5 * 300
    assert len({e["pid"] for e in events}) == 4


def test_read_ignores_a_line_still_being_written(log):
    log.append(kind="whole")
    with open(log.path, "ab") as handle:
        handle.write(b'{"kind": "half')
    assert [e["kind"] for e in log.read()] == ["whole"]


def test_wait_for_returns_events_or_times_out(log, fast):
    log.append(kind="a")
    events = log.wait_for(lambda ev: any(e["kind"] == "a" for e in ev), what="a")
    assert events[0]["kind"] == "a"
    start = time.monotonic()
    with pytest.raises(HarnessTimeout, match="never"):
        log.wait_for(lambda ev: False, 0.2, "never")
    assert time.monotonic() - start < 0.2 + timeouts.short()


def test_append_after_the_directory_vanished_is_dropped():
    with addresses.private_dir() as directory:
        log = EventLog.create(directory)
    log.append(kind="late")
    assert log.dropped == 1
    assert log.read() == []


# --------------------------------------------------------------------------- intervals


def _phase(request, edge, t, phase="handle", pid=1, tid=1, exc_type=None):
    return {"kind": "phase", "phase": phase, "edge": edge, "request": request, "t": t,
            "pid": pid, "tid": tid, "exc": None, "exc_type": exc_type}


def test_intervals_pair_edges_and_sort():
    events = [_phase("b", "start", 2.0), _phase("a", "start", 1.0), _phase("a", "end", 3.0),
              _phase("b", "end", 4.0, exc_type="ValueError"), {"kind": "other"}]
    ivs = instrument.intervals(events)
    assert [iv.request for iv in ivs] == ["a", "b"]
    assert ivs[0].duration == 2.0 and ivs[1].exc_type == "ValueError"


def test_max_overlap_and_serialised():
    overlapping = [Interval("a", "handle", 1, 3, 1, 1), Interval("b", "handle", 2, 4, 1, 2),
                   Interval("c", "handle", 2.5, 2.6, 1, 3)]
    assert instrument.max_overlap(overlapping) == 3
    assert not instrument.serialised(overlapping)
    touching = [Interval("a", "handle", 1, 2, 1, 1), Interval("b", "handle", 2, 3, 1, 1)]
    assert instrument.max_overlap(touching) == 1 and instrument.serialised(touching)
    # an interval that never ended stays open
    open_ended = [Interval("a", "handle", 1, None, 1, 1), Interval("b", "handle", 5, 6, 1, 1)]
    assert instrument.max_overlap(open_ended) == 2
    # other phases are ignored unless asked for
    mixed = [Interval("a", "setup", 1, 3, 1, 1), Interval("b", "handle", 2, 4, 1, 1)]
    assert instrument.max_overlap(mixed) == 1
    assert instrument.max_overlap(mixed, phase=None) == 2
    assert instrument.max_overlap([]) == 0


# --------------------------------------------------------------------------- behaviours


def test_unknown_behaviour_is_refused(log):
    with pytest.raises(KeyError, match="known"):
        instrument.instrumented(socketserver.BaseRequestHandler, "dance", log)


@pytest.mark.parametrize("base", ["BaseRequestHandler", "StreamRequestHandler"])
def test_handler_subclasses_base_and_records_all_phases(log, base):
    handler_base = getattr(socketserver, base)
    handler = instrument.instrumented(handler_base, "echo", log)
    assert issubclass(handler, handler_base)
    server = servers.build_server(socketserver, "TCPServer", handler, addresses.loopback("inet"))
    with servers.serve_in_thread(server) as served:
        assert clients.roundtrip(served.address, "inet", b"x" * 100_000) == b"x" * 100_000
    phases = [(e["phase"], e["edge"]) for e in log.read() if e["kind"] == "phase"]
    assert phases == [("setup", "start"), ("setup", "end"), ("handle", "start"),
                      ("handle", "end"), ("finish", "start"), ("finish", "end")]
    assert len({e["request"] for e in log.read() if e["kind"] == "phase"}) == 1


def _serve(log, behaviour, class_name="TCPServer", base="StreamRequestHandler", **options):
    handler = instrument.instrumented(getattr(socketserver, base), behaviour, log, **options)
    server = servers.build_server(socketserver, class_name, handler, addresses.loopback("inet"))
    return servers.serve_in_thread(server)


def test_echo_line_and_upper(log):
    with _serve(log, "echo_line") as served:
        assert clients.roundtrip(served.address, "inet", b"first\nsecond\n") == b"first\n"
    with _serve(log, "upper", base="BaseRequestHandler") as served:
        with clients.connect(served.address, "inet") as sock:
            clients.sendall(sock, b" abc \n")
            assert clients.recv_some(sock) == b"ABC"
            clients.sendall(sock, b"def")
            assert clients.recv_some(sock) == b"DEF"


@pytest.mark.parametrize("base", ["BaseRequestHandler", "DatagramRequestHandler"])
@pytest.mark.parametrize("behaviour, sent, reply", [("echo", b"hi\n", b"hi\n"),
                                                     ("upper", b" hi \n", b"HI"),
                                                     ("echo_line", b"a\nb\n", b"a\n")])
def test_datagram_behaviours(log, base, behaviour, sent, reply):
    with _serve(log, behaviour, "UDPServer", base) as served:
        assert clients.roundtrip(served.address, "inet", sent, dgram=True) == reply


def test_raise_records_the_exception(log, capsys):
    with _serve(log, "raise") as served:
        # nothing sent, so the handler's early close is a FIN, not a RST
        assert clients.roundtrip(served.address, "inet", b"") == b""
        log.wait_for(lambda ev: instrument.select(ev, phase="finish", edge="end"), what="finish")
    (end,) = instrument.select(log.read(), phase="handle", edge="end")
    assert end["exc_type"] == "ValueError" and "on purpose" in end["exc"]
    assert "ValueError" in capsys.readouterr().err  # the server's handle_error ran


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_raise_exit_records_system_exit(log):
    with _serve(log, "raise_exit", "ThreadingTCPServer") as served:
        with clients.connect(served.address, "inet") as sock:
            sock.shutdown(socket.SHUT_WR)
            log.wait_for(lambda ev: instrument.select(ev, phase="handle", edge="end"), what="end")
    (end,) = instrument.select(log.read(), phase="handle", edge="end")
    assert end["exc_type"] == "SystemExit"


def test_observe_recv_records_data_then_eof(log):
    with _serve(log, "observe_recv") as served:
        assert clients.roundtrip(served.address, "inet", b"payload") == b""
    recvs = instrument.select(log.read(), kind="recv")
    assert recvs[0]["result"] == repr(b"payload") and recvs[-1]["nbytes"] == 0


def test_observe_recv_records_a_reset_with_errno(log):
    with _serve(log, "observe_recv", base="BaseRequestHandler") as served:
        sock = clients.connect(served.address, "inet")
        log.wait_for(lambda ev: instrument.select(ev, phase="handle", edge="start"), what="start")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()  # RST
        log.wait_for(lambda ev: instrument.select(ev, phase="handle", edge="end"), what="end")
    last = instrument.select(log.read(), kind="recv")[-1]
    # Linux reports the RST once (ECONNRESET); either way the fields are there
    assert last["exc_type"] in ("ConnectionResetError", None)
    if last["exc_type"]:
        assert last["errno_name"] == "ECONNRESET" and "winerror" in last


def test_close_unread_replies_without_reading(log):
    with _serve(log, "close_unread", reply="see you\n") as served:
        assert clients.roundtrip(served.address, "inet", b"") == b"see you\n"
    assert not instrument.select(log.read(), kind="recv")


def test_hold_blocks_until_the_client_sends_a_line(log):
    with _serve(log, "hold") as served:
        with clients.connect(served.address, "inet") as sock:
            log.wait_for(lambda ev: instrument.select(ev, kind="hold"), what="hold")
            assert not instrument.select(log.read(), phase="handle", edge="end")
            clients.sendall(sock, b"go\n")
            assert clients.recv_line(sock) == b"go\n"
        log.wait_for(lambda ev: instrument.select(ev, phase="handle", edge="end"), what="end")


def test_hold_is_bounded(log, fast):
    with _serve(log, "hold", hold_timeout=0.2) as served:
        with clients.connect(served.address, "inet"):
            log.wait_for(lambda ev: instrument.select(ev, kind="hold_timeout"), what="bound")


def test_datagram_hold_waits_for_release(log):
    with _serve(log, "hold", "ThreadingUDPServer", "BaseRequestHandler") as served:
        with clients.dgram_client("inet") as sock:
            sock.sendto(b"t1", served.address)
            log.wait_for(lambda ev: instrument.select(ev, kind="hold", token="t1"), what="hold")
            instrument.release(log, "t1")
            data, _ = clients.recvfrom(sock)
    assert data == b"released t1\n"


def test_observe_send_records_results(log):
    with _serve(log, "observe_send", count=3, chunk_size=10) as served:
        assert clients.roundtrip(served.address, "inet", b"") == b"x" * 30
    sends = instrument.select(log.read(), kind="send")
    assert [s["nbytes"] for s in sends] == [10, 10, 10]


def test_events_are_json_serialisable_for_other_processes(log):
    with _serve(log, "echo") as served:
        clients.roundtrip(served.address, "inet", b"x")
    for event in log.read():
        json.dumps(event)


def test_exception_fields_are_the_one_description_under_event_names():
    from harness.core.observations import describe_exception

    exc = ConnectionResetError(10054, "reset by peer")  # a Winsock number: named ECONNRESET
    described = describe_exception(exc)
    fields = instrument.exception_fields(exc)
    assert fields == {"exc": repr(exc), "exc_type": described["type"], "errno": described["errno"],
                      "errno_name": described["errno_name"], "winerror": described["winerror"]}
    assert fields["errno_name"] == "ECONNRESET" and fields["exc_type"] == "ConnectionResetError"
    assert getattr(instrument, "describe_exception", describe_exception) is describe_exception  # no twin


# udp-connect: a handler notes a shared datagram socket it finds connected, and only then
@pytest.mark.parametrize("impl, noted", [("stdlib", []), ("udp_connects_to_client", ["finish", "setup", "finish"])])
def test_a_connected_shared_datagram_socket_is_noted_by_the_handler(log, impl, noted):
    from pathlib import Path

    from harness.implementations import resolve

    broken = Path(__file__).resolve().parents[1] / "broken" / "impls" / f"{impl}.py"
    module = resolve(impl if impl == "stdlib" else str(broken)).module
    handler = instrument.instrumented(module.DatagramRequestHandler, "echo", log)
    server = servers.build_server(module, "UDPServer", handler, addresses.loopback("inet"))
    with servers.serve_in_thread(server) as served, clients.dgram_client("inet") as sock:
        client = repr(sock.getsockname())
        for message in (b"one\n", b"two\n"):  # the same client: a connected socket still answers it
            sock.sendto(message, served.address)
            assert clients.recvfrom(sock)[0] == message
        log.wait_for(lambda ev: len(instrument.select(ev, phase="finish", edge="end")) == 2, what="finishes")
    server.server_close()
    notes = instrument.select(log.read(), kind="shared_socket_connected")
    assert [note["where"] for note in notes] == noted
    assert all(note["peer"] == client for note in notes)
