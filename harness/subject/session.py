"""The subject of a run: an interpreter, an implementation, and the agent running it.

Theory of operation
-------------------
``--subject-python EXE`` makes the implementation under test live in
``EXE`` while the suite runs on the host.  A :class:`SubjectSession` owns
that arrangement for one pytest process:

* it keeps one :class:`~harness.subject.client.SubjectAgent` alive, loaded
  with the implementation and the kit's budgets (already multiplied), and
  starts a fresh one when the last one died or hung, so one broken check
  does not take every later check with it;
* :meth:`implementation` is what the ``impl`` fixture gives the checks: a
  :class:`SubjectImplementation` with the facts a record carries (the
  subject's module name, file, version and API level), the mirror of the
  subject's module (:mod:`harness.subject.mirror`) as ``module``, and this
  session as ``subject``;
* :meth:`fingerprint` is the subject's fingerprint (interpreter, version,
  OS, capabilities), marked ``subject.via = "agent"``;
* :meth:`serve` is the spec-built server: the same spec
  :func:`harness.processes.server_process.serve_in_process` takes (server class,
  behaviour, family, attributes, handler base, options), served by the
  agent, its handler events written to an
  :class:`~harness.serving.instrument.EventLog` in a private directory of the host,
  so a check reads the same events either way.

Anything a check would do with the implementation in the host's own process
(make an instance, call a method, start a host child with ``impl.spec``)
raises :class:`~harness.subject.mirror.NeedsInProcess`; the plugin ends the
check UNSUPPORTED with that reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any, Dict, FrozenSet, Iterator, Optional, Tuple

from harness.core import timeouts
from harness.core.timeouts import HarnessTimeout
from harness.subject.client import PROTOCOL, AgentRefused, SubjectAgent
from harness.subject.mirror import NeedsInProcess, build_module

#: How ``--impl`` maps onto what the agent loads (other adapters patch the host: not here).
IMPL_SPECS = {"stdlib": "stdlib", "reference": "reference_impl"}


class SubjectError(RuntimeError):
    """The subject cannot be used as asked (an adapter the agent cannot load ...)."""


def agent_impl_spec(spec: str) -> str:
    """What the agent is asked to load for ``--impl spec``."""
    if spec in IMPL_SPECS:
        return IMPL_SPECS[spec]
    if spec.endswith(".py") or os.sep in spec:
        return os.path.abspath(spec)
    if "." not in spec and spec.isidentifier() and spec in ("gevent", "eventlet", "eventlet_green", "future"):
        raise SubjectError(f"--impl {spec} patches the host interpreter; through --subject-python only "
                           "stdlib, reference, a dotted module name or a .py file can be tested")
    return spec


@dataclasses.dataclass
class SubjectImplementation:
    """``LoadedImplementation``'s facts for an implementation living in the subject."""

    name: str
    kind: str
    module: Any  # the mirror module
    module_name: str
    file: Optional[str]
    version: str
    api_version: Tuple[int, int]
    subject: SubjectSession
    requested: str = "stdlib"
    extra: dict = dataclasses.field(default_factory=dict)
    extensions: FrozenSet[str] = frozenset()
    adapter: Any = None

    @property
    def spec(self) -> str:
        """What a host child would load: refused, since it would test the host's copy."""
        raise NeedsInProcess(f"a host process running {self.requested!r} (impl.spec)")

    def describe(self) -> dict:
        return {"name": self.name, "spec": self.requested, "kind": self.kind, "module": self.module_name,
                "file": self.file, "version": self.version,
                "api_version": f"{self.api_version[0]}.{self.api_version[1]}", "extra": dict(self.extra),
                "extensions": sorted(self.extensions)}

    def api_at_least(self, major: int, minor: int) -> bool:
        return self.api_version >= (major, minor)


@dataclasses.dataclass
class AgentServer:
    """A server the agent serves (the shape of ``server_process.ProcessServer``)."""

    address: Any
    family: str
    log: Any
    pid: int
    server: str
    directory: str = ""
    ready: Dict[str, Any] = dataclasses.field(default_factory=dict)
    teardown: Dict[str, Any] = dataclasses.field(default_factory=dict)


def budgets() -> Dict[str, float]:
    return {"short": timeouts.short(), "medium": timeouts.medium(), "long": timeouts.long(),
            "poll": timeouts.poll()}


