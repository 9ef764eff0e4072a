"""pytest plugin: select the implementation, grade each check, write the run record.

Theory of operation
-------------------
Registered through the ``pytest11`` entry point, the plugin adds one option
group and stays **inert** unless an implementation is selected, so it never
disturbs other test suites in the same environment.  Each setting is read
in the order command-line option > ``SSCONFORM_*`` environment variable >
``ssconform_*`` ini key:

==========================  ===========================  ==========================
option                      environment                  ini
==========================  ===========================  ==========================
``--impl``                  ``SSCONFORM_IMPL``           ``ssconform_impl``
``--ssconform-out``         ``SSCONFORM_OUT``            ``ssconform_out``
``--expectations``          ``SSCONFORM_EXPECTATIONS``   ``ssconform_expectations``
``--timeout-multiplier``    ``SSCONFORM_TIMEOUT_MULTIPLIER``  ``ssconform_timeout_multiplier``
==========================  ===========================  ==========================

The implementation is resolved once per process in ``pytest_configure``
(pytest-xdist workers resolve it again, each in its own process) and shown
in the report header with the platform fingerprint.

Grading.  ``pytest_runtest_makereport`` watches the three phases of each
check and derives one outcome (:mod:`harness.core.outcomes`):

* a failed assertion (``AssertionError``, including ``LeakError``) → FAIL;
* :class:`harness.core.timeouts.HarnessTimeout` anywhere, or the per-check
  watchdog firing → TIMEOUT;
* :class:`harness.core.prerequisites.PreconditionFailed` (a behaviour another
  check owns is broken, so this check cannot proceed) → PRECONDITION_FAILED,
  naming that check in the record's ``prerequisite``; in the owning check
  itself it is TIMEOUT (a bound ran out) or FAIL, as the owner's own defect;
* any other exception → ERROR;
* a skip whose reason starts with ``UNSUPPORTED:`` (a missing capability
  or an optional part the implementation lacks) → UNSUPPORTED, other
  skips → SKIP;
* success → PASS, or INFO for PLATFORM checks (an observation, compared
  with the documented expectation for this OS).

An expectation file then maps expected failures to XFAIL (shown by pytest
as xfailed, so a pytest run stays green) and stale ones to XPASS (shown as
failed).  The graded entry travels in the teardown report's
``user_properties``, which pytest-xdist carries from workers to the
controller, so the record is assembled in exactly one process — the
controller, or the only process — and outcomes are the same with or without
``-n``.

Watchdog.  Every wait in the harness is bounded, but a check could still
block inside the implementation under test (a ``shutdown()`` that never
returns, called directly).  Where POSIX interval timers exist the plugin arms
``SIGALRM`` for the check's budget and raises ``HarnessTimeout`` in the main
thread, so the hang becomes TIMEOUT and the run goes on; elsewhere
``ssconform run`` bounds the whole process.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import signal
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import pytest

from harness import shapes as _shapes
from harness.core import prerequisites, timeouts
from harness.core.addresses import UnsupportedFeature
from harness.core.capabilities import caps
from harness.core.observations import comparable, summary, to_jsonable
from harness.core.outcomes import Level, Outcome
from harness.core.prerequisites import PreconditionFailed
from harness.processes.child_protocol import interrupt_on_stop_signals
from harness.results import records
from harness.subject import mirror as in_process_needed

from . import api

# SSCONFORM_OS_SHAPE set but not applied at start: restart this process shaped (harness.shapes)
_shapes.ensure_process_shaped()

ID_PATTERN = re.compile(r"^([A-Z][A-Z0-9]*)-(\d{3})$")
CHECKS_DIR = Path(__file__).parent / "checks"

SETTINGS = {
    # name: (option dest, env var, ini key, help)
    "impl": ("ssconform_impl", "SSCONFORM_IMPL", "ssconform_impl",
             "implementation under test: adapter name, dotted module, or path to a .py file "
             "(a .py file is executed)"),
    "out": ("ssconform_out", "SSCONFORM_OUT", "ssconform_out",
            "directory for the JSON run record"),
    "expectations": ("ssconform_expectations", "SSCONFORM_EXPECTATIONS", "ssconform_expectations",
                     "TOML file of expected deviations for this implementation"),
    "timeout_multiplier": ("ssconform_timeout_multiplier", "SSCONFORM_TIMEOUT_MULTIPLIER",
                           "ssconform_timeout_multiplier",
                           "multiply every timeout of the kit (slow machines)"),
    "subject_python": ("ssconform_subject_python", "SSCONFORM_SUBJECT_PYTHON", "ssconform_subject_python",
                       "run the implementation inside this interpreter, driven by the subject agent "
                       "(docs/subject-protocol.md); checks that need it in-process end UNSUPPORTED"),
}

STATE = pytest.StashKey["PluginState"]()
ENTRY = pytest.StashKey[dict]()


class PluginState:
    """Everything the plugin keeps for one pytest session, on ``config.stash[STATE]``.

    ``entries`` are the graded record entries collected in this process (the
    controller, or the only process), ``workers`` the pytest-xdist workers
    that sent some."""

    def __init__(self, impl, expectations, out: Optional[Path], settings: Dict[str, Any]):
        self.impl = impl
        self.expectations = expectations
        self.out = out
        self.settings = settings
        self.fingerprint: Dict[str, Any] = {}
        self.entries: List[dict] = []
        self.workers: Set[str] = set()
        self.started: Optional[float] = None
        self.record_path: Optional[Path] = None
        self.latch_file: Optional[str] = None
        self.probed = False

    def pytest_runtest_logreport(self, report) -> None:
        """Collect the graded entries (registered as a plugin object by ``pytest_configure``)."""
        for name, value in getattr(report, "user_properties", ()):
            if name == "ssconform" and isinstance(value, dict):
                self.entries.append(value)
                node = getattr(report, "node", None)  # set by pytest-xdist on worker reports
                worker = getattr(node, "workerinput", {}).get("workerid") if node is not None else None
                if worker:
                    self.workers.add(worker)


# ---------------------------------------------------------------- options


def pytest_addoption(parser):
    group = parser.getgroup("ssconform", "socketserver conformance")
    group.addoption("--impl", action="append", dest="ssconform_impl", default=None,
                    metavar="IMPL", help=SETTINGS["impl"][3] + "; one per pytest process")
    group.addoption("--ssconform-out", dest="ssconform_out", default=None, metavar="DIR",
                    help=SETTINGS["out"][3])
    group.addoption("--expectations", dest="ssconform_expectations", default=None,
                    metavar="FILE", help=SETTINGS["expectations"][3])
    group.addoption("--timeout-multiplier", dest="ssconform_timeout_multiplier", default=None,
                    metavar="X", help=SETTINGS["timeout_multiplier"][3])
    group.addoption("--subject-python", dest="ssconform_subject_python", default=None,
                    metavar="EXE", help=SETTINGS["subject_python"][3])
    group.addoption("--ssconform-list", dest="ssconform_list", default=None, metavar="FILE",
                    help="write the collected checks (JSON) to FILE; use with --collect-only")
    group.addoption("--check", dest="ssconform_checks", action="append", default=None,
                    metavar="ID[,ID...]",
                    help="run only these check IDs (or areas: API, TCP-*); repeatable")
    group.addoption("--os-shape", dest="ssconform_os_shape", default=None, choices=_shapes.available(),
                    help="reshape this run as the OS documents it (simulated on this OS; "
                         "same as SSCONFORM_OS_SHAPE); the process restarts shaped")
    for _name, (_dest, _env, ini, text) in SETTINGS.items():
        parser.addini(ini, text, default=None)


def _setting(config, name: str) -> Optional[str]:
    dest, env, ini, _ = SETTINGS[name]
    value = config.getoption(dest)
    if value:
        if name == "impl":
            if len(value) > 1:
                raise pytest.UsageError(
                    f"--impl was given {len(value)} times; the suite runs one implementation per "
                    "pytest process (use `ssconform run --impl A --impl B` for several)"
                )
            return value[0]
        return value
    if os.environ.get(env):
        return os.environ[env]
    ini_value = config.getini(ini)
    return ini_value or None


# ---------------------------------------------------------------- configure


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "ssconform_check(id, level, clause, requires, title, topic, budget): a conformance check",
    )
    shape = config.getoption("ssconform_os_shape", None)
    if shape and (_shapes.active() or {}).get("shape") != shape:
        os.environ[_shapes.ENV_VAR] = shape
        _shapes.ensure_process_shaped()  # restarts this process with the shape applied at start
    impl_spec = _setting(config, "impl")
    if not impl_spec:
        return  # inert
    multiplier = _setting(config, "timeout_multiplier")
    if multiplier:
        try:
            timeouts.set_multiplier(multiplier)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None

    from harness.implementations import ImplementationError, resolve

    subject_python = _setting(config, "subject_python")
    subject = None
    try:
        if subject_python:  # the implementation lives in another interpreter (harness.subject)
            from harness.subject.session import open_subject

            subject, impl = open_subject(subject_python, impl_spec)
            config.add_cleanup(subject.close)
        else:
            impl = resolve(impl_spec)
    except ImplementationError as exc:
        raise pytest.UsageError(str(exc)) from None

    expectations = None
    expectations_path = _setting(config, "expectations")
    if expectations_path:
        from harness.results import expectations as expectations_module

        try:
            expectations = expectations_module.load(expectations_path)
        except expectations_module.ExpectationError as exc:
            raise pytest.UsageError(str(exc)) from None

    out = _setting(config, "out")
    state = PluginState(
        impl=impl,
        expectations=expectations,
        out=Path(out) if out else None,
        settings={
            "impl": impl_spec,
            "expectations": expectations_path,
            "timeout_multiplier": timeouts.multiplier(),
        },
    )
    from harness.results.fingerprint import fingerprint

    state.fingerprint = subject.fingerprint() if subject is not None else fingerprint(impl)
    state.settings["subject_python"] = subject_python or None
    config.stash[STATE] = state
    # Runs in the controller (or the only process): it collects the graded entries.
    config.pluginmanager.register(state, "ssconform-state")
    api.CURRENT["impl"] = impl.name
    # stopped by SIGTERM, or CTRL_BREAK_EVENT on Windows: end like Ctrl-C, keep the record
    config.add_cleanup(interrupt_on_stop_signals())
    if not os.environ.get(prerequisites.ENV_VAR):
        # broken prerequisites found by one process (server processes, xdist
        # workers) are known to all of this run's processes, which inherit it
        handle, path = tempfile.mkstemp(prefix="ssc-latch-", suffix=".jsonl")
        os.close(handle)
        os.environ[prerequisites.ENV_VAR] = path
        state.latch_file = path


def pytest_unconfigure(config):
    state = _state(config)
    if state is not None and state.latch_file:
        prerequisites.discard(state.latch_file)
        os.environ.pop(prerequisites.ENV_VAR, None)


def _state(config) -> Optional[PluginState]:
    return config.stash.get(STATE, None)


def pytest_report_header(config):
    state = _state(config)
    if state is None:
        return None
    impl, fp = state.impl, state.fingerprint
    capabilities = fp.get("capabilities", {})
    have = " ".join(
        f"{name}={'yes' if capabilities.get(name) else 'no'}"
        for name in ("fork", "af_unix", "ipv6", "reuse_port", "signals")
    )
    lines = [
        f"ssconform: implementation {impl.name} ({impl.module_name} {impl.version}, "
        f"API {impl.api_version[0]}.{impl.api_version[1]}) from {impl.file}",
        f"ssconform: {fp.get('os')} {fp.get('os_release')} {fp.get('machine')}, "
        f"{fp.get('python_implementation')} {fp.get('python_version')}, {have}, "
        f"timeout multiplier {timeouts.multiplier():g}",
    ]
    for _name, (_dest, env, _ini, _text) in SETTINGS.items():
        if os.environ.get(env):
            lines.append(f"ssconform: {env}={os.environ[env]}")
    if state.expectations is not None:
        lines.append(f"ssconform: expectations from {state.settings['expectations']}")
    return lines


# ---------------------------------------------------------------- collection


def _check_marker(item):
    markers = list(item.iter_markers(name="ssconform_check"))
    return markers


def _is_check(item) -> bool:
    """A check is a test carrying the marker, or any test in conformance/checks/."""
    if item.get_closest_marker("ssconform_check") is not None:
        return True
    try:
        path = Path(str(item.fspath)).resolve()
    except Exception:
        return False
    return CHECKS_DIR.resolve() in path.parents


def _meta(item) -> dict:
    marker = item.get_closest_marker("ssconform_check")
    kwargs = marker.kwargs
    callspec = getattr(item, "callspec", None)
    return {
        "id": kwargs["id"],
        "variant": callspec.id if callspec is not None else "",
        "nodeid": item.nodeid,
        "area": kwargs["id"].split("-")[0],
        "level": str(Level(kwargs["level"])),
        "title": kwargs.get("title") or "",
        "clause": kwargs.get("clause") or "",
        "requires": list(kwargs.get("requires") or ()),
        "topic": kwargs.get("topic"),
        "budget": kwargs.get("budget") or "LONG",
    }


def pytest_collection_modifyitems(session, config, items):
    checks = [item for item in items if _is_check(item)]
    if not checks:
        return
    problems = []
    owners: Dict[str, str] = {}
    for item in checks:
        markers = _check_marker(item)
        if len(markers) != 1:
            problems.append(f"{item.nodeid}: needs exactly one @check marker, has {len(markers)}")
            continue
        check_id = markers[0].kwargs.get("id", "")
        match = ID_PATTERN.match(check_id)
        stem = Path(str(item.fspath)).stem
        area = stem[len("test_"):].upper() if stem.startswith("test_") else stem.upper()
        if not match:
            problems.append(f"{item.nodeid}: check ID {check_id!r} is not AREA-NNN")
            continue
        if match.group(1) != area:
            problems.append(f"{item.nodeid}: check ID {check_id} must start with {area}- (file {stem}.py)")
        function = getattr(item, "originalname", None) or item.name
        owner = f"{stem}::{function}"
        if owners.setdefault(check_id, owner) != owner:
            problems.append(f"{item.nodeid}: check ID {check_id} is already used by {owners[check_id]}")
        kwargs = markers[0].kwargs
        try:
            Level(kwargs.get("level"))
        except ValueError:
            problems.append(f"{item.nodeid}: level {kwargs.get('level')!r} is not REQUIRED/PLATFORM/VERSION/EXTENSION")
        if not kwargs.get("title"):
            problems.append(f"{item.nodeid}: check {check_id} has no title (first docstring line)")
        for name in kwargs.get("requires") or ():
            from harness.core.capabilities import KNOWN

            if name not in KNOWN:
                problems.append(f"{item.nodeid}: unknown capability {name!r} in requires")
    if problems:
        raise pytest.UsageError("conformance check declarations are invalid:\n  " + "\n  ".join(problems))
    wanted = _wanted_ids(config)
    if wanted:
        keep, drop = [], []
        for item in items:
            if _is_check(item) and not _selected(_meta(item)["id"], wanted):
                drop.append(item)
            else:
                keep.append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
            checks = [item for item in checks if item not in drop]
    listing = config.getoption("ssconform_list")
    if listing:
        rows = [_meta(item) for item in checks]
        Path(listing).write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    elif _state(config) is None and not config.getoption("collectonly"):
        raise pytest.UsageError(
            "the conformance checks need an implementation: pass --impl stdlib (or reference, a "
            "dotted module name, or a .py path), set SSCONFORM_IMPL, or use `ssconform run`"
        )
    state = _state(config)
    if state is not None and state.expectations is not None:
        known = {_meta(item)["id"] for item in checks}
        for entry in state.expectations.unmatched(known):
            warnings.warn(
                pytest.PytestWarning(
                    f"expectation for {entry.id} in {state.settings['expectations']} matches no check"
                ),
                stacklevel=1,
            )


def _wanted_ids(config) -> List[str]:
    values = config.getoption("ssconform_checks") or []
    return [part.strip().upper() for value in values for part in value.split(",") if part.strip()]


def _selected(check_id: str, wanted: List[str]) -> bool:
    for pattern in wanted:
        if pattern == check_id:
            return True
        area = pattern[:-2] if pattern.endswith("-*") else pattern
        if "-" not in area and check_id.split("-")[0] == area:
            return True
    return False


# ---------------------------------------------------------------- fixtures


class Observation:
    """What a check saw, and what it expected, as structured data."""

    def __init__(self):
        self.observed: Dict[str, Any] = {}
        self.expected_values: Dict[str, Any] = {}
        self.outcome: Optional[Outcome] = None
        self.documented = True

    def __call__(self, key: str, value: Any) -> Any:
        self.observed[key] = to_jsonable(value)
        return value

    def expected(self, key: str, value: Any) -> None:
        self.expected_values[key] = to_jsonable(value)

    def summary(self, value: Any) -> str:
        """Record the short, OS-comparable form of the PLATFORM observation.

        It is what the report and ``ssconform diff`` compare, so it must be a
        verdict (``spins``, ``idles``, ``raises OSError [EBADF]``), never a
        measurement: raw numbers go in other keys, kept in the record."""
        text = value if isinstance(value, str) else summary(value)
        self.observed["summary"] = text
        return text

    def undocumented(self) -> None:
        """This observation is not the one the OS documentation speaks of (a
        simulated selector, say): record it without comparing it with the docs."""
        self.documented = False

    def timeline(self, intervals) -> None:
        """Record handler intervals for the report's concurrency timeline."""
        rows = list(intervals)
        if not rows:
            self.observed["timeline"] = []
            return
        origin = min(row["start"] for row in rows)
        self.observed["timeline"] = [
            {
                "client": index,
                "start": round(row["start"] - origin, 6),
                "end": round(row["end"] - origin, 6),
                "pid": row.get("pid"),
                "tid": row.get("tid"),
            }
            for index, row in enumerate(sorted(rows, key=lambda r: r["start"]))
        ]


