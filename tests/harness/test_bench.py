"""``harness.bench.runner`` and ``ssconform bench``: statistics, rendering, the server
process protocol, and one real (quick) side-by-side run against a
deliberately slow implementation.

Nothing here is a timed assertion: the run's checks are *relative* (the slow
implementation must come out worse than the reference, by a margin far
beyond noise: 5 ms of sleep per echoed line -- at least 250 ms for the 50
lines of one client, whatever the load -- and a shutdown that waits the
poll interval against one that is woken at once).
"""

from __future__ import annotations

import json
import textwrap

import pytest

from harness.bench import runner as bench
from harness.cli.main import main
from harness.clients import bounded as clients
from harness.core.capabilities import caps

SLOW_IMPL = textwrap.dedent('''
    """SLOW: the standard library, but every echoed write sleeps 5 ms first."""
    import socketserver as _ss
    import time as _time
    from socketserver import *  # noqa: F401,F403


    class _SlowWriter:
        def __init__(self, inner):
            self._inner = inner

        def write(self, data):
            _time.sleep(0.005)  # the deliberate slowness under test, not a synchronisation
            return self._inner.write(data)

        def __getattr__(self, name):
            return getattr(self._inner, name)


    class StreamRequestHandler(_ss.StreamRequestHandler):
        def setup(self):
            super().setup()
            self.wfile = _SlowWriter(self.wfile)
''')

CORRUPT_IMPL = textwrap.dedent('''
    """WRONG: the standard library, but every echoed line comes back in capitals."""
    import socketserver as _ss
    from socketserver import *  # noqa: F401,F403


    class _Shouting:
        def __init__(self, inner):
            self._inner = inner

        def write(self, data):
            return self._inner.write(bytes(data).upper())

        def __getattr__(self, name):
            return getattr(self._inner, name)


    class StreamRequestHandler(_ss.StreamRequestHandler):
        def setup(self):
            super().setup()
            self.wfile = _Shouting(self.wfile)
''')

METRIC_KEYS = {"key", "title", "unit", "better", "a", "b", "ratio", "round_ratios", "verdict",
               "ceiling", "failures"}
STATS_KEYS = {"samples", "n", "min", "median", "max", "details"}


# ----------------------------------------------------------------- statistics --


def test_stats_ignores_failed_samples():
    assert bench.stats([3.0, None, 1.0, 2.0]) == {"samples": [3.0, None, 1.0, 2.0], "n": 3,
                                                  "min": 1.0, "median": 2.0, "max": 3.0}
    assert bench.stats([None])["median"] is None
    assert bench.ratio(2.0, 4.0) == 0.5
    assert bench.ratio(None, 1.0) is None and bench.ratio(1.0, 0.0) is None


@pytest.mark.parametrize("ratios, better, expected", [
    ([1.2, 1.1, 1.3], bench.HIGHER, bench.A_BETTER),
    ([0.8, 0.9, 0.7], bench.HIGHER, bench.B_BETTER),
    ([1.2, 0.9, 1.3], bench.HIGHER, bench.NOISE),
    ([0.01, 0.02], bench.LOWER, bench.A_BETTER),   # lower latency: A wins
    ([5.0, 3.0], bench.LOWER, bench.B_BETTER),
    ([1.2, None, 1.1], bench.HIGHER, bench.A_BETTER),  # a failed pair is left out
    ([1.5], bench.HIGHER, bench.NA),  # one pair cannot tell a difference from noise
    ([None, None], bench.HIGHER, bench.NA),
])
def test_verdict_is_a_paired_sign_test(ratios, better, expected):
    assert bench.verdict(ratios, better) == expected


def test_tries_combine_to_their_median_and_never_hide_a_failure():
    def sample(value, cpu):
        return bench.Sample(value, {"server_cpu_us_per_msg": cpu})

    tries = [sample(9.0, 5.0), sample(3.0, 4.0), sample(5.0, 7.0)]
    chosen = bench.combine(tries)
    assert chosen.value == 5.0 and chosen.detail["tries"] == [9.0, 3.0, 5.0]
    assert chosen.detail["server_cpu_us_per_msg"] == 5.0  # the median CPU of the tries
    assert bench.combine(tries[:2]).value == 3.0  # even count: the lower middle, a measured value
    broken = bench.Sample(None, {}, "swarm not clean: corrupted 1")
    assert bench.combine([tries[0], broken, tries[1]]).error == broken.error
    assert bench.combine([tries[0]]) is tries[0]