class SubjectSession:
    """See the module docstring."""

    def __init__(self, python: str, impl_spec: str = "stdlib", env: Optional[Dict[str, str]] = None):
        self.python = python
        self.requested = impl_spec
        self.load_spec = agent_impl_spec(impl_spec)
        self.env = dict(env or {})  # ext: the agent's environment (SSCONFORM_SIMULATE_ABSENT=poll)
        self._agent: Optional[SubjectAgent] = None
        self.started = 0
        self.described: Dict[str, Any] = {}
        self._fingerprint: Optional[Dict[str, Any]] = None

    # ------------------------------------------------------------------ the agent

    def agent(self) -> SubjectAgent:
        if self._agent is not None and self._agent.alive():
            return self._agent
        if self._agent is not None:
            self._agent.stop()
        agent = SubjectAgent.start(self.python, env=self.env or None)
        self.started += 1
        try:
            self.described = agent.request("load", budget=timeouts.long(), impl=self.load_spec, budgets=budgets())
        except BaseException:
            agent.stop()
            raise
        self._agent = agent
        return agent

    def request(self, op: str, budget: Optional[float] = None, **fields: Any) -> Any:
        return self.agent().request(op, budget=budget, **fields)

    def close(self) -> None:
        if self._agent is not None:
            self._agent.stop()
            self._agent = None

    # ------------------------------------------------------------------ facts

    def implementation(self) -> SubjectImplementation:
        snap = self.request("snapshot", budget=timeouts.long())
        described = self.described
        api = tuple(int(part) for part in described["api_version"].split("."))
        name = "stdlib" if self.requested == "stdlib" else (
            "reference" if self.requested == "reference" else described["name"])
        return SubjectImplementation(
            name=name, kind=described["kind"], module=build_module(snap), module_name=described["module"],
            file=described.get("file"), version=described["version"], api_version=(api[0], api[1]),
            subject=self, requested=self.requested, extensions=self._extensions(described))

    @staticmethod
    def _extensions(described: Dict[str, Any]) -> FrozenSet[str]:
        """ext: the names the agent read (agent.declared_extensions), checked against the
        host's vocabulary as for a module loaded here (an unknown name stops the run)."""
        from harness.core.extensions import UnknownExtension, validate

        try:
            return validate(described.get("extensions") or (), f"{described.get('module')}.__socketserver_extensions__")
        except UnknownExtension as exc:
            raise SubjectError(str(exc)) from None

    def fingerprint(self) -> Dict[str, Any]:
        """The subject's fingerprint, in the record's shape, marked as the agent's (read once)."""
        if self._fingerprint is None:
            self._fingerprint = self._read_fingerprint()
        return dict(self._fingerprint)

    def _read_fingerprint(self) -> Dict[str, Any]:
        import platform

        from harness.results.fingerprint import ci_metadata

        data = dict(self.request("fingerprint", budget=timeouts.long()))
        executable = data.pop("executable", self.python)
        data["ci"] = ci_metadata()
        hello = self.agent().hello
        data["subject"] = {"via": "agent", "protocol": PROTOCOL, "python": self.python, "executable": executable,
                           "clock": hello.get("clock"),
                           "host_python": f"{platform.python_implementation()} {platform.python_version()}"}
        return data

    # ------------------------------------------------------------------ serving

    # others: what the subject can serve is the subject's fingerprint's to say.  The
    # host's own capabilities (addresses.require, servers.require_for) are checked
    # too, as the clients run here; a subject without os.fork has no Forking*
    # classes, and its refusal (missing_class) read as a broken API precondition.
    def require(self, server_class: str, family: str) -> None:
        """:class:`~harness.core.addresses.UnsupportedFeature` naming the capability
        the subject lacks for ``server_class`` in ``family``."""
        from harness.core import addresses

        caps = self.fingerprint().get("capabilities") or {}
        for capability, needed in (("fork", server_class.startswith("Forking")), ("af_unix", family == "unix"),
                                   ("ipv6", family == "inet6")):
            if needed and caps.get(capability) is False:
                raise addresses.UnsupportedFeature(
                    f"{server_class} in the subject: it lacks {capability} (its fingerprint)", capability)

    @contextlib.contextmanager
    def serve(self, server_class: str, behaviour: str = "echo", *, family: Optional[str] = None,
              attrs: Optional[Dict[str, Any]] = None, handler_base: Optional[str] = None,
              options: Optional[Dict[str, Any]] = None, poll_interval: Optional[float] = None,
              hooks: Optional[Dict[str, str]] = None) -> Iterator[AgentServer]:
        """Serve ``server_class`` in the agent (see the module docstring); the teardown
        (shutdown, join, server_close) is the agent's, bounded on both sides."""
        from harness.core import addresses
        from harness.serving import instrument, servers

        family = family or addresses.family_for_class(server_class)
        addresses.require(family)
        servers.require_for(server_class)
        self.require(server_class, family)  # others: the subject's capabilities, too
        with addresses.private_dir() as directory:
            log = instrument.EventLog.create(directory)
            spec = instrument.server_spec(server_class, behaviour, family=family, directory=directory,
                                          attrs=attrs, handler_base=handler_base, options=options, hooks=hooks,
                                          poll_interval=poll_interval, log=log.path)
            try:
                ready = self.request("serve", budget=timeouts.long() + timeouts.short(), spec=spec)
            except AgentRefused as exc:
                if exc.code == "missing_class":
                    from harness.core.prerequisites import MissingClass

                    raise MissingClass(server_class, str(exc)) from None
                if exc.code == "unsupported":
                    raise addresses.UnsupportedFeature(f"{server_class} in the subject: {exc}", "af_unix") from None
                if exc.code == "serve_failed":
                    raise servers.ServeError(f"{server_class} in the subject: {exc}") from None
                if exc.code == "timeout":
                    raise HarnessTimeout(f"serve_forever of {server_class} in the subject to reach its "
                                         f"selector ({exc})", timeouts.long()) from None
                raise
            address = ready["address"]
            proc = AgentServer(address=tuple(address) if isinstance(address, list) else address, family=family,
                               log=log, pid=int(ready["pid"]), server=ready["server"], directory=directory,
                               ready=ready)
            budget = 2 * timeouts.short() + timeouts.medium() + timeouts.short()
            try:
                yield proc
            except BaseException:
                # the block's own error wins; a failed teardown is only recorded
                try:
                    proc.teardown = self.request("stop_server", budget=budget, server=proc.server)
                except Exception as exc:
                    proc.teardown = {"stop_error": repr(exc)}
                raise
            proc.teardown = self.request("stop_server", budget=budget, server=proc.server)
            if proc.teardown.get("hung"):
                raise HarnessTimeout(f"server teardown in the subject: {'; '.join(proc.teardown['hung'])} "
                                     "did not finish", budget)

    # ------------------------------------------------------------------ ext
    @contextlib.contextmanager
    def without_poll(self) -> Iterator[SubjectImplementation]:
        """The same implementation in a fresh agent of the same interpreter whose ``selectors``
        lacks ``PollSelector`` (and ``select`` lacks ``poll``) before the implementation is
        imported, as :mod:`conformance.children.no_poll` does in a host child (EXT-004);
        the agent is stopped on exit."""
        from harness.core.capabilities import ENV_VAR

        session = SubjectSession(self.python, self.requested, env={**self.env, ENV_VAR: "poll"})
        try:
            yield session.implementation()
        finally:
            session.close()

    # ------------------------------------------------------------------ SERVE, SHUTDOWN, THREADING, FORKING (port-c)

    def lab_command(self, spec: Dict[str, Any]) -> list:
        """The command line of a forking lab (``conformance.tools.forking_lab``) run by the
        subject's interpreter: ``EXE agent.py --lab SPEC``, the agent's copy of
        :mod:`conformance.children.forking_lab`, loading what this session's agent loads."""
        import json

        from harness.subject.client import AGENT_PATH, interpreter_words

        spec = dict(spec, impl=self.load_spec, budgets=budgets())
        return [*interpreter_words(self.python), AGENT_PATH, "--lab", json.dumps(spec)]


