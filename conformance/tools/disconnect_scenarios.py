"""Run each disconnect scenario once per server kind and share the result.

Theory of operation
-------------------
:func:`harness.clients.disconnect.run_scenario` builds a fresh server for every
call and returns a plain dict of what the server side saw.  Several
DISCONNECT checks read different facts from the *same* run (what recv
saw, whether the next client was served, what a send after the reset
gave, whether the half-closing client got its reply), so :func:`scenario`
memoises the result per ``(implementation, scenario, server class)`` for
the life of the pytest process.  Checks stay independent: whichever check
asks first runs the scenario, and under pytest-xdist each worker runs
what its own checks need.  A scenario that could not be driven is
memoised as its exception and re-raised to every check that asks
(``HarnessTimeout`` stays a TIMEOUT, anything else an ERROR).

:func:`recv_summary` turns a scenario's terminal ``server_recv``
observation into the observation-summary style of
:func:`harness.core.observations.summary` (``b''``,
``ConnectionResetError [ECONNRESET]``), the values
:mod:`harness.report.platform_notes` documents per OS.  A ``readline()`` that
returned an incomplete line (no ``\\n``) can only have met the end of the
stream, so it is summarised as ``b''``, like the ``recv`` of the same
scenario in a server process.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

from harness.clients import disconnect
from harness.core import observations

_MEMO: Dict[Tuple[str, str, str], Any] = {}


def scenario(impl: Any, name: str, server_class: str) -> Dict[str, Any]:
    """The (memoised) result of ``run_scenario(name, impl, server_class)``."""
    subject = getattr(impl, "subject", None)  # the implementation lives in a subject agent
    key = (f"{subject.python}:{impl.requested}" if subject is not None else impl.spec, name, server_class)
    if key not in _MEMO:
        try:
            _MEMO[key] = disconnect.run_scenario(name, impl, server_class)
        except Exception as exc:  # remembered and re-raised to every asker
            _MEMO[key] = exc
    found = _MEMO[key]
    if isinstance(found, Exception):
        raise found
    return found


def exception_summary(observation: Optional[Dict[str, Any]]) -> Optional[str]:
    """``Type [ERRNAME] (WinError n)`` of a scenario observation that is an exception, else None."""
    if not observation or not observation.get("exception"):
        return None
    errno = observation.get("errno")
    winerror = observation.get("winerror")
    return observations.summary({
        "type": observation["exception"],
        "errno": errno,
        "errno_name": observations.errno_name(errno, winerror) or observation.get("errno_name"),
        "winerror": winerror,
    })


def recv_summary(observation: Optional[Dict[str, Any]]) -> str:
    """What the server's last read gave, in summary style."""
    if observation is None:
        return "nothing observed"
    text = exception_summary(observation)
    if text is not None:
        return text
    result = observation.get("result")
    if observation.get("line_complete") is False:
        return "b''"  # readline() stopped short of a newline: end of stream
    return str(result)


def send_summary(observation: Optional[Dict[str, Any]]) -> str:
    """What a server send gave: the exception, or ``sent`` when it succeeded."""
    if observation is None:
        return "not attempted"
    return exception_summary(observation) or "sent"


__all__ = ["exception_summary", "recv_summary", "scenario", "send_summary"]
