"""Nox sessions for the socketserver conformance kit: one matrix everywhere.

Theory of operation
-------------------
The matrix is *Python x implementation*.  The Python axis has one source of
truth, the ``Programming Language :: Python :: 3.X`` classifiers of
``pyproject.toml`` (read with ``nox.project.python_versions``); a test
(``tests/test_matrix_config.py``) keeps them equal to
``harness.implementations.pythons.VERSIONS``, ``tox.ini`` and the GitHub workflow.  The
implementation axis is :data:`IMPLS` (``stdlib``, ``reference``).

Interpreters are found without ``pyenv global``: at import time
:func:`harness.implementations.pythons.find` looks for each version (``PATH``, pyenv's
``versions/`` directory, the Windows ``py`` launcher).  Each one found is
symlinked as ``pythonX.Y`` into ``.nox/_interpreters/``, and that directory is
put first on ``PATH``, so nox's own discovery finds it even where only an
inactive pyenv shim would answer.  A version that is not installed is
skipped with a message (``error_on_missing_interpreters = False``), never
downloaded (``download_python = "never"``).

Sessions (``nox -l`` lists them with these docstrings):

``tests-3.X``                     the kit's own tests
``conformance-3.X(IMPL)``         one cell: fingerprint, then the suite;
                                  records go to ``ssconform-report/records/cpython3.X-IMPL/``
``shaped(IMPL-SHAPE)``            one OS-shaped cell on the default Python: the suite
                                  with ``--os-shape SHAPE`` (windows, macos), records
                                  labelled simulated, under ``records/<python>-IMPL-SHAPE-shape/``
``tests_shaped(SHAPE)``           the kit's own tests with ``SSCONFORM_OS_SHAPE=SHAPE``
                                  (as far as Linux can stand in for that OS's CI job)
``report``                        merges every record into ``ssconform-report/``
``matrix``                        every CPython found (3.14t, 3.15t too) x IMPLS, the shaped
                                  cells, then ``report``; the cells run as separate
                                  ``nox`` processes, up to ``MATRIX_JOBS`` at once, each
                                  one's output printed whole when it ends
                                  (``nox -s matrix -- --pypy`` adds the PyPy cells;
                                  other arguments go to every cell's ``ssconform run``)
``pypy(IMPL)``                    the suite under ``pypy3``, if installed
``alternatives``                  stdlib (the baseline), gevent, eventlet,
                                  eventlet_green and future on the default
                                  Python, then docs/alternatives.md (--strict)
``subject(TAG)``                  the suite on this Python, the stdlib of an interpreter that
                                  cannot host the kit (2.7, 3.6, 3.7, 3.8, pypy3) through the
                                  subject agent (``--subject-python``); a missing one is skipped
``equivalence-3.X``               the host's own stdlib through the agent gives the same outcomes
                                  as in-process (``tests/subject/test_subject_equivalence.py``)
``lint`` / ``typing``             ruff / mypy

PyPy: Debian's ``pypy3`` may lack ``venv``/``ensurepip``; the ``pypy``
session therefore always uses the ``virtualenv`` backend, which seeds pip
from its own bundled wheels and does not need either module.

Every session passes ``session.posargs`` on (``nox -s conformance -- -k TCP``).
A failing cell makes nox exit non-zero, but the ``matrix`` runs every other
cell and still ends with the merged report.
"""

from __future__ import annotations

import concurrent.futures
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Tuple

import nox

ROOT = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from harness.core import timeouts  # noqa: E402  (needs ROOT on sys.path)
from harness.implementations import pythons  # noqa: E402  (needs ROOT on sys.path)

nox.needs_version = ">=2024.3.2"
nox.options.error_on_missing_interpreters = False
nox.options.download_python = "never"
# uv when it is installed, else virtualenv (which also serves PyPy).
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests"]

PYPROJECT = nox.project.load_toml(str(ROOT / "pyproject.toml"))
# The classifiers' versions, then (for the Free Threading classifier) 3.14t and 3.15t.
PYTHONS: List[str] = nox.project.python_versions(PYPROJECT)
IMPLS = ("stdlib", "reference")
#: OS shapes (harness/shapes/*.toml) for the ``shaped`` cells: default Python x IMPLS x SHAPES.
SHAPES = ("windows", "macos")
#: The ``alternatives`` session's implementations; ``stdlib`` first is their baseline.
ALTERNATIVES = ("stdlib", "gevent", "eventlet", "eventlet_green", "future")
ALTERNATIVES_PAGE = ROOT / "docs" / "alternatives.md"

