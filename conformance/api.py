"""The public check-writing API: what a check needs to declare itself and to fail readably.

Theory of operation
-------------------
A check is one pytest test function decorated with :func:`check`, which
attaches the ``ssconform_check`` marker carrying the stable ID, the level,
the documentation clause and the capabilities it requires.  The plugin
(``conformance.plugin``) reads the marker to enforce the ID scheme, to turn
a missing capability into UNSUPPORTED, and to grade the outcome.

Assertions go through :func:`verify` so that every failure message names
the check, the implementation, what was expected and what was observed:
the plugin publishes the check and implementation being run in
:data:`CURRENT` before each check.  Every ``verify*`` function takes its
arguments in one order: the condition (where there is one), then *what* is
judged, then the expected value, then the observed one::

    verify(cond, what, expected, observed)
    verify_equal(what, expected, observed)
    verify_returned(returned, what, budget)

and the message is ``[ID @ impl] what: expected E, observed O``
(pinned by ``tests/plugin/test_api.py``).

:func:`unsupported` marks a check as not applicable because the
*implementation* (not the platform) lacks something optional, e.g. a
third-party module without ``UnixStreamServer`` on a platform that has
``AF_UNIX``; missing platform capabilities are handled by ``requires``.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

import pytest

from harness.core.outcomes import Level
from harness.core.timeouts import HarnessTimeout

REQUIRED = Level.REQUIRED
PLATFORM = Level.PLATFORM
VERSION = Level.VERSION
EXTENSION = Level.EXTENSION

UNSUPPORTED_PREFIX = "UNSUPPORTED: "

#: ``{"id": ..., "impl": ...}`` of the check being run (set by the plugin).
#:
#: Module state on purpose, the one the plugin keeps outside ``config.stash``:
#: :func:`verify` is called from check bodies, their helpers and their
#: threads, none of which hold the pytest item or config, and pytest has no
#: public accessor for the running item; passing it to every ``verify*``
#: call would change the public API.  It is safe as module state because a
#: pytest process runs one check at a time (pytest-xdist workers are
#: processes), and the plugin sets it in ``pytest_runtest_setup`` before each
#: check; its session state (``PluginState``) and per-check entries do live
#: on ``config.stash`` and ``item.stash``.
CURRENT = {"id": "?", "impl": "?"}


def check(
    check_id: str,
    level: Level,
    *,
    clause: str,
    requires: Iterable[str] = (),
    title: Optional[str] = None,
    topic: Optional[str] = None,
    budget: Optional[str] = None,
):
    """Declare a test function as the conformance check ``check_id``.

    ``clause`` quotes or paraphrases the documented behaviour being checked
    and cites where a reader can open it (CPython source at a tag and line,
    docs.python.org, a gh-/bpo- issue, docs/platform-knowledge.md).  ``topic``
    links a PLATFORM check to its documented per-OS expectation in
    ``harness.report.platform_notes``.  ``budget`` names the watchdog budget
    (``"LONG"`` by default) after which the plugin declares TIMEOUT.
    """

    def decorate(function):
        doc_title = (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""
        marker = pytest.mark.ssconform_check(
            id=check_id,
            level=Level(level),
            clause=clause,
            requires=tuple(requires),
            title=title or doc_title,
            topic=topic,
            budget=budget or "LONG",
        )
        return marker(function)

    return decorate


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def failure_message(what: str, expected: Any, observed: Any) -> str:
    return (
        f"[{CURRENT['id']} @ {CURRENT['impl']}] {what}: "
        f"expected {_short(expected)}, observed {_short(observed)}"
    )


def verify(condition: Any, what: str, expected: Any, observed: Any) -> None:
    """Fail the current check unless ``condition`` holds."""
    if not condition:
        raise AssertionError(failure_message(what, expected, observed))


def verify_equal(what: str, expected: Any, observed: Any) -> None:
    """Fail the current check unless ``observed == expected``."""
    verify(observed == expected, what, expected, observed)


def verify_returned(returned: Any, what: str, budget: float) -> None:
    """A call the contract says must return did not within ``budget``: it hung.

    That is the TIMEOUT outcome (the implementation hangs), not a FAIL: the
    report then says what hung.
    """
    if not returned:
        raise HarnessTimeout(f"[{CURRENT['id']} @ {CURRENT['impl']}] {what} to return", budget)


def unsupported(reason: str) -> None:
    """End the check as UNSUPPORTED (the implementation lacks an optional part)."""
    pytest.skip(UNSUPPORTED_PREFIX + reason)


def require_attr(module: Any, name: str) -> Any:
    """``getattr(module, name)``, or UNSUPPORTED when the implementation lacks it."""
    if not hasattr(module, name):
        unsupported(f"{getattr(module, '__name__', module)} has no {name}")
    return getattr(module, name)


__all__ = [
    "REQUIRED",
    "PLATFORM",
    "VERSION",
    "EXTENSION",
    "CURRENT",
    "check",
    "verify",
    "verify_equal",
    "verify_returned",
    "failure_message",
    "unsupported",
    "require_attr",
]
