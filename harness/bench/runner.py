"""``ssconform bench``: two implementations side by side, in alternating rounds.

Theory of operation
-------------------
A benchmark of one implementation says little on a shared machine: load
from other processes, CPU frequency and cache state drift over a run.  So
:func:`run_bench` always measures two implementations, A and B, in one run
and *interleaves* them: every round measures every metric for both, metric
by metric, A then B in even rounds and B then A in odd rounds, so drift and
order effects fall on both alike.  Each metric keeps one sample per round
per implementation; the report gives min/median/max over the rounds, the
ratio of the medians A/B, and the per-round ratios (each from an adjacent
A/B pair).  The verdict is a sign test over those paired ratios: "A better"
only when A won *every* round, "B better" when B did, otherwise "within
noise" (with 5 rounds, one side winning all of them by chance has
probability 1/16).

The server always runs in its own process (:mod:`harness.bench.bench_server`,
one process per measurement, started before the clock and stopped after),
the clients run here, driven by :func:`harness.clients.swarm.run_swarm`.  Metrics:

``echo:<ServerClass>``  (msg/s, higher is better)
    Echo round trips per second: a swarm of ``clients`` x ``messages``
    lines of ``size`` bytes against the implementation's echo server
    (``StreamRequestHandler`` echoing lines until EOF).  Defaults follow
    the issue: ``TCPServer`` 1 client x 10000, ``ThreadingTCPServer`` and
    ``ForkingTCPServer`` 200 x 50.  Forking clients are released as they
    connect: with ``max_children = 40`` a forking server stops accepting
    while 40 children live, so 200 clients that wait for each other before
    sending would wait for ever.
``connect:<ServerClass>``  (conn/s, higher)
    New connections per second: ``connect_clients`` clients, each
    connecting, sending one line, reading its echo and closing, in waves
    of ``connect_batch`` (4: below the default listen backlog of 5, so no
    SYN is dropped and the kernel's retransmission timer never runs).
``shutdown``  (ms, lower)
    ``shutdown()`` latency of an idle ``TCPServer`` at
    ``poll_interval=0.5``, timed inside the server process; one sample is
    the median of ``shutdowns`` shutdowns (see :mod:`harness.bench.bench_server`).
``memory:<ServerClass>``  (KiB/conn, lower)
    RSS growth of the server process holding ``memory_connections`` idle
    connections (each proved served by one echo), divided by their
    number.  RSS is ``VmRSS`` of ``/proc/<pid>/status``; where there is no
    ``/proc`` (Windows, macOS) the metric is ``n/a``.

The **swarm ceiling** is the same client load against a trivial
``selectors`` echo loop in its own process (no socketserver at all),
measured once per round: when an implementation's figure is close to it,
the client, not the server, is the bottleneck and the ratio understates
the difference.

Throughput samples (echo, connect) are each the median of ``tries`` (3)
runs, interleaved A B A B within the round, so that one burst of load from
elsewhere spoils one try, not a whole pair; all tries are kept in the
sample's detail.  (The best of the tries, as ``timeit`` takes, was tried
and rejected: under bursty load the maximum of a heavy-tailed
distribution is itself the noisiest statistic.)

Every sample is checked: a swarm with a lost, corrupted or unsent message
or any client error does not count as a sample (it is recorded under the
metric's ``failures``), so a fast but wrong server cannot win.
Everything is bounded by :mod:`harness.core.timeouts` budgets.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import json
import os
import platform
import statistics
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from harness.clients import bounded as clients
from harness.clients import swarm
from harness.core import timeouts
from harness.core.capabilities import caps

SCHEMA = "ssconform-bench/1"

HIGHER, LOWER = "higher", "lower"
A_BETTER, B_BETTER, NOISE, NA = "A better", "B better", "within noise", "n/a"


# ------------------------------------------------------------------ configuration --


@dataclasses.dataclass
class EchoLoad:
    """One echo metric: ``clients`` x ``messages`` against ``server_class``."""

    server_class: str
    clients: int
    messages: int
    release_together: bool = True


@dataclasses.dataclass
class BenchConfig:
    rounds: int = 5
    echo: List[EchoLoad] = dataclasses.field(default_factory=lambda: [
        EchoLoad("TCPServer", 1, 10000),
        EchoLoad("ThreadingTCPServer", 200, 50),
        EchoLoad("ForkingTCPServer", 200, 50, release_together=False),
    ])
    size: int = 64
    connect_classes: Tuple[str, ...] = ("TCPServer", "ThreadingTCPServer")
    connect_clients: int = 2000
    connect_batch: int = 4
    shutdowns: int = 5
    shutdown_poll_interval: float = 0.5
    shutdown_idle: float = 0.05
    memory_class: Optional[str] = "ThreadingTCPServer"
    memory_connections: int = 200
    ceiling: bool = True
    #: Throughput samples (echo, connect) are the median of this many interleaved
    #: tries per round (A B A B...): fewer pairs spoilt by one burst of load.
    tries: int = 3
    #: ``poll_interval`` of the echo servers' ``serve_forever`` (the stdlib default).
    poll_interval: float = 0.5
    #: class attributes of every benchmarked server (e.g. ``{"request_queue_size": 128}``)
    attrs: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def quick(cls, rounds: int = 1) -> BenchConfig:
        """Tiny sizes: seconds, for tests and smoke runs (numbers are not meaningful)."""
        return cls(
            rounds=rounds,
            echo=[EchoLoad("TCPServer", 1, 50), EchoLoad("ThreadingTCPServer", 10, 10),
                  EchoLoad("ForkingTCPServer", 5, 5, release_together=False)],
            connect_classes=("ThreadingTCPServer",),
            connect_clients=20,
            shutdowns=1,
            memory_connections=10,
            poll_interval=0.05,  # faster teardown of the echo servers; the shutdown metric keeps 0.5
            tries=1,
        )

    def applicable(self) -> BenchConfig:
        """This configuration without what the platform cannot run (no fork: no Forking*)."""
        keep = [load for load in self.echo if caps().fork or not load.server_class.startswith("Forking")]
        conns = tuple(c for c in self.connect_classes if caps().fork or not c.startswith("Forking"))
        mem = self.memory_class
        if mem and mem.startswith("Forking") and not caps().fork:
            mem = None
        return dataclasses.replace(self, echo=keep, connect_classes=conns, memory_class=mem)

    def validate(self) -> None:
        if not 1 <= self.rounds <= 100:
            raise ValueError(f"rounds must be 1..100, not {self.rounds}")
        if not 1 <= self.tries <= 20:
            raise ValueError(f"tries must be 1..20, not {self.tries}")
        if self.shutdowns < 1 or self.memory_connections < 1 or self.connect_clients < 1:
            raise ValueError("shutdowns, memory_connections and connect_clients must be at least 1")
        for load in self.echo:
            if load.clients < 1 or load.messages < 1:
                raise ValueError(f"echo load {load} needs at least 1 client and 1 message")

    def as_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------ statistics --


def stats(samples: Sequence[Optional[float]]) -> Dict[str, Any]:
    """min/median/max of the samples that exist (``None`` entries are failed samples)."""
    values = [s for s in samples if s is not None]
    if not values:
        return {"samples": list(samples), "n": 0, "min": None, "median": None, "max": None}
    return {"samples": list(samples), "n": len(values), "min": min(values),
            "median": statistics.median(values), "max": max(values)}


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b == 0:
        return None
    return a / b


def verdict(round_ratios: Sequence[Optional[float]], better: str) -> str:
    """Paired sign test: one side must win every round to be called better."""
    values = [r for r in round_ratios if r is not None]
    if not values:
        return NA
    a_wins = all(r > 1 for r in values) if better == HIGHER else all(r < 1 for r in values)
    b_wins = all(r < 1 for r in values) if better == HIGHER else all(r > 1 for r in values)
    if len(values) < 2:
        return NA  # one pair cannot tell a difference from noise
    if a_wins:
        return A_BETTER
    if b_wins:
        return B_BETTER
    return NOISE


# ------------------------------------------------------------------ the machine --


def loadavg() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # Windows
        return None


def cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def machine() -> Dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "os": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "loadavg": loadavg(),
    }


def wait_for_load(maximum: float, budget: float, on_wait: Optional[Callable[[List[float]], None]] = None) -> Optional[List[float]]:
    """Wait (bounded by ``budget``) until the 1-minute load average is at most ``maximum``.

    Returns the load average seen last (``None`` where the OS has none).
    A machine that stays busy is measured anyway: the load goes into the result.
    """
    deadline = timeouts.Deadline(budget, f"load average <= {maximum}")
    current = loadavg()
    for _ in range(100_000):
        if current is None or current[0] <= maximum or deadline.expired():
            return current
        if on_wait is not None:
            on_wait(current)
        threading.Event().wait(min(15.0, max(deadline.remaining(), 0.01)))
        current = loadavg()
    return current


# ------------------------------------------------------------------ server processes --


class BenchServerError(RuntimeError):
    """A benchmark server process failed to start or to run."""


@dataclasses.dataclass
class BenchProcess:
    child: Any  # harness.processes.supervisor.Child
    ready: Dict[str, Any] = dataclasses.field(default_factory=dict)
    done: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def address(self) -> Any:
        return tuple(self.ready["address"])

    @property
    def pid(self) -> int:
        return int(self.ready.get("pid") or self.child.pid)

    def cpu_used(self) -> Optional[float]:
        """CPU seconds the server (and its reaped children) used between ready and done."""
        if "cpu" in self.ready and "cpu" in self.done:
            return max(0.0, float(self.done["cpu"]) - float(self.ready["cpu"]))
        return None

    def tail(self, lines: int = 20) -> str:
        return self.child.stderr_tail(lines)


def _start(spec: Dict[str, Any], python: Optional[str] = None) -> BenchProcess:
    from harness.processes import supervisor

    command = [python or sys.executable, "-m", "harness.bench.bench_server", json.dumps(spec)]
    child = supervisor.start(command, what=f"bench server {spec.get('server_class') or spec['mode']}",
                             protocol=True, stdin=True)
    return BenchProcess(child=child)


def _await(proc: BenchProcess, events: Sequence[str], budget: float, what: str) -> Dict[str, Any]:
    deadline = timeouts.Deadline(budget, what)
    for _ in range(10_000):
        message = proc.child.next_message(deadline)
        if message is None:
            raise timeouts.HarnessTimeout(f"{what}; stderr tail:\n{proc.tail()}", budget)
        event = message.get("event")
        if event in events:
            return message
        if event == "error":
            raise BenchServerError(f"{what}: {message.get('exc_type')}: {message.get('error')}\n{proc.tail()}")
        if event == "eof":
            raise BenchServerError(f"{what}: the server process exited early\n{proc.tail()}")
    raise BenchServerError(f"{what}: too many unexpected messages")


def _finish(proc: BenchProcess, wait_done: bool) -> None:
    """Stop the process through the supervisor (ask, interrupt, kill the group -- forked
    handler children included -- and reap); keep its ``done`` report when it sent one."""
    proc.child.stop(ask_budget=timeouts.medium() + timeouts.short(), interrupt_budget=timeouts.short())
    if wait_done:
        with contextlib.suppress(timeouts.HarnessTimeout, BenchServerError):
            proc.done = _await(proc, ("done",), timeouts.short(), "the server's report")


@contextlib.contextmanager
def bench_server(spec: Dict[str, Any], python: Optional[str] = None) -> Iterator[BenchProcess]:
    """A :mod:`harness.bench.bench_server` process in ``echo``/``trivial`` mode, ready to serve."""
    spec = dict(spec, version=1)
    proc = _start(spec, python)
    ready = False
    try:
        proc.ready = _await(proc, ("ready",), timeouts.long(), f"bench server {spec.get('server_class') or spec['mode']} to start")
        ready = True
        yield proc
    finally:
        _finish(proc, wait_done=ready)
    problems = proc.done.get("problems") if proc.done else None
    if problems:
        raise BenchServerError(f"bench server {spec.get('server_class')}: {'; '.join(problems)}\n{proc.tail()}")


# ------------------------------------------------------------------ measurements --


@dataclasses.dataclass
class Sample:
    value: Optional[float]
    detail: Dict[str, Any]
    error: Optional[str] = None


def _swarm_sample(address: Any, *, clients_: int, messages: int, size: int, together: bool) -> Sample:
    config = swarm.SwarmConfig(address=address, family="inet", clients=clients_, messages=messages,
                               size=size, release_together=together)
    result = swarm.run_swarm(config)
    summary = result.summary
    detail = {key: summary[key] for key in ("clients", "served", "messages_ok", "lost", "corrupted", "unsent",
                                           "errors", "wall_time", "connect_phase", "exchange_phase",
                                           "messages_per_s", "latency_p50", "latency_p99", "connect_p99")}
    if not result.ok or summary["lost"] or summary["corrupted"] or summary["unsent"]:
        return Sample(None, detail, f"swarm not clean: served {summary['served']}/{summary['clients']}, "
                      f"lost {summary['lost']}, corrupted {summary['corrupted']}, errors {summary['errors']}")
    return Sample(summary["messages_per_s"], detail)


def _echo_spec(impl: str, server_class: str, config: BenchConfig) -> Dict[str, Any]:
    return {"mode": "echo", "impl": impl, "server_class": server_class, "attrs": dict(config.attrs),
            "poll_interval": config.poll_interval}


def measure_echo(impl: Optional[str], load: EchoLoad, config: BenchConfig) -> Sample:
    """Echo messages/s of ``impl`` (``None``: the trivial ceiling server: a
    blocking thread per connection for one client, else a selectors loop)."""
    trivial = {"mode": "trivial", "per_connection": "thread" if load.clients == 1 else "loop"}
    spec = trivial if impl is None else _echo_spec(impl, load.server_class, config)
    with bench_server(spec) as proc:
        sample = _swarm_sample(proc.address, clients_=load.clients, messages=load.messages, size=config.size,
                               together=load.release_together)
    cpu = proc.cpu_used()
    if cpu is not None and sample.detail.get("messages_ok"):
        sample.detail["server_cpu_s"] = round(cpu, 4)
        sample.detail["server_cpu_us_per_msg"] = round(cpu / sample.detail["messages_ok"] * 1e6, 2)
    return sample


def measure_connect(impl: Optional[str], server_class: str, config: BenchConfig) -> Sample:
    """New connections/s (connect, one echo, close) of ``impl`` (``None``: ceiling).

    The swarm runs in waves of ``connect_batch`` clients: a wave ends when
    its clients have closed, so no more than ``connect_batch`` connections
    ever wait in the listen queue.  (One swarm of all clients released as
    they connect would keep connecting while a synchronous server is busy,
    overflow its backlog of 5, and measure the kernel's dropped-SYN
    retries instead of the server.)
    """
    spec = {"mode": "trivial"} if impl is None else _echo_spec(impl, server_class, config)
    total = config.connect_clients
    wave = max(1, min(config.connect_batch, total))
    served = 0
    errors: Dict[str, int] = collections.Counter()
    slowest = 0.0
    with bench_server(spec) as proc:
        start = time.perf_counter()
        for first in range(0, total, wave):
            config_ = swarm.SwarmConfig(address=proc.address, family="inet", clients=min(wave, total - first),
                                        messages=1, size=config.size, release_together=False,
                                        connect_batch=wave)
            result = swarm.run_swarm(config_)
            summary = result.summary
            served += summary["served"]
            errors.update(summary["errors"])
            slowest = max(slowest, result.wall_time)
            if not result.ok:
                break
        elapsed = time.perf_counter() - start
    detail = {"connections": total, "served": served, "wave": wave, "elapsed": round(elapsed, 4),
              "slowest_wave": round(slowest, 6), "errors": dict(errors)}
    if served != total or errors:
        return Sample(None, detail, f"connections not clean: served {served}/{total}, errors {dict(errors)}")
    return Sample(round(served / elapsed, 1) if elapsed > 0 else None, detail)


def measure_shutdown(impl: str, config: BenchConfig) -> Sample:
    """Median ``shutdown()`` latency in ms over ``config.shutdowns`` idle TCPServers."""
    spec = {"version": 1, "mode": "shutdown", "impl": impl, "server_class": "TCPServer",
            "attrs": dict(config.attrs), "poll_interval": config.shutdown_poll_interval,
            "idle": config.shutdown_idle, "shutdowns": config.shutdowns}
    proc = _start(spec)
    try:
        budget = timeouts.long() + config.shutdowns * (config.shutdown_poll_interval + config.shutdown_idle + timeouts.short())
        result = _await(proc, ("result",), budget, "shutdown measurements")
    finally:
        _finish(proc, wait_done=False)
    latencies = [x * 1000 for x in result.get("latencies", [])]
    detail = {"latencies_ms": [round(x, 4) for x in latencies], "poll_interval": result.get("poll_interval"),
              "idle": result.get("idle")}
    if result.get("problems") or not latencies:
        return Sample(None, detail, "; ".join(result.get("problems") or ["no latency measured"]))
    return Sample(statistics.median(latencies), detail)


def rss_bytes(pid: int) -> Optional[int]:
    """``VmRSS`` of ``pid`` from ``/proc/<pid>/status`` (``None`` without /proc)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    parts = line.split()
                    return int(parts[1]) * 1024 if parts[2].lower() == "kb" else int(parts[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def memory_supported() -> bool:
    return rss_bytes(os.getpid()) is not None


def _hold(address: Any, payload: bytes, deadline: timeouts.Deadline) -> Any:
    sock = clients.connect(address, "inet", timeout=max(deadline.remaining(), 0.001))
    try:
        clients.sendall(sock, payload, deadline)
        reply = clients.recv_line(sock, deadline)
        if reply != payload:
            raise BenchServerError(f"held connection got {reply!r}, expected {payload!r}")
    except BaseException:
        sock.close()
        raise
    return sock


def measure_memory(impl: str, server_class: str, config: BenchConfig) -> Sample:
    """KiB of server RSS per held idle connection (``n/a`` without /proc)."""
    if not memory_supported():  # not a failure: the metric does not exist here
        return Sample(None, {"unsupported": "no /proc/<pid>/status VmRSS on this OS"})
    count = config.memory_connections
    swarm.raise_nofile_limit(swarm.fds_needed(count))
    held: List[Any] = []
    with bench_server(_echo_spec(impl, server_class, config)) as proc:
        deadline = timeouts.Deadline(timeouts.long(), f"{count} held connections")
        try:
            _hold(proc.address, b"warm-up\n", deadline).close()
            before = rss_bytes(proc.pid)
            for index in range(count):
                held.append(_hold(proc.address, b"hold-%d\n" % index, deadline))
            after = rss_bytes(proc.pid)
        finally:
            for sock in held:
                sock.close()
    if before is None or after is None:
        return Sample(None, {"reason": "the server process vanished"}, "RSS unreadable")
    per = (after - before) / count / 1024
    return Sample(round(per, 2), {"rss_before_kib": before // 1024, "rss_after_kib": after // 1024,
                                  "connections": count})


# ------------------------------------------------------------------ metrics --


@dataclasses.dataclass
class Metric:
    key: str
    title: str
    unit: str
    better: str
    measure: Callable[[str], Sample]
    ceiling: Optional[Callable[[], Sample]] = None
    repeatable: bool = False  # throughput: median of ``config.tries`` tries per round
    samples: Dict[str, List[Sample]] = dataclasses.field(default_factory=lambda: {"a": [], "b": []})
    ceiling_samples: List[Sample] = dataclasses.field(default_factory=list)

    def result(self) -> Dict[str, Any]:
        ceiling = None
        if self.ceiling is not None:
            ceiling = [(s.value, s.detail) for s in self.ceiling_samples]
        return summarise(self.key, self.title, self.unit, self.better,
                         {side: [(s.value, s.detail) for s in self.samples[side]] for side in ("a", "b")},
                         ceiling, [{"side": side, "round": n, "error": s.error}
                                   for side in ("a", "b") for n, s in enumerate(self.samples[side]) if s.error])

    def derived(self, detail_key: str, key: str, title: str, unit: str, better: str) -> Dict[str, Any]:
        """Another metric read from the details of this one's samples (no extra measurement)."""
        def pairs(samples: List[Sample]) -> List[Tuple[Optional[float], Dict[str, Any]]]:
            return [(s.detail.get(detail_key) if s.value is not None else None, {}) for s in samples]

        ceiling = pairs(self.ceiling_samples) if self.ceiling is not None else None
        return summarise(key, title, unit, better, {"a": pairs(self.samples["a"]), "b": pairs(self.samples["b"])},
                         ceiling, [])


def summarise(key: str, title: str, unit: str, better: str,
              sides: Dict[str, List[Tuple[Optional[float], Dict[str, Any]]]],
              ceiling: Optional[List[Tuple[Optional[float], Dict[str, Any]]]],
              failures: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One metric of the result: stats per side, ratio of medians, per-round ratios, verdict."""
    a = [value for value, _ in sides["a"]]
    b = [value for value, _ in sides["b"]]
    sa, sb = stats(a), stats(b)
    round_ratios = [ratio(x, y) for x, y in zip(a, b)]
    ceiling_stats = None
    if ceiling is not None:
        ceiling_stats = dict(stats([value for value, _ in ceiling]), details=[d for _, d in ceiling])
    return {
        "key": key, "title": title, "unit": unit, "better": better,
        "a": dict(sa, details=[d for _, d in sides["a"]]),
        "b": dict(sb, details=[d for _, d in sides["b"]]),
        "ratio": _r(ratio(sa["median"], sb["median"])),
        "round_ratios": [_r(r) for r in round_ratios],
        "verdict": verdict(round_ratios, better),
        "ceiling": ceiling_stats,
        "failures": failures,
    }


def _r(value: Optional[float], digits: int = 4) -> Optional[float]:
    return None if value is None else round(value, digits)


def build_metrics(config: BenchConfig) -> List[Metric]:
    metrics: List[Metric] = []
    for load in config.echo:
        mode = "together" if load.release_together else "as connected"
        metrics.append(Metric(
            key=f"echo:{load.server_class}",
            title=f"echo {load.server_class}, {load.clients} client(s) x {load.messages} msgs ({mode})",
            unit="msg/s", better=HIGHER,
            measure=functools.partial(measure_echo, load=load, config=config),
            ceiling=functools.partial(measure_echo, None, load, config) if config.ceiling else None,
            repeatable=True,
        ))
    for server_class in config.connect_classes:
        metrics.append(Metric(
            key=f"connect:{server_class}",
            title=f"new connections {server_class}, {config.connect_clients} x (connect, 1 echo, close)",
            unit="conn/s", better=HIGHER,
            measure=functools.partial(measure_connect, server_class=server_class, config=config),
            ceiling=functools.partial(measure_connect, None, server_class, config) if config.ceiling else None,
            repeatable=True,
        ))
    metrics.append(Metric(
        key="shutdown",
        title=f"shutdown() latency, idle TCPServer, poll_interval={config.shutdown_poll_interval} "
              f"(median of {config.shutdowns})",
        unit="ms", better=LOWER, measure=lambda impl: measure_shutdown(impl, config),
    ))
    if config.memory_class:
        metrics.append(Metric(
            key=f"memory:{config.memory_class}",
            title=f"memory per held connection, {config.memory_class}, {config.memory_connections} idle",
            unit="KiB/conn", better=LOWER,
            measure=lambda impl: measure_memory(impl, config.memory_class or "", config),
        ))
    return metrics


def _safe(measure: Callable[[], Sample]) -> Sample:
    try:
        return measure()
    except (timeouts.HarnessTimeout, BenchServerError, OSError, swarm.SwarmConfigError) as exc:
        return Sample(None, {}, f"{type(exc).__name__}: {exc}"[:2000])


def _measured(sample: Sample) -> float:
    assert sample.value is not None  # only called on samples without a failure
    return sample.value


def combine(tries: List[Sample]) -> Sample:
    """One round's sample from several tries: the median (the lower middle one
    for an even count, a value that was measured); any failed try makes the
    sample a failure (never hidden).  The detail is the chosen try's, plus
    every try's value (``tries``) and the median server CPU of the tries."""
    failed = [t for t in tries if t.error or t.value is None]
    if len(tries) == 1 or failed:
        chosen = failed[0] if failed else tries[0]
        if len(tries) == 1:
            return chosen
        return Sample(chosen.value, dict(chosen.detail, tries=[t.value for t in tries]), chosen.error)
    ordered = sorted(tries, key=_measured)
    chosen = ordered[(len(ordered) - 1) // 2]
    detail = dict(chosen.detail, tries=[t.value for t in tries])
    cpus = sorted(t.detail["server_cpu_us_per_msg"] for t in tries if "server_cpu_us_per_msg" in t.detail)
    if cpus:
        detail["server_cpu_us_per_msg"] = cpus[(len(cpus) - 1) // 2]
    return Sample(chosen.value, detail)


def _absolute(spec: str) -> str:
    """A ``.py`` path made absolute (the server processes start elsewhere)."""
    if (spec.endswith(".py") or os.sep in spec) and os.path.exists(spec):
        return os.path.abspath(spec)
    return spec


def run_bench(impl_a: str, impl_b: str, config: Optional[BenchConfig] = None,
              progress: Optional[Callable[[str], None]] = None,
              describe: Optional[Callable[[str], Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Measure ``impl_a`` against ``impl_b``; the JSON-ready result (see module docstring)."""
    config = (config or BenchConfig()).applicable()
    config.validate()
    say = progress or (lambda text: None)
    swarm.raise_nofile_limit(swarm.fds_needed(max([c.clients for c in config.echo] + [config.memory_connections, 1])))
    metrics = build_metrics(config)
    specs = {"a": _absolute(impl_a), "b": _absolute(impl_b)}
    started = time.time()
    loads: List[Dict[str, Any]] = []
    t0 = time.monotonic()
    for round_index in range(config.rounds):
        order = ("a", "b") if round_index % 2 == 0 else ("b", "a")
        load_before = loadavg()
        for metric in metrics:
            tag = f"round {round_index + 1}/{config.rounds} {metric.key:<28}"
            tries: Dict[str, List[Sample]] = {"a": [], "b": [], "ceiling": []}
            for _ in range(config.tries if metric.repeatable else 1):
                if metric.ceiling is not None:
                    sample = _safe(metric.ceiling)
                    tries["ceiling"].append(sample)
                    say(f"{tag} ceiling {_fmt(sample.value)} {metric.unit}"
                        + (f" ({sample.error.splitlines()[0]})" if sample.error else ""))
                for side in order:  # interleaved: A B A B... (B A B A... in odd rounds)
                    sample = _safe(functools.partial(metric.measure, specs[side]))
                    tries[side].append(sample)
                    say(f"{tag} {side.upper()} {specs[side]:<12} {_fmt(sample.value)} {metric.unit}"
                        + (f" ({sample.error.splitlines()[0]})" if sample.error else ""))
            for side in order:
                metric.samples[side].append(combine(tries[side]))
            if tries["ceiling"]:
                metric.ceiling_samples.append(combine(tries["ceiling"]))
        loads.append({"round": round_index, "order": "".join(order).upper(), "before": load_before, "after": loadavg()})
    return {
        "schema": SCHEMA,
        "a": describe(impl_a) if describe else {"spec": specs["a"]},
        "b": describe(impl_b) if describe else {"spec": specs["b"]},
        "machine": machine(),
        "config": config.as_dict(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.monotonic() - t0, 2),
        "rounds": loads,
        "metrics": [m.result() for m in metrics] + [
            m.derived("server_cpu_us_per_msg", "cpu:" + m.key.split(":", 1)[1],
                      f"server CPU per echo, {m.key.split(':', 1)[1]} (same runs)", "µs/msg", LOWER)
            for m in metrics if m.key.startswith("echo:")
        ],
    }


# ------------------------------------------------------------------ rendering --


def _fmt(value: Optional[float]) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cell(s: Dict[str, Any]) -> str:
    if not s or s.get("median") is None:
        return "n/a"
    return f"{_fmt(s['median'])} ({_fmt(s['min'])}–{_fmt(s['max'])})"


def table(result: Dict[str, Any], markdown: bool = True) -> str:
    """The result as a Markdown (or plain text) table with a header naming A, B and the machine."""
    a = result["a"].get("name") or result["a"].get("spec")
    b = result["b"].get("name") or result["b"].get("spec")
    m = result["machine"]
    n = len(result.get("rounds", []))
    headers = ["metric", "unit", f"A={a} median (min–max)", f"B={b} median (min–max)", "A/B",
               "A/B per round (min–max)", "verdict", "swarm ceiling median"]
    rows = []
    for metric in result["metrics"]:
        rr = [r for r in metric["round_ratios"] if r is not None]
        ceiling = metric.get("ceiling")
        rows.append([
            metric["title"], metric["unit"] + (" ↑" if metric["better"] == HIGHER else " ↓"),
            _cell(metric["a"]), _cell(metric["b"]),
            _fmt(metric["ratio"]) if metric["ratio"] is not None else "n/a",
            f"{_fmt(min(rr))}–{_fmt(max(rr))}" if rr else "n/a",
            metric["verdict"] + (f" ({len(metric['failures'])} failed)" if metric["failures"] else ""),
            _fmt(ceiling["median"]) if ceiling and ceiling.get("median") is not None else "—",
        ])
    loads = [r["before"][0] for r in result.get("rounds", []) if r.get("before")]
    loads += [r["after"][0] for r in result.get("rounds", []) if r.get("after")]
    head = (f"{n} alternating round(s); {m.get('nproc')} CPUs ({m.get('cpu_model')}), {m.get('python')}, "
            f"{m.get('os')}; 1-min load during the run "
            + (f"{min(loads):.2f}–{max(loads):.2f}" if loads else "n/a")
            + f"; {result.get('duration_s')} s. ↑ higher is better, ↓ lower is better.")
    if markdown:
        lines = [head, "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines) + "\n"
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(len(headers))]
    lines = [head, "", "  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines) + "\n"


def html(result: Dict[str, Any]) -> str:
    """A standalone HTML page: the table and, per metric, a dot plot of every sample (inline SVG)."""
    import html as html_module

    esc = html_module.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>ssconform bench</title>",
             "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.9em}"
             "svg{display:block;margin:.3em 0 1.2em}</style></head><body>",
             f"<h1>ssconform bench: A={esc(str(result['a'].get('name') or result['a'].get('spec')))} "
             f"vs B={esc(str(result['b'].get('name') or result['b'].get('spec')))}</h1>"]
    text = table(result, markdown=True).splitlines()
    parts.append(f"<p>{esc(text[0])}</p><table>")
    for n, line in enumerate(text[2:]):
        if n == 1:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        tag = "th" if n == 0 else "td"
        parts.append("<tr>" + "".join(f"<{tag}>{esc(c)}</{tag}>" for c in cells) + "</tr>")
    parts.append("</table>")
    for metric in result["metrics"]:
        parts.append(f"<h3>{esc(metric['title'])} ({esc(metric['unit'])})</h3>")
        parts.append(_dot_plot(metric))
    parts.append("</body></html>")
    return "\n".join(parts)


def _dot_plot(metric: Dict[str, Any]) -> str:
    rows = [("A", "#1f77b4", metric["a"]["samples"]), ("B", "#d62728", metric["b"]["samples"])]
    if metric.get("ceiling"):
        rows.append(("ceiling", "#777", metric["ceiling"]["samples"]))
    values = [v for _, _, s in rows for v in s if v is not None]
    if not values:
        return "<p>no samples</p>"
    top = max(values) * 1.05 or 1.0
    width, left, row_h = 600, 70, 22
    svg = [f"<svg width='{width + left + 20}' height='{row_h * len(rows) + 20}' role='img'>"]
    for n, (label, color, samples) in enumerate(rows):
        y = 12 + n * row_h
        svg.append(f"<text x='0' y='{y + 4}' font-size='12'>{label}</text>")
        svg.append(f"<line x1='{left}' x2='{left + width}' y1='{y}' y2='{y}' stroke='#eee'/>")
        for v in samples:
            if v is not None:
                svg.append(f"<circle cx='{left + width * v / top:.1f}' cy='{y}' r='4' fill='{color}' "
                           f"fill-opacity='.6'><title>{_fmt(v)}</title></circle>")
    axis_y = 12 + len(rows) * row_h - 6
    svg.append(f"<text x='{left}' y='{axis_y + 10}' font-size='10'>0</text>")
    svg.append(f"<text x='{left + width - 40}' y='{axis_y + 10}' font-size='10'>{_fmt(top)}</text>")
    svg.append("</svg>")
    return "".join(svg)


__all__ = [
    "A_BETTER", "B_BETTER", "NOISE", "NA", "SCHEMA",
    "BenchConfig", "BenchServerError", "EchoLoad", "Sample",
    "bench_server", "build_metrics", "combine", "html", "machine", "measure_connect", "measure_echo",
    "measure_memory", "measure_shutdown", "ratio", "rss_bytes", "run_bench", "stats", "table",
    "verdict", "wait_for_load",
]