# ----------------------------------------------------------------- rendering --


def _synthetic() -> dict:
    metric = {
        "key": "echo:TCPServer", "title": "echo TCPServer", "unit": "msg/s", "better": "higher",
        "a": {"samples": [10.0, 12.0], "n": 2, "min": 10.0, "median": 11.0, "max": 12.0, "details": []},
        "b": {"samples": [5.0, None], "n": 1, "min": 5.0, "median": 5.0, "max": 5.0, "details": []},
        "ratio": 2.2, "round_ratios": [2.0, None], "verdict": bench.NA,
        "ceiling": {"samples": [30.0, 31.0], "n": 2, "min": 30.0, "median": 30.5, "max": 31.0},
        "failures": [{"side": "b", "round": 1, "error": "swarm not clean"}],
    }
    nothing = {"samples": [None], "n": 0, "min": None, "median": None, "max": None, "details": []}
    memory = dict(metric, key="memory:X", title="memory <script>", unit="KiB/conn", better="lower",
                  a=nothing, b=nothing,
                  ratio=None, round_ratios=[None], ceiling=None, failures=[])
    return {"schema": bench.SCHEMA, "a": {"name": "reference"}, "b": {"spec": "/x/slow.py"},
            "machine": {"nproc": 2, "cpu_model": "cpu", "python": "CPython 3.11", "os": "Linux"},
            "duration_s": 1.0, "rounds": [{"before": [0.5, 0, 0], "after": [0.7, 0, 0]}],
            "metrics": [metric, memory]}


def test_markdown_table_names_both_sides_and_marks_failures():
    text = bench.table(_synthetic())
    lines = text.splitlines()
    assert "A=reference" in lines[2] and "B=/x/slow.py" in lines[2]
    assert lines[3].startswith("|---|")
    echo = lines[4]
    assert "11.00 (10.00–12.00)" in echo and "2.20" in echo and "(1 failed)" in echo and "30.50" in echo
    assert "n/a" in lines[5]  # memory unmeasured (no /proc): n/a, not 0
    assert "load during the run 0.50–0.70" in lines[0]
    plain = bench.table(_synthetic(), markdown=False)
    assert "|" not in plain.splitlines()[2]


def test_html_page_escapes_and_plots_each_metric():
    page = bench.html(_synthetic())
    assert "<script>" not in page and "memory &lt;script&gt;" in page
    assert page.count("<svg") == 1  # the memory metric has no samples: no plot
    assert page.count("<circle") == 2 + 1 + 2  # A, B (one failed), ceiling


# ----------------------------------------------------------------- server processes --


def test_echo_server_process_serves_and_reports():
    with bench.bench_server({"mode": "echo", "impl": "reference", "server_class": "ThreadingTCPServer",
                             "poll_interval": 0.5}) as proc:
        assert proc.pid != 0 and proc.ready["server_class"] == "ThreadingTCPServer"
        assert clients.roundtrip(proc.address, "inet", b"one\ntwo\n") == b"one\ntwo\n"
    assert proc.done["problems"] == [] and set(proc.done["timings"]) == {"shutdown", "server_close"}


@pytest.mark.parametrize("per_connection", ["loop", "thread"])
def test_trivial_server_process_echoes(per_connection):
    with bench.bench_server({"mode": "trivial", "per_connection": per_connection}) as proc:
        assert clients.roundtrip(proc.address, "inet", b"ping\n") == b"ping\n"
        assert clients.roundtrip(proc.address, "inet", b"pong\n") == b"pong\n"
    assert proc.done["connections"] == 2 and proc.cpu_used() is not None


def test_server_process_that_cannot_start_is_an_error():
    with pytest.raises(bench.BenchServerError, match="ImplementationError"):
        with bench.bench_server({"mode": "echo", "impl": "no_such_impl_xyz", "server_class": "TCPServer"}):
            pass  # pragma: no cover


def test_a_fast_but_wrong_server_gives_no_sample(tmp_path):
    wrong = tmp_path / "wrong_impl.py"
    wrong.write_text(CORRUPT_IMPL, encoding="utf-8")
    load = bench.EchoLoad("TCPServer", 2, 5)
    sample = bench.measure_echo(str(wrong), load, bench.BenchConfig.quick())
    assert sample.value is None and "corrupted 10" in sample.error, sample
    control = bench.measure_echo("stdlib", load, bench.BenchConfig.quick())
    assert control.value is not None and control.error is None, control