REPORT_DIR = ROOT / "ssconform-report"
RECORDS = REPORT_DIR / "records"
LINK_DIR = ROOT / ".nox" / "_interpreters"


def _expose_interpreters(versions: List[str]) -> Dict[str, str | None]:
    """Find each version and make it visible to nox as ``pythonX.Y``.

    Returns ``{version: path or None}``.  Symlinking is best effort: where it
    is not possible (Windows without the privilege) nox's own discovery,
    which knows the ``py`` launcher, is left to do the work.
    """
    found: Dict[str, str | None] = {}
    linked = False
    for version in versions:
        path = pythons.find(version)
        found[version] = path
        link = LINK_DIR / f"python{version}"
        if not path or " " in path:  # missing, or "py -3.X" (the launcher)
            if link.is_symlink():  # left from an interpreter since removed
                link.unlink()
            continue
        try:
            LINK_DIR.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                if os.path.realpath(link) == os.path.realpath(path):
                    linked = True
                    continue
                link.unlink()
            link.symlink_to(path)
            linked = True
        except OSError:
            continue
    if linked:
        os.environ["PATH"] = str(LINK_DIR) + os.pathsep + os.environ.get("PATH", "")
    return found


FOUND = _expose_interpreters(PYTHONS)


_WHICH_PYTHON = "import sys; print(sys.implementation.name + '%d.%d' % sys.version_info[:2])"


def _cell_dir(session: nox.Session, impl: str) -> pathlib.Path:
    """``records/<implementation><X.Y>-<impl>``: the names tox.ini uses too."""
    python = session.run("python", "-c", _WHICH_PYTHON, silent=True)
    label = str(python).strip() if python else f"py{session.python}"
    return RECORDS / f"{label}-{impl}"


def _run_cell(session: nox.Session, impl: str) -> None:
    """Print the fingerprint, then run the suite for ``impl`` into its cell directory."""
    out = _cell_dir(session, impl)
    shutil.rmtree(out, ignore_errors=True)
    session.run("ssconform", "fingerprint", "--impl", impl)
    session.run(
        "ssconform", "run", "--impl", impl, "--out", str(out), "--no-report", *session.posargs
    )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The kit's own tests (tests/) on each Python."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=PYTHONS, default=False)
@nox.parametrize("impl", [nox.param(impl, id=impl) for impl in IMPLS])
def conformance(session: nox.Session, impl: str) -> None:
    """One matrix cell: the conformance suite for IMPL on this Python."""
    session.install("-e", ".")
    _run_cell(session, impl)


@nox.session(default=False)
@nox.parametrize("impl, shape", [nox.param(impl, shape, id=f"{impl}-{shape}") for impl in IMPLS for shape in SHAPES])
def shaped(session: nox.Session, impl: str, shape: str) -> None:
    """One cell reshaped as SHAPE (simulated on this OS; harness.shapes) for IMPL."""
    session.install("-e", ".")
    out = _cell_dir(session, f"{impl}-{shape}-shape")
    shutil.rmtree(out, ignore_errors=True)
    session.run("ssconform", "run", "--impl", impl, "--os-shape", shape, "--out", str(out), "--no-report",
                *session.posargs)


@nox.session(default=False)
@nox.parametrize("shape", [nox.param(shape, id=shape) for shape in SHAPES])
def tests_shaped(session: nox.Session, shape: str) -> None:
    """The kit's own tests with every interpreter reshaped as SHAPE (simulated on this OS)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs, env={"SSCONFORM_OS_SHAPE": shape})


@nox.session(default=False)
@nox.parametrize("tag", [nox.param(tag, id=tag) for tag in (*pythons.SUBJECT_VERSIONS, "pypy3")])
def subject(session: nox.Session, tag: str) -> None:
    """The stdlib of TAG (2.7 ... 3.8, pypy3) as the subject, through the agent; skipped when missing."""
    found = pythons.find_subjects().get(tag)
    if found is None:
        session.skip(f"no {tag} interpreter on this machine (harness.implementations.pythons)")
    session.install("-e", ".")
    out = RECORDS / f"subject-{tag}-stdlib"
    shutil.rmtree(out, ignore_errors=True)
    session.run("python", "-m", "harness.subject.cell", tag, "--out", str(out), "--no-report", *session.posargs)


@nox.session(python=PYTHONS[:5], default=False)
def equivalence(session: nox.Session) -> None:
    """The host's stdlib through the agent: the same outcomes as in-process (3.9-3.13)."""
    session.install("-e", ".", "pytest", "pytest-xdist")  # not .[test]: no gevent build
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", "-n", "0",
                "tests/subject/test_subject_equivalence.py", *session.posargs)


