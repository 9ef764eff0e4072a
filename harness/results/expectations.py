"""Expected deviations per implementation, kept in TOML files outside the tests.

Theory of operation
-------------------
An implementation may knowingly deviate from the contract on some
platforms (gevent's greenlet ids are not ``pthread_t``; eventlet's green
``select`` has no ``poll``).  Those deviations are declared, one file per
implementation (``expectations/<name>.toml``), never by editing the checks::

    [[expectation]]
    id = "HANDLER-012"            # check ID (required)
    variant = "ipv6"              # optional: only this parametrised variant
    outcome = "TIMEOUT"           # FAIL ERROR TIMEOUT PRECONDITION_FAILED UNSUPPORTED SKIP INFO PASS
    reason = "greenlet ids are not pthread_t; pthread_kill hangs"   # required
    link = "https://..."          # optional
    intermittent = true           # optional: the outcome comes and goes (PASS is accepted too)
    also = ["TIMEOUT"]            # optional, intermittent only: other bad outcomes of the same race
    [expectation.when]            # optional; every key given must match
    os = ["linux", "macos"]       # string or list (fingerprint "os")
    python = ">=3.12"             # specifiers on the Python version
    python_implementation = "CPython"        # string or list
    impl_version = ">=24"         # specifiers on implementation.version
    impl_extra = {gevent = ">=24"}           # specifiers on extra versions
    gil = "disabled"              # string or list
    machine = ["x86_64", "AMD64"] # string or list

Matching: :meth:`Expectations.lookup` returns the first entry (in file
order) for the check ID whose ``variant`` equals the check's variant,
else the first without a ``variant``, among entries whose ``when`` matches
the run's fingerprint and implementation.  :func:`apply` turns the check's
actual outcome into the final one: the expected bad outcome becomes
``XFAIL``; a ``PASS``/``INFO`` where a bad outcome was expected becomes
``XPASS`` (the run fails: the expectation is stale); anything else stays
as it was (a *different* bad outcome is still unexpected).

``intermittent = true`` is for a deviation that is genuinely
nondeterministic (eventlet's forked children sharing the parent's epoll hub
lose a race some of the time): the expected bad outcome is still ``XFAIL``,
but a ``PASS``/``INFO`` stays what it is instead of becoming ``XPASS``, so
neither makes the run fail.  It is only allowed with a bad outcome (FAIL,
ERROR, TIMEOUT), and the reason should say why the outcome varies.  Because
a run that passed says nothing about whether the deviation is gone,
:func:`update` keeps intermittent entries that the records did not confirm.
One race can end a check in more than one bad way (eventlet's forked
server loses clients, FAIL, or does not stop in time, TIMEOUT): ``also``
lists the other bad outcomes an intermittent entry accepts as ``XFAIL``.
The entry's ``outcome`` stays the one it is known by; ``also`` is refused
on an entry that is not intermittent, since a deterministic deviation has
one outcome.

Version specifiers are a deliberately small subset of PEP 440, written here
so that the harness needs no ``packaging`` dependency: comma-separated
clauses ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` on dotted numeric
versions, compared numerically with missing components as zero (so
``>=3.12`` admits 3.12.0); ``==3.12.*``/``!=3.12.*`` compare a prefix, and a
bare ``3.12`` means ``==3.12.*``.  A version string is read from its first
dotted number, so ``"CPython 3.11.7"`` is 3.11.7 and ``"24.2rc1"`` is 24.2;
a condition on a version that has no number (``"unknown"``) does not match.

Errors: a malformed file raises :class:`ExpectationError` whose message is
``<file>:<line>: <what is wrong>``.  TOML syntax errors carry their line
from the parser; semantic errors (unknown key, unknown outcome, bad
specifier) are located by scanning the text for the offending entry.

:func:`update` writes a refreshed file from run records (``ssconform
expectations update``): for each check with a bad outcome in some cells it
derives the narrowest simple condition that separates the failing cells
from the others (none; OS; Python implementation; Python range; or a
combination), keeps the reasons and links of entries that remain, keeps
verbatim the entries about platforms the records do not cover, and marks
new entries ``reason = "TODO: explain"``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Sequence, Tuple, Union

from harness.core import tomlfile
from harness.core.outcomes import EXPECTABLE, Outcome, raw_outcome

TODO_REASON = "TODO: explain"

#: OS names a condition may use (as harness.results.fingerprint.os_name writes them).
KNOWN_OS = ("linux", "windows", "macos", "freebsd", "openbsd", "netbsd", "dragonfly",
            "solaris", "aix", "cygwin", "emscripten", "wasi")
_OS_HINTS = {"darwin": "macos", "win32": "windows", "win": "windows", "osx": "macos", "mac": "macos"}

_BAD_EXPECTABLE = frozenset({Outcome.FAIL.value, Outcome.ERROR.value, Outcome.TIMEOUT.value,
                             Outcome.PRECONDITION_FAILED.value})
_GOOD = frozenset({Outcome.PASS.value, Outcome.INFO.value})
_NOT_RUN = frozenset({Outcome.UNSUPPORTED.value, Outcome.SKIP.value})

_ENTRY_KEYS = ("id", "variant", "outcome", "reason", "link", "intermittent", "also", "when")
_WHEN_LIST_KEYS = ("os", "python_implementation", "gil", "machine")
_WHEN_SPEC_KEYS = ("python", "impl_version")
_WHEN_KEYS = ("os", "python", "python_implementation", "impl_version", "impl_extra", "gil", "machine")
_ID = re.compile(r"^[A-Z][A-Z0-9_]*-[0-9]{3,}$")

HEADER = """\
# Expected deviations of one implementation from the socketserver contract.
# Read by `ssconform run` (expectations/<implementation>.toml) and by the
# pytest plugin (--expectations FILE); refreshed by `ssconform expectations
# update RECORDS... --out FILE`, which keeps reasons and links.
#
# Each [[expectation]] names a check `id` (and optionally its `variant`), the
# `outcome` it is expected to have (FAIL ERROR TIMEOUT UNSUPPORTED SKIP INFO
# PASS) and a `reason` (required; "TODO: explain" until someone does), with
# an optional `link`.  `intermittent = true` marks a bad outcome that comes
# and goes: it is XFAIL when it happens and PASS is accepted too (no XPASS).
# An optional [expectation.when] table restricts it:
#   os = ["linux", "macos"]          python = ">=3.12,<3.14"
#   python_implementation = "PyPy"   impl_version = ">=24"
#   impl_extra = {gevent = ">=24"}   gil = "disabled"   machine = "arm64"
# A check that gets the expected bad outcome is XFAIL; one that passes
# instead is XPASS and fails the run (the expectation is stale).
"""


class ExpectationError(Exception):
    """A malformed expectations file; ``str()`` is ``file:line: message``."""

    def __init__(self, path: Union[str, os.PathLike], line: Optional[int], message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


# ---------------------------------------------------------------- versions --

_NUMBER = re.compile(r"\d+(?:\.\d+)*")
_CLAUSE = re.compile(r"^\s*(==|!=|<=|>=|<|>)?\s*(\d+(?:\.\d+)*)(\.\*)?\s*$")


def parse_version(text: Any) -> Optional[Tuple[int, ...]]:
    """The first dotted number in ``text`` as a tuple, or ``None``."""
    match = _NUMBER.search(str(text))
    if not match:
        return None
    return tuple(int(part) for part in match.group(0).split("."))


def _pad(a: Tuple[int, ...], b: Tuple[int, ...]) -> Tuple[Tuple[int, ...], Tuple[int, ...]]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


def check_specifier(spec: str) -> List[Tuple[str, Tuple[int, ...], bool]]:
    """Parse ``spec`` into ``(operator, version, is_prefix)`` clauses or raise ValueError."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty version specifier {spec!r}")
    clauses = []
    for raw in spec.split(","):
        match = _CLAUSE.match(raw)
        if not match:
            raise ValueError(
                f"bad version specifier {raw.strip()!r} in {spec!r} "
                "(use ==, !=, <, <=, >, >= with dotted numbers, e.g. '>=3.10,<3.13')"
            )
        op, number, star = match.group(1), match.group(2), bool(match.group(3))
        if op is None:
            op, star = "==", True
        if star and op not in ("==", "!="):
            raise ValueError(f"'.*' is only allowed with == and != (in {spec!r})")
        clauses.append((op, tuple(int(p) for p in number.split(".")), star))
    return clauses


