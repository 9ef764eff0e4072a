"""OS shapes (harness.shapes): each shim follows its documentation, and each portability
finding it exposed stays fixed.

Every shaped fact is observed in a fresh interpreter started the way the kit starts its
children (``shapes.env_for``), because a shape acts at interpreter start.  The tests marked
"finding N" are those of issue 13: each one fails on the code before its fix under the shape
named (the commit messages and the README's OS-shapes section give the before/after runs).
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import shapes
from harness.clients import swarm
from harness.core import timeouts
from harness.processes.supervisor import child_env
from harness.report.model import build_model
from harness.results import records

REPO = Path(__file__).resolve().parents[2]
SHAPES = shapes.available()


def shaped(name: str, code: str, cwd: str = None) -> dict:
    """Run ``code`` in a fresh interpreter shaped as ``name``; its last stdout line, as JSON."""
    env = shapes.env_for(name, child_env())
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeouts.long())
    assert done.returncode == 0, f"shaped {name} child failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the data files


def test_both_shapes_exist():
    assert {"windows", "macos"} <= set(SHAPES)


@pytest.mark.parametrize("name", SHAPES)
def test_every_shim_names_its_public_source_and_purpose(name):
    data = shapes.load(name)
    assert data["shim"], name
    ids = [shim["id"] for shim in data["shim"]]
    assert len(ids) == len(set(ids)), f"{name}: duplicate shim ids"
    for shim in data["shim"]:
        assert shim["why"].strip(), shim["id"]
        assert "https://" in shim["source"], shim["id"]  # something a reader can open


def test_an_unknown_shape_is_refused():
    with pytest.raises(shapes.ShapeError, match="known: "):
        shapes.env_for("beos")
    from harness.cli import main as cli

    assert cli.main(["run", "--os-shape", "beos"]) == 2


def test_version_bounds():
    shim = {"python_before": "3.13"}
    assert shapes.applies(shim, (3, 12)) and not shapes.applies(shim, (3, 13))
    assert not shapes.applies({"python_from": "3.10"}, (3, 9))


# --------------------------------------------------------------------------- what each shape changes


def test_windows_shape_follows_the_documentation():
    facts = shaped("windows", """
        import json, os, select, selectors, signal, socket, socketserver, sys, time
        from harness.core import capabilities
        from harness.results import fingerprint
        def importable(name):
            try:
                __import__(name)
                return True
            except ImportError:
                return False
        fp = fingerprint.fingerprint(env={})
        print(json.dumps({
            "fork": hasattr(os, "fork"), "af_unix": hasattr(socket, "AF_UNIX"),
            "forking": hasattr(socketserver, "ForkingMixIn"), "unix": hasattr(socketserver, "UnixStreamServer"),
            "selector": socketserver._ServerSelector.__name__, "default": selectors.DefaultSelector.__name__,
            "sigalrm": hasattr(signal, "SIGALRM"), "sigkill": hasattr(signal, "SIGKILL"),
            "sigterm": hasattr(signal, "SIGTERM"), "killpg": hasattr(os, "killpg"), "setsid": hasattr(os, "setsid"),
            "fcntl": importable("fcntl"), "resource": importable("resource"), "poll": hasattr(select, "poll"),
            "monotonic_resolution": time.get_clock_info("monotonic").resolution,
            "caps": capabilities.caps().as_dict(), "simulated": fp.get("simulated"), "os": fp["os"],
        }))
    """)
    assert not any(facts[k] for k in ("fork", "af_unix", "forking", "unix", "sigalrm", "sigkill", "killpg",
                                      "setsid", "fcntl", "resource", "poll")), facts
    assert facts["sigterm"] and facts["selector"] == facts["default"] == "SelectSelector"
    expected = 0.015625 if sys.version_info < (3, 13) else None
    if expected is not None:
        assert facts["monotonic_resolution"] == expected
    caps = facts["caps"]
    assert not (caps["fork"] or caps["af_unix"] or caps["signals"] or caps["rlimit"] or caps["poll"])
    assert facts["os"] == "linux" and facts["simulated"]["shape"] == "windows"
    assert "accept_fails_for_reset" in facts["simulated"]["shims"]


def test_macos_shape_follows_the_documentation():
    facts = shaped("macos", """
        import errno, json, os, resource, select, socket, socketserver, tempfile
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        base = tempfile.mkdtemp(dir="/tmp")
        def bind(length):
            path = os.path.join(base, "x" * (length - len(base) - 1))
            s = socket.socket(socket.AF_UNIX)
            try:
                s.bind(path)
                return "ok"
            except OSError as exc:
                return str(exc)
            finally:
                s.close()
                if os.path.exists(path):
                    os.unlink(path)
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(os.path.join(base, "l"))
        listener.listen(0)
        outcomes = []
        for _ in range(4):  # blocking connects: Linux would block on the full queue
            c = socket.socket(socket.AF_UNIX)
            try:
                c.connect(os.path.join(base, "l"))
                outcomes.append("connected")
            except OSError as exc:
                outcomes.append(errno.errorcode.get(exc.errno, str(exc.errno)))
        d = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            d.sendto(b"x" * 2049, os.path.join(base, "nobody"))
            big = "sent"
        except OSError as exc:
            big = errno.errorcode.get(exc.errno, str(exc))
        print(json.dumps({"soft": soft, "selector": socketserver._ServerSelector.__name__,
                          "epoll": hasattr(select, "epoll"), "b103": bind(103), "b104": bind(104),
                          "connects": outcomes, "dgram": big}))
    """)
    assert facts["soft"] == 256 and facts["selector"] == "PollSelector" and not facts["epoll"]
    assert facts["b103"] == "ok" and "too long" in facts["b104"]
    assert facts["connects"][0] == "connected" and facts["connects"][-1] == "ECONNREFUSED", facts
    assert facts["dgram"] == "EMSGSIZE"


def test_windows_accept_fails_for_a_connection_reset_in_the_backlog():
    facts = shaped("windows", """
        import json, socket, struct
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        dead = socket.create_connection(listener.getsockname())
        dead.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        dead.close()  # RST while queued
        live = socket.create_connection(listener.getsockname())
        seen = []
        listener.settimeout(5)
        for _ in range(2):
            try:
                conn, address = listener.accept()
                seen.append(["accepted", address[1] == live.getsockname()[1]])
                conn.close()
            except OSError as exc:
                seen.append([type(exc).__name__, exc.errno])
        print(json.dumps(seen))
    """)
    assert facts == [["ConnectionResetError", errno.ECONNRESET], ["accepted", True]]


def test_a_pytest_started_with_only_the_variable_restarts_itself_shaped(tmp_path):
    (tmp_path / "test_probe.py").write_text(textwrap.dedent("""
        import os, socket
        from harness import shapes
        def test_shaped():
            assert shapes.active()["shape"] == "windows"
            assert not hasattr(os, "fork") and not hasattr(socket, "AF_UNIX")
    """))
    env = child_env({shapes.ENV_VAR: "windows"})
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=timeouts.long())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


# --------------------------------------------------------------------------- the findings


def test_finding_1_event_stamps_resolve_handler_edges_under_the_windows_shape(tmp_path):
    """Before: time.monotonic() stamps, 15.625 ms apart, made four overlapping edges equal."""
    facts = shaped("windows", f"""
        import json
        from harness.serving import instrument
        log = instrument.EventLog.create({str(tmp_path)!r})
        for edge in ("start", "end"):
            for request in ("a", "b"):
                log.append(kind="phase", phase="handle", edge=edge, request=request)
        events = log.read()
        print(json.dumps({{"t": [e["t"] for e in events],
                           "overlap": instrument.max_overlap(instrument.intervals(events))}}))
    """)
    stamps = facts["t"]
    assert all(a < b for a, b in zip(stamps, stamps[1:])), stamps
    assert facts["overlap"] == 2


def test_the_interval_clock_under_each_shape():
    facts = {name: shaped(name, """
        import json
        from harness.core import clock
        a = clock.now_ns()
        b = clock.now_ns()
        print(json.dumps({"name": clock.NAME, "cross": clock.CROSS_PROCESS, "step": b - a}))
    """) for name in SHAPES}
    assert facts["macos"]["name"] == "clock_gettime_ns(CLOCK_MONOTONIC)" and facts["macos"]["cross"]
    windows = facts["windows"]  # no clock_gettime: QueryPerformanceCounter through perf_counter_ns
    assert windows["name"].startswith("perf_counter_ns")
    assert windows["cross"] is (sys.version_info >= (3, 10))  # per process before 3.10 (bpo-37205)
    assert all(f["step"] > 0 for f in facts.values()), facts  # two reads apart: a fine clock


def test_swarm_timings_resolve_a_fast_exchange_under_the_windows_shape():
    """Found by the bench under the Windows shape: the swarm timed its exchange with
    time.monotonic(), 15.625 ms steps there before 3.13, so a fast exchange lasted 0 s
    and its messages/s was None (the bench printed n/a).  It now reads harness.core.clock."""
    facts = shaped("windows", """
        import json, socketserver, threading
        from harness.clients import swarm

        class Echo(socketserver.BaseRequestHandler):
            def handle(self):
                for _ in range(1000):
                    data = self.request.recv(65536)
                    if not data:
                        return
                    self.request.sendall(data)

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        rates, phases = [], []
        try:
            for _ in range(5):
                result = swarm.run_swarm(swarm.SwarmConfig(address=server.server_address, family="inet",
                                                           clients=1, messages=2, size=16))
                rates.append(result.summary["messages_per_s"])
                phases.append(result.summary["exchange_phase"])
        finally:
            server.shutdown()
            server.server_close()
        print(json.dumps({"rates": rates, "phases": phases}))
    """)
    assert all(rate is not None and rate > 0 for rate in facts["rates"]), facts
    assert all(phase > 0 for phase in facts["phases"]), facts


def test_finding_2_event_log_writers_never_collide_under_the_windows_shape(tmp_path):
    """Before: appends by seek-then-write from eight threads overwrote each other (JSONDecodeError)."""
    facts = shaped("windows", f"""
        import json, threading
        from harness.serving import instrument
        log = instrument.EventLog.create({str(tmp_path)!r})
        def write(n):
            for i in range(150):
                log.append(kind="x", writer=n, i=i, pad="p" * 200)
        threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        events = log.read()
        print(json.dumps({{"n": len(events), "distinct": len({{(e["writer"], e["i"]) for e in events}})}}))
    """)
    assert facts == {"n": 1200, "distinct": 1200}


@pytest.mark.parametrize("exc, unix, policy", [
    (BlockingIOError(errno.EAGAIN, "full"), True, "window"),              # Linux, full AF_UNIX queue
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), True, "window"),  # macOS, full AF_UNIX queue
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), False, "counted"),
    (ConnectionResetError(errno.ECONNRESET, "reset"), False, "counted"),
    (TimeoutError("slow"), False, "window"),
    (OSError(errno.EADDRNOTAVAIL, "no port"), False, "fatal"),
])
def test_connect_retry_policy_by_errno_family(exc, unix, policy):
    assert swarm.connect_retry(exc, unix) == policy


SWARM = """
    import json, socketserver, threading
    from harness.clients import swarm
    from harness.core import addresses
    from harness.serving import servers
    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            self.request.settimeout(10)
            for _ in range(100):
                data = self.request.recv(65536)
                if not data:
                    return
                self.request.sendall(data)
    with addresses.private_dir() as directory:
        address = addresses.server_address_for({family!r}, directory)
        server = {server}(address, Echo)
        server.daemon_threads = True
        with servers.serve_in_thread(server, check_leaks=False) as served:
            result = swarm.run_swarm(swarm.SwarmConfig(address=served.address, family={family!r},
                                                       clients={clients}, messages=2))
    print(json.dumps(result.summary))