OBSERVATION = pytest.StashKey[Observation]()


@pytest.fixture
def observe(request) -> Observation:
    """Record structured observations for the run record."""
    return request.node.stash.setdefault(OBSERVATION, Observation())


# ---------------------------------------------------------------- running


class _Watchdog:
    """SIGALRM-based per-check budget on POSIX main threads; a no-op elsewhere."""

    def __init__(self, budget: float, what: str):
        self.budget = budget
        self.what = what
        self.armed = False
        self.previous = None

    def _fire(self, signum, frame):
        interrupted = prerequisites.GUARD.take_interrupt()
        if interrupted is not None:  # another thread of the check called a function known to hang
            raise interrupted
        raise timeouts.HarnessTimeout(f"{self.what} (watchdog)", self.budget)

    def interrupt(self) -> None:
        """End the check's main thread now (through the watchdog's signal)."""
        if self.armed:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)

    def __enter__(self):
        usable = (
            hasattr(signal, "setitimer")
            and caps().signals
            and threading.current_thread() is threading.main_thread()
        )
        if usable:
            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.budget)
            self.armed = True
        return self

    def __exit__(self, *exc):
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    state = _state(item.config)
    if state is None or not _is_check(item):
        return
    meta = _meta(item)
    api.CURRENT["id"] = meta["id"]
    capabilities = caps()
    missing = [name for name in meta["requires"] if not capabilities.has(name)]
    if missing:
        pytest.skip(api.UNSUPPORTED_PREFIX + "capability absent: " + ", ".join(missing))
    # once per process, before its first check (harness.serving.prerequisite_probes); not for a
    # subject's implementation: the probes build servers in this process (the mirror refuses them)
    if not state.probed and getattr(state.impl, "subject", None) is None:
        state.probed = True
        from harness.serving import prerequisite_probes

        try:
            prerequisite_probes.run(state.impl.module)
        except Exception:  # noqa: BLE001  the probes only save time; the checks still judge
            pass
    # after the probes: a subject's probes touch its mirror, which is not this check's doing
    in_process_needed.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    # hookwrapper: the watchdog must surround the test function itself.
    state = _state(item.config)
    if state is None or not _is_check(item):
        yield
        return
    meta = _meta(item)
    budget = timeouts.scaled(meta["budget"])
    prerequisites.GUARD.check = meta["id"]  # slow-serve: GUARD.end_check spares the owner
    with _Watchdog(budget, f"check {meta['id']}") as watchdog, prerequisites.GUARD.active(watchdog.interrupt):
        yield


