"""Which check owns a behaviour the harness itself relies on, and how to say it is broken.

Theory of operation
-------------------
To run a check, the harness relies on a few behaviours of the implementation
under test: ``serve_forever()`` must reach its selector (the loop is
running), and ``shutdown()`` must return and stop the loop, so that the
server can be torn down.  Each of these behaviours is *owned* by one check,
which judges it (:data:`OWNERS`).  When the behaviour is broken, only its
owner may FAIL or TIMEOUT for it.  Any other check that cannot proceed
without it ends **PRECONDITION_FAILED**, naming the owner (as wpt's
PRECONDITION_FAILED does), and it ends so at once: :class:`Latch` remembers
for the rest of the process, keyed by the implementation's function, that
the behaviour is broken, so later checks do not each wait out the budget
again.  Server processes (:mod:`harness.processes.server_process`) and xdist workers
share what was found through the path named by :data:`ENV_VAR`, which the
pytest plugin creates for its run (children inherit the environment).  It is
an :class:`harness.serving.instrument.EventLog`: every process writes its findings to
a file of its own, so no two writers share a file (``O_APPEND`` is not atomic
on Windows, see that module), and a reader merges them all; :func:`discard`
removes them at the end of the run.  Keys are the functions' module,
qualified name, file and first line, which are the same in every process that
loaded the implementation.

Beyond the fixed behaviours, three kinds of prerequisite decide by
themselves, the same in every process and in any order of checks:

* A server class whose construction fails (``constructs:<class>``, owned by
  the check of :data:`CONSTRUCTORS` that constructs it directly): when
  :func:`harness.serving.servers.build_server` fails to construct, it constructs the
  plain class on a fresh address (a cheap probe), and only if that fails too
  is it PRECONDITION_FAILED; otherwise the check's own exception stands.
* A function of the implementation that does not return, or a family
  prerequisite (:data:`FAMILY_NEEDS`: ``Threading*`` classes need a thread per
  request, datagram classes need ``(data, socket)`` requests; an idle
  ``serve_forever()`` must not die), is found once per process by
  :mod:`harness.serving.prerequisite_probes` before the first check, each probe
  bounded by ``short()``.  A hung function is latched by its code (file,
  first line, name); from then on :data:`GUARD` makes every call of that
  code, in any thread of a check, raise :class:`PreconditionFailed` at once
  instead of hanging (a trace function, installed only while such a finding
  exists).  A check whose call was ended so is graded PRECONDITION_FAILED
  naming the owner even if it then failed otherwise; the owner itself ends
  TIMEOUT, whether it runs first or last.
* A broken family prerequisite makes ``build_server`` refuse that family at
  once (:func:`family_needs`); its owner constructs the same way and FAILs.
* A served request that never ends (no EOF after the handler returned), a
  datagram request whose end closes the shared socket, or a loop that returns
  after one request is found by serving two requests (:data:`SERVING_NEEDS`):
  every later loop of a class with the same request-ending functions is
  refused at once (:func:`serving_needs`), instead of each read to EOF
  waiting out its budget.
* A server class the probes could not construct on a fresh address
  (``constructs:<class>``) also decides the grading of a check that constructs
  it itself: an exception out of that class's ``__init__``, or a verdict raised
  while handling one, is PRECONDITION_FAILED naming the owner
  (:func:`judged_broken_prerequisite`).

A child process (server process, forking lab, one-shot scenario child) runs
with :data:`GUARD` active too and reports its first ended call at once
(:func:`report_to_parent`); the parent's supervisor then ends the check's main
thread as for a call ended in another thread of its own
(:meth:`Guard.fired_elsewhere`), except while it stops and reaps a child.

The pytest plugin grades :class:`PreconditionFailed` as PRECONDITION_FAILED,
except in the owning check itself, where it stays what it would have been
(TIMEOUT for a bound that ran out, FAIL otherwise).  A PRECONDITION_FAILED
does not fail a run on its own when its owner ended FAIL, TIMEOUT or ERROR in
the same run (the owner already does); it does when the owner passed or was
not run, so a selection (``--check``) without the owner cannot hide the
defect (:func:`harness.core.outcomes.is_bad`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

#: names the file shared by the processes of one run (see the module docstring)
ENV_VAR = "SSCONFORM_LATCH_FILE"

#: how a finding of a behaviour may be keyed (see owners.toml's header); at most one per entry
_KEYINGS = ("serving_need", "family_need", "error_path", "handler_argument", "kind_serves")


def _registry() -> Dict[str, Dict[str, Any]]:
    """The entries of ``owners.toml`` (package data, next to this module), in file order,
    checked: an owner that is a check ID, words for the behaviour, at most one keying."""
    import re
    from importlib import resources

    from harness.core import tomlfile

    text = resources.files(__package__ or "harness.core").joinpath("owners.toml").read_text(encoding="utf-8")
    entries = tomlfile.loads(text)
    for name, entry in entries.items():
        problems = []
        if not re.fullmatch(r"[A-Z]+-\d{3}", str(entry.get("owner", ""))):
            problems.append(f"owner {entry.get('owner')!r} is not a check ID")
        if not str(entry.get("behaviour", "")).strip():
            problems.append("no behaviour")
        unknown = set(entry) - {"owner", "behaviour", "why", "run_wide"} - set(_KEYINGS)
        if unknown:
            problems.append(f"unknown fields {sorted(unknown)}")
        if sum(key in entry for key in _KEYINGS) > 1:
            problems.append("more than one keying")
        if problems:
            raise ValueError(f"harness/core/owners.toml: [{name}]: {'; '.join(problems)}")
    return entries


_ENTRIES = _registry()

#: behaviour -> (the check that owns it, what it is, in words): ``owners.toml``
OWNERS: Dict[str, Tuple[str, str]] = {
    name: (entry["owner"], " ".join(entry["behaviour"].split())) for name, entry in _ENTRIES.items()}

#: behaviour -> the functions (resolved on the implementation's class) a finding is keyed by:
#: see :func:`serving_needs`
SERVING_NEEDS: Dict[str, Tuple[str, ...]] = {
    name: tuple(entry["serving_need"]) for name, entry in _ENTRIES.items() if "serving_need" in entry}

#: behaviour -> (the class every server of the family has in its MRO, the function of it the
#: finding is keyed by): see :func:`family_needs`
FAMILY_NEEDS: Dict[str, Tuple[str, str]] = {
    name: (entry["family_need"][0], entry["family_need"][1]) for name, entry in _ENTRIES.items()
    if "family_need" in entry}

#: what a handler's Exception reaches (found by the probes' error path): behaviour -> the functions
#: of that path a finding is keyed by (resolved on the implementation's class, so ThreadingMixIn's
#: own path is apart from BaseServer's).  Not a refusal of loops, unlike :data:`SERVING_NEEDS`: only
#: a check whose verdict reads what handle_error() was given consults it (:func:`error_reporting`)
ERROR_REPORTING: Dict[str, Tuple[str, ...]] = {
    name: tuple(entry["error_path"]) for name, entry in _ENTRIES.items() if "error_path" in entry}

#: what a handler is given (found by the probes' served requests): behaviour -> the functions a
#: finding is keyed by, as :data:`ERROR_REPORTING`; consulted by :func:`handler_arguments`
HANDLER_ARGUMENTS: Dict[str, Tuple[str, ...]] = {
    name: tuple(entry["handler_argument"]) for name, entry in _ENTRIES.items() if "handler_argument" in entry}

#: a Unix server kind that does not serve where its inet sibling does (the probes serve one request
#: through each plain class): behaviour -> the class; every later loop of a class with it in its
#: MRO is refused (:func:`kind_serves`)
KIND_SERVES: Dict[str, str] = {
    name: entry["kind_serves"] for name, entry in _ENTRIES.items() if "kind_serves" in entry}

#: findings that no check can be judged without: while one is found, any other failure of a check
#: is graded PRECONDITION_FAILED naming its owner (:func:`judged_broken_prerequisite`), in this order
RUN_WIDE: Tuple[str, ...] = tuple(name for name, entry in _ENTRIES.items() if entry.get("run_wide"))


#: The methods the documentation gives every server (BaseServer's interface), which API-020
#: checks on TCPServer: https://docs.python.org/3/library/socketserver.html#socketserver.BaseServer
DOCUMENTED_SERVER_METHODS: Tuple[str, ...] = (
    "fileno", "handle_request", "serve_forever", "service_actions", "shutdown", "server_close",
    "finish_request", "get_request", "handle_error", "handle_timeout", "process_request",
    "server_activate", "server_bind", "verify_request", "shutdown_request", "close_request",
)


def error_key(cls: type, behaviour: str) -> Tuple[str, ...]:
    """coll-handler: the key of an :data:`ERROR_REPORTING` or :data:`HANDLER_ARGUMENTS` finding for
    a server class ``cls``."""
    klass = implementation_class(cls)
    names = ERROR_REPORTING.get(behaviour) or HANDLER_ARGUMENTS[behaviour]
    return tuple(f"{name}={_describe(getattr(klass, name, None))}" for name in names)


def handler_arguments(cls: type, *behaviours: str) -> Optional[PreconditionFailed]:
    """coll-handler: the probes' finding that server class ``cls`` gives its handlers another
    server (``handler_gets_server``) or another client_address than the peer's
    (``client_address_is_peer``), of ``behaviours`` (default both), else None."""
    for behaviour in behaviours or tuple(HANDLER_ARGUMENTS):
        found = LATCH.get(behaviour, error_key(cls, behaviour))
        if found is not None:
            return PreconditionFailed(behaviour, found)
    return None


def error_reporting(cls: type) -> Optional[PreconditionFailed]:
    """coll-handler: the broken error path of server class ``cls`` (its handler's Exception does
    not reach handle_error(), or reaches it without sys.exc_info()), else None."""
    for behaviour in ERROR_REPORTING:
        found = LATCH.get(behaviour, error_key(cls, behaviour))
        if found is not None:
            return PreconditionFailed(behaviour, found)
    return None


def premise(behaviour: str, holds: bool, detail: str) -> None:
    """coll-handler: raise :class:`PreconditionFailed` for ``behaviour`` (a premise another check
    owns) unless it ``holds`` in the check's own observation (``detail``: what was seen)."""
    if not holds:
        raise PreconditionFailed(behaviour, detail)