def where_it_runs(impl: Any, capability: str, here: bool) -> bool:
    """Whether the interpreter the implementation runs in has ``capability``
    (others): the subject's fingerprint says for a subject (``impl.subject``); in
    the check's own process, ``here`` (the check's probe, e.g. ``hasattr(os, "fork")``)."""
    subject = getattr(impl, "subject", None)
    if subject is None:
        return here
    return bool((subject.fingerprint().get("capabilities") or {}).get(capability, here))


def open_subject(python: str, impl_spec: str) -> Tuple[SubjectSession, SubjectImplementation]:
    """Start the subject for a run: the session and its implementation.  Anything that
    stops it (no such interpreter, a dead or hung agent, another protocol version, an
    implementation the agent cannot load) is one ``ImplementationError`` saying so."""
    from harness.implementations import ImplementationError
    from harness.subject.client import AgentError

    session = None
    try:
        session = SubjectSession(python, impl_spec)
        impl = session.implementation()
        fingerprint = session.fingerprint()  # read now: a failure is this error, not a crash later
        from harness.core import capabilities  # others: the subject's capabilities bound the run's

        capabilities.limit_to_subject(fingerprint.get("capabilities") or {})
        return session, impl
    except (AgentError, HarnessTimeout, SubjectError, OSError) as exc:
        if session is not None:
            session.close()
        raise ImplementationError(f"--subject-python {python} --impl {impl_spec}: {exc}") from None


__all__ = ["AgentServer", "open_subject", "where_it_runs", "SubjectError", "SubjectImplementation", "SubjectSession", "agent_impl_spec"]
