"""Servers a check builds step by step, in this process or in the subject agent.

Theory of operation
-------------------
The BIND, UDP and UNIX checks construct servers themselves: to see what the
constructor raises (and its errno), which hooks it calls, what the socket
looks like before and after ``server_bind()``, ``server_activate()`` and
``server_close()``, and to serve one only after such steps.  A check writes
that once, against :class:`Lab`:

* :meth:`Lab.build` constructs a server from a declarative spec -- server
  class, handler behaviour and options (the agent's ``BEHAVIOURS``, e.g.
  ``respond``), class attributes, recorded or replaced hooks
  (``record deny raise swallow``), address, ``bind_and_activate`` -- and
  returns a :class:`Construction`: the :class:`Built` server, or the
  constructor's exception as a :class:`Raised` (type, errno, whether it is
  the one a hook raised on purpose), the ``fileno()`` of the sockets the
  construction hooks saw, the socket descriptors it left open;
* :meth:`Built.invoke` runs one server method, bounded (``listen()``
  optionally recorded by a spy on ``server.socket``); :meth:`Built.facts`
  reads attributes, ``fileno()``, and the socket's name and options;
  :meth:`Built.serve` serves it for a block;
* handlers and hooks write to the lab's event log, read with
  :meth:`Lab.events` and :meth:`Lab.responses`.

With ``--impl`` the lab builds with the agent's builder in this process
(:func:`harness.subject.agent.build_server` with the host's environment,
:data:`harness.serving.instrument.HOST`, whose construction asks the
prerequisite probes on failure when ``checked``, or :data:`DIRECT`, which
constructs directly, when a check judges the constructor itself), and reads
facts, spies on ``listen`` and counts descriptors with the agent's functions;
calls and serving are this process's bounded ones
(:func:`harness.serving.servers.call_bounded`,
:func:`~harness.serving.servers.serve_in_thread`).  With ``--subject-python``
it sends the same spec to the agent (ops ``build invoke inspect serve_built
discard``, docs/subject-protocol.md), which runs the same functions there.
Values come back in one shape either way: tuples, and bytes addresses as
bytes.
"""

from __future__ import annotations

import binascii
import contextlib
import dataclasses
from typing import Any, Dict, Iterator, List, Optional, Sequence

from harness.core import addresses, prerequisites, timeouts
from harness.core.observations import summary
from harness.core.prerequisites import MissingClass, PreconditionFailed
from harness.core.timeouts import HarnessTimeout
from harness.serving import instrument, servers
from harness.serving.servers import call_bounded, serve_in_thread
from harness.subject import agent as vocabulary

#: Python 2 names of what Python 3.3+ calls OSError (https://peps.python.org/pep-3151/).
PEP3151_ALIASES = ("error", "IOError", "EnvironmentError", "OSError")


class _DirectEnvironment(instrument.HostEnvironment):
    """The host's environment, constructing the class directly (no prerequisite probe on
    failure): a check that is about the constructor judges its failure itself."""

    construct = vocabulary.Environment.construct


DIRECT = _DirectEnvironment()


class SubjectRaised(Exception):
    """An exception the implementation raised in the subject, raised again on the host."""


@dataclasses.dataclass
class Raised:
    """An exception of the implementation: its type name, errno, and (in this process) itself."""

    type: str
    errno: Optional[int] = None
    errno_name: Optional[str] = None
    text: str = ""
    injected: bool = False
    exception: Optional[BaseException] = None
    os_error: bool = False

    @classmethod
    def of(cls, described: Optional[Dict[str, Any]], injected: bool = False,
           exception: Optional[BaseException] = None) -> Optional[Raised]:
        if described is None:
            return None
        return cls(type=described.get("exc_type") or "?", errno=described.get("errno"),
                   errno_name=described.get("errno_name"), text=described.get("exc") or "",
                   injected=injected, exception=exception, os_error=bool(described.get("os_error")))

    @classmethod
    def local(cls, exc: BaseException, injected: bool = False) -> Raised:
        return cls.of(vocabulary.lab_error(exc), injected, exc)  # type: ignore[return-value]

    def described(self) -> Dict[str, Any]:
        """The shape :func:`harness.core.observations.summary` renders (``OSError [EADDRINUSE]``).
        Python 2's ``socket.error``, ``IOError`` and ``EnvironmentError`` are named ``OSError``,
        the name the same exceptions have from Python 3.3 on (PEP 3151), so that a summary
        describes the OS's answer, not the interpreter's spelling of it."""
        name = self.type
        if self.os_error and name in PEP3151_ALIASES:
            name = "OSError"
        return {"type": name, "errno": self.errno, "errno_name": self.errno_name}

    def summary(self) -> str:
        return summary(self.described())

    def is_a(self, *names: str) -> bool:
        return self.type in names

    def unless_os_error(self) -> Raised:
        """Itself when it is an OSError; any other exception is raised again (not an observation)."""
        if not self.os_error:
            self.raise_again()
        return self

    def raise_again(self) -> None:
        if self.exception is not None:
            raise self.exception
        raise SubjectRaised(f"{self.type}: {self.text}")