# slow-serve: a loop that died under a run-wide finding ends its check at once
def loop_died(error: Any, where: str) -> None:
    """A serving loop of a check (``serve_forever()``, ``handle_request()``; ``where`` names
    it) ended with ``error`` (an exception, or its description) while a :data:`RUN_WIDE`
    finding is latched: the loop cannot serve the check any more, and whatever the check then
    waits for (a reply, EOF, a handler's start) would only run out its budget, after which
    its failure is graded PRECONDITION_FAILED naming that finding's owner anyway
    (:func:`judged_broken_prerequisite`).  So the check's main thread is ended now, with that
    outcome (disconnect_error_kills_server: DISCONNECT-005/006/009, HANDLER-003/011,
    UNIX-010 each waited 5-10 s for a reply from a loop that had died).  A loop ended by
    :class:`PreconditionFailed` or :class:`~harness.core.timeouts.HarnessTimeout` is the
    harness's own doing, and a ``BaseException`` that is no ``Exception`` (``SystemExit``,
    ``KeyboardInterrupt``) is meant to end a loop: neither ends the check."""
    if isinstance(error, BaseException):
        from harness.core.timeouts import HarnessTimeout

        if not isinstance(error, Exception) or isinstance(error, (PreconditionFailed, HarnessTimeout)):
            return
        seen = f"{type(error).__name__}: {error}"
    else:  # described in a subject: ``Type: message``
        seen = str(error)
        if seen.partition(":")[0] in ("SystemExit", "KeyboardInterrupt", "GeneratorExit", "PreconditionFailed",
                                      "HarnessTimeout"):
            return
    for behaviour in RUN_WIDE:
        found = LATCH.first_of(behaviour)
        if found is not None:
            GUARD.end_check(PreconditionFailed(behaviour, f"{found}; this check's {where} then ended with {seen}"))
            return


