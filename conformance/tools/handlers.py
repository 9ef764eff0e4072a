"""Handlers and server classes a check builds on the implementation's own classes.

Theory of operation
-------------------
A check that observes the request pipeline subclasses the implementation's
own classes and records into a :class:`conformance.tools.recorder.Recorder`:

:func:`recording_handler`
    A ``BaseRequestHandler`` subclass that records ``handler`` and then
    performs one small *action* (:data:`ACTIONS`).  The actions are named as
    what the handler does (``replies``, ``echoes_to_eof``, ``waits_for_release``...),
    unlike the behaviours of :func:`harness.serving.instrument.instrumented`
    (``echo``, ``hold``...), which are a different tool: handlers that write
    to a cross-process event log and follow a line protocol.
:func:`recording_class`
    A subclass of a server class whose named hooks record their call, then
    call the base implementation.
:func:`failing_accept_server`
    A ``TCPServer`` whose ``get_request`` fails with a given errno a given
    number of times (``accept()`` failing: EMFILE, ECONNABORTED).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Tuple

from harness.core import timeouts

from .recorder import Recorder


def recording_class(base: type, recorder: Recorder, hooks: Tuple[str, ...], name: str = "") -> type:
    """A subclass of ``base`` whose ``hooks`` record their call, then call
    the base implementation and return its value."""

    def wrap(hook: str) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            recorder.add(hook, args=args)
            return getattr(base, hook)(self, *args, **kwargs)

        method.__name__ = hook
        return method

    namespace: Dict[str, Any] = {hook: wrap(hook) for hook in hooks}
    namespace["__module__"] = __name__
    return type(name or f"Recording{base.__name__}", (base,), namespace)


def _raise(exc: Any) -> None:
    raise exc() if isinstance(exc, type) else exc


def _returns(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    return


def _replies(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    handler.request.sendall(opts.get("reply", b"reply"))


def _echoes_to_eof(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    handler.request.settimeout(timeouts.short())
    data = bytearray()
    for _ in range(10_000):
        chunk = handler.request.recv(65536)
        if not chunk:
            break
        data += chunk
    handler.request.sendall(bytes(data))


def _raises(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    _raise(opts["exc"])


def _waits_for_release(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    recorder.add("hold", **thread_facts())  # coll-server: whose daemon flag THREADING-006 reads
    held = recorder.reached(lambda r: r.count("release") > 0, timeouts.short())
    recorder.add("handler_done", released=held)
    if opts.get("exc") is not None:
        _raise(opts["exc"])


def _shuts_down(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    handler.server.shutdown()
    recorder.add("shutdown_returned")


def thread_facts() -> Dict[str, Any]:
    """The current thread: a token unique to its ``Thread`` object (idents are reused once a
    thread ended), its name, daemon flag, and whether it is the main thread -- the agent's
    :func:`harness.subject.agent.bench_thread_facts`, so both paths record the same facts."""
    from harness.subject.agent import bench_thread_facts

    return bench_thread_facts()


def _reads_replies(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    import threading
    import weakref

    # a weak reference: whether the server keeps finished threads (THREADING-008)
    recorder.add("handler_thread", ref=weakref.ref(threading.current_thread()), **thread_facts())
    handler.request.recv(64)  # read the request: closing with unread data resets the client
    handler.request.sendall(b"ok")


def _shuts_down_replies(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    from harness.core.prerequisites import PreconditionFailed
    from harness.core.timeouts import HarnessTimeout
    from harness.serving.servers import call_bounded

    handler.request.recv(64)
    try:
        call_bounded(handler.server.shutdown, what="shutdown() called from a handler thread")
        result = "returned"
    except HarnessTimeout:
        result = "hung"
    except PreconditionFailed as exc:  # shutdown() already hung in this run: the check re-raises it
        recorder.add("precondition", exc=exc)
        result = "hung"
    except Exception as exc:
        result = repr(exc)
    recorder.add("shutdown_result", result=result)
    handler.request.sendall(result.encode())


def _raises_on_request(handler: Any, recorder: Recorder, opts: Dict[str, Any]) -> None:
    import weakref

    # keep no reference to the request: one that nobody shuts down must still be closed
    # when its thread ends, so the client sees EOF (THREADING-004 judges the calls, not a hang)
    for info in recorder.infos("handler"):
        if info.get("request") is handler.request:
            info["request"] = weakref.ref(handler.request)
    payload = handler.request.recv(64)
    recorder.add("handler_request", token=thread_facts()["token"], request=id(handler.request),
                 payload=payload.decode("latin-1"))
    if payload == b"raise":
        raise ValueError("handler failed on purpose")
    handler.request.sendall(b"ok")


#: What a :func:`recording_handler` does after recording ``handler``.
ACTIONS: Dict[str, Callable[[Any, Recorder, Dict[str, Any]], None]] = {
    "returns": _returns,  # nothing
    "replies": _replies,  # sendall(opts["reply"]) (stream requests)
    "echoes_to_eof": _echoes_to_eof,  # read until EOF (bounded), send it back
    "raises": _raises,  # raise opts["exc"] (an instance or a class)
    # wait (bounded) until the recorder has a ``release`` event, record
    # ``handler_done``, then raise opts.get("exc") if given
    "waits_for_release": _waits_for_release,
    "shuts_down": _shuts_down,  # call self.server.shutdown(), record ``shutdown_returned``
    # record ``handler_thread`` (:func:`thread_facts`), read up to 64 bytes, send b"ok"
    "reads_replies": _reads_replies,
    # read up to 64 bytes, call self.server.shutdown() (bounded by short()), record
    # ``shutdown_result`` ("returned", "hung" or the exception's repr) and send it
    "shuts_down_replies": _shuts_down_replies,
    # read up to 64 bytes, record ``handler_request`` (thread token, id of the request, the
    # payload as latin-1), raise ValueError if it was b"raise", else send b"ok"
    "raises_on_request": _raises_on_request,
}


def recording_handler(ss: Any, recorder: Recorder, action: str = "returns", **opts: Any) -> type:
    """A ``ss.BaseRequestHandler`` subclass recording ``handler`` (with the
    request, client address and server), then doing ``action`` (:data:`ACTIONS`)."""
    if action not in ACTIONS:
        raise KeyError(f"unknown handler action {action!r}; known: {', '.join(sorted(ACTIONS))}")
    body = ACTIONS[action]

    class Handler(ss.BaseRequestHandler):  # type: ignore[name-defined,misc]
        def handle(self) -> None:
            recorder.add("handler", request=self.request, client_address=self.client_address,
                         server=self.server)
            body(self, recorder, opts)

    Handler.__name__ = f"Handler_{action}"
    Handler.__qualname__ = Handler.__name__
    return Handler


def failing_accept_server(ss: Any, handler: type, errno_value: int, failures: int, recorder: Recorder,
                          accept_first: bool = False) -> Any:
    """A ``ss.TCPServer`` whose ``get_request`` raises ``OSError(errno_value)``
    on its first ``failures`` calls (recorded as ``accept_failed``), then
    delegates.  With ``accept_first`` each failing call first accepts the
    pending connection and closes it (a connection aborted by its peer)."""
    tcp = ss.TCPServer
    state = {"left": failures}

    def get_request(self: Any) -> Any:
        if state["left"] > 0:
            state["left"] -= 1
            if accept_first:
                request, _address = tcp.get_request(self)
                request.close()
            recorder.add("accept_failed")
            raise OSError(errno_value, "simulated accept() failure")
        return tcp.get_request(self)

    def service_actions(self: Any) -> Any:
        recorder.add("service_actions")
        return tcp.service_actions(self)

    cls = type("FailingAcceptServer", (tcp,), {"get_request": get_request, "service_actions": service_actions,
                                               "__module__": __name__})
    return cls(("127.0.0.1", 0), handler)


__all__ = ["ACTIONS", "failing_accept_server", "recording_class", "recording_handler", "thread_facts"]
