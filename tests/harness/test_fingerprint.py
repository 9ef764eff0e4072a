"""The platform fingerprint: keys, CI metadata, absent rlimit, no clear hostname."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys

import jsonschema
import pytest

from harness import shapes
from harness.core import capabilities, timeouts
from harness.implementations import resolve
from harness.results import fingerprint, records

KEYS = {
    "os", "os_release", "os_version", "machine", "python_implementation", "python_version",
    "python_build", "gil", "capabilities", "selector", "default_selector", "mp_start_method",
    "rlimit_nofile", "hostname_hash", "ci",
}

GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "RUNNER_OS": "macOS",
    "RUNNER_ARCH": "ARM64",
    "ImageOS": "macos14",
    "ImageVersion": "20240101.1",
    "GITHUB_WORKFLOW": "conformance",
    "GITHUB_RUN_ID": "123",
    "GITHUB_JOB": "matrix",
    "GITHUB_REPOSITORY": "o/r",
    "GITHUB_SHA": "abc",
}


def _validator():
    return jsonschema.Draft202012Validator(
        {"$ref": "#/$defs/fingerprint", "$defs": records.SCHEMA["$defs"]}
    )


def test_keys_present_and_valid():
    fp = fingerprint.fingerprint(env={})
    shaped = shapes.active()  # SSCONFORM_OS_SHAPE: the record says which shape
    assert set(fp) == (KEYS | {"simulated"} if shaped else KEYS)
    if shaped:
        assert fp["simulated"]["shape"] == shaped["shape"] and fp["os"] == shaped["on"]
    _validator().validate(fp)
    assert fp["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert fp["gil"] in ("enabled", "disabled", "unknown")
    assert fp["ci"] is None
    json.dumps(fp, allow_nan=False)


def test_impl_extra_included_with_an_implementation():
    impl = dataclasses.replace(resolve("stdlib"), extra={"gevent": "24.2.1", "greenlet": "3.0.3"})
    fp = fingerprint.fingerprint(impl, env={})
    assert fp["impl_extra"] == {"gevent": "24.2.1", "greenlet": "3.0.3"}
    _validator().validate(fp)
    assert "impl_extra" not in fingerprint.fingerprint(env={})


def test_hostname_only_hashed():
    fp = fingerprint.fingerprint(env={})
    text = json.dumps(fp)
    host = socket.gethostname()
    if len(host) >= 4:
        assert host not in text
    assert fp["hostname_hash"] == fingerprint.hostname_hash(host)
    assert fingerprint.hostname_hash("a") != fingerprint.hostname_hash("b")


def test_ci_metadata_from_github_env():
    fp = fingerprint.fingerprint(env=GITHUB_ENV)
    assert fp["ci"] == {
        "provider": "github-actions", "runner_os": "macOS", "runner_arch": "ARM64",
        "image": "macos14", "image_version": "20240101.1", "workflow": "conformance",
        "run_id": "123", "job": "matrix", "repository": "o/r", "sha": "abc",
    }
    _validator().validate(fp)
    partial = fingerprint.ci_metadata({"GITHUB_ACTIONS": "true"})
    assert partial["provider"] == "github-actions" and partial["runner_os"] is None
    assert fingerprint.ci_metadata({"GITHUB_ACTIONS": "false", "RUNNER_OS": "Linux"}) is None


def test_simulated_absence_of_rlimit():
    with capabilities.simulate_absent("rlimit", "fork"):
        fp = fingerprint.fingerprint(env={})
    assert fp["rlimit_nofile"] is None
    assert fp["capabilities"]["rlimit"] is False
    assert fp["capabilities"]["simulated_absent"] == ["fork", "rlimit"]
    _validator().validate(fp)


@pytest.mark.skipif(not capabilities.caps().rlimit, reason="no resource module here")
def test_rlimit_read_when_present():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    got = fingerprint.rlimit_nofile()
    assert got[0] == (None if soft == resource.RLIM_INFINITY else soft)
    assert got[1] == (None if hard == resource.RLIM_INFINITY else hard)


@pytest.mark.parametrize(
    "raw, name",
    [("linux", "linux"), ("win32", "windows"), ("darwin", "macos"), ("freebsd14", "freebsd"),
     ("sunos5", "solaris"), ("haiku1", "haiku")],
)
def test_os_name(raw, name):
    assert fingerprint.os_name(raw) == name


def test_start_method_is_not_fixed_by_reading_it():
    code = (
        "import multiprocessing, harness.results.fingerprint as f;"
        "m = f.start_method();"
        "assert multiprocessing.get_start_method(allow_none=True) is None, 'fixed it';"
        "print(m)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeouts.medium(), check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in ("fork", "spawn", "forkserver")


def test_gil_state_matches_interpreter():
    probe = getattr(sys, "_is_gil_enabled", None)
    expected = ("enabled" if probe() else "disabled") if probe else None
    if expected is not None:
        assert fingerprint.gil_state() == expected
    elif sys.implementation.name == "cpython":
        assert fingerprint.gil_state() == "enabled"
    else:
        assert fingerprint.gil_state() == "unknown"