def handler_key(handler: Any) -> Optional[Tuple[str, ...]]:
    """The key of a "handler_lifecycle" finding (prec-conc) for a handler class: the
    ``__init__`` of the class named BaseRequestHandler in its MRO; None without one."""
    for klass in getattr(handler, "__mro__", ()):
        if klass.__name__ == "BaseRequestHandler":
            return (f"BaseRequestHandler.__init__={_describe(vars(klass).get('__init__'))}",)
    return None


def handler_needs(handler: Any) -> Optional[PreconditionFailed]:
    """The broken handler lifecycle a handler class relies on (found by
    :mod:`harness.serving.prerequisite_probes` in this run), else None."""
    key = handler_key(handler)
    found = LATCH.get("handler_lifecycle", key) if key is not None else None
    return PreconditionFailed("handler_lifecycle", found) if found is not None else None


def needs_overlap(behaviour: str, holding: int, wanted: int) -> None:
    """prec-bind: raise :class:`PreconditionFailed` for ``behaviour`` when only ``holding`` of the
    ``wanted`` held handlers ran at once: a check that needs them together to judge its own
    clause cannot (the owner of running them together judges that)."""
    if holding < wanted:
        raise PreconditionFailed(behaviour, f"{holding} of {wanted} held handlers ran at once")


def kind_serves(cls: type) -> Optional[PreconditionFailed]:
    """The broken :data:`KIND_SERVES` behaviour a server class ``cls`` needs (a base
    of its MRO found by the probes not to serve a request), else None."""
    names = {klass.__name__ for klass in getattr(cls, "__mro__", ())}
    for behaviour, name in KIND_SERVES.items():
        if name in names:
            found = LATCH.get(behaviour, (f"class={name}",))
            if found is not None:
                return PreconditionFailed(behaviour, found)
    return None


#: server class (the base of a Threading*/Forking* class) -> the check whose
#: body constructs it directly, so it owns "the class constructs on a fresh address"
CONSTRUCTORS: Dict[str, str] = {
    "TCPServer": "BIND-001",
    "UDPServer": "BIND-001",
    "UnixStreamServer": "UNIX-001",
    "UnixDatagramServer": "UNIX-002",
}


def owner_of(behaviour: str) -> Tuple[str, str]:
    """(owning check, words) of ``behaviour``, also of ``constructs:<class>``;
    KeyError for an unknown one."""
    if behaviour in OWNERS:
        return OWNERS[behaviour]
    kind, _, name = behaviour.partition(":")
    if kind != "constructs":
        raise KeyError(behaviour)
    base = name
    for prefix in ("Threading", "Forking"):
        if base.startswith(prefix) and base[len(prefix):] in CONSTRUCTORS:
            base = base[len(prefix):]
    return CONSTRUCTORS[base], f"{name}(address, handler) constructs on a fresh address"


class PreconditionFailed(Exception):
    """A check cannot proceed because a behaviour another check owns is broken."""

    def __init__(self, behaviour: str, detail: str, timed_out: bool = False):
        owner, words = owner_of(behaviour)
        super().__init__(f"precondition {owner} ({words}) is broken: {detail}")
        self.behaviour = behaviour
        self.prerequisite = owner
        self.detail = detail
        self.timed_out = timed_out  # in the owning check this is a TIMEOUT, else a FAIL


