"""UNIX-*: the AF_UNIX servers (stream and datagram, threading and forking).

Every path lives in a private 0700 directory from
:func:`harness.core.addresses.private_dir` (short, so macOS' 104-byte
``sun_path`` is never the accidental limit).  Servers run in this process
with ``serve_in_thread`` -- except the forking ones, which run in the
single-threaded lab process of :mod:`conformance.children.forking_lab` -- and clients are
bound (datagram) or unbound (stream) AF_UNIX sockets with bounded waits.

AF_UNIX details that differ by OS (the client address of an unnamed peer,
the exact errno of a second bind, the longest path) are PLATFORM checks:
they record a short summary and fail only on the part every platform
shares (the server keeps serving, a failed bind raises ``OSError``, a
bound path is reported untruncated).

Clauses: the ``Unix*`` classes of CPython's Lib/socketserver.py at v3.13.0,
docs/platform-knowledge.md (topics ``af_unix_availability``, ``af_unix_path``) and the documentation of
``UnixStreamServer``/``UnixDatagramServer`` and their mix-in forms.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import sys
import threading

import pytest

from conformance.api import PLATFORM, REQUIRED, check, verify, verify_equal
from conformance.tools.event_log import handle_intervals, timeline, wait_count
from conformance.tools.forking_lab import forking_lab, handle_starts
from conformance.tools.held_clients import held_clients
from harness.clients import bounded as clients
from harness.core import addresses, timeouts
from harness.core.observations import summary
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument
from harness.serving.servers import build_server, serve_in_thread

UNIX = ("af_unix",)
#: Path lengths (bytes) tried when looking for the longest bindable path.
PATH_LENGTHS = range(100, 111)


def _echo_handler(ss, base_name="StreamRequestHandler", record=None):
    base = getattr(ss, base_name)
    record = [] if record is None else record

    class Echo(base):
        def handle(self):
            record.append({"client_address": self.client_address, "thread": threading.current_thread()})
            if isinstance(self.request, tuple):
                self.wfile.write(self.rfile.read())
            else:
                self.wfile.write(self.rfile.readline())

    return Echo


def _build(ss, class_name, handler, path, **attrs):
    try:
        return build_server(ss, class_name, handler, path, **attrs)
    except OSError as exc:
        verify(False, f"{class_name} construction on {path!r}", "succeeds", summary(exc))


@check("UNIX-001", REQUIRED, requires=UNIX,
       clause="UnixStreamServer serves a stream client; server_address is the bound path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L722-L723, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L474]")
def test_unix_stream_echo(ss, observe):
    """A UnixStreamServer echoes a line and reports its path as server_address."""
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        server = _build(ss, "UnixStreamServer", _echo_handler(ss), path)
        with serve_in_thread(server) as served:
            reply = clients.roundtrip(path, "unix", b"over unix\n")
    observe("server_address", served.address)
    observe("reply", reply)
    verify_equal("server_address", path, served.address)
    verify_equal("reply", b"over unix\n", reply)


@check("UNIX-002", REQUIRED, requires=UNIX,
       clause="UnixDatagramServer answers a bound datagram client from the server's path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L725-L726, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L857-L858]")
def test_unix_datagram_echo(ss, observe):
    """A UnixDatagramServer echoes a datagram to a bound client."""
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        server = _build(ss, "UnixDatagramServer", _echo_handler(ss, "DatagramRequestHandler"), path)
        with serve_in_thread(server) as served, clients.dgram_client("unix", directory) as sock:
            try:
                sock.sendto(b"dgram over unix", path)
                data, sender = clients.recvfrom(sock)
            except (OSError, HarnessTimeout) as exc:
                data, sender = summary(exc), None
    observe("reply", data)
    observe("sender", sender)
    verify_equal("server_address", path, served.address)
    verify_equal("reply", b"dgram over unix", data)
    verify_equal("sender of the reply", path, sender)


@check("UNIX-003", PLATFORM, requires=UNIX,
       clause="the client_address of an unbound AF_UNIX stream client is what accept() returns: "
              "'' on Linux [https://man7.org/linux/man-pages/man7/unix.7.html]")
def test_unix_stream_unbound_client_address(ss, observe):
    """An unbound stream client is served; client_address equals the connection's peer name."""
    seen = {}

    class Handler(ss.StreamRequestHandler):
        def handle(self):
            seen["client_address"] = self.client_address
            seen["peername"] = self.request.getpeername()
            self.rfile.read()  # to EOF: closing with unread data would reset the client (AF_UNIX)
            self.wfile.write(b"ok")

    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        with serve_in_thread(_build(ss, "UnixStreamServer", Handler, path)):
            reply = clients.roundtrip(path, "unix", b"x")
    observe.summary(repr(seen.get("client_address")))
    observe("handler_saw", seen)
    verify_equal("reply to the unbound client", b"ok", reply)
    verify_equal("client_address (the accepted peer name)", seen.get("peername"), seen.get("client_address"))


