"""The agent under interpreters and launch conditions nobody named: each one serves.

Issue 17 names CPython 2.7, 3.6-3.13 and PyPy 3; the protocol should serve
any interpreter that can run ``harness/subject/agent.py``, started however a
user starts it.  Each test runs the agent through the host's own session
(:class:`~harness.subject.session.SubjectSession`) under one interpreter
(2.7, 3.6 and ``pypy3`` as :mod:`harness.implementations.pythons` finds them,
Debian's own ``/usr/bin/python3.11``, a virtual environment in a directory
whose name has a space and a non-ASCII letter) and one condition:

* flags: ``-OO`` (no docstrings, no asserts), ``-I`` (``-E -s -S`` on 2.7:
  no site, no PYTHONPATH), ``PYTHONWARNINGS=error``;
* ``LC_ALL=C`` with a non-ASCII temporary directory: Python 3.6 and PyPy 3.9
  then name files in ASCII, while the host's paths are UTF-8;
* ``--impl reference`` under ``-I``: the kit's checkout is not on sys.path;
* no ``os.fork`` and no ``socket.AF_UNIX`` in the subject (a sitecustomize
  removes them): the subject's capabilities say so, and a server needing one
  is :class:`~harness.core.addresses.UnsupportedFeature`, not an error;
* a file implementation whose module lacks the mix-ins, and one in a
  non-ASCII path whose import fails with a non-ASCII message.

A missing interpreter is a skip naming it, never a failure.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from harness.core import timeouts
from harness.core.addresses import UnsupportedFeature
from harness.core.prerequisites import MissingClass
from harness.implementations import pythons
from harness.serving import instrument
from harness.subject.client import AgentRefused, SubjectAgent
from harness.subject.session import SubjectSession

REPO = Path(__file__).resolve().parents[2]
DEBIAN_PYTHON = "/usr/bin/python3.11"
INTERPRETERS = ("2.7", "3.6", "pypy3", "debian-3.11", "venv")
_FOUND: dict = {}

NO_FORK_NO_UNIX = """\
import os, socket
for _name in ("fork", "forkpty"):
    if hasattr(os, _name):
        delattr(os, _name)
if hasattr(socket, "AF_UNIX"):
    del socket.AF_UNIX
"""

WITHOUT_MIXINS = """\
try:
    import socketserver as _ss
except ImportError:
    import SocketServer as _ss
for _name in dir(_ss):
    if not _name.startswith(("Threading", "Forking", "__")):
        globals()[_name] = getattr(_ss, _name)
"""


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    """A virtual environment of the host's interpreter, under a path with a space and an ü."""
    where = tmp_path_factory.mktemp("venv") / "exe dir \u00fc"
    try:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True,
                       capture_output=True, timeout=timeouts.long())
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"no virtual environment could be made here: {exc!r}")
    return str(where / "bin" / "python") if os.name == "posix" else str(where / "Scripts" / "python.exe")


@pytest.fixture(params=INTERPRETERS)
def interpreter(request):
    """``(tag, path, version)`` of one interpreter, or a skip naming it."""
    tag = request.param
    if tag == "venv":
        path = request.getfixturevalue("venv_python")
    elif tag == "debian-3.11":
        path = DEBIAN_PYTHON if os.path.exists(DEBIAN_PYTHON) else None
    else:
        if not _FOUND:
            _FOUND.update(pythons.find_subjects())
        path = _FOUND.get(tag)
    if path is None:
        pytest.skip(f"no {tag} interpreter on this machine")
    out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, timeout=timeouts.long(), check=True)
    return tag, path, tuple(int(p) for p in out.stdout.split("."))


def _session(python, impl="stdlib"):
    return SubjectSession(python, impl)


def _echo(echo_through, session, server_class):
    """``echo_through`` (conftest), its teardown checked: the reply, the handler's pids, the server."""
    reply, events, proc = echo_through(session, server_class)
    assert proc.teardown["hung"] == [], f"{server_class}: teardown hung: {proc.teardown}"
    return reply, {iv.pid for iv in instrument.intervals(events, "handle")}, proc


def _flags(version):
    return ["-I"] if version >= (3, 4) else ["-E", "-s", "-S"]


@pytest.mark.parametrize("condition", ["-OO", "isolated", "PYTHONWARNINGS=error"])
def test_it_loads_introspects_and_serves_under_launch_flags(interpreter, condition, monkeypatch, echo_through):
    tag, path, version = interpreter
    if condition == "PYTHONWARNINGS=error":
        monkeypatch.setenv("PYTHONWARNINGS", "error")
        words = [path]
    else:
        words = [path] + (["-OO"] if condition == "-OO" else _flags(version))
    # shell-quoted words: the venv under a path with a space takes flags too (interpreter_words)
    session = _session(shlex.join(words) if len(words) > 1 else path)
    try:
        impl = session.implementation()
        assert impl.module_name == ("SocketServer" if version < (3, 0) else "socketserver")
        assert impl.api_version == version[:2]
        assert "serve_forever" in vars(impl.module.BaseServer)
        reply, pids, proc = _echo(echo_through, session, "ThreadingTCPServer")
    finally:
        session.close()
    assert reply == b"ping\n", f"{tag} {condition}: echo {reply!r}"
    assert pids == {proc.pid}