class MissingClass(PreconditionFailed, AttributeError):
    """A server class the check needs is missing (and cannot be composed from
    its mix-in and base), although the platform supports it.  Also an
    ``AttributeError``, so code that treats a missing optional class as
    UNSUPPORTED keeps doing so."""

    def __init__(self, name: str, detail: str):
        behaviour = "forking_names" if name.startswith("Forking") else (
            "unix_names" if name.startswith("Unix") else "core_names")
        PreconditionFailed.__init__(self, behaviour, detail)


def _describe(function: Any) -> str:
    code = getattr(function, "__code__", None)
    where = f"{code.co_filename}:{code.co_firstlineno}" if code is not None else ""
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}@{where}"


def function_key(obj: Any, *names: str) -> Tuple[str, ...]:
    """The implementation's functions behind ``obj.<name>`` (class attributes), for
    :class:`Latch`: a hung ``shutdown()`` is keyed by ``shutdown`` *and*
    ``serve_forever``, since either may be the broken one.  ``obj`` may also be the
    server class itself (a check that serves in another process has no instance)."""
    cls = obj if isinstance(obj, type) else type(obj)
    return tuple(f"{name}={_describe(getattr(cls, name, None))}" for name in names)


def constructor_failure(tb: Any) -> Optional[PreconditionFailed]:
    """The broken construction an exception came out of, else None: its traceback
    ``tb`` passes through ``__init__`` of a server whose base class (:data:`CONSTRUCTORS`)
    :mod:`harness.serving.prerequisite_probes` found not to construct on a fresh address
    (``constructs:<base>``).  A check that constructs a server itself then ends
    PRECONDITION_FAILED naming the owner, as one that builds it through the harness does."""
    for _ in range(200):  # bounded: a traceback is finite, but be sure
        if tb is None:
            return None
        frame = tb.tb_frame
        obj = frame.f_locals.get("self") if frame.f_code.co_name == "__init__" else None
        for klass in getattr(type(obj), "__mro__", ()) if obj is not None else ():
            if klass.__name__ in CONSTRUCTORS:
                found = LATCH.get("constructs:" + klass.__name__, ())
                if found is not None:
                    return PreconditionFailed("constructs:" + klass.__name__, found)
                break
        tb = tb.tb_next
    return None


def unconstructible(class_name: str, detail: str) -> Optional[PreconditionFailed]:
    """prec-bind: a :class:`PreconditionFailed` naming the owner of ``constructs:<class_name>``
    when the probes found its base class (:data:`CONSTRUCTORS`) not to construct on a fresh
    address, else None: a construction that failed through a builder other than
    :func:`harness.serving.servers.build_server` (``detail``: what it raised) ends as one that
    failed there does."""
    try:
        owner_of("constructs:" + class_name)
    except KeyError:
        return None
    base = class_name
    for prefix in ("Threading", "Forking"):
        if base.startswith(prefix) and base[len(prefix):] in CONSTRUCTORS:
            base = base[len(prefix):]
    found = LATCH.get("constructs:" + base, ())
    if found is None:
        return None
    return PreconditionFailed("constructs:" + class_name, f"{detail}; so does {found}")


def judged_broken_prerequisite(exc: BaseException, run_wide: bool = True) -> Optional[PreconditionFailed]:
    """The broken prerequisite behind a check's failure ``exc``, else None: ``exc`` or an
    exception it was raised while handling (``__context__``, ``__cause__``; a check that
    catches a construction error and then verifies) is a :class:`PreconditionFailed` or came
    out of a constructor the probes found broken (:func:`constructor_failure`)."""
    # ``run_wide``: False for a check that never runs the implementation's servers (the API
    # area reads names, signatures and defaults), which no run-wide finding can be behind
    for behaviour in RUN_WIDE if run_wide else ():
        found = LATCH.first_of(behaviour)
        if found is not None and not isinstance(exc, PreconditionFailed):
            return PreconditionFailed(behaviour, found)
    seen: List[BaseException] = []
    current: Optional[BaseException] = exc
    for _ in range(8):  # bounded: chains are short, and may loop
        if current is None or any(current is other for other in seen):
            return None
        seen.append(current)
        if isinstance(current, PreconditionFailed) and current is not exc:
            return current
        broken = (constructor_failure(current.__traceback__) or _port_zero_client(current)
                  or _abortive_close_client(current) or _backlog_client(current))
        if broken is not None:
            return broken
        current = current.__cause__ or current.__context__
    return None


