"""Servers built from a declarative spec, with probe handlers and observing hooks, wherever the subject lives.

Theory of operation
-------------------
The HANDLER, PIPELINE and DISCONNECT checks observe a handler from inside
(what ``rfile.readline()`` returned, what ``wfile.write()`` returned, the
socket's timeout) and the request pipeline around it (which hook ran, with
which arguments, in which order).  They describe the server they need once,
as a spec in the vocabulary of the subject agent (``harness/subject/agent.py``,
block "HANDLER, PIPELINE, DISCONNECT"; ``docs/subject-protocol.md``): a
*probe* handler whose ``setup``/``handle``/``finish`` run named steps, and
hooks whose calls are recorded with their arguments *described* (bytes as
hex, sockets with their addresses, objects by ``ref``, their ``id()`` in the
subject).  Everything the probe and the hooks see goes to an
:class:`~harness.serving.instrument.EventLog`, which the check reads.

:func:`spec_server` builds (and, with ``serve=True``, serves) that server
and yields a :class:`SpecServer`, whose calls (``invoke``: ``handle_request()``,
``get_request()``, ``process_request(request, client_address)`` with
arguments that are refs; ``ref_call``; ``join``) answer with described
values.  Where the implementation lives decides only who runs the agent's
ops:

* ``--subject-python``: the agent process, through the subject session;
* in-process: :class:`LocalAgent`, the same agent module imported into this
  process and given the implementation's module, its replies passed through
  JSON as the agent's are.  A served spec is served here by the kit's
  :func:`~harness.serving.servers.serve_in_thread` (through
  :func:`serve_observed`: readiness, bounded teardown, leak check), unless the
  check watches the loop end (``loop_may_end``: the agent's serving code).
  The agent serves its own and reports descriptors left open at teardown,
  which fail the check as the kit's leak check does.

So the check body is the same both ways, and equivalence
(``tests/subject/test_subject_equivalence.py``) compares like with like.
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
import itertools
import json
import sys
import types
from typing import Any, Dict, Iterator, List, Optional

from harness.core import addresses, prerequisites, timeouts
from harness.core.prerequisites import PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.serving import servers
from harness.serving.instrument import EventLog, exception_fields
from harness.subject import agent as vocabulary
from harness.subject.client import AgentRefused


class LocalAgent:
    """The agent's ops, run in this process on the implementation's own module."""

    def __init__(self, module: Any):
        vocabulary.BUDGETS.update({"short": timeouts.short(), "medium": timeouts.medium(),
                                   "long": timeouts.long(), "poll": timeouts.poll()})
        from harness.core.prerequisites import PreconditionFailed

        self.agent = vocabulary.Agent(None)
        self.agent.subject = types.SimpleNamespace(module=module)
        # a refusal by the hang guard inside the implementation's call is the harness's verdict:
        # it reaches the check as itself (PRECONDITION_FAILED naming the owner), not as an
        # exception the implementation raised while being built or called
        self.agent.passthrough = (PreconditionFailed, timeouts.HarnessTimeout)  # type: ignore[assignment]
        self.ids = itertools.count(1)

    def request(self, op: str, budget: Optional[float] = None, **fields: Any) -> Any:
        reply = self.agent.dispatch(dict(fields, id=next(self.ids), op=op))
        reply = json.loads(json.dumps(reply, sort_keys=True, default=repr))  # what the agent would send
        if not reply["ok"]:
            error = reply["error"]
            raise AgentRefused(str(error.get("code")), str(error.get("message")), error)
        return reply["result"]


def backend_for(impl: Any) -> Any:
    """Who runs the agent's ops for ``impl`` (an implementation, or a module): its
    subject session, or a :class:`LocalAgent`."""
    subject = getattr(impl, "subject", None)
    if subject is not None:
        return subject
    return LocalAgent(impl if isinstance(impl, types.ModuleType) else impl.module)


@dataclasses.dataclass
class Call:
    """The answer of a bounded call: ``returned``, a described ``value`` or ``error``."""

    returned: bool
    value: Any
    error: Optional[Dict[str, Any]]
    duration: float

    @property
    def exc_type(self) -> Optional[str]:
        return self.error["exception"]["exc_type"] if self.error else None

    @property
    def exc_message(self) -> Optional[str]:
        return self.error["exception"].get("message") if self.error else None


@dataclasses.dataclass
class SpecServer:
    backend: Any
    key: str
    address: Any
    family: str
    log: EventLog
    ref: Optional[int]
    directory: str = ""
    snapshot: Optional[List[Dict[str, Any]]] = None
    #: the loop's exception when it died while serving (``loop_may_die``): exception fields
    serve_error: Optional[Dict[str, Any]] = None
    loop_thread: Any = None
    #: slow-teardown: the class of a server built in this process, else None (a subject's)
    local_class: Optional[type] = None

    def loop_ended(self) -> bool:
        """Whether the served loop has ended (died) already."""
        if self.loop_thread is not None:
            return not self.loop_thread.is_alive()
        return any(e.get("kind") == "server" and e.get("event") == "loop_end" for e in self.events())

    def invoke(self, method: str, *args: Any, budget: Optional[float] = None,
               until: Optional[Dict[str, Any]] = None) -> Call:
        """``server.method(*args)`` in the subject, bounded; HarnessTimeout when it did not return.
        serve-dead: with ``until`` (``{"hook": name, "calls": n}``) the wait also ends once the
        log holds ``n`` calls of that hook, an observation the check decides on: then the
        :class:`Call` is not ``returned`` (and the call goes on, abandoned)."""
        budget = timeouts.short() if budget is None else budget
        fields: Dict[str, Any] = {"until": until} if until else {}
        answer = self.backend.request("probe_invoke", budget=budget + timeouts.short(), server=self.key, method=method,
                                      args=list(args), limit=budget, **fields)
        if not answer["returned"] and answer.get("decided"):
            return Call(False, None, None, answer["duration"])
        if not answer["returned"]:
            raise HarnessTimeout(f"server.{method}() in the subject", budget)
        if answer["error"] and method in servers.LOOP_CALLS:  # slow-serve: wherever the subject lives
            prerequisites.loop_died(f"{self.exc_of(answer['error'])}", f"{method}()")
        return Call(True, answer["value"], answer["error"], answer["duration"])

    @staticmethod
    def exc_of(error: Dict[str, Any]) -> str:
        """slow-serve: ``Type: message`` of a described exception."""
        exception = error.get("exception") or {}
        return f"{exception.get('exc_type')}: {exception.get('message')}"

    def handle_request(self, budget: Optional[float] = None, until: Optional[Dict[str, Any]] = None) -> Call:
        return self.invoke("handle_request", budget=budget, until=until)

    def ref_call(self, ref: Any, method: str) -> Any:
        """``method()`` of the object the subject described with ``ref``; its described value."""
        ref = ref["ref"] if isinstance(ref, dict) else ref
        answer = self.backend.request("ref_call", server=self.key, ref=ref, method=method)
        return answer["value"] if answer["error"] is None else answer["error"]

    def join(self, budget: float) -> Dict[str, Any]:
        """Wait (bounded) for the served loop to end: ``{ended, serve_error}``."""
        return self.backend.request("join", budget=budget + timeouts.short(), server=self.key, limit=budget)

    def events(self) -> List[Dict[str, Any]]:
        return self.log.read() if self.snapshot is None else list(self.snapshot)


class ConstructionError(RuntimeError):
    """The implementation raised while the server was being built (its own verdict, not the harness')."""


def _refused(exc: AgentRefused, class_name: str) -> BaseException:
    from harness.core.prerequisites import MissingClass

    if exc.code == "missing_class":
        return MissingClass(class_name, str(exc))
    if exc.code == "unsupported":
        return addresses.UnsupportedFeature(f"{class_name}: {exc}", "af_unix")
    if exc.code == "serve_failed":
        return servers.ServeError(f"{class_name}: {exc}")
    if exc.code == "exception":
        raised = f"{class_name}: {exc.details.get('type')}: {exc.details.get('message')}"
        # prec-bind: a class the probes found not to construct at all is its owner's, not this check's
        from harness.core.prerequisites import unconstructible

        return unconstructible(class_name, raised) or ConstructionError(raised)
    if exc.code == "timeout":
        return HarnessTimeout(f"serve_forever of {class_name} to reach its selector ({exc})", timeouts.long())
    return exc


@contextlib.contextmanager
def spec_server(impl: Any, class_name: str = "TCPServer", *, probe: Optional[Dict[str, Any]] = None,
                hooks: Optional[Dict[str, str]] = None, handler_base: Optional[str] = None,
                attrs: Optional[Dict[str, Any]] = None, serve: bool = False,
                poll_interval: Optional[float] = None, loop_may_end: bool = False,
                loop_may_die: bool = False) -> Iterator[SpecServer]:
    """Build ``class_name`` of ``impl`` from the spec (served too with ``serve``);
    the teardown (shutdown when served, server_close) is the agent's, bounded.
    ``loop_may_end``: the check watches the loop end (:meth:`SpecServer.join`), so
    the agent's serving code runs it in this process too.  ``loop_may_die``: a
    ``serve_forever`` that raised while serving is recorded in ``serve_error`` for
    the check to judge, not raised at the teardown."""
    backend = backend_for(impl)
    family = addresses.family_for_class(class_name)
    addresses.require(family)
    with addresses.private_dir() as directory:
        log = EventLog.create(directory)
        spec = {"server_class": class_name, "family": family, "attrs": dict(attrs or {}),
                "handler_base": handler_base, "probe": probe or {}, "hooks": dict(hooks or {}),
                "poll_interval": timeouts.poll() if poll_interval is None else poll_interval,
                "log": log.path, "directory": directory}
        # in this process the kit serves the agent-built server itself (serve_in_thread: its
        # readiness, bounded teardown and leak check); the agent serves its own
        local = isinstance(backend, LocalAgent) and not loop_may_end
        try:
            ready = backend.request("serve" if serve and not local else "probe_build",
                                    budget=timeouts.long() + timeouts.short(), spec=spec)
        except AgentRefused as exc:
            raise _refused(exc, class_name) from None
        address = ready["address"]
        ref = ready.get("ref")
        if ref is None:  # served: the ref is in the ready event
            ref = next((e.get("ref") for e in log.read() if e.get("kind") == "server"), None)
        server = SpecServer(backend, ready["server"], tuple(address) if isinstance(address, list) else address,
                            family, log, ref, directory=directory)
        budget = 2 * timeouts.short() + timeouts.medium() + timeouts.short()
        server_cls = server.local_class = _local_class(backend, server.key)
        try:
            if serve and local:
                instance = backend.agent.servers.get(server.key).server
                yield from _serve_here(server, instance, spec["poll_interval"], loop_may_die)
            else:
                yield server
        except BaseException:
            try:  # the block's own error wins
                backend.request("stop_server", budget=budget, server=server.key)
            except Exception:
                pass
            raise
        finally:
            server.snapshot = log.read()
        teardown = backend.request("stop_server", budget=budget, server=server.key)
        server.snapshot = log.read()
        if teardown.get("hung"):
            raise HarnessTimeout(f"server teardown: {'; '.join(teardown['hung'])} did not finish", budget)
        if teardown.get("serve_error") and server.serve_error is None and serve and not loop_may_end:
            if not loop_may_die:
                raise RuntimeError(f"serve_forever of {class_name} died: {teardown['serve_error'].get('exc')}")
            server.serve_error = teardown["serve_error"]
        if teardown.get("leaked_fds") and server.serve_error is None:  # a dead loop leaves its request open
            # a defect the probes found (a request that never ends, a leaking server_close())
            # is its owner's, not each check's
            owned = servers.leak_owner({"fds": teardown["leaked_fds"]}, ", ".join(teardown["leaked_fds"]),
                                       server_cls)
            if owned is not None:
                raise owned
            raise servers.LeakError(f"{class_name} leaked after teardown: fds: {', '.join(teardown['leaked_fds'])}",
                                    {"fds": teardown["leaked_fds"]})


def _local_class(backend: Any, key: Any) -> Optional[type]:
    """The class of a server the agent built in this process, else None (a subject's)."""
    if not isinstance(backend, LocalAgent):
        return None
    try:
        return type(backend.agent.servers.get(key).server)
    except Exception:  # an agent's RequestError: not a server of this process
        return None


def _serve_here(server: SpecServer, instance: Any, poll_interval: float, loop_may_die: bool) -> Iterator[SpecServer]:
    """Serve the agent-built ``instance`` in this process with the kit's :func:`serve_in_thread`."""
    died: Dict[str, Any] = {}
    with serve_observed(instance, died, poll_interval) as served:
        if served is None:  # as serve_in_thread: a loop that never ran is not the check's observation
            raise servers.ServeError(f"serve_forever died before its loop was ready: "
                                     f"{died['serve_forever_died']['exc']}")
        server.loop_thread = served.thread
        yield server
    if died:
        if not loop_may_die:
            raise RuntimeError(f"serve_forever died while serving: {died['serve_forever_died']['exc']}")
        server.serve_error = died["serve_forever_died"]


@contextlib.contextmanager
def serve_observed(server: Any, died: Dict[str, Any], poll_interval: Optional[float] = None) -> Iterator[Any]:
    """:func:`harness.serving.servers.serve_in_thread`, except that ``serve_forever``
    dying is recorded in ``died`` for the check to judge instead of raised:
    a server that stops serving is a FAIL of the check, not an ERROR.

    If it died before its loop was ready (a request already waiting killed
    it on the first iteration), the block runs with ``None`` for the served
    server.
    """
    context = servers.serve_in_thread(server, poll_interval)
    try:
        served = context.__enter__()
    except (HarnessTimeout, servers.ServeError, PreconditionFailed):
        raise
    except Exception as exc:  # serve_forever's own exception, re-raised after teardown
        died["serve_forever_died"] = exception_fields(exc)
        died["when"] = "before its loop was ready"
        yield None
        return
    try:
        yield served
    except BaseException:
        if not context.__exit__(*sys.exc_info()):
            raise
        return
    try:
        context.__exit__(None, None, None)
    except Exception as exc:
        if served.serve_error is not exc:
            raise
        died["serve_forever_died"] = exception_fields(exc)
        died["when"] = "while serving"


def run_datagram_handler(impl: Any, probe: Dict[str, Any], data: bytes, client_address: Any,
                         handler_base: str = "DatagramRequestHandler") -> Dict[str, Any]:
    """Instantiate a probe handler directly on the datagram request ``(data, a fresh
    UDP socket)`` with ``server=None``; ``{socket_name, error, events}``."""
    backend = backend_for(impl)
    with addresses.private_dir() as directory:
        log = EventLog.create(directory)
        spec = {"handler_base": handler_base, "probe": probe, "log": log.path}
        budget = timeouts.short()
        try:
            answer = backend.request("run_handler", budget=budget + timeouts.short(), spec=spec,
                                     data=binascii.hexlify(data).decode("ascii"), client=list(client_address),
                                     limit=budget)
        except AgentRefused as exc:
            raise _refused(exc, handler_base) from None
        answer["events"] = log.read()
    if not answer["returned"]:
        raise HarnessTimeout(f"{handler_base}(request, client_address, None) in the subject", budget)
    return answer


# --------------------------------------------------------------------------- reading described values and events


def as_bytes(value: Any) -> Optional[bytes]:
    """Bytes the subject described (``{"hex": ...}``); None stays None."""
    if isinstance(value, dict) and "hex" in value:
        return binascii.unhexlify(value["hex"])
    if isinstance(value, str):
        return value.encode("latin-1")
    return value


def as_address(value: Any) -> Any:
    """A described address as the host writes one: ``(host, port)`` or a path."""
    if isinstance(value, list):
        return tuple(as_address(item) for item in value)
    if isinstance(value, dict) and "hex" in value:
        return binascii.unhexlify(value["hex"]).decode("utf-8", "surrogateescape")
    return value


def steps(events: List[Dict[str, Any]], step: Optional[str] = None, at: Optional[str] = None,
          request: Optional[int] = None) -> List[Dict[str, Any]]:
    """The probe's ``step`` events (of one step name, method, request number)."""
    return [e for e in events if e.get("kind") == "step" and (step is None or e.get("step") == step)
            and (at is None or e.get("at") == at) and (request is None or e.get("request") == request)]


def step_values(events: List[Dict[str, Any]], step: str, **match: Any) -> List[Any]:
    return [e.get("value") for e in steps(events, step, **match)]


def fact(events: List[Dict[str, Any]], name: str, request: Optional[int] = None) -> Any:
    """The value of the first ``fact`` step (or ``fact`` event) named ``name``."""
    for event in events:
        if request is not None and event.get("request") not in (None, request):
            continue
        if event.get("kind") == "step" and event.get("step") == "fact" and event.get("arg") == name:
            return event.get("value")
        if event.get("kind") == "fact" and event.get("fact") == name:
            return event.get("value")
    return None


def hook_calls(events: List[Dict[str, Any]], hook: str) -> List[Dict[str, Any]]:
    return [e for e in events if e.get("kind") == "hook" and e.get("hook") == hook]


def order(events: List[Dict[str, Any]], *hooks: str, handler: str = "handler") -> List[str]:
    """Hook calls (among ``hooks``) and handler entries (``handler``), in the order they happened."""
    names = []
    for event in events:
        if event.get("kind") == "hook" and event.get("hook") in hooks:
            names.append(event["hook"])
        elif event.get("kind") == "call" and event.get("at") == "handle":
            names.append(handler)
    return names


def count(events: List[Dict[str, Any]], name: str, handler: str = "handler") -> int:
    return order(events, name, handler=handler).count(name)


__all__ = ["Call", "ConstructionError", "LocalAgent", "SpecServer", "as_address", "as_bytes", "backend_for", "count", "fact",
           "hook_calls", "order", "run_datagram_handler", "serve_observed", "spec_server", "step_values", "steps"]
