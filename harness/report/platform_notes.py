"""What each OS is documented (or measured) to do, encoded as data.

Theory of operation
-------------------
PLATFORM checks legitimately see different behaviour on Linux, Windows and
macOS.  A check records what it measured; this module says what was
*expected* on each OS and why, so that a record can carry the documented
value next to the measurement (``documented``/``agrees``) and the report
can explain every divergence with a mechanism paragraph and a minimal
reproduction.

The knowledge is data: ``harness/report/data/platform_notes.toml`` (package data,
found through :mod:`harness.results.packaged`), validated on load against
``harness/results/schema/platform_notes.schema.json``.  :data:`TOPICS` is its
``topics`` table, keyed by a short topic name (``"rst"``,
``"udp_dead_port"`` ...).  Each topic has a ``title``, a ``mechanism``
paragraph, a ``repro`` snippet (plain standard library, loopback only) and
``expect``: per OS (``linux``, ``windows``, ``macos`` and sometimes
``freebsd``) a ``value`` in the report's *observation summary* style, a
``confidence`` tag and ``sources``.  Optional ``accept`` lists other
summaries that also agree with the documentation.

Every source is something a reader can open: CPython source at a release
tag and line, a docs.python.org section, a CPython issue (``gh-N``,
``bpo-N``), Microsoft's Winsock documentation, a Linux, FreeBSD or macOS
manual page, XNU or FreeBSD source at a commit, a public report by another
project, or a measurement of this kit naming its check IDs.  The schema
enforces the shapes of those addresses; :func:`source_text` joins them into
the one line a record's ``documented.source`` holds.  Confidence tags:
``M`` measured by this kit (on Linux), ``D`` documented (official docs or
OS/CPython source), ``R`` reported by third parties, ``U`` unverified
inference (which may cite nothing and says so in its ``note``).  Nothing
for Windows or macOS is ``M`` until a real runner measured it.
``python -m harness.report.knowledge_page`` renders the whole file as
``docs/platform-knowledge.md``.

A check names its topic explicitly (the plugin calls
``documented_for(topic, os)``).  For records whose checks did not, the
report resolves a topic with :func:`topic_for`: the explicit
:data:`CHECK_TOPICS` patterns first, then a variant that is itself a topic
name (``DISCONNECT-001[rst]`` -> ``rst``), then a capability the check
requires (an UNSUPPORTED ``fork`` check is explained by topic ``fork``).

Values are written in the observation-summary style of
:func:`harness.core.observations.summary` (``ConnectionResetError [ECONNRESET]``,
``ConnectionResetError [ECONNRESET] (WinError 10054)``, ``b''``), so that
``comparable(value) == comparable(summary)`` decides agreement; the
parenthesised Windows number is detail, not disagreement.  A topic may
list further summaries that agree (``accept``); :func:`accepted` returns
them with the main value.  :func:`documented_for` returns exactly the
record's ``documented`` shape, which has no room for ``accept``.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from harness.core import tomlfile

#: OS names used as keys in ``expect``; fingerprints and callers may use aliases.
OSES = ("linux", "windows", "macos", "freebsd")

_OS_ALIASES = {
    "linux": "linux",
    "linux2": "linux",
    "windows": "windows",
    "win32": "windows",
    "win": "windows",
    "nt": "windows",
    "cygwin": "windows",
    "macos": "macos",
    "darwin": "macos",
    "mac": "macos",
    "osx": "macos",
    "freebsd": "freebsd",
}

_SCHEMA = Path(__file__).resolve().parent.parent / "results" / "schema" / "platform_notes.schema.json"
_ISSUE_URL = {"gh": "https://github.com/python/cpython/issues/{}", "bpo": "https://bugs.python.org/issue{}"}


class KnowledgeError(Exception):
    """The platform knowledge file does not match its schema."""


def _read_toml(path: Path) -> dict:
    return tomlfile.load(path)


def issue_url(issue_id: str) -> str:
    """``gh-77589`` -> its GitHub URL; ``bpo-33725`` -> bugs.python.org (which redirects)."""
    prefix, _, number = issue_id.partition("-")
    return _ISSUE_URL[prefix].format(number)


def source_url(source: dict) -> Optional[str]:
    """The address a reader opens for one source (``None`` for a measurement)."""
    if source["kind"] == "cpython-issue":
        return issue_url(source["id"])
    return source.get("url")


def source_text(sources: Iterable[dict], note: Optional[str] = None) -> str:
    """One line naming every source: what the record's ``documented.source`` holds."""
    parts = []
    for source in sources:
        detail = f" ({source['note']})" if source.get("note") else ""
        if source["kind"] == "measured":
            what = ", ".join(source.get("checks", ())) or f"`{source['command']}`"
            parts.append(f"measured by this kit: {what}{detail}")
        elif source["kind"] == "cpython-issue":
            parts.append(f"{source['id']} {issue_url(source['id'])}{detail}")
        else:
            parts.append(f"{source['url']}{detail}")
    if not parts:
        return f"unverified: {note}" if note else "unverified"
    return "; ".join(parts)