def _grade_phase(report, call, check_id: str = "") -> Optional[Outcome]:
    if report.passed:
        return None
    if report.skipped:
        reason = ""
        if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
            reason = str(report.longrepr[2])
        if "UNSUPPORTED:" in reason:
            return Outcome.UNSUPPORTED
        return Outcome.SKIP
    excinfo = call.excinfo
    if excinfo is not None:
        if excinfo.errisinstance(PreconditionFailed):
            if excinfo.value.prerequisite != check_id:
                return Outcome.PRECONDITION_FAILED
            return Outcome.TIMEOUT if excinfo.value.timed_out else Outcome.FAIL
        if excinfo.errisinstance(timeouts.HarnessTimeout):
            return Outcome.TIMEOUT
        if excinfo.errisinstance(AssertionError):
            return Outcome.FAIL
    return Outcome.ERROR


def _message(report) -> str:
    if report.passed:
        return ""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).replace("Skipped: ", "")
    try:
        crash = report.longrepr.reprcrash  # type: ignore[union-attr]
        return f"{crash.message}"[:2000]
    except AttributeError:
        return str(report.longrepr)[-2000:]


def _documented(state: PluginState, meta: dict, observation: Observation):
    """The documented expectation for this OS and whether the observation agrees."""
    from harness.report.platform_notes import accepted, documented_for, topic_for

    # The check's own topic, else one derived from its variant
    # (DISCONNECT-001[rst-TCPServer] -> rst).
    topic = meta.get("topic") or topic_for(meta["id"], meta["variant"])
    if not topic:
        return None, None

    if not observation.documented:
        return None, None
    os_name = state.fingerprint.get("os")
    documented = documented_for(topic, os_name)
    if not documented:
        return None, None
    observed = observation.observed.get("summary")
    if observed is None:
        return documented, None
    options = accepted(topic, os_name) or [documented["value"]]
    agrees = any(comparable(str(option)) == comparable(str(observed)) for option in options)
    return documented, agrees


