"""The host's side of the subject protocol: one agent process, bounded requests.

Theory of operation
-------------------
:class:`SubjectAgent` starts ``EXE harness/subject/agent.py`` through the one
supervisor (:mod:`harness.processes.supervisor`: its own process group, JSON
lines on stdout read by a daemon thread, stderr kept as a tail, ``stop`` on
stdin, then interrupt, group kill and reap).  It waits (bounded by
``long()``: interpreter start-up) for ``hello`` and compares the protocol
version; a different version is :class:`ProtocolMismatch` and the agent is
stopped.

:meth:`SubjectAgent.request` writes one request line and waits for the
reply carrying the same ``id``, bounded by the caller's budget (default
``medium()``).  Three ways it can go wrong, each with its own exception and
never a hang:

* the agent exits or closes its stdout (killed, crashed): :class:`AgentDied`
  with the exit status and the stderr tail -- the plugin grades it ERROR;
* no reply within the budget: :class:`~harness.core.timeouts.HarnessTimeout`
  (TIMEOUT), and the agent is stopped, since a hung agent cannot be trusted
  with the next request;
* the agent answers ``ok: false``: :class:`AgentRefused` with the protocol's
  error ``code`` (``unknown_op``, ``load_failed``, ``timeout`` ...).

Every message in both directions is appended to :attr:`SubjectAgent.transcript`
so that a test can validate a whole session against
``docs/subject-protocol.schema.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from typing import Any, Dict, List, Optional, Sequence

from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout

#: The protocol version this kit speaks (docs/subject-protocol.md).
PROTOCOL = 1
AGENT_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "agent.py")


class AgentError(RuntimeError):
    """The subject agent could not answer."""


class AgentDied(AgentError):
    """The agent process exited or closed its side of the protocol."""


class ProtocolMismatch(AgentError):
    """The agent speaks another protocol version, or no protocol at all."""


class AgentRefused(AgentError):
    """The agent answered a request with ``ok: false``."""

    def __init__(self, code: str, message: str, details: Optional[Dict[str, Any]] = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.details = details or {}


def interpreter_words(python: str) -> List[str]:
    """The command words of ``--subject-python``: an existing path as it is (spaces and
    all), else shell-like words, so ``"py -2.7"`` or ``"'/opt/my python/bin/python' -OO"``
    (a path with a space, then flags) both work (``shlex``, POSIX quoting)."""
    if os.path.exists(python):
        return [python]
    return shlex.split(python)


def agent_command(python: str) -> List[str]:
    """How to start the agent under ``python`` (see :func:`interpreter_words`)."""
    # its lifetime bounds an orphan that no one asks to stop: an hour at the default budgets
    lifetime = ["--lifetime", f"{timeouts.long() * 60:.0f}"]
    return [*interpreter_words(python), AGENT_PATH, *lifetime]


class SubjectAgent:
    """One running agent (see the module docstring)."""

    def __init__(self, child: Any, python: str, hello: Dict[str, Any]):
        self.child = child
        self.python = python
        self.hello = hello
        self.transcript: List[Dict[str, Any]] = [hello]
        self._next_id = 0
        self.broken: Optional[str] = None

    # ------------------------------------------------------------------ start

    @classmethod
    def start(cls, python: str, *, command: Optional[Sequence[str]] = None,
              hello_budget: Optional[float] = None, env: Optional[Dict[str, str]] = None) -> SubjectAgent:
        """Start an agent under ``python`` (``command`` replaces the whole command line:
        tests start fake agents) and wait for its ``hello``."""
        from harness.processes import supervisor

        argv = list(command) if command is not None else agent_command(python)
        extra = {"PYTHONIOENCODING": "utf-8"}
        extra.update(env or {})
        child = supervisor.start(argv, what=f"subject agent ({python})", env=supervisor.child_env(extra),
                                 protocol=True, stdin=True)
        budget = timeouts.long() if hello_budget is None else hello_budget
        deadline = timeouts.Deadline(budget, f"subject agent ({python}) to say hello")
        try:
            message = child.next_message(deadline)
            if message is None:
                raise HarnessTimeout(f"subject agent ({python}) to say hello; stderr tail:\n{child.stderr_tail()}",
                                     budget)
            if message.get("event") == "eof":
                code = child.wait(timeouts.short())
                child.drain(timeouts.short())
                raise AgentDied(f"subject agent ({python}) exited (status {code}) before its hello; "
                                f"stderr tail:\n{child.stderr_tail()}")
            if message.get("event") != "hello":
                raise ProtocolMismatch(f"subject agent ({python}) began with {message!r}, not a hello")
            if message.get("protocol") != PROTOCOL:
                raise ProtocolMismatch(
                    f"subject agent ({python}) speaks subject protocol {message.get('protocol')!r}; "
                    f"this kit speaks {PROTOCOL} (docs/subject-protocol.md)")
        except BaseException:
            child.stop(ask_budget=timeouts.short(), interrupt=False)
            raise
        return cls(child, python, message)

    # ------------------------------------------------------------------ requests

    def request(self, op: str, budget: Optional[float] = None, **fields: Any) -> Any:
        """Send ``op`` and return the reply's ``result`` (see the module docstring)."""
        if self.broken:
            raise AgentDied(f"subject agent ({self.python}) is not usable: {self.broken}")
        self._next_id += 1
        ident = self._next_id
        message = dict(fields, id=ident, op=op)
        self.transcript.append(message)
        line = (json.dumps(message, sort_keys=True) + "\n").encode("utf-8")
        stdin = self.child.popen.stdin
        try:
            stdin.write(line)
            stdin.flush()
        except (OSError, ValueError) as exc:
            self._died(f"writing {op}: {exc!r}")
        budget = timeouts.medium() if budget is None else budget
        deadline = timeouts.Deadline(budget, f"subject agent ({self.python}) to answer {op}")
        for _ in range(10_000):
            reply = self.child.next_message(deadline)
            if reply is None:
                self.broken = f"no answer to {op} within {budget:.1f}s"
                self.stop()
                raise HarnessTimeout(f"subject agent ({self.python}) to answer {op} (it was stopped)", budget)
            if reply.get("event") == "eof":
                self._died(f"waiting for the answer to {op}")
            self.transcript.append(reply)
            if reply.get("event") != "reply" or reply.get("id") != ident:
                continue  # a late answer to a request that timed out, or an unsolicited message
            if reply.get("ok"):
                return reply.get("result")
            error = reply.get("error") or {}
            raise AgentRefused(str(error.get("code")), str(error.get("message")), error)
        raise ProtocolMismatch(f"subject agent ({self.python}) sent too many messages without answering {op}")

    def _died(self, doing: str):
        self.broken = f"it died while {doing}"
        code = self.child.wait(timeouts.short())
        self.child.drain(timeouts.short())
        tail = self.child.stderr_tail()
        self.stop()
        raise AgentDied(f"subject agent ({self.python}) died while {doing} (exit status {code}); "
                        f"stderr tail:\n{tail}")

    # ------------------------------------------------------------------ stop

    def alive(self) -> bool:
        return self.broken is None and self.child.running()

    def stop(self) -> Dict[str, Any]:
        """Ask (``stop``), then interrupt, kill the group and reap, each bounded."""
        report = self.child.stop(ask_budget=timeouts.medium(), interrupt_budget=timeouts.short())
        with contextlib.suppress(Exception):
            goodbye = self.child.await_message(("goodbye",), timeouts.short(), "the agent's goodbye")
            if goodbye is not None:
                self.transcript.append(goodbye)
        return report


__all__ = ["AGENT_PATH", "PROTOCOL", "AgentDied", "AgentError", "AgentRefused", "ProtocolMismatch",
           "SubjectAgent", "agent_command"]
