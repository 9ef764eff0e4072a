"""Serve any server kind with an instrumented handler, wherever it must run.

Theory of operation
-------------------
The CONCURRENCY, DISCONNECT and TUTORIAL checks run the same proof against every
server kind (``TCPServer`` ... ``ForkingUnixDatagramServer``).  A
non-forking server is served in a thread of the check's process
(:func:`harness.serving.servers.serve_in_thread`); a forking server always in a
process of its own (:func:`harness.processes.server_process.serve_in_process`),
because its children would inherit the check's client sockets.  Either
way the handler is an :func:`harness.serving.instrument.instrumented` one writing
to an :class:`~harness.serving.instrument.EventLog` file, so the check reads the
same events (``phase`` edges with pid and thread, ``hold`` events) from
both.  :func:`serve_kind` hides the difference and yields a
:class:`Served`.

:func:`serve_observed` (:mod:`harness.serving.spec_server`'s) serves an in-process server whose ``serve_forever``
may die, and records that death for the check to judge.  The clients that
prove how many handlers run at once are :mod:`conformance.tools.held_clients`;
the queries over the event log are :mod:`conformance.tools.event_log`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Dict, Iterator, Optional

from harness.core import addresses
from harness.processes.server_process import serve_in_process
from harness.serving import instrument
from harness.serving.instrument import EventLog
from harness.serving.servers import serve_in_thread, server_class
from harness.serving.spec_server import (
    serve_observed,  # one copy, in harness (spec_server serves with it)
)

#: Every server kind, by family and flavour: the parameter grid of the checks.
STREAM_KINDS = {
    ("inet", "sync"): "TCPServer",
    ("inet", "threading"): "ThreadingTCPServer",
    ("inet", "forking"): "ForkingTCPServer",
    ("unix", "sync"): "UnixStreamServer",
    ("unix", "threading"): "ThreadingUnixStreamServer",
    ("unix", "forking"): "ForkingUnixStreamServer",
}
DGRAM_KINDS = {
    ("inet", "sync"): "UDPServer",
    ("inet", "threading"): "ThreadingUDPServer",
    ("inet", "forking"): "ForkingUDPServer",
    ("unix", "sync"): "UnixDatagramServer",
    ("unix", "threading"): "ThreadingUnixDatagramServer",
    ("unix", "forking"): "ForkingUnixDatagramServer",
}


@dataclasses.dataclass
class Served:
    class_name: str
    address: Any
    family: str
    log: EventLog
    where: str  # "thread" | "process" | "agent"
    server_pid: Optional[int] = None


def is_forking_name(class_name: str) -> bool:
    return class_name.startswith("Forking")


def require_kind(module: Any, class_name: str) -> None:
    """End the check UNSUPPORTED when this variant's server kind cannot run
    here (a capability is absent, also when simulated) or the implementation
    has neither the class nor the mix-in and base to compose it."""
    from conformance.api import UNSUPPORTED_PREFIX, unsupported
    from harness.core.capabilities import caps

    needed = []
    if "Unix" in class_name:
        needed.append("af_unix")
    if is_forking_name(class_name):
        needed.append("fork")
    missing = [name for name in needed if not caps().has(name)]
    if missing:
        import pytest

        pytest.skip(UNSUPPORTED_PREFIX + "capability absent: " + ", ".join(missing))
    try:
        server_class(module, class_name)
    except (AttributeError, addresses.UnsupportedFeature) as exc:
        unsupported(str(exc))


@contextlib.contextmanager
def serve_kind(impl: Any, class_name: str, behaviour: str, *, handler_base: Optional[str] = None,
               options: Optional[Dict[str, Any]] = None, hooks: Optional[Dict[str, str]] = None,
               died: Optional[Dict[str, Any]] = None, **attrs: Any) -> Iterator[Served]:
    """Serve ``class_name`` of the implementation with an instrumented
    ``behaviour`` handler (and ``hooks``: hook name -> action of the agent's
    vocabulary): in the subject agent, in this process, or in a server
    process when it forks.  All three build it from the same spec with the
    agent's builder (:func:`harness.serving.instrument.build_server`).

    With ``died`` (a dict; in this process and in the agent), a
    ``serve_forever`` that dies is recorded there for the check to judge, as
    :func:`serve_observed` does, instead of raised."""
    family = addresses.family_for_class(class_name)
    subject = getattr(impl, "subject", None)
    if subject is not None:  # the implementation lives in another interpreter (harness.subject)
        with subject.serve(class_name, behaviour, family=family, attrs=attrs, handler_base=handler_base,
                           options=options, hooks=hooks) as proc:
            yield Served(class_name, proc.address, family, proc.log, "agent", proc.pid)
        if died is not None and proc.teardown.get("serve_error"):
            died["serve_forever_died"] = proc.teardown["serve_error"]
            died["when"] = "while serving"
        return
    if is_forking_name(class_name):
        with serve_in_process(impl.spec, class_name, behaviour, family=family, attrs=attrs,
                              handler_base=handler_base, options=options, hooks=hooks) as proc:
            yield Served(class_name, proc.address, family, proc.log, "process", proc.pid)
        return
    with addresses.private_dir() as directory:
        log = EventLog.create(directory)
        spec = instrument.server_spec(class_name, behaviour, family=family, directory=directory, attrs=attrs,
                                      handler_base=handler_base, options=options, hooks=hooks)
        server = instrument.build_server(impl.module, spec, log)
        serving = serve_in_thread(server) if died is None else serve_observed(server, died)
        with serving as served:
            yield Served(class_name, None if served is None else served.address, family, log, "thread")


__all__ = [
    "DGRAM_KINDS",
    "STREAM_KINDS",
    "Served",
    "is_forking_name",
    "require_kind",
    "serve_kind",
    "serve_observed",
]