def _runs_servers(item) -> bool:
    """Whether a check may run the implementation's servers: the API area only reads names,
    signatures and defaults, so a run-wide prerequisite finding (a missing method, a broken
    handler lifecycle) is never behind its failure (api_no_service_actions: API-026's own FAIL
    had become PRECONDITION_FAILED naming API-020)."""
    return not _meta(item)["id"].startswith("API-")


def _shorten_precondition_traceback(item, call) -> None:
    """prec-bind: a check that could not proceed because another check's behaviour is broken
    gets a one-frame traceback (the message names the prerequisite): pytest renders the full
    traceback of every failure, and for a defect that ends 200 checks PRECONDITION_FAILED that
    rendering alone doubled the run's CPU time (bind_activate_before_bind: 34 s vs 12 s)."""
    excinfo = call.excinfo
    if excinfo is None or not _is_check(item) or len(excinfo.traceback) <= 1:
        return
    value = excinfo.value
    broken = value if isinstance(value, prerequisites.PreconditionFailed) else (
        prerequisites.judged_broken_prerequisite(value, _runs_servers(item)) if isinstance(value, Exception)
        else None)
    if broken is not None and broken.prerequisite != _meta(item)["id"]:
        excinfo.traceback = excinfo.traceback[-1:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # hookwrapper: we need pytest's report first, then we grade it and may
    # turn an expected failure into pytest's own xfail representation.
    _shorten_precondition_traceback(item, call)
    outcome = yield
    report = outcome.get_result()
    state = _state(item.config)
    if state is None or not _is_check(item):
        return
    needs = in_process_needed.reason(call.excinfo.value if call.excinfo is not None else None)
    if needs and report.outcome != "skipped" and (call.when == "call" or not report.passed):
        # a subject run (--subject-python): the check reached for the implementation in
        # this process; that is UNSUPPORTED for the whole check, whatever it did next
        report.outcome = "skipped"
        report.longrepr = (str(item.fspath), item.location[1] or 0, api.UNSUPPORTED_PREFIX + needs)
    elif call.excinfo is not None and call.excinfo.errisinstance(UnsupportedFeature):
        # The harness found a capability missing only once it tried (an
        # IPv6 address family, AF_UNIX): that is UNSUPPORTED, shown as a skip.
        report.outcome = "skipped"
        report.longrepr = (str(item.fspath), item.location[1] or 0,
                           api.UNSUPPORTED_PREFIX + str(call.excinfo.value))
    entry = item.stash.setdefault(ENTRY, {"outcome": None, "message": "", "duration": 0.0})
    entry["duration"] += getattr(report, "duration", 0.0) or 0.0
    graded = _grade_phase(report, call, _meta(item)["id"])
    prerequisite = call.excinfo.value if graded == Outcome.PRECONDITION_FAILED else None
    if graded in (Outcome.FAIL, Outcome.ERROR, Outcome.TIMEOUT) and call.excinfo is not None:
        # (TIMEOUT too, prec-conc: a handler lifecycle found broken leaves a check waiting for a step)
        # the check constructed a server whose class the probes found not to construct at all,
        # or judged (verify) an exception that was a broken prerequisite's
        broken = prerequisites.judged_broken_prerequisite(call.excinfo.value, _runs_servers(item))
        if broken is not None and broken.prerequisite != _meta(item)["id"]:
            graded, prerequisite = Outcome.PRECONDITION_FAILED, broken
    fired = prerequisites.GUARD.fired if call.when == "call" else None
    if fired is not None and graded in (Outcome.FAIL, Outcome.ERROR, Outcome.TIMEOUT):
        # a call of a function known not to return was ended (harness.core.prerequisites.GUARD):
        # whatever failed after it, the check could not proceed (its owner: it hung)
        # (coll-server: a finding that is not a hang leaves its owner's own verdict)
        graded = (Outcome.PRECONDITION_FAILED if fired.prerequisite != _meta(item)["id"]
                  else Outcome.TIMEOUT if fired.timed_out else graded)
        prerequisite = fired if graded == Outcome.PRECONDITION_FAILED else None
    else:
        fired = None
    if graded is not None and entry["outcome"] in (None, Outcome.PASS, Outcome.INFO):
        entry["outcome"] = graded
        entry["message"] = _message(report)
        if fired is not None:
            entry["message"] = f"{fired}; then: {entry['message']}"[:2000]
        if prerequisite is not None:
            entry["prerequisite"] = prerequisite.prerequisite
    if call.when == "call" and graded is None:
        meta = _meta(item)
        entry["outcome"] = Outcome.INFO if meta["level"] == Level.PLATFORM.value else Outcome.PASS

    if call.when != "teardown":
        if graded in (Outcome.FAIL, Outcome.ERROR, Outcome.TIMEOUT, Outcome.PRECONDITION_FAILED) \
                and state.expectations is not None:
            _apply_expectation_to_report(item, state, report, graded)
        return

    meta = _meta(item)
    observation = item.stash.get(OBSERVATION, Observation())
    final = entry["outcome"] or Outcome.ERROR
    expected_outcome = reason = link = None
    if state.expectations is not None:
        match = state.expectations.lookup(
            meta["id"], meta["variant"], state.fingerprint, state.impl.describe()
        )
        if match is not None:
            expected_outcome = str(match.outcome)
            reason = match.reason
            link = getattr(match, "link", None)
            final = Outcome(str(state.expectations.apply(final, match)))
            if final == Outcome.XPASS and report.passed:
                report.outcome = "failed"
                report.longrepr = (
                    f"XPASS: {meta['id']} was expected to end {expected_outcome} "
                    f"({reason}) but ended {entry['outcome']}; the expectation is stale"
                )
    documented, agrees = (None, None)
    if meta["level"] == Level.PLATFORM.value:
        documented, agrees = _documented(state, meta, observation)
    extra = {"expectation_link": link} if link else {}
    record_entry = records.check_entry(
        id=meta["id"],
        variant=meta["variant"],
        nodeid=meta["nodeid"],
        area=meta["area"],
        level=meta["level"],
        title=meta["title"],
        clause=meta["clause"],
        requires=meta["requires"],
        outcome=str(final),
        expected_outcome=expected_outcome,
        expectation_reason=reason,
        observed=observation.observed,
        expected=observation.expected_values,
        documented=to_jsonable(documented) if documented else None,
        agrees=agrees,
        duration=round(entry["duration"], 6),
        message=entry["message"],
        prerequisite=entry.get("prerequisite"),
        **extra,
    )
    report.user_properties.append(("ssconform", record_entry))


def _apply_expectation_to_report(item, state: PluginState, report, graded: Outcome) -> None:
    """Show an expected failure as pytest's xfail so a plain pytest run stays green."""
    meta = _meta(item)
    match = state.expectations.lookup(meta["id"], meta["variant"], state.fingerprint, state.impl.describe())
    if match is None:
        return
    if state.expectations.apply(graded, match) == Outcome.XFAIL:
        report.outcome = "skipped"
        report.wasxfail = f"{meta['id']}: {match.reason}"


def pytest_sessionstart(session):
    state = _state(session.config)
    if state is not None:
        state.started = time.time()
        state.entries.clear()
        state.workers.clear()


def pytest_sessionfinish(session, exitstatus):
    config = session.config
    state = _state(config)
    if state is None or hasattr(config, "workerinput"):
        return  # inert, or an xdist worker (the controller writes the record)
    if config.getoption("collectonly"):
        return
    if state.out is None:
        return
    options = dict(state.settings)
    options["xdist_workers"] = len(state.workers)  # workers that actually ran checks
    options["selection"] = config.getoption("keyword") or None
    options["repeat_index"] = int(os.environ["SSCONFORM_REPEAT_INDEX"]) if os.environ.get("SSCONFORM_REPEAT_INDEX") else None
    record = records.new_record(state.impl.describe(), state.fingerprint, options)
    if state.started:
        record["started"] = datetime.datetime.fromtimestamp(state.started, datetime.timezone.utc).isoformat()
    aborted = None
    if exitstatus not in (0, 1, 5):
        aborted = f"pytest exited with status {int(exitstatus)}"
    entries = sorted(state.entries, key=lambda e: (e["id"], e["variant"]))
    records.finish_record(record, entries, aborted=aborted)
    state.out.mkdir(parents=True, exist_ok=True)
    state.record_path = records.write_record(record, state.out)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    state = _state(config)
    if state is None or hasattr(config, "workerinput") or not state.entries:
        return
    counts: Dict[str, int] = {}
    for entry in state.entries:
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    order = [str(o) for o in Outcome]
    text = ", ".join(f"{counts[name]} {name}" for name in order if name in counts)
    terminalreporter.write_sep("=", f"ssconform {state.impl.name}: {text}")
    if state.record_path is not None:
        terminalreporter.write_line(f"ssconform record: {state.record_path}")
