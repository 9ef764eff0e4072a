"""The tutorial's handlers and its interactive client, replayed with bounds.

Theory of operation
-------------------
The tutorial this project started from (a Chinese-language socketserver
tutorial; what it shows is quoted below and in test_tutorial.py) builds five
servers around one handler body and drives them with one interactive
client::

    socketserver1  handle(): data = recv(1024).strip(); send(data.upper())    (one exchange)
    socketserver2  the same in ``while True``, ``break`` on empty data        (many exchanges)
    socketserver3  socketserver2 + ``except ConnectionResetError: break``     (Windows-proof)
    socketserver4  socketserver3 on ``ThreadingTCPServer``
    socketserver5  socketserver3 on ``ForkingTCPServer``
    socketclient   loop: send(input()), print(recv(1024))

:func:`tutorial_handler` returns those handler classes on the
implementation's own ``BaseRequestHandler``, with the tutorial's code
unchanged except that ``print`` became an entry in a :class:`Journal`
(what the handler received, how it ended, its interval with pid and
thread) and every ``recv`` has a timeout (``medium()``), so a check can
never hang on a handler.  ``ForkingTCPServer`` must run in a server
process, where handlers are named behaviours: there the tutorial's body
is the ``upper`` behaviour of :mod:`harness.serving.instrument` on
``BaseRequestHandler`` (``recv(1024).strip()``, ``break`` on empty data,
reply ``upper()``; it uses ``sendall`` where the tutorial uses ``send``,
the same for these few bytes).

The killed-client scene needs a client that is a process of its own and
dies without closing its socket.  Run as
``python -m conformance.checks._tutorial_support '{"address": ..., "messages": [...]}'``
this module is the tutorial's ``socketclient``: it connects, sends each
message and prints what ``recv(1024)`` returned (one JSON line each, so
the parent knows the replies were *read*: unread data would turn the
kernel's FIN into an RST on Linux), then says ``ready`` and blocks on
stdin until the parent kills it.  A watchdog timer bounds its life.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from typing import Any, Dict, List, Optional

from harness.core import clock, timeouts

#: The tutorial's handler variants (see the module docstring).
VARIANTS = ("socketserver1", "socketserver2", "socketserver3")


class Journal:
    """What tutorial handlers did, appended from any thread of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: List[Dict[str, Any]] = []
        self.changed = threading.Condition(self._lock)

    def add(self, **fields: Any) -> None:
        with self._lock:
            self.entries.append(fields)
            self.changed.notify_all()

    def snapshot(self) -> List[Dict[str, Any]]:
        with self._lock:
            return list(self.entries)

    def of(self, kind: str) -> List[Dict[str, Any]]:
        return [entry for entry in self.snapshot() if entry.get("kind") == kind]

    def wait_for(self, predicate, budget: float, what: str) -> bool:
        """Wait (bounded) until ``predicate(entries)``; whether it came true."""
        deadline = timeouts.Deadline(budget, what)
        with self._lock:
            while not predicate(list(self.entries)):
                remaining = deadline.remaining()
                if remaining <= 0:
                    return False
                self.changed.wait(remaining)
            return True


def _exc(exc: BaseException) -> Dict[str, Any]:
    from harness.core.observations import describe_exception

    return describe_exception(exc)


def tutorial_handler(module: Any, variant: str, journal: Journal) -> type:
    """The tutorial's ``MyTCPHandler`` of ``variant`` on ``module.BaseRequestHandler``."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown tutorial handler {variant!r}; known: {', '.join(VARIANTS)}")

    def begin(self) -> None:
        self.request.settimeout(timeouts.medium())  # the tutorial has no timeout; the kit bounds every wait
        self._ssc_start = clock.now()  # harness.core.clock: fine-grained and cross-process on every OS
        journal.add(kind="start", client=repr(self.client_address))

    def end(self, how: str, **extra: Any) -> None:
        journal.add(kind="end", how=how, start=self._ssc_start, end=clock.now(), pid=os.getpid(),
                    tid=threading.get_ident(), client=repr(self.client_address), **extra)

    def handle_once(self):
        # socketserver1.py
        begin(self)
        try:
            self.data = self.request.recv(1024).strip()
            journal.add(kind="wrote", data=self.data)  # print("{} wrote:".format(...)); print(self.data)
            self.request.send(self.data.upper())
        except BaseException as exc:
            end(self, "raised", exc=_exc(exc))
            raise
        end(self, "returned")

    def handle_loop(self):
        # socketserver2.py
        begin(self)
        try:
            while True:
                self.data = self.request.recv(1024).strip()
                journal.add(kind="wrote", data=self.data)
                if not self.data:
                    journal.add(kind="disconnected")  # print(self.client_address, "断开了")
                    break
                self.request.send(self.data.upper())
        except BaseException as exc:
            end(self, "raised", exc=_exc(exc))
            raise
        end(self, "returned")

    def handle_loop_catching(self):
        # socketserver3.py (also 4 and 5)
        begin(self)
        try:
            while True:
                try:
                    self.data = self.request.recv(1024).strip()
                    journal.add(kind="wrote", data=self.data)
                    if not self.data:
                        journal.add(kind="disconnected")
                        break
                    self.request.send(self.data.upper())
                except ConnectionResetError as e:
                    journal.add(kind="caught", exc=_exc(e))  # print('出现错误', e)
                    break
        except BaseException as exc:
            end(self, "raised", exc=_exc(exc))
            raise
        end(self, "returned")

    body = {"socketserver1": handle_once, "socketserver2": handle_loop,
            "socketserver3": handle_loop_catching}[variant]
    return type("MyTCPHandler", (module.BaseRequestHandler,), {
        "handle": body,
        "__module__": __name__,
        "__doc__": f"The tutorial's MyTCPHandler from {variant}.py.",
    })


def intervals(journal: Journal) -> List[Dict[str, Any]]:
    """Timeline rows (start, end, pid, tid) of the handlers that ended."""
    return [{"start": e["start"], "end": e["end"], "pid": e["pid"], "tid": e["tid"]} for e in journal.of("end")]


# =========================================================================== the client process


def _say(**fields: Any) -> None:
    sys.stdout.write(json.dumps(fields, sort_keys=True) + "\n")
    sys.stdout.flush()


def client_main(argv: Optional[List[str]] = None) -> int:
    """The tutorial's socketclient.py, in a process of its own (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(argv[0])
    watchdog = threading.Timer(float(spec.get("lifetime") or timeouts.long()), os._exit, (4,))
    watchdog.daemon = True
    watchdog.start()
    try:
        address = spec["address"]
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.settimeout(timeouts.short())
        client.connect(tuple(address))
        for msg in spec["messages"]:
            client.send(msg.encode("UTF-8"))
            data = client.recv(1024)  # 接收1024字节
            _say(event="recv", data=data.decode("latin-1"))  # print("recv from server: ", data)
    except Exception as exc:
        _say(event="error", exc_type=type(exc).__name__, error=str(exc))
        os._exit(2)
    _say(event="ready", pid=os.getpid())
    sys.stdin.readline()  # killed here by the parent (or released by closing stdin)
    os._exit(0)  # as abrupt as a kill: no close(), the kernel reaps the socket
    return 0  # pragma: no cover


if __name__ == "__main__":
    client_main()
