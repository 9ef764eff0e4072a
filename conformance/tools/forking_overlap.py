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
``handle()``; if fewer than that hold at once within ``short()``, the finding is latched
(``forking_overlaps``, shared with the run's other processes) and every check calling
:func:`require_overlap` ends PRECONDITION_FAILED naming FORKING-001 at once, whichever runs first.
FORKING-001 itself never calls it: it keeps its own verdict.

The probe is not the owner's check: a lab that cannot start, or any other error, is no finding
(the checks that own it judge it), and a refusal of the lab itself (a finding of the prerequisite
probes) is left to the check's own lab, which meets it again.
"""

from __future__ import annotations

import contextlib
from typing import Any, Optional, Set

from conformance.tools.forking_lab import forking_lab
from conformance.tools.held_clients import held_clients
from harness.core import timeouts
from harness.core.prerequisites import LATCH, PreconditionFailed

#: how many held handlers the probe wants at once (the fewest that overlap)
WANTED = 2

#: implementation specs probed in this process (their finding, if any, is in the latch)
_PROBED: Set[str] = set()

BEHAVIOUR = "forking_overlaps"
KEY = ("ForkingMixIn",)


def require_overlap(impl: Any) -> None:
    """Raise :class:`PreconditionFailed` (``forking_overlaps``, owned by FORKING-001) when forked
    handlers of ``impl`` were found not to overlap; probe once per process first.  An
    implementation in a subject agent is not probed (its checks judge on their own)."""
    if getattr(impl, "subject", None) is not None:
        return
    found = LATCH.get(BEHAVIOUR, KEY)
    if found is None and impl.spec not in _PROBED:
        _PROBED.add(impl.spec)
        found = probe(impl)
    if found is not None:
        raise PreconditionFailed(BEHAVIOUR, found)


def probe(impl: Any) -> Optional[str]:
    """Hold :data:`WANTED` handlers of a ``ForkingTCPServer`` of ``impl`` in a lab; the finding
    (latched) when fewer held at once within ``short()``, else None."""
    started = WANTED
    with contextlib.suppress(Exception):  # no finding: the checks that own it judge it
        with forking_lab(impl, "ForkingTCPServer", "hold") as lab:
            with held_clients(lab.address, "inet", WANTED, lab.log) as held:
                started = held.started
                if started == WANTED:
                    held.release_all()
    if started >= WANTED:
        return None
    detail = (f"{started} of {WANTED} held handlers of ForkingTCPServer ran at once within "
              f"{timeouts.short():.2f}s (the probe's lab)")
    LATCH.set(BEHAVIOUR, KEY, detail)
    return detail


__all__ = ["WANTED", "probe", "require_overlap"]