def from_wire(value: Any) -> Any:
    """Lists as tuples, ``{"bytes": text}`` as bytes, recursively (see ``agent.wire_address``)."""
    if isinstance(value, list):
        return tuple(from_wire(item) for item in value)
    if isinstance(value, dict):
        if set(value) == {"bytes"}:
            return value["bytes"].encode("utf-8", "surrogateescape")
        return {key: from_wire(item) for key, item in value.items()}
    return value


@dataclasses.dataclass
class Facts:
    """What ``inspect`` read: ``server_address``, ``server.fileno()``, attributes, and the socket's
    ``fileno()``, ``getsockname()`` and options (an error as ``{"error": ...}``)."""

    server_address: Any
    server_fileno: Any
    attrs: Dict[str, Any]
    socket: Optional[Dict[str, Any]]

    @classmethod
    def of(cls, raw: Dict[str, Any]) -> Facts:
        raw = from_wire(raw)
        return cls(raw["server_address"], raw["server_fileno"], dict(raw.get("attrs") or {}), raw.get("socket"))

    @property
    def fileno(self) -> Any:
        return None if self.socket is None else self.socket["fileno"]

    @property
    def sockname(self) -> Any:
        return None if self.socket is None else self.socket.get("getsockname")

    def sockopt(self, name: str) -> Any:
        return None if self.socket is None else self.socket["sockopts"].get(name)


@dataclasses.dataclass
class Invoked:
    value: Any = None
    error: Optional[Raised] = None
    listen_calls: Optional[List[tuple]] = None

    def result(self) -> Any:
        """The value; the implementation's exception raised again."""
        if self.error is not None:
            self.error.raise_again()
        return self.value


@dataclasses.dataclass
class Construction:
    server: Optional[Built]
    error: Optional[Raised]
    hook_sockets: List[Any]
    new_socket_fds: Optional[List[int]]

    def built(self) -> Built:
        """The server; the constructor's exception raised again (not an observation)."""
        if self.error is not None:
            self.error.raise_again()
        return self.server  # type: ignore[return-value]


