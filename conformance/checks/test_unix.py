"""UNIX-*: the AF_UNIX servers (stream and datagram, threading and forking).

Every path lives in a private 0700 directory from
:func:`harness.core.addresses.private_dir` (short, so macOS' 104-byte
``sun_path`` is never the accidental limit).  Servers are built and served by
:mod:`conformance.tools.lab` (in this process, or in the subject agent) with
``respond`` handlers that record each request in the lab's event log and
reply -- except the forking ones, which :func:`conformance.tools.serving.serve_kind`
serves in a process of their own -- and clients are bound (datagram) or
unbound (stream) AF_UNIX sockets with bounded waits.

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

import pytest

from conformance.api import PLATFORM, REQUIRED, check, verify, verify_equal
from conformance.tools.event_log import handle_intervals, timeline, wait_count
from conformance.tools.held_clients import held_clients
from conformance.tools.lab import lab
from conformance.tools.serving import serve_kind
from harness.clients import bounded as clients
from harness.core import addresses, prerequisites, timeouts
from harness.core.observations import summary
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument, servers

UNIX = ("af_unix",)
#: Path lengths (bytes) tried when looking for the longest bindable path.
PATH_LENGTHS = range(100, 111)
#: ``respond`` handlers (agent.BEHAVIOURS): echo a stream line, echo a datagram.
STREAM_ECHO = {"behaviour": "respond", "handler_base": "StreamRequestHandler",
               "options": {"read": "line", "reply": "echo"}}
DGRAM_ECHO = {"behaviour": "respond", "handler_base": "DatagramRequestHandler", "options": {"reply": "echo"}}


def _echo(class_name):
    return DGRAM_ECHO if "Datagram" in class_name else STREAM_ECHO


def _build(made_lab, class_name, path_name="srv", **spec):
    """``class_name`` on ``<directory>/<path_name>``; a failure to construct fails the check."""
    spec = dict(_echo(class_name), **spec)
    made = made_lab.build(class_name, address={"path": path_name}, checked=True, **spec)
    if made.error is not None:
        verify(False, f"{class_name} construction on {path_name!r}", "succeeds",
               made.error.unless_os_error().summary())
    return made.server


@check("UNIX-001", REQUIRED, requires=UNIX,
       clause="UnixStreamServer serves a stream client; server_address is the bound path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L722-L723, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L474]")
def test_unix_stream_echo(impl, observe):
    """A UnixStreamServer echoes a line and reports its path as server_address."""
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "srv")
        with _build(made_lab, "UnixStreamServer").serve() as address:
            reply = clients.roundtrip(path, "unix", b"over unix\n")
    observe("server_address", address)
    observe("reply", reply)
    verify_equal("server_address", path, address)
    verify_equal("reply", b"over unix\n", reply)


@check("UNIX-002", REQUIRED, requires=UNIX,
       clause="UnixDatagramServer answers a bound datagram client from the server's path; "
              "server_address is the bound path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L725-L726, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L857-L858, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L474]")
def test_unix_datagram_echo(impl, observe):
    """A UnixDatagramServer echoes a datagram to a bound client."""
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "srv")
        server = _build(made_lab, "UnixDatagramServer")
        with server.serve() as address, clients.dgram_client("unix", made_lab.directory) as sock:
            try:
                sock.sendto(b"dgram over unix", path)
                data, sender = clients.recvfrom(sock)
            except (OSError, HarnessTimeout) as exc:
                data, sender = summary(exc), None
    observe("reply", data)
    observe("sender", sender)
    verify_equal("server_address", path, address)
    verify_equal("reply", b"dgram over unix", data)
    verify_equal("sender of the reply", path, sender)


@check("UNIX-003", PLATFORM, requires=UNIX,
       clause="the client_address of an unbound AF_UNIX stream client is what accept() returns: "
              "'' on Linux [https://man7.org/linux/man-pages/man7/unix.7.html]")
def test_unix_stream_unbound_client_address(impl, observe):
    """An unbound stream client is served; client_address equals the connection's peer name."""
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "srv")
        # read to EOF: closing with unread data would reset the client (AF_UNIX)
        server = _build(made_lab, "UnixStreamServer", options={"read": "eof", "reply": "fixed", "text": "ok"})
        with server.serve():
            reply = clients.roundtrip(path, "unix", b"x")
        seen = made_lab.responses()[:1]
    seen = {"client_address": seen[0]["client_address"], "peername": seen[0]["peername"]} if seen else {}
    observe.summary(repr(seen.get("client_address")))
    observe("handler_saw", seen)
    verify_equal("reply to the unbound client", b"ok", reply)
    if seen.get("peername") != seen.get("client_address"):  # get_request()'s, PIPELINE-013's (coll-handler)
        broken = servers.class_finding(impl, "UnixStreamServer",
                                       lambda cls: prerequisites.handler_arguments(cls, "client_address_is_peer"))
        if broken is not None:
            raise broken
    verify_equal("client_address (the accepted peer name)", seen.get("peername"), seen.get("client_address"))