def _port_zero_client(exc: BaseException) -> Optional[PreconditionFailed]:
    """A connection refused to port 0 (a datagram sent there: EINVAL) while the probes found a
    server that keeps port 0 as its server_address ("address_bound"): the client took the
    address from the server (a local ``address``, or the ``address`` / ``server_address`` of a
    local ``server``)."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in (errno.ECONNREFUSED, errno.EINVAL, errno.EADDRNOTAVAIL):
        return None
    tb = exc.__traceback__
    for _ in range(200):  # bounded
        if tb is None:
            return None
        local = tb.tb_frame.f_locals
        server = local.get("server")
        for address in (local.get("address"), getattr(server, "address", None) if server is not None else None,
                        getattr(server, "server_address", None) if server is not None else None):
            broken = unreachable(address)
            if broken is not None:
                return broken
        tb = tb.tb_next
    return None


def _abortive_close_client(exc: BaseException) -> Optional[PreconditionFailed]:
    """A check that failed on a connection reset (raised, or named by a verdict's observed
    value) while the probes found that the implementation ends its TCP requests abortively
    ("request_ends_gracefully", prec-conc): the check's client was reading a reply to its end,
    which that server ends with a reset instead of EOF (and Linux may drop the unread reply
    with it), so the check could not judge its own behaviour."""
    if not isinstance(exc, (ConnectionResetError, AssertionError)):
        return None
    if isinstance(exc, AssertionError) and "ConnectionResetError" not in str(exc):
        return None
    return abortive_close()


#: coll-bind: where a client's connect() is refused for a full backlog: a frame of these names
#: (harness.clients.bounded.connect, socket.create_connection) or a line that calls connect()
_CONNECT_FRAMES = frozenset({"connect", "create_connection"})


def _backlog_client(exc: BaseException) -> Optional[PreconditionFailed]:
    """coll-bind: a client's connect() that timed out (a dropped SYN; the harness's own
    ``HarnessTimeout`` of a bounded connect) or failed with EAGAIN (a full AF_UNIX backlog)
    while the probes found a backlog shorter than ``request_queue_size`` ("backlog_holds"):
    the check's pending clients did not fit in the queue the implementation listens with."""
    import errno
    import linecache

    if not (isinstance(exc, (TimeoutError, BlockingIOError)) or type(exc).__name__ == "HarnessTimeout"
            or (isinstance(exc, OSError) and exc.errno == errno.EAGAIN)):
        return None
    found = LATCH.first_of("backlog_holds")
    if found is None:
        return None
    connecting = any(tb.tb_frame.f_code.co_name in _CONNECT_FRAMES
                     or ".connect(" in linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno)
                     for tb in _entries(exc.__traceback__))
    if not connecting:
        return None
    return PreconditionFailed("backlog_holds", f"a client's connect() raised {type(exc).__name__}: {exc} ({found})")


def _entries(tb: Any) -> Iterator[Any]:
    """The entries of traceback ``tb``, outermost first (bounded: a traceback is finite, but be sure)."""
    for _ in range(200):
        if tb is None:
            return
        yield tb
        tb = tb.tb_next


def needs_backlog(pending: int) -> None:
    """coll-bind: raise :class:`PreconditionFailed` naming BIND-018 before a check connects
    ``pending`` clients that the loop will not accept yet, when the probes found that fewer
    connect before accept() ("backlog_holds"): the last ones would wait out their connect
    budget (a dropped SYN) to fail the same way."""
    for key in LATCH.keys_of("backlog_holds"):
        completed = int(key[0].partition("=")[2]) if key and key[0].startswith("completed=") else 0
        if pending > completed:
            raise PreconditionFailed("backlog_holds", f"{pending} clients pending before accept(); "
                                                      f"{LATCH.first_of('backlog_holds')}")


# udp-connect: a datagram server's own request path that leaves the shared socket connected
#: the server functions a served datagram request passes through (a finding is keyed by them)
REQUEST_PATH: Tuple[str, ...] = ("get_request", "verify_request", "process_request", "finish_request",
                                 "shutdown_request", "close_request")


def request_path_key(cls: type) -> Tuple[str, ...]:
    """udp-connect: the key of a "datagram_socket_unconnected" finding for server class ``cls``:
    its implementation's :data:`REQUEST_PATH` (ThreadingMixIn and ForkingMixIn have a
    ``process_request`` of their own, so a finding on UDPServer is not theirs)."""
    return function_key(implementation_class(cls), *REQUEST_PATH)


def datagram_socket_connects(cls: type) -> Optional[PreconditionFailed]:
    """udp-connect: the probes' finding that serving one datagram request through server class
    ``cls``'s own request path left the shared socket connected, else None."""
    found = LATCH.get("datagram_socket_unconnected", request_path_key(cls))
    return PreconditionFailed("datagram_socket_unconnected", found) if found is not None else None


def abortive_close() -> Optional[PreconditionFailed]:
    """The finding that this run's implementation ends its TCP requests with a reset
    (prec-conc), as the exception a client that met a reset raises; else None."""
    found = LATCH.first_of("request_ends_gracefully")
    return PreconditionFailed("request_ends_gracefully", found) if found is not None else None
def unreachable(address: Any) -> Optional[PreconditionFailed]:
    """prec-bind: a :class:`PreconditionFailed` naming BIND-004 when a client is about to reach
    ``address``, an internet address with port 0 (no server listens there), while the probes
    found a server that keeps port 0 as its server_address ("address_bound"): the client took
    the address from such a server.  Else None."""
    if not (isinstance(address, tuple) and len(address) >= 2 and address[1] == 0
            and isinstance(address[0], str)):
        return None
    found = LATCH.first_of("address_bound")
    return PreconditionFailed("address_bound", found) if found is not None else None


def family_key(cls: type, behaviour: str) -> Optional[Tuple[str, ...]]:
    """The key of a :data:`FAMILY_NEEDS` finding for a server class ``cls``; None
    when ``cls`` is not of that family."""
    name, function = FAMILY_NEEDS[behaviour]
    for klass in getattr(cls, "__mro__", ()):
        if klass.__name__ == name:
            # prec-bind: what the class resolves the function to, not the mix-in's own: a class
            # listing ThreadingMixIn after its server runs BaseServer.process_request, and only
            # the classes that do are of a finding about it (api_mixin_last)
            resolved = getattr(implementation_class(cls), function, None)
            return (f"{name}.{function}={_describe(resolved)}",)
    return None


