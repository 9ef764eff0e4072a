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
unchanged except that ``print`` became an event in a
:class:`~conformance.tools.recorder.Recorder` (what the handler received,
how it ended, its interval with pid and thread; :func:`handler_intervals`
turns the ends into intervals) and every ``recv`` has a timeout (``medium()``), so a check can
never hang on a handler.  ``ForkingTCPServer`` must run in a server
process, where handlers are named behaviours: there the tutorial's body
is the ``upper`` behaviour of :mod:`harness.serving.instrument` on
``BaseRequestHandler`` (``recv(1024).strip()``, ``break`` on empty data,
reply ``upper()``; it uses ``sendall`` where the tutorial uses ``send``,
the same for these few bytes).

The killed-client scene needs the tutorial's client as a process of its
own that dies without closing its socket: that program is
:mod:`conformance.children.tutorial_client`.
"""

from __future__ import annotations

import os
import threading
from typing import Any, List

from harness.core import clock, timeouts
from harness.core.observations import describe_exception
from harness.serving.instrument import Interval

from .recorder import Recorder

#: The tutorial's handler variants (see the module docstring).
VARIANTS = ("socketserver1", "socketserver2", "socketserver3")


def tutorial_handler(module: Any, variant: str, journal: Recorder) -> type:
    """The tutorial's ``MyTCPHandler`` of ``variant`` on ``module.BaseRequestHandler``."""
    if variant not in VARIANTS:
        raise KeyError(f"unknown tutorial handler {variant!r}; known: {', '.join(VARIANTS)}")

    def begin(self) -> None:
        self.request.settimeout(timeouts.medium())  # the tutorial has no timeout; the kit bounds every wait
        self._ssc_start = clock.now()  # harness.core.clock: fine-grained and cross-process on every OS
        journal.add("start", client=repr(self.client_address))

    def end(self, how: str, **extra: Any) -> None:
        journal.add("end", how=how, start=self._ssc_start, end=clock.now(), pid=os.getpid(),
                    tid=threading.get_ident(), client=repr(self.client_address), **extra)

    def handle_once(self):
        # socketserver1.py
        begin(self)
        try:
            self.data = self.request.recv(1024).strip()
            journal.add("wrote", data=self.data)  # print("{} wrote:".format(...)); print(self.data)
            self.request.send(self.data.upper())
        except BaseException as exc:
            end(self, "raised", exc=describe_exception(exc))
            raise
        end(self, "returned")

    def handle_loop(self):
        # socketserver2.py
        begin(self)
        try:
            while True:
                self.data = self.request.recv(1024).strip()
                journal.add("wrote", data=self.data)
                if not self.data:
                    journal.add("disconnected")  # print(self.client_address, "断开了")
                    break
                self.request.send(self.data.upper())
        except BaseException as exc:
            end(self, "raised", exc=describe_exception(exc))
            raise
        end(self, "returned")

    def handle_loop_catching(self):
        # socketserver3.py (also 4 and 5)
        begin(self)
        try:
            while True:
                try:
                    self.data = self.request.recv(1024).strip()
                    journal.add("wrote", data=self.data)
                    if not self.data:
                        journal.add("disconnected")
                        break
                    self.request.send(self.data.upper())
                except ConnectionResetError as e:
                    journal.add("caught", exc=describe_exception(e))  # print('出现错误', e)
                    break
        except BaseException as exc:
            end(self, "raised", exc=describe_exception(exc))
            raise
        end(self, "returned")

    body = {"socketserver1": handle_once, "socketserver2": handle_loop,
            "socketserver3": handle_loop_catching}[variant]
    return type("MyTCPHandler", (module.BaseRequestHandler,), {
        "handle": body,
        "__module__": __name__,
        "__doc__": f"The tutorial's MyTCPHandler from {variant}.py.",
    })


def handler_intervals(journal: Recorder) -> List[Interval]:
    """The ``handle`` intervals (start, end, pid, thread) of the handlers that ended."""
    return [Interval(str(index), "handle", e["start"], e["end"], e["pid"], e["tid"])
            for index, e in enumerate(journal.infos("end"))]


__all__ = ["VARIANTS", "handler_intervals", "tutorial_handler"]
