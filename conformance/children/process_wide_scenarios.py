"""The scenarios of :mod:`conformance.children.process_wide` (run in that child only).

Theory of operation
-------------------
Each ``scenario_<name>(ss, spec)`` gets the implementation's module and the
spec the check sent, changes process-wide state, serves one request through
``serve_forever()`` (and, where it matters, ``handle_request()``) with the
check-side tools, and returns JSON-able observations; the check judges them.
Every wait is bounded by :mod:`harness.core.timeouts`.  This module is imported
only after the adapter's bootstrap ran.
"""

from __future__ import annotations

import socket
from typing import Any, Dict, Optional

from conformance.tools.handlers import failing_accept_server
from conformance.tools.recorder import Recorder
from conformance.tools.roundtrip import read_to_eof, try_roundtrip
from conformance.tools.running import Background, LoopThread
from harness.core import timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.serving.servers import call_bounded


def _describe(exc: Optional[BaseException]) -> Optional[str]:
    return None if exc is None else f"{type(exc).__name__}: {exc}"


def _serve_one(ss: Any, server: Any, payload: bytes) -> Dict[str, Any]:
    """serve_forever(poll()) in a thread, one round trip, shutdown() (bounded)."""
    loop = LoopThread(server).start()
    reply = try_roundtrip(server.server_address, payload, loop=loop)  # serve-dead: a dead loop decides
    stopped: Optional[str] = None
    if not loop.returned.is_set():
        try:
            call_bounded(server.shutdown, budget=timeouts.short(), what="server.shutdown()")
        except PreconditionFailed:  # the child reports it; run_child re-raises it
            raise
        except BaseException as exc:  # reported to the parent
            stopped = _describe(exc)
    ended = loop.returned_within(timeouts.short())
    return {"reply": reply["data"].decode("latin-1"), "reply_error": reply["error"],
            "shutdown_error": stopped, "loop_ended": ended, "loop_error": _describe(loop.error)}


def _echo_handler(ss: Any) -> type:
    class Echo(ss.StreamRequestHandler):  # type: ignore[name-defined,misc]
        def handle(self) -> None:
            self.request.settimeout(timeouts.short())
            self.wfile.write(self.rfile.readline())

    return Echo


def scenario_fd_above_setsize(ss: Any, spec: Dict[str, Any]) -> Dict[str, Any]:
    """The listening socket moved to descriptor ``spec["fd"]`` (>= FD_SETSIZE):
    one request through serve_forever(), one through handle_request()."""
    import os
    import resource

    target = int(spec["fd"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = target + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            return {"unsupported": f"RLIMIT_NOFILE hard limit {hard} < {wanted}"}
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (OSError, ValueError) as exc:
            return {"unsupported": f"cannot raise RLIMIT_NOFILE to {wanted}: {_describe(exc)}"}
    result: Dict[str, Any] = {"fd": target}
    server = ss.TCPServer(("127.0.0.1", 0), _echo_handler(ss))
    try:
        old = server.socket
        os.dup2(old.fileno(), target)
        server.socket = socket.socket(old.family, old.type, old.proto, fileno=target)
        old.close()
        result["listener_fd"] = server.fileno()
        result["serve_forever"] = _serve_one(ss, server, b"above FD_SETSIZE\n")
        server.timeout = timeouts.short()
        # the request is pending before handle_request() is called (slow-serve): how long it
        # waits for one is SERVE-001's, and one that did not wait failed here too
        with socket.create_connection(server.server_address, timeout=timeouts.short()) as client:
            client.sendall(b"handle_request\n")
            client.shutdown(socket.SHUT_WR)
            call = Background(server.handle_request, what="server.handle_request()").start()
            reply = read_to_eof(client, timeouts.short())
        ended = call.finished_within(timeouts.short())
        result["handle_request"] = {"reply": reply["data"].decode("latin-1"), "reply_error": reply["error"],
                                    "returned": ended, "error": _describe(call.error)}
    finally:
        call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    return result


def scenario_no_socketpair(ss: Any, spec: Dict[str, Any]) -> Dict[str, Any]:
    """``socket.socketpair`` raises EMFILE; with ``spec["no_listen"]`` creating
    any new listening socket fails too.  The server (built before the
    patches) gets three EMFILE accept() failures, then serves one request;
    shutdown() must return."""
    import errno

    def no_pair(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "simulated: too many open files (socketpair)")

    def no_listen(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EMFILE, "simulated: too many open files (listen)")

    recorder = Recorder()
    server = failing_accept_server(ss, _echo_handler(ss), errno.EMFILE, 3, recorder)
    socket_class = socket.socket
    original_pair = socket.socketpair

    class NoListen(socket_class):  # type: ignore[valid-type,misc]
        """Sockets made from now on cannot listen.  Set per instance, not on
        the class: eventlet's GreenSocket binds ``listen`` per instance too,
        so an instance attribute is the one override that wins everywhere."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.listen = no_listen.__get__(self)

    try:
        socket.socketpair = no_pair  # type: ignore[assignment]
        if spec.get("no_listen"):
            socket.socket = NoListen  # type: ignore[misc]
        result = _serve_one(ss, server, b"no wake-up pair\n")
    finally:
        socket.socketpair = original_pair  # type: ignore[assignment]
        socket.socket = socket_class  # type: ignore[misc]
        call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    result["accept_failures"] = recorder.count("accept_failed")
    return result