def test_a_non_utf8_locale_and_a_non_ascii_tmpdir(interpreter, monkeypatch, echo_through):
    """Under LC_ALL=C, 3.6 and PyPy 3.9 name files in ASCII: the host's UTF-8 paths
    (event log, AF_UNIX directory) must still reach the same files."""
    tag, path, version = interpreter
    base = tempfile.mkdtemp(prefix="ssc \u00e9 ", dir="/tmp" if os.path.isdir("/tmp") else None)
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("LANG", "C")
    monkeypatch.setattr(tempfile, "tempdir", base)
    session = _session(path)
    try:
        session.implementation()
        for server_class in ("ThreadingTCPServer", "ThreadingUnixStreamServer", "ForkingUDPServer"):
            try:
                reply, _, proc = _echo(echo_through, session, server_class)
            except UnsupportedFeature:  # no AF_UNIX or fork on this platform
                continue
            assert reply == b"ping\n", f"{tag} {server_class}: echo {reply!r}"
            if "Unix" in server_class:
                assert proc.address.startswith(base), f"{tag}: the AF_UNIX path {proc.address!r} is not under {base!r}"
    finally:
        session.close()
        shutil.rmtree(base, ignore_errors=True)


def test_reference_loads_under_isolation_from_the_kits_checkout(interpreter):
    """-I hides PYTHONPATH, which names the kit's checkout: reference_impl is still found.
    (Not the host's own interpreter: the kit's editable install puts it on sys.path.)"""
    tag, path, version = interpreter
    if version < (3, 9):
        pytest.skip(f"{tag}: reference_impl needs Python 3.9+")
    session = _session(shlex.join([path, "-I"]), "reference")
    try:
        impl = session.implementation()
    finally:
        session.close()
    assert impl.module_name == "reference_impl" and impl.name == "reference"


def test_absent_fork_and_af_unix_are_the_subjects_capabilities(interpreter, tmp_path, monkeypatch, echo_through):
    tag, path, version = interpreter
    (tmp_path / "sitecustomize.py").write_text(NO_FORK_NO_UNIX)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    session = _session(path)
    try:
        session.implementation()
        caps = session.fingerprint()["capabilities"]
        assert (caps["fork"], caps["af_unix"]) == (False, False), f"{tag}: {caps}"
        for server_class, capability in (("ForkingTCPServer", "fork"), ("ThreadingUnixStreamServer", "af_unix")):
            with pytest.raises(UnsupportedFeature) as raised:
                _echo(echo_through, session, server_class)
            assert raised.value.capability == capability, f"{tag} {server_class}: {raised.value}"
        reply, _, _ = _echo(echo_through, session, "ThreadingUDPServer")
        assert reply == b"ping\n"
    finally:
        session.close()


def test_a_module_without_the_mixins(interpreter, tmp_path, echo_through):
    tag, path, version = interpreter
    source = tmp_path / "without_mixins.py"
    source.write_text(WITHOUT_MIXINS)
    session = _session(path, str(source))
    try:
        impl = session.implementation()
        assert "ThreadingMixIn" not in vars(impl.module)
        reply, _, _ = _echo(echo_through, session, "TCPServer")
        assert reply == b"ping\n"
        with pytest.raises(MissingClass, match="ThreadingTCPServer"):
            _echo(echo_through, session, "ThreadingTCPServer")
    finally:
        session.close()


def test_a_failing_import_with_a_non_ascii_message_is_refused_not_fatal(interpreter, tmp_path, monkeypatch):
    """Python 2 formatted such an error with unicode(exc), and the agent died."""
    tag, path, version = interpreter
    directory = tmp_path / "impl \u00e9"
    directory.mkdir()
    source = directory / "broken_\u00e9.py"
    source.write_bytes("# -*- coding: utf-8 -*-\nraise ImportError('cannot load \u00e9')\n".encode("utf-8"))
    monkeypatch.setenv("LC_ALL", "C")
    agent = SubjectAgent.start(path)
    try:
        with pytest.raises(AgentRefused, match="cannot load") as refused:
            agent.request("load", impl=str(source))
        assert "ImportError" in (refused.value.details.get("type"), str(refused.value)), f"{tag}: {refused.value}"
        assert agent.request("ping")["clock"] > 0, f"{tag}: the agent did not survive the refusal"
    finally:
        agent.stop()


def test_a_run_judges_the_subjects_capabilities_not_the_hosts(tmp_path):
    """A subject without os.fork and AF_UNIX (the host has both): the gated API checks
    expect no Forking*/Unix* names and pass, a forking server check is UNSUPPORTED
    naming the capability.  (They judged by the host's os: API-002 failed.)"""
    if os.name != "posix":
        pytest.skip("the subject is wrapped by a POSIX shell script")
    (tmp_path / "sitecustomize.py").write_text(NO_FORK_NO_UNIX)
    wrapper = tmp_path / "subject-python"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH="{tmp_path}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    out = tmp_path / "out"
    selected = ("test_forking_names_follow_os_fork or test_unix_names_follow_af_unix or "
                "test_forking_server_follows_os_fork or test_forking_stream_server_overlaps")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance.checks",
               "--impl", "stdlib", "--ssconform-out", str(out), "-q", "-n", "0", "-k", selected,
               "--subject-python", str(wrapper)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SSCONFORM_") or k == "SSCONFORM_TIMEOUT_MULTIPLIER"}
    done = subprocess.run(command, cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=timeouts.long() * 4)
    records = sorted(out.glob("*.json"))
    assert len(records) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    record = json.loads(records[0].read_text(encoding="utf-8"))
    assert record["fingerprint"]["capabilities"]["fork"] is False
    outcomes = {(c["id"], c["variant"]): (c["outcome"], c["message"]) for c in record["checks"]}
    for check_id in ("API-002", "API-003", "TUTORIAL-006"):
        found = [v for k, v in outcomes.items() if k[0] == check_id]
        assert found and all(o in ("PASS", "INFO") for o, _ in found), f"{check_id}: {found}"  # PLATFORM: INFO
    forking = [v for k, v in outcomes.items() if k[0] == "CONCURRENCY-003"]
    assert forking and all(o == "UNSUPPORTED" and "capability absent: fork" in m for o, m in forking), forking