def family_needs(cls: type) -> Optional[PreconditionFailed]:
    """The broken family prerequisite a server class ``cls`` needs (found by
    :mod:`harness.serving.prerequisite_probes` in this run), else None: every class
    with ``ThreadingMixIn`` needs its threads, every ``UDPServer`` its
    ``(data, socket)`` requests."""
    for behaviour in FAMILY_NEEDS:
        key = family_key(cls, behaviour)
        found = LATCH.get(behaviour, key) if key is not None else None
        if found is not None:
            return PreconditionFailed(behaviour, found)
    return None


def implementation_class(cls: type) -> type:
    """The first class of ``cls``'s MRO that the harness or a check did not define: the
    harness's hook wrappers call through to it, so its functions are what a request runs."""
    for klass in getattr(cls, "__mro__", (cls,)):
        if not str(getattr(klass, "__module__", "")).startswith(("harness.", "conformance.")):
            return klass
    return cls


def serving_key(cls: type, behaviour: str) -> Tuple[str, ...]:
    """The key of a :data:`SERVING_NEEDS` finding for a server class ``cls``."""
    klass = implementation_class(cls)
    key = tuple(f"{name}={_describe(getattr(klass, name, None))}" for name in SERVING_NEEDS[behaviour])
    if behaviour == "address_bound":
        key += (f"family={int(getattr(klass, 'address_family', 0))}",)
    return key


def serving_needs(cls: type, behaviours: Tuple[str, ...] = tuple(SERVING_NEEDS)) -> Optional[PreconditionFailed]:
    """The broken serving prerequisite a server class ``cls`` needs (found by
    :mod:`harness.serving.prerequisite_probes` in this run: a request that never
    ends, a datagram request that closes the shared socket), else None.  Only
    classes whose request-ending functions are the ones found broken are refused
    (``ThreadingMixIn`` ends its requests with a ``process_request`` of its own)."""
    for behaviour in behaviours:
        found = LATCH.get(behaviour, serving_key(cls, behaviour))
        if found is not None:
            return PreconditionFailed(behaviour, found)
    return None


class Latch:
    """Behaviours found broken in this process: key -> what was seen the first time."""

    def __init__(self) -> None:
        self._lock: Any = None
        self._seen: Dict[str, str] = {}

    def _guard(self) -> Any:
        # made on first use: this module is imported before gevent/eventlet patch
        # threading (harness.processes.server_process), so it must not import it at import time
        if self._lock is None:
            import threading

            self._lock = threading.Lock()
        return self._lock

    @staticmethod
    def _log() -> Any:
        path = os.environ.get(ENV_VAR)
        if not path:
            return None
        # imported on use: this module is imported before gevent/eventlet patch
        # threading (harness.processes.server_process), and harness.serving.instrument imports it
        from harness.serving.instrument import EventLog

        return EventLog(path)

    def set(self, behaviour: str, key: Tuple[str, ...], detail: str) -> None:
        name = "|".join((behaviour,) + key)
        with self._guard():
            if name in self._seen:
                return
            self._seen[name] = detail
        log = self._log()
        if log is not None:
            try:
                log.append(kind="latch", key=name, detail=detail)
            except OSError:
                pass  # sharing is an optimisation: this process still knows

    def get(self, behaviour: str, key: Tuple[str, ...]) -> Optional[str]:
        name = "|".join((behaviour,) + key)
        with self._guard():
            if name in self._seen:
                return self._seen[name]
        self._load()
        with self._guard():
            return self._seen.get(name)

    def _load(self) -> None:
        log = self._log()
        if log is None:
            return
        try:
            events = log.read()
        except (OSError, ValueError):
            return
        with self._guard():
            for event in events:
                if event.get("kind") == "latch":
                    self._seen.setdefault(str(event.get("key")), str(event.get("detail")))

    def first_of(self, behaviour: str) -> Optional[str]:
        """The detail of any finding of ``behaviour`` in this run (whatever its key), else None."""
        self._load()
        with self._guard():
            for name, detail in self._seen.items():
                if name.partition("|")[0] == behaviour:
                    return detail
        return None

    def keys_of(self, behaviour: str) -> List[Tuple[str, ...]]:
        """coll-bind: the keys of every finding of ``behaviour`` in this run."""
        self._load()
        with self._guard():
            names = [name.split("|") for name in self._seen]
        return [tuple(parts[1:]) for parts in names if parts[0] == behaviour]

    def set_hung(self, behaviour: str, code: Any, detail: str) -> None:
        """Remember that ``code`` (a function's code object) did not return."""
        self.set(behaviour, (_HUNG + code_where(code),), detail)

    def hung_codes(self) -> Dict[Tuple[str, int, str], Tuple[str, str]]:
        """(file, first line, name) -> (behaviour, detail) of every function found not to return."""
        self._load()
        found = {}
        with self._guard():
            for name, detail in self._seen.items():
                behaviour, _, where = name.partition("|")
                if where.startswith(_HUNG):
                    filename, line, function = where[len(_HUNG):].rsplit(":", 2)
                    found[(filename, int(line), function)] = (behaviour, detail)
        return found

    def clear(self) -> None:
        with self._guard():
            self._seen.clear()