def _is_socket_file(path):
    return os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode)


@check("UNIX-004", REQUIRED, requires=UNIX,
       clause="UnixStreamServer/UnixDatagramServer.server_close() does not unlink the socket path "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L484-L490]")
@pytest.mark.parametrize("class_name", ["UnixStreamServer", "UnixDatagramServer"])
def test_server_close_leaves_path(impl, observe, class_name):
    """After server_close the socket file is still there."""
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "srv")
        server = _build(made_lab, class_name)
        created = os.path.exists(path)
        server.close()
        left = _is_socket_file(path)
        fileno = server.facts().fileno
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    observe("path_after_server_close", "present" if left else "removed")
    verify(created, "socket path after construction", "present", created)
    verify(left, "socket path after server_close()", "left in place", "removed")
    verify_equal("server socket after server_close()", -1, fileno)


@check("UNIX-005", PLATFORM, requires=UNIX,
       clause="binding a path that exists (live or stale socket) fails with OSError (EADDRINUSE "
              "on Linux); the existing server is undisturbed "
              "[https://man7.org/linux/man-pages/man7/unix.7.html]")
@pytest.mark.parametrize("state", ["live", "stale"])
def test_bind_existing_path_fails(impl, observe, state):
    """A second server on an existing socket path raises OSError and takes nothing over."""
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "srv")
        first = _build(made_lab, "UnixStreamServer")
        with contextlib.ExitStack() as stack:
            if state == "live":
                stack.enter_context(first.serve(unlink_unix_path=False))
            else:
                first.close()
                if not os.path.exists(path):  # coll-bind: no stale path to bind: UNIX-004's
                    raise prerequisites.PreconditionFailed(
                        "close_keeps_path", f"UnixStreamServer.server_close() removed {path!r}")
            inode = os.lstat(path).st_ino
            second = made_lab.build("UnixStreamServer", address={"path": "srv"}, checked=True, **STREAM_ECHO)
            error = second.error and second.error.unless_os_error()
            if second.server is not None:
                second.server.close()
            present = os.path.exists(path)
            same_file = present and os.lstat(path).st_ino == inode
            reply = clients.roundtrip(path, "unix", b"still here\n") if state == "live" and same_file else None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    observe.summary(error.summary() if error is not None else "bound")
    observe("existing_file_kept", same_file)
    observe("first_server_reply", reply)
    verify(error is not None, f"binding a {state} socket path", "OSError", "bound without error")
    verify(same_file, "the existing socket file", "untouched", "replaced" if present else "removed")
    if state == "live":
        verify_equal("reply of the first server", b"still here\n", reply)


@check("UNIX-006", PLATFORM, requires=UNIX, topic="af_unix_path",
       clause="AF_UNIX paths are limited by sun_path (107 bytes on Linux, 103 on macOS); a longer "
              "path raises OSError and an accepted one is reported untruncated "
              "[https://man7.org/linux/man-pages/man7/unix.7.html, "
              "docs/platform-knowledge.md#af_unix_path]")