@nox.session(python="pypy3", venv_backend="virtualenv", default=False)
@nox.parametrize("impl", [nox.param(impl, id=impl) for impl in IMPLS])
def pypy(session: nox.Session, impl: str) -> None:
    """The conformance suite under pypy3 (skipped when pypy3 is not installed)."""
    session.install("-e", ".")
    _run_cell(session, impl)


def _pypy_cells() -> List[str]:
    """Record directories of PyPy cells (``nox -s pypy``) and of the CPython cells of the
    same ``X.Y`` (their baseline, ``nox -s conformance-X.Y``), where they exist."""
    if not RECORDS.is_dir():
        return []
    pypy = sorted(p for p in RECORDS.glob("pypy*-*") if p.is_dir() and any(p.glob("*.json")))
    versions = {p.name[len("pypy"):].split("-", 1)[0] for p in pypy}
    cpython = sorted(p for v in versions for p in RECORDS.glob(f"cpython{v}-*")
                     if p.is_dir() and any(p.glob("*.json")))
    return [str(p) for p in pypy + cpython]


@nox.session(default=False)
def alternatives(session: nox.Session) -> None:
    """gevent, eventlet, eventlet_green and future against stdlib, then docs/alternatives.md."""
    session.install("-e", ".[gevent,eventlet,future]")
    out = _cell_dir(session, "alternatives")
    shutil.rmtree(out, ignore_errors=True)
    args: List[str] = []
    for impl in ALTERNATIVES:
        session.run("ssconform", "fingerprint", "--impl", impl)
        args += ["--impl", impl]
    # Each implementation with its committed expectations/<impl>.toml: exit 0 unless
    # something deviates that no expectation explains.
    session.run("ssconform", "run", *args, "--out", str(out), "--no-report", *session.posargs)
    pypy = _pypy_cells()
    if not pypy:
        session.log("no PyPy records under ssconform-report/records/ (nox -s pypy and "
                    "conformance-3.X for its baseline): the page will have no PyPy sections")
    # --strict: a deviation without a reason (expectation or note) fails the session.
    session.run("python", "-m", "harness.implementations.alternatives", str(out), *pypy,
                "--out", str(ALTERNATIVES_PAGE), "--strict")


@nox.session(reuse_venv=True, default=False)
def report(session: nox.Session) -> None:
    """Merge every record under ssconform-report/records/ into one report."""
    if not RECORDS.is_dir() or not any(RECORDS.rglob("*.json")):
        session.skip(f"no records under {RECORDS}: run a conformance cell or `nox -s matrix` first")
    session.install("-e", ".")
    session.run("ssconform", "report", str(RECORDS), "--out", str(REPORT_DIR), *session.posargs)
    session.log(f"report: {REPORT_DIR / 'report.html'} and {REPORT_DIR / 'report.md'}")


def _matrix_cells(with_pypy: bool) -> List[str]:
    """The nox sessions ``matrix`` runs, one per cell.  A new kind of cell is one line here."""
    cells = [f"conformance-{version}({impl})" for version, path in FOUND.items() if path
             for impl in IMPLS]
    cells += [f"shaped({impl}-{shape})" for impl in IMPLS for shape in SHAPES]
    if with_pypy and pythons.find_pypy():
        cells += [f"pypy({impl})" for impl in IMPLS]
    return cells


#: Cells run at once by ``matrix`` (``SSCONFORM_MATRIX_JOBS`` overrides; 1 = one after the
#: other).  A cell mostly waits (venv creation, pip, a suite of latency-bound checks), so
#: more cells than cores overlap well; docs/test-timing.md has the measurement.
MATRIX_JOBS = 3
#: One cell's bound: far above a healthy cell (under a minute), below .ci/run's own bound.
CELL_BOUND = timeouts.long() * 10


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Interrupt a cell's nox (which then stops its own child), terminate, kill; reap."""
    steps = [process.terminate, process.kill]
    if os.name != "nt":  # Windows' send_signal knows no SIGINT
        steps.insert(0, lambda: process.send_signal(signal.SIGINT))
    for step in steps:
        if process.poll() is not None:
            return
        try:
            step()
            process.wait(timeout=timeouts.short())
            return
        except subprocess.TimeoutExpired:
            continue
        except OSError:  # gone meanwhile
            break
    process.wait(timeout=timeouts.short())