class Built:
    """A server the lab built (see the module docstring)."""

    def __init__(self, lab: Lab, spec: Dict[str, Any], server: Any = None, key: Optional[str] = None):
        self.lab = lab
        self.spec = spec
        self.server = server  # in this process
        self.key = key  # in the agent
        self.closed = False

    @property
    def local_class(self) -> Optional[type]:
        """slow-teardown: the class of a server built in this process, else None (the agent's)."""
        return type(self.server) if self.server is not None else None

    def facts(self, attrs: Sequence[str] = (), sockopts: Sequence[str] = ()) -> Facts:
        if self.key is not None:
            return Facts.of(self.lab.request("inspect", server=self.key, attrs=list(attrs), sockopts=list(sockopts)))
        return Facts.of(vocabulary.server_facts(self.server, tuple(attrs), tuple(sockopts)))

    def invoke(self, method: str, *, args: Optional[str] = None, spy_listen: bool = False,
               budget: Optional[float] = None) -> Invoked:
        """``server.<method>(args)`` bounded by ``budget`` (``short()``): its value or exception;
        :class:`HarnessTimeout` when it did not return."""
        budget = timeouts.short() if budget is None else budget
        if method == "server_close":
            self.closed = True
        if method == "server_bind" and not self.spec.get("bind_and_activate", True):
            self._require_unbound()
        if self.key is not None:
            done = self.lab.request("invoke", budget=budget + timeouts.short(), server=self.key, method=method,
                                    args=args, spy_listen=spy_listen, bound=budget)
            if not done["returned"]:
                raise HarnessTimeout(f"server.{method}() in the subject", budget)
            calls = done.get("listen_calls")
            return Invoked(from_wire(done["value"]), Raised.of(done["error"]),
                           None if calls is None else [tuple(c) for c in calls])
        if method not in vocabulary.LAB_CALLS:
            raise ValueError(f"method {method!r} is not in the vocabulary")
        closed = servers.listener_closed(self.server) if method == "handle_request" else None  # coll-bind
        if closed is not None:
            raise closed
        arguments = vocabulary.lab_args(self.server, args)

        def call(server: Any) -> Invoked:
            try:
                return Invoked(call_bounded(getattr(server, method), *arguments, budget=budget,
                                            what=f"server.{method}()"))
            except (HarnessTimeout, PreconditionFailed):
                raise
            except Exception as exc:  # the implementation's: a result
                return Invoked(error=Raised.local(exc))

        if not spy_listen:
            return call(self.server)
        calls, invoked = vocabulary.call_spying_listen(self.server, call)
        invoked.listen_calls = [tuple(c) for c in calls]
        return invoked

    def _require_unbound(self) -> None:
        """coll-bind: a server built with ``bind_and_activate=False`` whose socket is bound
        already cannot be bound by the check (the OS refuses a second bind, EINVAL): the check
        cannot judge a late ``server_bind()``/``server_activate()``, so it ends
        PRECONDITION_FAILED naming BIND-002, whose clause is the unbound construction
        (bind_ignores_bind_and_activate: BIND-003/005/006 ended ERROR on that EINVAL)."""
        name = self.facts().sockname
        bound = (isinstance(name, tuple) and len(name) >= 2 and name[1] != 0) or (
            isinstance(name, (str, bytes)) and len(name) > 0)
        if bound:
            raise PreconditionFailed("construction_unbound",
                                     f"{self.spec['server_class']}(..., bind_and_activate=False) left its socket "
                                     f"bound to {name!r} before server_bind()")

    def close(self) -> Any:
        """``server_close()``, bounded; its exception propagates."""
        return self.invoke("server_close").result()

    @contextlib.contextmanager
    def serve(self, *, unlink_unix_path: bool = True) -> Iterator[Any]:
        """Serve it for the block; yields its address.  The teardown closes it."""
        self.closed = True
        if self.key is None:
            with serve_in_thread(self.server, unlink_unix_path=unlink_unix_path) as served:
                yield served.address
            return
        ready = self.lab.request("serve_built", budget=timeouts.long() + timeouts.short(), server=self.key)
        budget = 2 * timeouts.short() + timeouts.medium() + timeouts.short()
        try:
            yield from_wire(ready["address"])
        except BaseException:
            with contextlib.suppress(Exception):
                self.lab.request("discard", budget=budget, server=self.key, bound=timeouts.short())
            self.key = None
            raise
        teardown = self.lab.request("discard", budget=budget, server=self.key, bound=timeouts.short())
        self.key = None
        if teardown.get("hung"):
            raise HarnessTimeout(f"server teardown in the subject: {'; '.join(teardown['hung'])} did not finish",
                                 budget)