def load(path: Optional[Path] = None) -> dict:
    """Read and validate the knowledge file (default: the package's own copy)."""
    import jsonschema

    from harness.results import packaged

    path = path or packaged.data_file("platform_notes.toml")
    data = _read_toml(path)
    schema = json.loads(_SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise KnowledgeError(f"{path}: {where}: {errors[0].message}")
    for topic in data["topics"].values():
        for entry in topic["expect"].values():
            entry["source"] = source_text(entry["sources"], entry.get("note"))
    return data


_DATA = load()

#: Topic name -> ``{title, mechanism, repro, expect: {os: {value, confidence,
#: sources, source, [accept], [note]}}}``; ``source`` is :func:`source_text`.
TOPICS: Dict[str, dict] = _DATA["topics"]

#: Notes that are not per-OS expectations: ``{title, when, text, sources}``
#: (``free_threading``: shown by the report when a run had no GIL).
NOTES: Dict[str, dict] = _DATA["notes"]

#: Explicit map from check IDs to topics: ``(id_glob, variant_glob, topic)``,
#: first match wins.  Globs use fnmatch syntax on the ID and the variant
#: separately, so brackets in variants never act as character classes.
CHECK_TOPICS: Tuple[Tuple[str, str, str], ...] = tuple(
    (entry["id"], entry["variant"], entry["topic"]) for entry in _DATA["check_topics"])

#: A capability a check ``requires`` that explains its UNSUPPORTED outcome.
REQUIRES_TOPICS: Dict[str, str] = dict(_DATA["requires_topics"])

_CONFIDENCE = {
    "M": "measured",
    "D": "documented",
    "R": "reported",
    "U": "unverified",
}


def confidence_label(tag: str) -> str:
    """``"D"`` -> ``"documented"`` (unknown tags are returned unchanged)."""
    return _CONFIDENCE.get(tag, tag)


def normalize_os(name: Optional[str]) -> Optional[str]:
    """Map ``sys.platform``/fingerprint spellings to an ``expect`` key."""
    if not name:
        return None
    key = str(name).strip().lower()
    if key in _OS_ALIASES:
        return _OS_ALIASES[key]
    for prefix, os_name in (("linux", "linux"), ("win", "windows"), ("darwin", "macos"), ("freebsd", "freebsd")):
        if key.startswith(prefix):
            return os_name
    return key


def current_os() -> str:
    """The running OS as an ``expect`` key."""
    return normalize_os(sys.platform) or sys.platform


def topic_for(check_id: str, variant: str = "", requires: Iterable[str] = ()) -> Optional[str]:
    """The topic explaining check ``check_id[variant]``, or ``None``.

    Order: :data:`CHECK_TOPICS`, then a variant (or a ``-``/``_``-free part
    of it) that is a topic name, then the first required capability with a
    topic in :data:`REQUIRES_TOPICS`.
    """
    if check_id in TOPICS:
        return check_id
    variant = variant or ""
    for id_glob, variant_glob, topic in CHECK_TOPICS:
        if fnmatch.fnmatchcase(check_id, id_glob) and fnmatch.fnmatchcase(variant, variant_glob):
            return topic
    if variant in TOPICS:
        return variant
    for part in re.split(r"[-\[\],/ ]+", variant):
        if part in TOPICS:
            return part
    for cap in requires or ():
        if cap in REQUIRES_TOPICS:
            return REQUIRES_TOPICS[cap]
    return None


def documented_for(check_id_or_topic: str, os: Optional[str] = None) -> Optional[dict]:
    """The documented expectation for a topic (or a check ID) on ``os``.

    Returns ``{"os", "value", "source", "confidence"}`` (the record's
    ``documented`` shape; ``accept`` alternatives are not included) or
    ``None`` when nothing is documented.  ``os`` defaults to the running
    OS and accepts ``sys.platform`` spellings.
    """
    topic = check_id_or_topic if check_id_or_topic in TOPICS else topic_for(check_id_or_topic)
    if topic is None:
        return None
    os_key = normalize_os(os) if os is not None else current_os()
    entry = TOPICS[topic]["expect"].get(os_key or "")
    if entry is None:
        return None
    return {
        "os": os_key,
        "value": entry["value"],
        "source": entry["source"],
        "confidence": entry["confidence"],
    }


def expectation(topic: str, os: str) -> Optional[dict]:
    """The full ``expect`` entry (with ``accept``) for ``topic`` on ``os``."""
    info = TOPICS.get(topic)
    if info is None:
        return None
    return info["expect"].get(normalize_os(os) or "")


def accepted(topic: str, os: str) -> List[str]:
    """Every summary that agrees with the documentation of ``topic`` on ``os``
    (the ``value`` first, then the ``accept`` alternatives); empty if none."""
    entry = expectation(topic, os)
    if entry is None:
        return []
    return [entry["value"], *entry.get("accept", ())]