"""


def test_finding_3_a_unix_swarm_is_served_under_the_macos_shape():
    """Before: refusals of a full AF_UNIX queue were counted against connect_attempts=3."""
    summary = shaped("macos", SWARM.format(family="unix", server="socketserver.ThreadingUnixStreamServer",
                                           clients=100))
    assert summary["served"] == 100, summary


def test_finding_5_a_swarm_needing_more_than_256_descriptors_runs_under_the_macos_shape():
    """Before: 130 clients and their server sockets in one process hit EMFILE at 256."""
    summary = shaped("macos", SWARM.format(family="inet", server="socketserver.ThreadingTCPServer",
                                           clients=130))
    assert summary["served"] == 130, summary


#: shape -> the checks its findings failed (issue 13), run against the stdlib
FINDING_CHECKS = {
    "windows": "THREADING-003,THREADING-010,THREADING-011,TUTORIAL-004,CONCURRENCY-002,CONCURRENCY-004,"
               "CONCURRENCY-005,DISCONNECT-006",
    "macos": "CONCURRENCY-001,CONCURRENCY-002,CONCURRENCY-003",
}


@pytest.mark.parametrize("name", sorted(FINDING_CHECKS))
def test_findings_1_to_5_the_checks_they_broke_pass_under_the_shape(name, tmp_path):
    """Before (2999dc9 + the shapes, CPython 3.11.7): Windows-shaped 3 FAIL + 5 ERROR, macOS-shaped 4 FAIL."""
    swarm.raise_nofile_limit(1024)  # a child inherits the limit: not macOS's 256 when this process is macOS-shaped
    env = shapes.env_for(name, child_env())
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.checks",
               "-c", str(REPO / "conformance" / "suite.ini"), "--rootdir", str(REPO / "conformance"),
               "--impl", "stdlib", "--check", FINDING_CHECKS[name], "--ssconform-out", str(tmp_path),
               "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=timeouts.long() * 3)
    found = list(tmp_path.glob("*.json"))
    assert len(found) == 1, done.stdout[-3000:] + done.stderr[-2000:]
    record = records.read_record(found[0])
    assert record["fingerprint"]["simulated"]["shape"] == name
    bad = {(c["id"], c["variant"]): c["outcome"] for c in record["checks"]
           if c["outcome"] in ("FAIL", "ERROR", "TIMEOUT")}
    ran = {c["id"] for c in record["checks"] if c["outcome"] in ("PASS", "INFO")}
    assert not bad, bad
    assert ran == set(FINDING_CHECKS[name].split(",")), ran


def test_checks_that_time_short_gaps_pass_under_the_windows_shape(tmp_path):
    """Before (found by the shaped matrix cell once the EXT checks landed): EXT-003 timed the
    reference's 1, 2, 4 ms back-off pauses with time.monotonic(), 15.625 ms steps under the
    shape, and saw gaps of 0 s (4 FAIL).  Every check measures with harness.core.clock now."""
    env = shapes.env_for("windows", child_env())
    command = [sys.executable, "-m", "pytest", "--pyargs", "conformance.checks",
               "-c", str(REPO / "conformance" / "suite.ini"), "--rootdir", str(REPO / "conformance"),
               "--impl", "reference", "--check", "EXT,SERVE-004,SERVE-014,SHUTDOWN-002,SHUTDOWN-012",
               "--ssconform-out", str(tmp_path), "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(command, cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=timeouts.long() * 3)
    found = list(tmp_path.glob("*.json"))
    assert len(found) == 1, done.stdout[-3000:] + done.stderr[-2000:]
    record = records.read_record(found[0])
    assert record["fingerprint"]["simulated"]["shape"] == "windows"
    bad = {(c["id"], c["variant"]): (c["outcome"], c["message"][:200]) for c in record["checks"]
           if c["outcome"] not in ("PASS", "INFO", "UNSUPPORTED")}
    assert not bad, bad
    assert {c["id"] for c in record["checks"] if c["outcome"] == "PASS"} >= {"EXT-001", "EXT-003"}


# --------------------------------------------------------------------------- the report


def test_a_shaped_run_has_its_own_labelled_column():
    sys.path.insert(0, str(REPO / "tests" / "report"))
    try:
        import report_samples as samples
    finally:
        sys.path.pop(0)
    checks = [samples.check("API-001")]
    real = samples.make_record(checks)
    simulated = samples.make_record(checks, simulated={"shape": "windows", "on": "linux", "shims": ["no_fork"]})
    model = build_model([("real.json", real), ("shaped.json", simulated)])
    labels = sorted(column.label for column in model.columns)
    assert len(model.columns) == 2, labels
    assert any(label.startswith("Windows (simulated on Linux)") for label in labels), labels
    assert any(label.startswith("Linux") for label in labels), labels
