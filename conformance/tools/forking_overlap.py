"""fork-probe: whether forked handlers overlap, found once per process, before a check needs it.

Theory of operation
-------------------
Several checks need two or more forked handlers at once to judge their own clause (FORKING-002,
FORKING-010 and FORKING-013 reach a ``max_children`` limit; CONCURRENCY-003/006 and TUTORIAL-007
hold handlers while other clients are served).  Where ``ForkingMixIn`` runs one handler at a time
(inline in the server process, a parent that waits for each child, a ``collect_children()`` that
blocks the loop), each of them waited out its budget for a handler that never started: FORKING-001
owns that defect ("handlers run concurrently").

:func:`require_overlap` answers the question once per process, lazily (the first time such a check
runs: a run without one pays nothing): a ``ForkingTCPServer`` in a forking lab
(:mod:`conformance.tools.forking_lab`, a process of its own: a forking server never shares a
process with its clients) gets :data:`WANTED` clients whose ``hold`` handlers stay in
``handle()``; if fewer than that hold at once within ``short()`` (or, at once, once the lab's
serving thread is seen unable to serve before a held handler ends:
:func:`~conformance.tools.forking_lab.loop_stuck`), the finding is latched
(``forking_overlaps``, shared with the run's other processes) and every check calling
:func:`require_overlap` ends PRECONDITION_FAILED naming FORKING-001 at once, whichever runs first.
FORKING-001 itself never calls it: it keeps its own verdict.

The probe is not the owner's check: a lab that cannot start, or any other error, is no finding
(the checks that own it judge it), and a refusal of the lab itself (a finding of the prerequisite
probes) is left to the check's own lab, which meets it again.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, List, Optional, Set

from conformance.tools.forking_lab import children_states, forking_lab, handle_starts, loop_stuck
from conformance.tools.held_clients import held_clients
from harness.core import timeouts
from harness.core.prerequisites import LATCH, PreconditionFailed

#: how many held handlers the probe wants at once (the fewest that overlap)
WANTED = 2

#: implementation specs probed in this process (their finding, if any, is in the latch)
_PROBED: Set[str] = set()

BEHAVIOUR = "forking_overlaps"
KEY = ("ForkingMixIn",)
#: the key of what the probe's lab saw of its children (:func:`children_finding`)
CHILDREN_KEY = ("ForkingMixIn", "children")


def require_overlap(impl: Any) -> None:
    """Raise :class:`PreconditionFailed` (``forking_overlaps``, owned by FORKING-001) when forked
    handlers of ``impl`` were found not to overlap; probe once per process first.  An
    implementation in a subject agent is not probed (its checks judge on their own)."""
    if getattr(impl, "subject", None) is not None:
        return
    _probe_once(impl)
    found = LATCH.get(BEHAVIOUR, KEY)
    if found is not None:
        raise PreconditionFailed(BEHAVIOUR, found)


def require_children(impl: Any, tracked: bool = True) -> None:
    """Raise what the probe's lab saw of its children (:func:`children_finding`): its handlers
    ran in the server process (FORKING-001's), or, with ``tracked``, ``active_children`` named
    none of the children that ran (FORKING-012's).  For the checks whose verdict is about
    children (reaping them, waiting for them, their exit statuses): each met the same finding in
    its own lab only after waiting out its budget for a child to reap."""
    if getattr(impl, "subject", None) is not None:
        return
    _probe_once(impl)
    for behaviour in (BEHAVIOUR, "children_tracked") if tracked else (BEHAVIOUR,):
        found = LATCH.get(behaviour, CHILDREN_KEY)
        if found is not None:
            raise PreconditionFailed(behaviour, found)


#: fork-wait: FORKING-003's findings (its behaviour), keyed by what its lab saw while serving:
#: finished children left unreaped, and no ``collect_children()`` call at all
REAPING = "children_reaped"
UNREAPED_KEY = CHILDREN_KEY + ("unreaped",)
UNCOLLECTED_KEY = CHILDREN_KEY + ("uncollected",)


def note_unreaped(detail: str, collected: bool) -> None:
    """fork-wait: latch what FORKING-003 (the owner) saw: finished children were left unreaped
    while its lab served (and, unless ``collected``, no ``collect_children()`` ran).  FORKING-011
    and FORKING-014 then do not wait out their budgets for reaping while serving
    (:func:`unreaped`, :func:`uncollected`)."""
    LATCH.set(REAPING, UNREAPED_KEY, detail)
    if not collected:
        LATCH.set(REAPING, UNCOLLECTED_KEY, detail)


def unreaped() -> Optional[str]:
    """fork-wait: FORKING-003 found finished children left unreaped while serving (this run)."""
    return LATCH.get(REAPING, UNREAPED_KEY)


def uncollected() -> Optional[str]:
    """fork-wait: FORKING-003 found that, and no ``collect_children()`` call while serving."""
    return LATCH.get(REAPING, UNCOLLECTED_KEY)


def _probe_once(impl: Any) -> None:
    """Run :func:`probe` unless this process did, or another process of the run latched its
    finding (which it does after the children's: both are known then)."""
    if impl.spec in _PROBED or LATCH.get(BEHAVIOUR, KEY) is not None:
        return
    _PROBED.add(impl.spec)
    probe(impl)


def children_finding(server_pid: int, pids: List[int], events: List[Dict[str, Any]]) -> Optional[PreconditionFailed]:
    """slow-hang: why a check's verdict about children cannot be reached, else None: the handlers
    (``pids``) ran in the server process (no child: FORKING-001's), or ``active_children`` named
    none of the children that ran (every state the lab logged in ``events`` was None:
    FORKING-012's)."""
    if server_pid in pids:
        return PreconditionFailed(BEHAVIOUR, f"handlers ran in the server process {server_pid}")
    states = children_states(events)
    if pids and states and all(state is None for state in states):
        return PreconditionFailed("children_tracked", f"active_children stayed None while "
                                                      f"{len(pids)} child(ren) ran")
    return None


def probe(impl: Any) -> Optional[str]:
    """Hold :data:`WANTED` handlers of a ``ForkingTCPServer`` of ``impl`` in a lab; the finding
    (latched) when fewer held at once within ``short()``, else None.  What the lab saw of its
    children once stopped is latched too (:func:`children_finding`, :func:`require_children`)."""
    started, stuck = WANTED, None
    with contextlib.suppress(Exception):  # no finding: the checks that own it judge it
        with forking_lab(impl, "ForkingTCPServer", "hold") as lab:
            with held_clients(lab.address, "inet", WANTED, lab.log) as held:
                started = held.started
                stuck = loop_stuck(lab.events())  # fork-wait: what ended the wait early, if anything
                if started == WANTED:
                    held.release_all()
            lab.stop()  # every child ended (the clients closed): the lab logged what it saw
            events = lab.events()
            children = children_finding(lab.pid, [e["pid"] for e in handle_starts(events)], events)
            if children is not None:
                LATCH.set(children.behaviour, CHILDREN_KEY, children.detail)
    if started >= WANTED:
        return None
    detail = (f"{started} of {WANTED} held handlers of ForkingTCPServer ran at once "
              + (f"({stuck})" if stuck else f"within {timeouts.short():.2f}s") + " (the probe's lab)")
    LATCH.set(BEHAVIOUR, KEY, detail)
    return detail


__all__ = ["REAPING", "WANTED", "children_finding", "note_unreaped", "probe", "require_children",
           "require_overlap", "uncollected", "unreaped"]
