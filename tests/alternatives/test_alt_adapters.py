"""The gevent/eventlet/eventlet_green/future adapters, and the bootstrap order of harness.implementations.launch.

The ordering tests run a tiny pytest file in a fresh process started the
way ``ssconform run`` starts it (``python -m harness.implementations.launch IMPL -- ...``)
and assert, from inside pytest, that the process is fully patched: the
``socket.socket`` class pytest's own modules see is the library's, and
nothing networking was imported before the patch.  The control runs the
same file through plain ``python -m pytest`` and must fail, so the
assertions can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import shapes
from harness.core import timeouts
from harness.implementations import ImplementationError, get_adapter, resolve

REPO = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent(
    """
    import socket, threading, select

    from harness import shapes
    from harness.implementations import greenlets, resolve

    # under an OS shape (SSCONFORM_OS_SHAPE) the shape's own plumbing is imported first
    PLUMBING = [name for name in greenlets.WATCHED if name in shapes.plumbing()]


    def test_patched_before_pytest_imported_anything():
        impl = resolve({impl!r})
        assert socket.socket.__module__.startswith({library!r}), socket.socket
        assert greenlets.BOOTSTRAPPED.get("library") == {library!r}
        assert greenlets.BOOTSTRAPPED.get("preimported") == PLUMBING
        assert impl.extra["monkey_patched"] == "yes"
        assert impl.extra["preimported"] == (",".join(PLUMBING) or "none")
        assert impl.module.socket.socket is socket.socket  # the stdlib module sees the patched class
    """
)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    for name in ("SSCONFORM_IMPL", "SSCONFORM_OUT", "SSCONFORM_EXPECTATIONS"):
        env.pop(name, None)
    return env


def _run_probe(tmp_path: Path, impl: str, library: str, launched: bool) -> subprocess.CompletedProcess:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE.format(impl=impl, library=library), encoding="utf-8")
    args = ["-q", "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(probe)]
    if launched:
        command = [sys.executable, "-m", "harness.implementations.launch", impl, "--", *args]
    else:
        command = [sys.executable, "-m", "pytest", *args]
    return subprocess.run(command, cwd=str(tmp_path), env=_env(), capture_output=True, text=True,
                          timeout=timeouts.long())


@pytest.mark.parametrize("impl,library", [("gevent", "gevent"), ("eventlet", "eventlet")])
def test_launch_patches_before_pytest(tmp_path, impl, library):
    pytest.importorskip(library)
    if library == "gevent" and shapes.active() is not None and not hasattr(os, "fork"):
        pytest.skip("gevent picks its POSIX subprocess module by sys.platform and needs os.fork there: "
                    "a Windows shape on Linux cannot stand in for gevent on Windows")
    done = _run_probe(tmp_path, impl, library, launched=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout


@pytest.mark.parametrize("impl,library", [("gevent", "gevent"), ("eventlet", "eventlet")])
def test_plain_pytest_is_refused_not_half_patched(tmp_path, impl, library):
    """Control: without harness.implementations.launch the probe fails, and resolve() says why."""
    pytest.importorskip(library)
    done = _run_probe(tmp_path, impl, library, launched=False)
    assert done.returncode != 0
    assert "harness.implementations.launch" in done.stdout  # the NotBootstrapped message names the right command


def test_resolve_refuses_a_patching_adapter_inside_unpatched_pytest():
    pytest.importorskip("gevent")
    from harness.implementations import greenlets

    if greenlets.gevent_patched():  # pragma: no cover - never in the kit's own test process
        pytest.skip("this process is patched")
    with pytest.raises(ImplementationError, match="ssconform run --impl gevent"):
        resolve("gevent")


def test_patching_adapters_declare_a_bootstrap_and_others_do_not():
    assert get_adapter("gevent").bootstrap == "harness.implementations.greenlets:patch_gevent"
    assert get_adapter("eventlet").bootstrap == "harness.implementations.greenlets:patch_eventlet"
    assert get_adapter("eventlet_green").bootstrap is None
    assert get_adapter("future").bootstrap is None


def test_future_declares_the_33_api():
    pytest.importorskip("future")
    impl = resolve("future")
    assert impl.module_name == "future.backports.socketserver"
    assert impl.api_version == (3, 3)
    assert impl.describe()["api_version"] == "3.3"
    assert set(impl.extra) == {"future"} and impl.extra["future"][0].isdigit()


def test_eventlet_green_is_the_green_module_without_patching():
    pytest.importorskip("eventlet")
    impl = resolve("eventlet_green")
    assert impl.module_name == "eventlet.green.SocketServer"
    assert impl.extra["monkey_patched"] == "no"
    assert {"eventlet", "greenlet"} <= set(impl.extra)
    import socket

    assert socket.socket.__module__ == "socket"  # loading it patched nothing globally


def test_versions_reach_the_fingerprint():
    pytest.importorskip("future")
    from harness.results.fingerprint import fingerprint

    impl = resolve("future")
    assert fingerprint(impl)["impl_extra"] == impl.extra
    assert impl.version == impl.extra["future"]


def test_describe_in_the_cli_process_does_not_patch():
    """The CLI resolves every adapter in its own process (outside pytest): that must not patch it."""
    pytest.importorskip("gevent")
    code = textwrap.dedent(
        """
        import json, socket
        from harness.implementations import launch
        info = launch.describe("gevent")
        print(json.dumps([info["error"], info["bootstrap"], info["implementation"]["extra"]["monkey_patched"],
                          socket.socket.__module__]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), env=_env(), capture_output=True,
                          text=True, timeout=timeouts.long())
    assert done.returncode == 0, done.stderr[-3000:]
    error, bootstrap, patched, module = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert error is None
    assert bootstrap == "harness.implementations.greenlets:patch_gevent"
    assert patched == "no" and module == "socket"