def version_matches(version: Any, spec: str) -> bool:
    """Whether ``version`` (any string containing a dotted number) satisfies ``spec``."""
    parsed = parse_version(version)
    if parsed is None:
        return False
    for op, wanted, prefix in check_specifier(spec):
        if prefix:
            equal = parsed[: len(wanted)] == wanted
            ok = equal if op == "==" else not equal
        else:
            a, b = _pad(parsed, wanted)
            ok = {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        if not ok:
            return False
    return True


# ----------------------------------------------------------------- entries --


@dataclasses.dataclass(frozen=True)
class Entry:
    id: str
    outcome: str
    reason: str
    variant: Optional[str] = None
    link: Optional[str] = None
    when: Tuple[Tuple[str, Any], ...] = ()  # sorted (key, value) pairs; lists as tuples
    intermittent: bool = False
    also: Tuple[str, ...] = ()  # intermittent only: other bad outcomes of the same race
    source: str = "<memory>"
    line: Optional[int] = None

    @property
    def conditions(self) -> Dict[str, Any]:
        return dict(self.when)

    def location(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source

    def matches(self, fingerprint: Dict[str, Any], implementation: Any) -> bool:
        """Whether every ``when`` condition holds for this run."""
        return _conditions_hold(self.conditions, fingerprint or {}, _describe(implementation))

    def to_toml(self) -> str:
        lines = ["[[expectation]]", f"id = {_toml_str(self.id)}"]
        if self.variant is not None:
            lines.append(f"variant = {_toml_str(self.variant)}")
        lines.append(f"outcome = {_toml_str(self.outcome)}")
        lines.append(f"reason = {_toml_str(self.reason)}")
        if self.link:
            lines.append(f"link = {_toml_str(self.link)}")
        if self.intermittent:
            lines.append("intermittent = true")
        if self.also:
            lines.append(f"also = {_toml_value(list(self.also))}")
        if self.when:
            lines.append("[expectation.when]")
            for key, value in self.when:
                if key == "impl_extra":
                    value = dict(value)
                lines.append(f"{key} = {_toml_value(value)}")
        return "\n".join(lines) + "\n"


def _describe(implementation: Any) -> Dict[str, Any]:
    if implementation is None:
        return {}
    if hasattr(implementation, "describe"):
        return implementation.describe()
    return dict(implementation)


def _as_list(value: Any) -> List[str]:
    return [value] if isinstance(value, str) else list(value)


def _conditions_hold(when: Dict[str, Any], fp: Dict[str, Any], impl: Dict[str, Any]) -> bool:
    for key, wanted in when.items():
        if key == "os":
            if str(fp.get("os", "")).lower() not in {w.lower() for w in _as_list(wanted)}:
                return False
        elif key in ("python_implementation", "gil", "machine"):
            if str(fp.get(key, "")).lower() not in {w.lower() for w in _as_list(wanted)}:
                return False
        elif key == "python":
            if not version_matches(fp.get("python_version", ""), wanted):
                return False
        elif key == "impl_version":
            if not version_matches(impl.get("version", ""), wanted):
                return False
        elif key == "impl_extra":
            extra = dict(fp.get("impl_extra") or {})
            extra.update(impl.get("extra") or {})
            for name, spec in dict(wanted).items():
                if name not in extra or not version_matches(extra[name], spec):
                    return False
        else:  # load() rejects unknown keys; a hand-built Entry must not match by accident
            return False
    return True


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_str(text: str) -> str:
    # JSON string escapes (\" \\ \n \t \uXXXX) are valid TOML basic-string escapes.
    return json.dumps(str(text), ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return _toml_str(value)
    if isinstance(value, dict):
        items = ", ".join(
            f"{k if _BARE_KEY.match(k) else _toml_str(k)} = {_toml_value(v)}" for k, v in value.items()
        )
        return "{" + items + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


# ------------------------------------------------------------------ loading --


class _Locator:
    """Line numbers of ``[[expectation]]`` headers and keys, found by scanning the text."""

    _HEADER = re.compile(r"^\s*\[\[\s*expectation\s*\]\]")

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.headers = [i + 1 for i, line in enumerate(self.lines) if self._HEADER.match(line)]

    def entry(self, index: int) -> Optional[int]:
        return self.headers[index] if index < len(self.headers) else None

    def key(self, index: int, key: str) -> Optional[int]:
        start = self.entry(index)
        if start is None:
            return None
        end = self.headers[index + 1] if index + 1 < len(self.headers) else len(self.lines) + 1
        pattern = re.compile(r"^\s*[\"']?" + re.escape(key) + r"[\"']?\s*=")
        for number in range(start, end):
            if pattern.match(self.lines[number - 1]):
                return number
        return start

    def top_key(self, key: str) -> Optional[int]:
        pattern = re.compile(r"^\s*(\[+\s*)?[\"']?" + re.escape(key) + r"[\"']?\s*(=|\])")
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                return number
        return None


def _parse_when(raw: Any, fail: Callable[[str, str], NoReturn]) -> Tuple[Tuple[str, Any], ...]:
    if not isinstance(raw, dict):
        fail("when", "[expectation.when] must be a table")
    pairs: List[Tuple[str, Any]] = []
    for key, value in raw.items():
        if key not in _WHEN_KEYS:
            fail(key, f"unknown condition {key!r} in [expectation.when]; known: {', '.join(_WHEN_KEYS)}")
        if key in _WHEN_LIST_KEYS:
            items = _as_list(value) if isinstance(value, (str, list)) else None
            if not items or not all(isinstance(v, str) and v for v in items):
                fail(key, f"condition {key!r} must be a non-empty string or list of strings")
            if key == "os":
                for name in items:
                    if name.lower() not in KNOWN_OS:
                        hint = _OS_HINTS.get(name.lower())
                        suggestion = f" (did you mean {hint!r}?)" if hint else ""
                        fail(key, f"unknown os {name!r}{suggestion}; known: {', '.join(KNOWN_OS)}")
                items = [name.lower() for name in items]
            pairs.append((key, items[0] if isinstance(value, str) else tuple(items)))
        elif key in _WHEN_SPEC_KEYS:
            try:
                check_specifier(value)
            except ValueError as exc:
                fail(key, f"condition {key!r}: {exc}")
            pairs.append((key, value))
        else:  # impl_extra
            if not isinstance(value, dict) or not value:
                fail(key, "impl_extra must be a table of name = version specifier")
            for name, spec in value.items():
                try:
                    check_specifier(spec)
                except ValueError as exc:
                    fail(key, f"impl_extra.{name}: {exc}")
            pairs.append((key, tuple(sorted(value.items()))))
    return tuple(sorted(pairs))


def loads(text: str, source: Union[str, os.PathLike] = "<memory>") -> Expectations:
    """Parse expectations from TOML ``text`` (``source`` names it in errors)."""
    source = str(source)
    try:
        data = tomlfile.loads(text)
    except tomlfile.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        line = int(match.group(1)) if match else getattr(exc, "lineno", None)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message) if match else message
        if match:
            message += f" (column {match.group(2)})"
        raise ExpectationError(source, line, f"TOML syntax error: {message}") from None
    locator = _Locator(text)
    for key in data:
        if key != "expectation":
            raise ExpectationError(
                source, locator.top_key(key), f"unknown top-level key {key!r}; expected [[expectation]] tables"
            )
    raw_entries = data.get("expectation", [])
    if not isinstance(raw_entries, list):
        raise ExpectationError(source, locator.top_key("expectation"),
                               "'expectation' must be an array of tables: write [[expectation]]")
    entries: List[Entry] = []
    seen: Dict[Tuple[Any, ...], int] = {}
    for index, raw in enumerate(raw_entries):
        line = locator.entry(index)

        def fail(key: str, message: str, index: int = index) -> NoReturn:
            raise ExpectationError(source, locator.key(index, key), message)

        if not isinstance(raw, dict):
            raise ExpectationError(source, line, "each [[expectation]] must be a table")
        for key in raw:
            if key not in _ENTRY_KEYS:
                fail(key, f"unknown key {key!r} in [[expectation]]; known: {', '.join(_ENTRY_KEYS)}")
        for key in ("id", "outcome", "reason"):
            if key not in raw:
                raise ExpectationError(source, line, f"[[expectation]] is missing {key!r}")
        for key in ("id", "variant", "outcome", "reason", "link"):
            if key in raw and not isinstance(raw[key], str):
                fail(key, f"{key!r} must be a string")
        if not _ID.match(raw["id"]):
            fail("id", f"{raw['id']!r} is not a check ID (AREA-NNN, e.g. TCP-003)")
        outcome = raw["outcome"]
        if outcome not in {o.value for o in EXPECTABLE}:
            fail("outcome", f"unknown outcome {outcome!r}; an expectation may name "
                 f"{', '.join(sorted(o.value for o in EXPECTABLE))}")
        if not raw["reason"].strip():
            fail("reason", "reason must not be empty (write what deviates and why)")
        intermittent = raw.get("intermittent", False)
        if not isinstance(intermittent, bool):
            fail("intermittent", "'intermittent' must be true or false")
        if intermittent and outcome not in _BAD_EXPECTABLE:
            fail("intermittent", f"intermittent = true needs a bad outcome (FAIL, ERROR, TIMEOUT), not "
                 f"{outcome!r}: it says that outcome comes and goes")
        also = raw.get("also", [])
        if not isinstance(also, list) or not all(isinstance(item, str) for item in also):
            fail("also", "'also' must be a list of outcomes")
        if also and not intermittent:
            fail("also", "'also' needs intermittent = true: a deviation that always happens has one outcome")
        for item in also:
            if item not in _BAD_EXPECTABLE or item == outcome:
                fail("also", f"'also' lists other bad outcomes (FAIL, ERROR, TIMEOUT) than {outcome!r}, "
                     f"not {item!r}")
        when = _parse_when(raw.get("when", {}), fail)
        entry = Entry(id=raw["id"], outcome=outcome, reason=raw["reason"], variant=raw.get("variant"),
                      link=raw.get("link"), when=when, intermittent=intermittent, also=tuple(also),
                      source=source, line=line)
        identity = (entry.id, entry.variant, entry.when)
        if identity in seen:
            raise ExpectationError(source, line, f"duplicate expectation for {entry.id}"
                                   f"{'[' + entry.variant + ']' if entry.variant else ''} with the same "
                                   f"conditions as line {seen[identity]}")
        seen[identity] = line or 0
        entries.append(entry)
    return Expectations(entries, source=source, header=_leading_comments(text))


def load(path: Union[str, os.PathLike]) -> Expectations:
    """Read and check the expectations file at ``path``."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ExpectationError(path, None, f"cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ExpectationError(path, line, "not UTF-8 text") from None
    return loads(text, source=path)


def _leading_comments(text: str) -> str:
    lines: List[str] = []
    for line in text.splitlines():
        if line.startswith("#") or (not line.strip() and lines):
            lines.append(line)
        else:
            break
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n" if lines else ""


class Expectations:
    """The entries of one expectations file, in file order."""

    def __init__(self, entries: Sequence[Entry] = (), source: str = "<memory>", header: str = ""):
        self.entries = list(entries)
        self.source = source
        self.header = header

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def lookup(self, check_id: str, variant: str, fingerprint: Dict[str, Any],
               implementation: Any) -> Optional[Entry]:
        """The entry that applies to this check in this run (see module docstring), or None."""
        impl = _describe(implementation)
        fallback = None
        for entry in self.entries:
            if entry.id != check_id:
                continue
            if entry.variant is not None and entry.variant != (variant or ""):
                continue
            if not _conditions_hold(entry.conditions, fingerprint or {}, impl):
                continue
            if entry.variant is not None:
                return entry
            if fallback is None:
                fallback = entry
        return fallback

    def unmatched(self, all_check_ids: Iterable[Union[str, Tuple[str, str]]]) -> List[Entry]:
        """Entries naming a check (or check variant) the suite does not have.

        ``all_check_ids`` holds IDs, or ``(id, variant)`` pairs; with pairs,
        an entry with a ``variant`` must name an existing variant.
        """
        ids = set()
        pairs = set()
        for item in all_check_ids:
            if isinstance(item, str):
                ids.add(item)
            else:
                ids.add(item[0])
                pairs.add((item[0], item[1]))
        stale = []
        for entry in self.entries:
            unknown_variant = entry.variant is not None and pairs and (entry.id, entry.variant) not in pairs
            if entry.id not in ids or unknown_variant:
                stale.append(entry)
        return stale

    def warnings(self, all_check_ids: Iterable[Union[str, Tuple[str, str]]]) -> List[str]:
        """One readable line per unmatched entry (``file:line: ...``)."""
        return [
            f"{entry.location()}: expectation for {entry.id}"
            f"{'[' + entry.variant + ']' if entry.variant is not None else ''} matches no check in the suite"
            for entry in self.unmatched(all_check_ids)
        ]

    @staticmethod
    def apply(outcome: Union[str, Outcome], entry: Optional[Entry]) -> str:
        """Same as the module-level :func:`apply` (convenient for holders of an instance)."""
        return apply(outcome, entry)

    def to_toml(self) -> str:
        body = "\n".join(entry.to_toml() for entry in self.entries)
        return (self.header or HEADER) + ("\n" + body if body else "")


def empty() -> Expectations:
    return Expectations()


# ----------------------------------------------------------------- applying --


def apply(outcome: Union[str, Outcome], entry: Optional[Entry]) -> str:
    """The final outcome of a check whose actual outcome is ``outcome``."""
    actual = Outcome(outcome).value
    if entry is None:
        return actual
    expected = entry.outcome
    if expected in _BAD_EXPECTABLE:
        if actual == expected or (entry.intermittent and actual in entry.also):
            return Outcome.XFAIL.value
        if actual in _GOOD and not entry.intermittent:
            return Outcome.XPASS.value
    return actual


def annotate(check: Dict[str, Any], entry: Optional[Entry]) -> Dict[str, Any]:
    """Apply ``entry`` to a record's check entry in place: final outcome,
    ``expected_outcome``, ``expectation_reason`` (and ``expectation_link``)."""
    if entry is None:
        return check
    check["outcome"] = apply(check["outcome"], entry)
    check["expected_outcome"] = entry.outcome
    check["expectation_reason"] = entry.reason
    if entry.link:
        check["expectation_link"] = entry.link
    return check


# ------------------------------------------------------------------ update --


@dataclasses.dataclass(frozen=True)
class _Cell:
    os: str
    python_implementation: str
    python: Tuple[int, ...]
    python_text: str
    fingerprint: Any
    implementation: Any


def _minor(version: Tuple[int, ...]) -> Tuple[int, int]:
    padded = version + (0, 0)
    return padded[0], padded[1]


def _python_range(failing: List[Tuple[int, ...]], others: List[Tuple[int, ...]]) -> Optional[str]:
    """A specifier on minor versions covering ``failing`` and none of ``others``."""
    if not failing:
        return None
    low, high = min(map(_minor, failing)), max(map(_minor, failing))
    other_minors = {_minor(v) for v in others}
    if any(low <= m <= high for m in other_minors):
        return None
    below = [m for m in other_minors if m < low]
    above = sorted(m for m in other_minors if m > high)
    clauses = []
    if below:
        clauses.append(f">={low[0]}.{low[1]}")
    if above:
        clauses.append(f"<{above[0][0]}.{above[0][1]}")
    if not clauses:
        return None
    return ",".join(clauses)


def _separate(failing: List[_Cell], others: List[_Cell]) -> Optional[List[Tuple[Tuple[str, Any], ...]]]:
    """The simplest condition(s) true for every failing cell and no other cell."""
    if not others:
        return [()]
    candidates = [(), ("os",), ("python_implementation",), ("python",), ("os", "python"),
                  ("python_implementation", "python"), ("os", "python_implementation"),
                  ("os", "python_implementation", "python")]
    for keys in candidates:
        when: Dict[str, Any] = {}
        for key in keys:
            if key in ("os", "python_implementation"):
                values = sorted({getattr(cell, key) for cell in failing})
                when[key] = values[0] if len(values) == 1 else tuple(values)
        remaining = [c for c in others if _cell_in(c, when)]
        if "python" in keys:
            spec = _python_range([c.python for c in failing], [c.python for c in remaining])
            if spec is None:
                continue
            when["python"] = spec
            remaining = [c for c in remaining if version_matches(c.python_text, spec)]
        if not remaining:
            return [tuple(sorted(when.items()))]
    return None


def _cell_in(cell: _Cell, when: Dict[str, Any]) -> bool:
    return all(getattr(cell, key) in _as_list(value) for key, value in when.items())


def _exact(cell: _Cell) -> Tuple[Tuple[str, Any], ...]:
    return tuple(sorted({"os": cell.os, "python_implementation": cell.python_implementation,
                         "python": "==" + cell.python_text}.items()))


def _derive(cells: List[Tuple[_Cell, str]]) -> List[Tuple[str, Tuple[Tuple[str, Any], ...]]]:
    """(outcome, when) pairs for the bad outcomes among ``cells``."""
    ran = [(cell, outcome) for cell, outcome in cells if outcome not in _NOT_RUN]
    derived: List[Tuple[str, Tuple[Tuple[str, Any], ...]]] = []
    for bad in sorted({o for _, o in ran if o in _BAD_EXPECTABLE}):
        failing = [cell for cell, o in ran if o == bad]
        others = [cell for cell, o in ran if o != bad]
        conditions = _separate(failing, others)
        if conditions is None:  # no simple rule: one entry per failing cell
            conditions = sorted({_exact(cell) for cell in failing})
        derived.extend((bad, when) for when in conditions)
    return derived


def _implementation_names(records: Sequence[Dict[str, Any]]) -> List[str]:
    return sorted({r["implementation"]["name"] for r in records})


def update(records: Sequence[Dict[str, Any]], existing: Optional[Expectations] = None) -> str:
    """The refreshed expectations file (TOML text) for the records of one implementation."""
    names = _implementation_names(records)
    if len(names) > 1:
        raise ValueError(
            f"records of several implementations ({', '.join(names)}): an expectations file "
            "is per implementation; select one (ssconform expectations update --impl NAME)"
        )
    if existing is None:  # not `existing or ...`: an empty file is falsy but has a header
        existing = Expectations()
    cells: List[_Cell] = []
    by_check: Dict[str, Dict[str, List[Tuple[_Cell, str]]]] = {}
    for record in records:
        fp = record["fingerprint"]
        version = parse_version(fp["python_version"]) or (0,)
        cell = _Cell(os=fp["os"], python_implementation=fp["python_implementation"], python=version,
                     python_text=fp["python_version"], fingerprint=fp,
                     implementation=record["implementation"])
        cells.append(cell)
        for check in record["checks"]:
            raw = raw_outcome(check)
            if raw == Outcome.FLAKY.value:  # varied between repeats: nothing to expect
                continue
            by_check.setdefault(check["id"], {}).setdefault(check["variant"], []).append((cell, raw))

    new_entries: List[Entry] = []
    for check_id in sorted(by_check):
        variants = by_check[check_id]
        derived = {variant: _derive(cell_outcomes) for variant, cell_outcomes in variants.items()}
        distinct = {tuple(d) for d in derived.values()}
        plan: List[Tuple[Optional[str], Tuple[str, Tuple[Tuple[str, Any], ...]]]]
        if len(distinct) == 1:  # every variant alike: one entry for the ID
            plan = [(None, d) for d in next(iter(distinct))]
        else:
            plan = [(variant or None, d) for variant in sorted(derived) for d in derived[variant]]
        for variant, (outcome, when) in plan:
            shown = [cell for v, cell_outcomes in variants.items() if variant is None or v == variant
                     for cell, o in cell_outcomes if o == outcome]
            if _absorbed(existing, check_id, variant, outcome, shown):
                continue
            reason, link, intermittent = _previous(existing, check_id, variant, outcome)
            when = _narrower(existing, check_id, variant, outcome, when, shown)
            new_entries.append(Entry(id=check_id, variant=variant, outcome=outcome, reason=reason,
                                     link=link, when=when, intermittent=intermittent))

    # Entries about platforms these records say nothing about are kept verbatim,
    # and so are intermittent entries the records did not confirm (a run that
    # passed does not show that a deviation which comes and goes has gone).
    confirmed = {(e.id, e.variant, e.outcome) for e in new_entries}
    kept = [
        dataclasses.replace(entry, source="<memory>", line=None)
        for entry in existing
        if not any(entry.matches(cell.fingerprint, cell.implementation) for cell in cells)
        or (entry.intermittent and not _confirmed(entry, confirmed))
        or (entry.outcome not in _BAD_EXPECTABLE and _still_seen(entry, by_check))
    ]
    merged = sorted(kept + new_entries, key=lambda e: (e.id, e.variant or "", e.outcome, repr(e.when)))
    unique: List[Entry] = []
    seen = set()
    for entry in merged:
        key = (entry.id, entry.variant, entry.when)
        if key not in seen:
            seen.add(key)
            unique.append(entry)
    return Expectations(unique, header=existing.header or HEADER).to_toml()


def _absorbed(existing: Expectations, check_id: str, variant: Optional[str], outcome: str,
              shown: List[_Cell]) -> bool:
    """Whether an existing *intermittent* entry already states this deviation (same ID and
    outcome, its variant or the whole ID, conditions holding wherever it was seen).  It is
    kept as it is: where one run happened to show an intermittent deviation says little
    about where it can happen, so a run neither narrows nor splits such an entry."""
    return any(
        entry.intermittent and entry.id == check_id and outcome in (entry.outcome,) + entry.also
        and entry.variant in (None, variant)
        and all(entry.matches(cell.fingerprint, cell.implementation) for cell in shown)
        for entry in existing
    )


def _narrower(existing: Expectations, check_id: str, variant: Optional[str], outcome: str,
              when: Tuple[Tuple[str, Any], ...], shown: List[_Cell]) -> Tuple[Tuple[str, Any], ...]:
    """``when``, unless the records leave it unconditional and an existing entry for the same
    deviation has conditions that hold wherever it was seen: records from one platform
    cannot widen an entry a maintainer restricted to that platform (say ``os = "linux"``
    for a Linux kernel limit) to every platform."""
    if when:
        return when
    for entry in existing:
        if (entry.id == check_id and entry.variant == variant and entry.outcome == outcome and entry.when
                and all(entry.matches(cell.fingerprint, cell.implementation) for cell in shown)):
            return entry.when
    return when


def _still_seen(entry: Entry, by_check: Dict[str, Dict[str, List[Tuple[_Cell, str]]]]) -> bool:
    """An entry expecting a non-failing outcome (UNSUPPORTED or SKIP where the baseline runs the
    check, INFO where it passes) is not derived from records, which only show failures;
    it stays while every matching cell still shows that outcome, and goes when one does not."""
    seen = [outcome for variant, cell_outcomes in by_check.get(entry.id, {}).items()
            if entry.variant in (None, variant)
            for cell, outcome in cell_outcomes if entry.matches(cell.fingerprint, cell.implementation)]
    return bool(seen) and all(outcome == entry.outcome for outcome in seen)


def _confirmed(entry: Entry, confirmed: set) -> bool:
    """Whether a new entry states ``entry``'s outcome for its check (variant or whole ID)."""
    return ((entry.id, entry.variant, entry.outcome) in confirmed
            or (entry.id, None, entry.outcome) in confirmed)


def _previous(existing: Expectations, check_id: str, variant: Optional[str],
              outcome: str) -> Tuple[str, Optional[str], bool]:
    """Reason, link and intermittent flag to carry over from the closest existing entry
    (intermittent only from one that expected the same outcome)."""
    best = None
    for entry in existing:
        if entry.id != check_id:
            continue
        score = (entry.variant == variant) * 2 + (entry.outcome == outcome)
        if best is None or score > best[0]:
            best = (score, entry)
    if best is None:
        return TODO_REASON, None, False
    entry = best[1]
    return entry.reason, entry.link, entry.intermittent and entry.outcome == outcome


__all__ = [
    "Entry",
    "Expectations",
    "ExpectationError",
    "HEADER",
    "TODO_REASON",
    "annotate",
    "apply",
    "check_specifier",
    "empty",
    "load",
    "loads",
    "parse_version",
    "update",
    "version_matches",
]