def test_memory_is_na_without_proc(monkeypatch):
    monkeypatch.setattr(bench, "rss_bytes", lambda pid: None)  # as on Windows or macOS
    sample = bench.measure_memory("reference", "ThreadingTCPServer", bench.BenchConfig.quick())
    assert sample.value is None and sample.error is None and "VmRSS" in sample.detail["unsupported"]


@pytest.mark.skipif(not bench.memory_supported(), reason="no /proc/<pid>/status here")
def test_memory_per_connection_is_measured_from_vmrss():
    config = bench.BenchConfig.quick()
    sample = bench.measure_memory("reference", "ThreadingTCPServer", config)
    assert sample.error is None, sample.error
    assert sample.detail["connections"] == config.memory_connections
    assert sample.detail["rss_after_kib"] >= sample.detail["rss_before_kib"] > 0


# ----------------------------------------------------------------- the CLI --


@pytest.mark.parametrize("argv", [
    ["bench", "--impl", "reference", "--against", "no_such_impl_xyz"],
    ["bench", "--impl", "reference", "--against", "stdlib", "--rounds", "0"],
    ["bench", "--impl", "reference", "--against", "stdlib", "--tries", "0"],
    ["bench", "--impl", "reference"],
])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """One quick run, two alternating rounds: reference (A) against the slow copy (B)."""
    directory = tmp_path_factory.mktemp("bench")
    slow = directory / "slow_impl.py"
    slow.write_text(SLOW_IMPL, encoding="utf-8")
    out = directory / "bench.json"
    page = directory / "bench.html"
    code = main(["bench", "--quick", "--rounds", "2", "--impl", "reference", "--against", str(slow),
                 "--json", str(out), "--html", str(page)])
    return code, json.loads(out.read_text(encoding="utf-8")), page.read_text(encoding="utf-8"), str(slow)


def test_quick_run_json_shape(quick_run):
    code, result, page, slow = quick_run
    assert code == 0, [m["failures"] for m in result["metrics"]]
    assert result["schema"] == bench.SCHEMA
    assert result["a"]["name"] == "reference" and result["b"]["file"] == slow
    assert {"nproc", "cpu_model", "python", "os", "loadavg"} <= set(result["machine"])
    assert [r["order"] for r in result["rounds"]] == ["AB", "BA"]
    keys = [m["key"] for m in result["metrics"]]
    expected = ["echo:TCPServer", "echo:ThreadingTCPServer"] + (["echo:ForkingTCPServer"] if caps().fork else [])
    cpu = ["cpu:" + key.split(":")[1] for key in expected]
    assert keys == expected + ["connect:ThreadingTCPServer", "shutdown", "memory:ThreadingTCPServer"] + cpu
    for metric in result["metrics"]:
        assert set(metric) == METRIC_KEYS
        for side in ("a", "b"):
            assert set(metric[side]) == STATS_KEYS
            assert metric[side]["n"] == 2 and metric[side]["min"] <= metric[side]["median"] <= metric[side]["max"]
        assert len(metric["round_ratios"]) == 2 and metric["failures"] == []
        if metric["key"].startswith(("echo:", "connect:", "cpu:")):
            assert metric["ceiling"]["n"] == 2
        else:
            assert metric["ceiling"] is None
    for metric in result["metrics"]:
        if metric["key"].startswith("echo:"):
            for detail in metric["a"]["details"] + metric["b"]["details"]:
                assert detail["server_cpu_s"] >= 0 and detail["messages_ok"] == detail["clients"] * (
                    50 if metric["key"] == "echo:TCPServer" else 10 if "Threading" in metric["key"] else 5)
    assert "reference" in page and page.count("<svg") == len(keys)


def test_quick_run_ranks_the_slow_implementation_worse(quick_run):
    """Relative, not timed: 5 ms per echoed line and a poll-interval shutdown lose every round."""
    _, result, _, _ = quick_run
    by_key = {m["key"]: m for m in result["metrics"]}
    echo = by_key["echo:TCPServer"]  # one client: the sleeps add up, 50 x 5 ms
    assert echo["verdict"] == bench.A_BETTER and echo["ratio"] > 1, echo
    shutdown = by_key["shutdown"]
    assert shutdown["verdict"] == bench.A_BETTER and shutdown["ratio"] < 1, shutdown