def test_unix_path_length_limit(impl, observe):
    """The longest bindable path is recorded; shorter ones are exact, longer ones raise OSError."""
    accepted, refused, mismatched = [], {}, {}
    with lab(impl) as made_lab:
        directory = made_lab.directory
        for length in PATH_LENGTHS:
            name = "x" * (length - len(os.fsencode(directory)) - 1)
            path = os.path.join(directory, name)
            made = made_lab.build("UnixStreamServer", address={"path": name}, checked=True, **STREAM_ECHO)
            if made.error is not None:
                refused[length] = made.error.unless_os_error().summary()
                continue
            try:
                accepted.append(length)
                address = made.server.facts().server_address
                if address != path:
                    mismatched[length] = address
            finally:
                made.server.close()
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
def test_threading_unix_stream_overlap(impl, observe):
    """Three held AF_UNIX handlers run at the same time."""
    count = 3
    with lab(impl) as made_lab:
        log = made_lab.log
        server = _build(made_lab, "ThreadingUnixStreamServer", behaviour="hold", options={})
        with server.serve() as address:
            with held_clients(address, "unix", count, log) as held:
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
def test_threading_unix_datagram_echo(impl, observe):
    """A ThreadingUnixDatagramServer echoes each datagram from a thread other than the serving one."""
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "srv")
        # process_request runs in the serving thread: its record names that thread
        server = _build(made_lab, "ThreadingUnixDatagramServer", hooks={"process_request": "record"})
        with server.serve(), clients.dgram_client("unix", made_lab.directory) as sock:
            replies = []
            for index in range(2):
                try:
                    sock.sendto(b"t%d" % index, path)
                    replies.append(clients.recvfrom(sock))
                except (OSError, HarnessTimeout) as exc:
                    replies.append((summary(exc), None))
        serving = {event["tid"] for event in made_lab.events(kind="hook", hook="process_request")}
        handlers = made_lab.responses()
    observe("replies", [data for data, _ in replies])
    observe("handler_threads", [event["thread"] for event in handlers])
    verify_equal("replies", [b"t0", b"t1"], [data for data, _ in replies])
    verify(all(sender == path for _, sender in replies), "senders", "the server's path", replies)
    verify(handlers and all(event["tid"] not in serving for event in handlers), "handler threads",
           "not the serving thread", [event["thread"] for event in handlers])
    verify_equal("distinct handler threads", 2, len({event["thread"] for event in handlers}))


@check("UNIX-009", REQUIRED, requires=("fork", "af_unix"),
       clause="ForkingMixIn composed with UnixStreamServer/UnixDatagramServer (module classes "
              "from 3.12) serves from a child process [gh-103673, "
              "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L732-L735]")
@pytest.mark.parametrize("class_name", ["ForkingUnixStreamServer", "ForkingUnixDatagramServer"])
def test_forking_unix_echo(impl, observe, class_name):
    """A Forking Unix server echoes through a child process."""
    dgram = "Datagram" in class_name
    with serve_kind(impl, class_name, "echo_line") as served:
        if dgram:
            with clients.dgram_client("unix") as sock:
                sock.sendto(b"forked\n", served.address)
                data, sender = clients.recvfrom(sock)
        else:
            data, sender = clients.roundtrip(served.address, "unix", b"forked\n"), served.address
        wait_count(served.log, 1, kind="phase", phase="handle", edge="start")
        pids = [event["pid"] for event in instrument.select(served.log.read(), kind="phase", phase="handle",
                                                            edge="start")]
    observe("reply", data)
    observe("handler_pids", pids)
    observe("server_pid", served.server_pid)
    verify_equal("reply", b"forked\n", data)
    verify_equal("sender of the reply", served.address, sender)
    verify(pids and served.server_pid not in pids, "handler process", f"a child, not the server {served.server_pid}",
           pids)


@check("UNIX-010", PLATFORM, requires=UNIX,
       clause="a datagram from an unbound AF_UNIX client has client_address None on Linux: the "
              "reply in finish() raises TypeError, which goes to handle_error; the server keeps "
              "serving "
              "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L857-L858, "
              "https://man7.org/linux/man-pages/man7/unix.7.html]")
def test_unbound_datagram_client(impl, observe):
    """An unbound datagram client cannot be answered, but the next (bound) client is."""
    with lab(impl) as made_lab:
        path = os.path.join(made_lab.directory, "srv")
        log = made_lab.log
        server = _build(made_lab, "UnixDatagramServer", hooks={"handle_error": "swallow"})
        with server.serve():
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unbound:
                unbound.settimeout(timeouts.short())
                unbound.sendto(b"anonymous", path)
                # an OS may drop it: recorded below
                wait_count(log, 1, kind="respond")
                wait_count(log, 1, timeouts.absence(), kind="hook", hook="handle_error")
            with clients.dgram_client("unix", made_lab.directory) as sock:
                sock.sendto(b"named", path)
                try:
                    data, _ = clients.recvfrom(sock)
                except HarnessTimeout:
                    data = None
                # inside the block: a serving loop that died must fail here, not in teardown
                verify_equal("reply to the bound client that came next", b"named", data)
        record = made_lab.responses()
        errors = [(event.get("handled") or {}).get("exc_type") for event in made_lab.events(kind="hook",
                                                                                           hook="handle_error")]
    first_address = record[0]["client_address"] if record else "<not handled>"
    observe.summary(f"client_address {first_address!r}; handle_error {errors or 'not called'}")
    observe("handle_error", errors)
    observe("client_addresses", [entry["client_address"] for entry in record])