_HUNG = "hung="


def code_where(code: Any) -> str:
    return f"{code.co_filename}:{code.co_firstlineno}:{code.co_name}"


def _code_of(function: Any) -> Any:
    return getattr(getattr(function, "__func__", function), "__code__", None)


def _refusal(found: Tuple[str, str], name: str) -> PreconditionFailed:
    behaviour, detail = found
    return PreconditionFailed(behaviour, f"{name}() is known not to return ({detail})", timed_out=True)


class Guard:
    """While :meth:`active`, a call of a function found not to return raises
    :class:`PreconditionFailed` in the calling thread (see the module
    docstring); :attr:`fired` is the first such exception of the block."""

    def __init__(self) -> None:
        self.fired: Optional[PreconditionFailed] = None
        self._interrupt: Optional[Callable[[], None]] = None
        self._pending: Optional[PreconditionFailed] = None
        self._on_fire: Optional[Callable[[PreconditionFailed], None]] = None
        self._held = 0  # > 0: a teardown runs that must not be interrupted (see :meth:`hold`)
        self.check = ""  # slow-serve: the ID of the check running now (set by the plugin)
        self._ended = False  # slow-serve: end_check interrupted this check already

    def _first(self, exc: PreconditionFailed) -> bool:
        """Note ``exc`` as :attr:`fired` if it is the block's first; tell ``on_fire``."""
        if self.fired is not None:
            return False
        self.fired = exc
        on_fire = self._on_fire
        if on_fire is not None:
            with contextlib.suppress(Exception):
                on_fire(exc)
        return True

    def fired_elsewhere(self, behaviour: str, detail: str) -> None:
        """A child process of the check called a function known not to return (it
        reports so at once, see :meth:`active`'s ``on_fire``): the check cannot get what
        it waits for from that child, so its main thread is ended now, as for a call
        ended in another thread of this process -- unless a teardown holds interrupts
        (:meth:`hold`), which then only sees :attr:`fired`."""
        exc = PreconditionFailed(behaviour, detail, timed_out=True)
        if not self._first(exc):
            return
        interrupt = self._interrupt
        if interrupt is not None and not self._held:
            self._pending = exc
            interrupt()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """No interrupt from :meth:`fired_elsewhere` while a child is being stopped and
        reaped (an interrupted teardown would orphan it)."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1

    def end_check(self, exc: PreconditionFailed) -> None:
        """slow-serve: end the check's main thread now with ``exc`` (see :func:`loop_died`),
        without noting it as :attr:`fired` (nothing hung: the owner keeps its own grading).
        Not in the owning check itself (:attr:`check`), not while a teardown holds interrupts,
        and only once per check."""
        interrupt = self._interrupt
        if interrupt is None or self._held or self._ended or exc.prerequisite == self.check:
            return
        self._ended = True
        self._pending = exc
        interrupt()

    def take_interrupt(self) -> Optional[PreconditionFailed]:
        """The exception to raise in the main thread, once (see :meth:`active`)."""
        pending, self._pending = self._pending, None
        return pending

    def refuse(self, function: Any) -> Optional[PreconditionFailed]:
        """:meth:`known_hung`, noted as :attr:`fired` (the caller raises it instead of calling)."""
        exc = self.known_hung(function)
        if exc is not None:
            self._first(exc)
        return exc

    def known_hung(self, function: Any) -> Optional[PreconditionFailed]:
        """The exception a call of ``function`` would get now (None: not known to hang)."""
        code = _code_of(function)
        if code is None:
            return None
        found = LATCH.hung_codes().get((code.co_filename, code.co_firstlineno, code.co_name))
        return _refusal(found, code.co_name) if found is not None else None

    def stuck_in(self, thread_ident: Optional[int]) -> Optional[PreconditionFailed]:
        """slow-hang: the exception for a thread found running a function known not to return
        (its frames looked at, never called), else None.  A trace function that raised is unset
        in its thread (CPython's ``sys.settrace``), so a later call of the same function there is
        no longer ended: a loop that met the hung handler once then hangs in it on its next
        request, and a teardown that waits for that loop waits out its budgets for a finding
        the run already has."""
        if thread_ident is None:
            return None
        codes = LATCH.hung_codes()
        frames: Dict[int, Any] = getattr(sys, "_current_frames", dict)() if codes else {}
        frame = frames.get(thread_ident)
        for _ in range(400):  # bounded: a stack is finite, but be sure
            if frame is None:
                return None
            code = frame.f_code
            found = codes.get((code.co_filename, code.co_firstlineno, code.co_name))
            if found is not None:
                return _refusal(found, code.co_name)
            frame = frame.f_back
        return None

    def tracer(self) -> Optional[Callable[..., None]]:
        """A trace function that raises in any function found not to return
        (None: nothing was found)."""
        codes = LATCH.hung_codes()
        if not codes:
            return None

        def trace(frame: Any, event: str, arg: Any) -> None:
            if event != "call":
                return None
            code = frame.f_code
            found = codes.get((code.co_filename, code.co_firstlineno, code.co_name))
            if found is not None:
                exc = _refusal(found, code.co_name)
                first = self._first(exc)
                import threading

                interrupt = self._interrupt
                if first and interrupt is not None and threading.current_thread() is not threading.main_thread():
                    # the check's main thread would only wait for what this thread can no
                    # longer do (a reply, an accepted connection): end it now
                    self._pending = exc
                    interrupt()
                raise exc  # raised in the called function; the trace function is then unset
            return None  # no line events

        return trace

    @contextlib.contextmanager
    def active(self, interrupt: Optional[Callable[[], None]] = None,
               on_fire: Optional[Callable[[PreconditionFailed], None]] = None) -> Iterator[Guard]:
        """Trace this thread and the threads started in the block.  ``interrupt``
        ends the main thread when another thread's call was ended (the plugin
        passes its watchdog's; the main thread then raises the same exception).
        ``on_fire`` is told the block's first ended call, in whatever thread: a
        child process passes one that reports it to its parent at once
        (:func:`report_to_parent`; the parent's supervisor calls :meth:`fired_elsewhere`)."""
        self.fired = None
        self._pending = None
        self._ended = False
        self._interrupt = interrupt
        self._on_fire = on_fire
        trace = self.tracer()
        if trace is None or sys.gettrace() is not None:  # nothing found, or a debugger/coverage traces
            try:
                yield self
            finally:
                self._interrupt = None
                self._on_fire = None
            return
        import threading

        threading.settrace(trace)
        sys.settrace(trace)
        try:
            yield self
        finally:
            sys.settrace(None)
            threading.settrace(None)  # type: ignore[arg-type]
            self._interrupt = None
            self._on_fire = None
            self._pending = None


def forked_handler_needs(server_class: str = "") -> Optional[PreconditionFailed]:
    """prec-serve: a handler the probes found not to return (``handler_returns``), for a
    server whose handlers run in forked children.  The guard ends the call there too,
    but a forked child cannot tell the check (it closed the protocol, see
    :func:`report_to_parent`), so every such check would wait out its budget for a
    handler that never starts: it is refused before its server process starts."""
    for behaviour, detail in LATCH.hung_codes().values():
        if behaviour == "handler_returns":
            return PreconditionFailed(behaviour, f"a handler is known not to return ({detail})", timed_out=True)
    return forked_request_needs(server_class)


def forked_request_needs(server_class: str) -> Optional[PreconditionFailed]:
    """coll-server: a forking parent found to shut down the stream request it handed to its child,
    else None.  Its children's replies race that shutdown, so every forking stream server
    (``server_class``; a datagram request has nothing to shut down) is refused once it was seen,
    and the check whose server saw it is graded with it (:func:`note_forked_finding`)."""
    if "UDP" in server_class or "Datagram" in server_class:
        return None
    found = LATCH.first_of("forked_request_kept_open")
    return PreconditionFailed("forked_request_kept_open", found) if found is not None else None


def note_forked_finding(server_class: str) -> None:
    """coll-server: after a forking server process or lab of the check ended: a finding of
    :func:`forked_request_needs` grades the check (:attr:`Guard.fired`; not a hang: its owner
    keeps its own verdict)."""
    found = forked_request_needs(server_class)
    if found is not None and GUARD.fired is None:
        GUARD.fired = found


#: the protocol event a child process sends when it ended a call known not to return
FIRED_EVENT = "guard_fired"


def report_to_parent(send: Callable[..., None]) -> Callable[[PreconditionFailed], None]:
    """An ``on_fire`` for :meth:`Guard.active` in a child process: sends
    :data:`FIRED_EVENT` with the finding through the child protocol's ``send``."""
    pid = os.getpid()

    def on_fire(exc: PreconditionFailed) -> None:
        if os.getpid() == pid:  # a forked handler child closed the protocol: its number may be reused
            send(event=FIRED_EVENT, precondition=[exc.behaviour, exc.detail])
    return on_fire


def discard(path: str) -> None:
    """Remove a run's shared latch: its path and every writer's file."""
    import glob

    for name in [path] + glob.glob(glob.escape(path) + ".w*"):
        try:
            os.unlink(name)
        except OSError:
            pass


#: the process-wide latch used by :mod:`harness.serving.servers`
LATCH = Latch()

#: the process-wide guard the plugin activates around each check
GUARD = Guard()

__all__ = ("DOCUMENTED_SERVER_METHODS", "loop_died", "abortive_close", "handler_key", "handler_needs", "RUN_WIDE", "CONSTRUCTORS", "ENV_VAR", "GUARD", "Guard", "LATCH", "OWNERS", "Latch", "MissingClass", "PreconditionFailed",
           "FIRED_EVENT", "SERVING_NEEDS", "code_where", "constructor_failure", "judged_broken_prerequisite", "report_to_parent", "discard", "family_key", "family_needs", "function_key",
           "implementation_class", "owner_of", "serving_key", "serving_needs",
           "KIND_SERVES", "kind_serves", "unconstructible", "unreachable", "needs_overlap", "premise",
           "ERROR_REPORTING", "error_key", "error_reporting", "HANDLER_ARGUMENTS", "handler_arguments",
           "needs_backlog", "REQUEST_PATH", "request_path_key", "datagram_socket_connects")