class Lab:
    """Builds servers for one check (see the module docstring); use :func:`lab`."""

    def __init__(self, impl: Any, directory: str):
        self.impl = impl
        self.subject: Any = getattr(impl, "subject", None)
        self.directory = directory
        self.log = instrument.EventLog.create(directory)
        self.built: List[Built] = []

    def request(self, op: str, budget: Optional[float] = None, **fields: Any) -> Any:
        from harness.subject.client import AgentRefused

        try:
            return self.subject.request(op, budget=budget, **fields)
        except AgentRefused as exc:
            if exc.code == "timeout":
                raise HarnessTimeout(f"{op} in the subject ({exc})", fields.get("bound") or timeouts.short()) from None
            if exc.code == "missing_class":
                raise MissingClass(str(fields.get("spec", {}).get("server_class")), str(exc)) from None
            if exc.code == "unsupported":
                raise addresses.UnsupportedFeature(f"{op} in the subject: {exc}", "af_unix") from None
            raise

    def build(self, server_class: str, *, behaviour: str = "noop", handler_base: Optional[str] = None,
              options: Optional[Dict[str, Any]] = None, attrs: Optional[Dict[str, Any]] = None,
              hooks: Optional[Dict[str, str]] = None, family: Optional[str] = None,
              address: Optional[Dict[str, Any]] = None, bind_and_activate: bool = True,
              checked: bool = False, count_fds: bool = False) -> Construction:
        """Construct ``server_class`` (see the module docstring).  ``checked``: a failure is first
        asked whether the plain class constructs at all (else PRECONDITION_FAILED naming
        ``constructs:<class>``, :func:`harness.serving.servers.build_server`)."""
        servers.require_for(server_class)
        spec = {"server_class": server_class, "behaviour": behaviour, "handler_base": handler_base,
                "options": dict(options or {}), "attrs": dict(attrs or {}), "hooks": dict(hooks or {}),
                "family": family, "address": address, "bind_and_activate": bind_and_activate,
                "checked": checked, "count_fds": count_fds, "log": self.log.path, "directory": self.directory,
                "poll_interval": timeouts.poll()}
        if self.subject is not None:
            done = self.request("build", budget=timeouts.long(), spec=spec, bound=timeouts.long())
            error = Raised.of(done["error"], bool(done.get("injected")))
            if error is not None and checked and done.get("plain_error") is not None:
                plain = Raised.of(done["plain_error"]) or error
                raise PreconditionFailed(f"constructs:{server_class}",
                                         f"{server_class}(...) raised {error.type}: {error.text}; so does "
                                         f"{server_class}(a fresh address, BaseRequestHandler): {plain.type}")
            built = Built(self, spec, key=done["server"]) if done["server"] is not None else None
            if built is not None:
                self.built.append(built)
            return Construction(built, error, list(from_wire(done["hook_sockets"])), done.get("new_socket_fds"))
        return self._build_here(spec)

    def _build_here(self, spec: Dict[str, Any]) -> Construction:
        module = self.impl.module
        class_name = spec["server_class"]
        env = instrument.HOST if spec["checked"] else DIRECT
        env.server_class(module, class_name)  # MissingClass / UnsupportedFeature as everywhere
        wanted = spec.get("address") or {}
        if "like" in wanted:
            address = wanted["like"].server.server_address
            spec = dict(spec, address={"path": address} if isinstance(address, str) else
                        {"host": address[0], "port": address[1]})
        log = self.log
        log.seen_sockets = []  # type: ignore[attr-defined]
        del vocabulary.INJECTED[:]
        before = vocabulary.socket_fds() if spec["count_fds"] else None
        server = error = None
        try:
            server = vocabulary.build_server(module, spec, log, env)
        except (HarnessTimeout, PreconditionFailed, addresses.UnsupportedFeature):
            raise
        except Exception as exc:  # the constructor's: a result
            error = Raised.local(exc, injected=any(exc is injected for injected in vocabulary.INJECTED))
        del vocabulary.INJECTED[:]
        new_fds = None
        if before is not None and error is not None:
            after = vocabulary.socket_fds()
            new_fds = sorted(set(after) - set(before)) if after is not None else None
        sockets = [vocabulary.fileno_of(sock) for sock in log.seen_sockets if sock is not None]  # type: ignore[attr-defined]
        log.seen_sockets = None  # type: ignore[attr-defined]
        built = Built(self, spec, server=server) if server is not None else None
        if built is not None:
            self.built.append(built)
        return Construction(built, error, [from_wire(s) for s in sockets], new_fds)

    def like(self, built: Built) -> Dict[str, Any]:
        """An ``address`` spec: the address ``built`` has now (PRECONDITION_FAILED naming BIND-004
        when that is port 0 of a server that forgot its port, see
        :func:`harness.core.prerequisites.unreachable`)."""
        if built.server is not None:
            broken = prerequisites.unreachable(getattr(built.server, "server_address", None))
            if broken is not None:
                raise broken
        return {"like": built.key if built.key is not None else built}

    def events(self, **filters: Any) -> List[Dict[str, Any]]:
        return instrument.select(self.log.read(), **filters)

    def responses(self) -> List[Dict[str, Any]]:
        """The ``respond`` events, in order, each with ``data`` (its first 200 bytes) as bytes."""
        found = []
        for event in self.events(kind="respond"):
            event = dict(event)
            event["data"] = binascii.unhexlify(event.get("head") or "")
            event["client_address"] = from_wire(event.get("client_address"))
            event["peername"] = from_wire(event.get("peername"))
            found.append(event)
        return found

    def close_all(self, failed: bool) -> None:
        for built in self.built:
            if built.closed or (built.server is None and built.key is None):
                continue
            built.closed = True
            if built.key is not None:
                self.request("discard", budget=timeouts.short() * 2, server=built.key, bound=timeouts.short())
                continue
            try:
                call_bounded(built.server.server_close, budget=timeouts.short(), what="server.server_close()")
            except BaseException:
                if not failed:
                    raise


@contextlib.contextmanager
def lab(impl: Any) -> Iterator[Lab]:
    """A :class:`Lab` with a private directory (socket paths, the event log); every server it
    built and did not close is closed on exit (bounded)."""
    with addresses.private_dir() as directory:
        made = Lab(impl, directory)
        try:
            yield made
        except BaseException:
            with contextlib.suppress(BaseException):
                made.close_all(failed=True)
            raise
        made.close_all(failed=False)


__all__ = ["Built", "Construction", "Facts", "Invoked", "Lab", "Raised", "SubjectRaised", "from_wire", "lab"]