@check("UNIX-004", REQUIRED, requires=UNIX,
       clause="UnixStreamServer/UnixDatagramServer.server_close() does not unlink the socket path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490]")
@pytest.mark.parametrize("class_name", ["UnixStreamServer", "UnixDatagramServer"])
def test_server_close_leaves_path(ss, observe, class_name):
    """After server_close the socket file is still there."""
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        handler = _echo_handler(ss, "DatagramRequestHandler" if "Datagram" in class_name else "StreamRequestHandler")
        server = _build(ss, class_name, handler, path)
        created = os.path.exists(path)
        server.server_close()
        left = os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    observe("path_after_server_close", "present" if left else "removed")
    verify(created, "socket path after construction", "present", created)
    verify(left, "socket path after server_close()", "left in place", "removed")
    verify_equal("server socket after server_close()", -1, server.socket.fileno())


@check("UNIX-005", PLATFORM, requires=UNIX,
       clause="binding a path that exists (live or stale socket) fails with OSError (EADDRINUSE "
              "on Linux); the existing server is undisturbed "
              "[https://man7.org/linux/man-pages/man7/unix.7.html]")
@pytest.mark.parametrize("state", ["live", "stale"])
def test_bind_existing_path_fails(ss, observe, state):
    """A second server on an existing socket path raises OSError and takes nothing over."""
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        first = _build(ss, "UnixStreamServer", _echo_handler(ss), path)
        with contextlib.ExitStack() as stack:
            if state == "live":
                stack.enter_context(serve_in_thread(first, unlink_unix_path=False))
            else:
                first.server_close()
            inode = os.lstat(path).st_ino
            try:
                second = build_server(ss, "UnixStreamServer", _echo_handler(ss), path)
            except OSError as exc:
                error = exc
            else:
                error = None
                second.server_close()
            same_file = os.path.exists(path) and os.lstat(path).st_ino == inode
            reply = clients.roundtrip(path, "unix", b"still here\n") if state == "live" and same_file else None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    observe.summary(summary(error) if error is not None else "bound")
    observe("existing_file_kept", same_file)
    observe("first_server_reply", reply)
    verify(error is not None, f"binding a {state} socket path", "OSError", "bound without error")
    verify(same_file, "the existing socket file", "untouched", "replaced")
    if state == "live":
        verify_equal("reply of the first server", b"still here\n", reply)


@check("UNIX-006", PLATFORM, requires=UNIX, topic="af_unix_path",
       clause="AF_UNIX paths are limited by sun_path (107 bytes on Linux, 103 on macOS); a longer "
              "path raises OSError and an accepted one is reported untruncated "
              "[https://man7.org/linux/man-pages/man7/unix.7.html, "
              "docs/platform-knowledge.md#af_unix_path]")
def test_unix_path_length_limit(ss, observe):
    """The longest bindable path is recorded; shorter ones are exact, longer ones raise OSError."""
    accepted, refused, mismatched = [], {}, {}
    handler = _echo_handler(ss)
    with addresses.private_dir() as directory:
        for length in PATH_LENGTHS:
            name = "x" * (length - len(os.fsencode(directory)) - 1)
            path = os.path.join(directory, name)
            try:
                server = build_server(ss, "UnixStreamServer", handler, path)
            except OSError as exc:
                refused[length] = summary(exc)
                continue
            try:
                accepted.append(length)
                if server.server_address != path:
                    mismatched[length] = server.server_address
            finally:
                server.server_close()
                for leftover in addresses.socket_files(directory):
                    os.unlink(leftover)
    longest = max(accepted) if accepted else None
    observe.summary(str(longest) if longest is not None else "none")
    observe("accepted", accepted)
    observe("refused", refused)
    verify(not mismatched, "server_address of accepted paths", "the path itself (untruncated)", mismatched)
    verify(accepted and all(length < min(refused, default=sys.maxsize) for length in accepted),
           "accepted lengths", "every length up to a limit, none beyond", {"accepted": accepted,
                                                                           "refused": sorted(refused)})
    verify(refused, f"paths of {PATH_LENGTHS.start}..{PATH_LENGTHS.stop - 1} bytes", "the longest ones refused",
           accepted)


@check("UNIX-007", REQUIRED, requires=UNIX,
       clause="ThreadingUnixStreamServer handles AF_UNIX requests concurrently "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L698-L706]")
def test_threading_unix_stream_overlap(ss, observe):
    """Three held AF_UNIX handlers run at the same time."""
    count = 3
    with addresses.private_dir() as directory:
        log = instrument.EventLog.create(directory)
        path = addresses.unix_address(directory, "srv")
        handler = instrument.instrumented(ss.StreamRequestHandler, "hold", log)
        with serve_in_thread(_build(ss, "ThreadingUnixStreamServer", handler, path)) as served:
            with held_clients(served.address, "unix", count, log) as held:
                started = held.started
                echoes = held.release_all() if started == count else []
            intervals = handle_intervals(log, started)
    overlap = instrument.max_overlap(intervals, "handle")
    observe("held_at_once", started)
    observe("max_overlap", overlap)
    observe.timeline(timeline(intervals))
    verify_equal("AF_UNIX handlers holding at once", count, started)
    verify_equal("echoes", [b"release\n"] * count, echoes)
    verify_equal("max_overlap of handle() intervals", count, overlap)