class _Cells:
    """The running cell processes, so that an interrupt can stop every one of them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: List[subprocess.Popen[bytes]] = []
        self.stopping = False

    def run(self, name: str, args: List[str]) -> Tuple[str, int, float, str]:
        """One cell as ``nox -s NAME -- ARGS``, its output kept apart (printed whole later)."""
        started = time.monotonic()
        command = [sys.executable, "-m", "nox", "--no-color", "-f", str(ROOT / "noxfile.py"),
                   "-s", name, "--", *args]
        with tempfile.TemporaryFile() as log:
            with self.lock:
                if self.stopping:
                    return name, -1, 0.0, "not started: the matrix was interrupted"
                process = subprocess.Popen(command, cwd=str(ROOT), stdout=log,
                                           stderr=subprocess.STDOUT)
                self.running.append(process)
            try:
                status = process.wait(timeout=CELL_BOUND)
            except subprocess.TimeoutExpired:
                _stop(process)
                status = -1
                log.write(f"\nmatrix: cell stopped after its bound of {CELL_BOUND:.0f} s\n".encode())
            finally:
                with self.lock:
                    self.running.remove(process)
            log.seek(0)
            output = log.read().decode("utf-8", "replace")
        return name, status, time.monotonic() - started, output

    def stop_all(self) -> None:
        with self.lock:
            self.stopping = True
            running = list(self.running)
        for process in running:
            _stop(process)


def _run_cells(cells: List[str], args: List[str], jobs: int) -> List[str]:
    """Run ``cells`` at most ``jobs`` at a time; print each one's output as one block when it
    ends.  Ctrl-C or SIGTERM stops the running cells (nothing is orphaned) and starts no
    more.  Returns the names of the cells that failed."""
    state = _Cells()
    failed: List[str] = []

    def _terminated(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, _terminated)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [pool.submit(state.run, name, args) for name in cells]
        for future in concurrent.futures.as_completed(futures):
            name, status, seconds, output = future.result()
            verdict = "ok" if status == 0 else f"FAILED (exit status {status})"
            print(f"\n---- cell {name}: {verdict}, {seconds:.0f} s ----", flush=True)
            print(output.rstrip(), flush=True)
            if status != 0:
                failed.append(name)
    except BaseException:
        state.stop_all()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        signal.signal(signal.SIGTERM, previous)
    return failed


@nox.session(python=False, default=False)
def matrix(session: nox.Session) -> None:
    """Everything this machine has: every CPython found x {stdlib, reference}, the OS-shaped cells, then the report."""
    with_pypy = "--pypy" in session.posargs
    # Positional arguments are global in nox: hand the cells only theirs.
    cell_args = [arg for arg in session.posargs if arg != "--pypy"]
    shutil.rmtree(RECORDS, ignore_errors=True)
    missing = [version for version, path in FOUND.items() if not path]
    if missing:
        session.log(f"not installed, skipped: Python {', '.join(missing)}")
    if with_pypy and not pythons.find_pypy():
        session.log("pypy3 is not installed: PyPy cells skipped")
    for version, path in FOUND.items():
        if path:
            session.log(f"Python {version}: {path}")
    cells = _matrix_cells(with_pypy)
    jobs = max(1, int(os.environ.get("SSCONFORM_MATRIX_JOBS", MATRIX_JOBS)))
    session.log(f"running {len(cells)} cells, {jobs} at a time, then the report")
    failed = _run_cells(cells, cell_args, jobs)
    # The report comes after this session, also when a cell failed.
    session.notify("report", posargs=[])
    if failed:
        session.error(f"{len(failed)} of {len(cells)} cells failed: {', '.join(failed)}")
    session.log(f"all {len(cells)} cells passed")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".", *session.posargs)


@nox.session(default=False)
def typing(session: nox.Session) -> None:
    """mypy on harness and reference_impl (configured in pyproject.toml)."""
    session.install("mypy", "-e", ".")
    session.run("mypy", *session.posargs)