@check("UNIX-008", REQUIRED, requires=UNIX,
       clause="ThreadingUnixDatagramServer answers datagrams from a handler thread through the "
              "shared socket "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L730]")
def test_threading_unix_datagram_echo(ss, observe):
    """A ThreadingUnixDatagramServer echoes each datagram from a thread other than the serving one."""
    record = []
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        server = _build(ss, "ThreadingUnixDatagramServer", _echo_handler(ss, "DatagramRequestHandler", record),
                        path)
        with serve_in_thread(server) as served, clients.dgram_client("unix", directory) as sock:
            replies = []
            for index in range(2):
                try:
                    sock.sendto(b"t%d" % index, path)
                    replies.append(clients.recvfrom(sock))
                except (OSError, HarnessTimeout) as exc:
                    replies.append((summary(exc), None))
            serving = served.thread
    threads = [entry["thread"] for entry in record]
    observe("replies", [data for data, _ in replies])
    observe("handler_threads", [thread.name for thread in threads])
    verify_equal("replies", [b"t0", b"t1"], [data for data, _ in replies])
    verify(all(sender == path for _, sender in replies), "senders", "the server's path", replies)
    verify(threads and all(thread is not serving for thread in threads), "handler threads",
           "not the serving thread", [thread.name for thread in threads])
    verify_equal("distinct handler threads", 2, len({id(thread) for thread in threads}))


@check("UNIX-009", REQUIRED, requires=("fork", "af_unix"),
       clause="ForkingMixIn composed with UnixStreamServer/UnixDatagramServer (module classes "
              "from 3.12) serves from a child process [gh-103673, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L732-L735]")
@pytest.mark.parametrize("class_name", ["ForkingUnixStreamServer", "ForkingUnixDatagramServer"])
def test_forking_unix_echo(impl, observe, class_name):
    """A Forking Unix server echoes through a child process."""
    dgram = "Datagram" in class_name
    with forking_lab(impl, class_name, "echo_line") as lab:
        if dgram:
            with clients.dgram_client("unix") as sock:
                sock.sendto(b"forked\n", lab.address)
                data, sender = clients.recvfrom(sock)
        else:
            data, sender = clients.roundtrip(lab.address, "unix", b"forked\n"), lab.address
        wait_count(lab.log, 1, kind="phase", phase="handle", edge="start")
        pids = [event["pid"] for event in handle_starts(lab.events())]
    observe("reply", data)
    observe("handler_pids", pids)
    observe("server_pid", lab.pid)
    verify_equal("reply", b"forked\n", data)
    verify_equal("sender of the reply", lab.address, sender)
    verify(pids and lab.pid not in pids, "handler process", f"a child, not the server {lab.pid}", pids)


@check("UNIX-010", PLATFORM, requires=UNIX,
       clause="a datagram from an unbound AF_UNIX client has client_address None on Linux: the "
              "reply in finish() raises TypeError, which goes to handle_error; the server keeps "
              "serving "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L857-L858, "
              "https://man7.org/linux/man-pages/man7/unix.7.html]")
def test_unbound_datagram_client(ss, observe):
    """An unbound datagram client cannot be answered, but the next (bound) client is."""
    errors = []
    record = []
    reported = threading.Event()

    def handle_error(self, request, client_address):
        errors.append(type(sys.exc_info()[1]).__name__)
        reported.set()

    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory, "srv")
        handler = _echo_handler(ss, "DatagramRequestHandler", record)
        server = _build(ss, "UnixDatagramServer", handler, path, handle_error=handle_error)
        with serve_in_thread(server):
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unbound:
                unbound.settimeout(timeouts.short())
                unbound.sendto(b"anonymous", path)
                with contextlib.suppress(HarnessTimeout):  # an OS may drop it: recorded below
                    timeouts.wait_until(lambda: record, timeouts.short(), "the unbound client's request")
                reported.wait(timeouts.absence())
            with clients.dgram_client("unix", directory) as sock:
                sock.sendto(b"named", path)
                try:
                    data, _ = clients.recvfrom(sock)
                except HarnessTimeout:
                    data = None
                # inside the block: a serving loop that died must fail here, not in teardown
                verify_equal("reply to the bound client that came next", b"named", data)
    first_address = record[0]["client_address"] if record else "<not handled>"
    observe.summary(f"client_address {first_address!r}; handle_error {errors or 'not called'}")
    observe("handle_error", errors)
    observe("client_addresses", [entry["client_address"] for entry in record])
