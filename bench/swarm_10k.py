"""Benchmark: 10,000 concurrent clients against a socketserver in its own process.

Theory of operation
-------------------
This is a benchmark script, not a test.  It answers two questions:

1. Does the implementation's ``ThreadingTCPServer`` (or ``--server-class``)
   serve 10,000 connections held at the same time and released together,
   without losing or corrupting a message?  The server runs in a separate
   process started from this same file (``--serve``) with a plain echo
   handler built on the implementation's ``StreamRequestHandler``, so the
   swarm and the server do not share a GIL, and ``serve_forever`` runs with
   the class defaults except ``daemon_threads = True`` (a quick teardown).
   A ``ThreadingTCPServer`` holding 10,000 connections runs 10,000 threads:
   ``--thread-stack-size`` sets ``threading.stack_size`` in the server
   process only, for machines where the default stack (8 MiB of virtual
   memory each) does not fit.  ``--switch-interval`` sets
   ``sys.setswitchinterval`` in the server process only: every thread
   waiting for the GIL wakes up once per interval (5 ms by default) and
   asks the holder to drop it, so when thousands of handler threads become
   runnable at once (the release) the server can spend its CPU on that
   storm instead of on requests.  Measured here (2 vCPUs, CPython 3.11):
   4,000 clients x 5 messages took 140 s of server CPU and lost messages
   with the default, 3.7 s and none with 0.1 s.
2. What is the swarm's own ceiling?  The same swarm runs against a minimal
   non-blocking selectors echo server in another subprocess (``--serve-raw``,
   backlog ``SOMAXCONN``, no threads), so the first figure can be read
   against what the client side can drive at all on this machine.

``RLIMIT_NOFILE`` is raised in this process before the servers start (they
inherit it).  While the swarm runs, the server's thread count and peak RSS
are sampled from ``/proc/<pid>/status`` where it exists.  Output: a text
summary, then (or, with ``--json``, only) one JSON document with the
machine, the limits, both swarm summaries and the server's peak figures.

Usage::

    python bench/swarm_10k.py                      # 10,000 clients, stdlib ThreadingTCPServer
    python bench/swarm_10k.py --clients 2000 --messages 5 --impl reference --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import selectors
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
if _ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, _ROOT)

from harness.clients import swarm  # noqa: E402
from harness.core import addresses, timeouts  # noqa: E402

#: bound on the loops of the servers below
MAX_LINES = 1_000_000


# --------------------------------------------------------------------------- server processes


def _watch_stdin(stop: threading.Event) -> None:
    try:
        sys.stdin.readline()  # the parent closes stdin to stop us
    finally:
        stop.set()


def serve_main(args: argparse.Namespace) -> int:
    """``--serve``: the implementation's server with a plain echo handler."""
    from harness.implementations import resolve
    from harness.serving import servers

    if args.thread_stack_size:
        threading.stack_size(args.thread_stack_size)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    module = resolve(args.impl).module
    idle = timeouts.long() * 3  # a held connection may wait through the whole connect phase

    class Echo(module.StreamRequestHandler):
        def handle(self):
            self.request.settimeout(idle)
            for _ in range(MAX_LINES):
                line = self.rfile.readline(65536)
                if not line:
                    return
                self.wfile.write(line)

    server = servers.build_server(module, args.server_class, Echo, addresses.loopback(args.family),
                                  daemon_threads=True)
    thread = threading.Thread(target=server.serve_forever, args=(timeouts.poll() * 5,), daemon=True)
    thread.start()
    stop = threading.Event()
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    print(json.dumps({"address": list(server.server_address), "pid": os.getpid(),
                      "class": type(server).__mro__[1].__name__, "switch_interval": sys.getswitchinterval(),
                      "request_queue_size": server.request_queue_size}), flush=True)
    stop.wait(args.lifetime)
    with contextlib.suppress(Exception):
        servers.call_bounded(server.shutdown, budget=timeouts.short(), what="server.shutdown()")
    with contextlib.suppress(Exception):
        servers.call_bounded(server.server_close, budget=timeouts.short(), what="server.server_close()")
    sys.stdout.flush()
    os._exit(0)


def serve_raw_main(args: argparse.Namespace) -> int:
    """``--serve-raw``: the smallest non-blocking echo server (the swarm's ceiling)."""
    family = addresses.socket_family(args.family)
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind(addresses.loopback(args.family))
    listener.listen(socket.SOMAXCONN)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ, None)
    pending: Dict[socket.socket, bytearray] = {}
    stop = threading.Event()
    threading.Thread(target=_watch_stdin, args=(stop,), daemon=True).start()
    print(json.dumps({"address": list(listener.getsockname()), "pid": os.getpid(), "class": "raw selectors echo",
                      "request_queue_size": socket.SOMAXCONN}), flush=True)
    deadline = timeouts.Deadline(args.lifetime, "the raw echo server's lifetime")
    while not stop.is_set() and not deadline.expired():
        for key, mask in sel.select(timeouts.poll() * 10):
            if key.data is None:
                for _ in range(1024):
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    conn.setblocking(False)
                    pending[conn] = bytearray()
                    sel.register(conn, selectors.EVENT_READ, "conn")
                continue
            conn = key.fileobj
            out = pending[conn]
            if mask & selectors.EVENT_READ:
                try:
                    data = conn.recv(65536)
                except (BlockingIOError, InterruptedError):
                    data = None
                except OSError:
                    data = b""
                if data == b"":
                    sel.unregister(conn)
                    conn.close()
                    del pending[conn]
                    continue
                if data:
                    out += data
            if out:
                try:
                    sent = conn.send(out)
                    del out[:sent]
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    out.clear()
            wanted = "write" if out else "conn"  # change the interest set only when it changes
            if key.data != wanted:
                sel.modify(conn, selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0), wanted)
    os._exit(0)


class ServerProcess:
    """A server subprocess of this script; stop() closes stdin, waits bounded, kills."""

    def __init__(self, mode: str, args: argparse.Namespace):
        command = [sys.executable, os.path.abspath(__file__), mode, "--impl", args.impl,
                   "--server-class", args.server_class, "--family", args.family,
                   "--lifetime", str(args.budget + timeouts.long())]
        if args.thread_stack_size:
            command += ["--thread-stack-size", str(args.thread_stack_size)]
        if args.switch_interval:
            command += ["--switch-interval", str(args.switch_interval)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        import tempfile

        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server; closed in printed()
        self.popen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                      env=env)
        lines: queue.Queue[Optional[bytes]] = queue.Queue()

        def read() -> None:
            for line in iter(self.popen.stdout.readline, b""):
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            line = lines.get(timeout=timeouts.long())
        except queue.Empty:
            self.stop()
            raise timeouts.HarnessTimeout(f"the {mode} server to start", timeouts.long()) from None
        if not line:
            code = self.popen.wait(timeout=timeouts.short())
            raise RuntimeError(f"the {mode} server exited with {code} before printing its address")
        self.info = json.loads(line)
        self.address = tuple(self.info["address"])
        self.pid = self.info["pid"]

    def cpu_seconds(self) -> Optional[float]:
        """User + system CPU time of the server process so far, where /proc exists."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{self.pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return None

    def status(self) -> Dict[str, int]:
        """Threads and VmHWM (peak RSS, KiB) from /proc, where it exists."""
        found: Dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/{self.pid}/status") as handle:
                for line in handle:
                    key, _, value = line.partition(":")
                    if key in ("Threads", "VmHWM", "VmRSS"):
                        found[key] = int(value.split()[0])
        return found

    def stop(self) -> Optional[int]:
        with contextlib.suppress(OSError):
            self.popen.stdin.close()
        try:
            return self.popen.wait(timeout=timeouts.medium())
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(timeout=timeouts.short())
        finally:
            with contextlib.suppress(OSError):
                self.popen.stdout.close()

    def printed(self) -> Dict[str, Any]:
        """How many handle_error reports the server printed, and the first one."""
        self.stderr.seek(0)
        text = self.stderr.read().decode("utf-8", "replace")
        self.stderr.close()
        marker = "Exception occurred during processing of request"
        first = text.find(marker)
        return {"handle_error_reports": text.count(marker), "stderr_chars": len(text),
                "first_report": text[first : first + 1500] if first >= 0 else text[:500]}


class Sampler:
    """Peak thread count and peak RSS of a server process while the swarm runs."""

    def __init__(self, server: ServerProcess):
        self.server = server
        self.peak_threads = 0
        self.peak_rss_kib = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = timeouts.Deadline(timeouts.long() * 10, "sampling")
        while not self.stop.wait(timeouts.poll() * 10) and not deadline.expired():
            status = self.server.status()
            self.peak_threads = max(self.peak_threads, status.get("Threads", 0))
            self.peak_rss_kib = max(self.peak_rss_kib, status.get("VmHWM", 0))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        timeouts.join_thread(self.thread, timeouts.short(), "the sampler")


# --------------------------------------------------------------------------- benchmark


def machine() -> Dict[str, Any]:
    facts: Dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
    }
    for name, path in (("threads_max", "/proc/sys/kernel/threads-max"), ("somaxconn", "/proc/sys/net/core/somaxconn"),
                       ("pid_max", "/proc/sys/kernel/pid_max")):
        with contextlib.suppress(OSError, ValueError):
            with open(path) as handle:
                facts[name] = int(handle.read().split()[0])
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/meminfo") as handle:
            facts["mem_total_mib"] = int(handle.readline().split()[1]) // 1024
    with contextlib.suppress(ImportError, AttributeError, ValueError):
        import resource

        facts["ulimit_u"] = resource.getrlimit(resource.RLIMIT_NPROC)[0]
        facts["stack_limit_kib"] = resource.getrlimit(resource.RLIMIT_STACK)[0] // 1024
    return facts


def _loadavg() -> Optional[list]:
    """The 1/5/15-minute load averages: other work on the machine skews every figure."""
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def one_run(mode: str, args: argparse.Namespace) -> Dict[str, Any]:
    load_before = _loadavg()
    server = ServerProcess(mode, args)
    try:
        config = swarm.SwarmConfig(server.address, args.family, "stream", clients=args.clients,
                                   messages=args.messages, size=args.size, budget=args.budget,
                                   connect_batch=args.connect_batch, first_attempt_timeout=args.first_attempt,
                                   connect_timeout=args.connect_timeout, reply_timeout=args.reply_timeout)
        cpu = time.process_time()
        server_cpu = server.cpu_seconds()
        with Sampler(server) as sampler:
            result = swarm.run_swarm(config)
        cpu = time.process_time() - cpu
        server_cpu_after = server.cpu_seconds()
        if server_cpu is not None and server_cpu_after is not None:
            server_cpu = round(server_cpu_after - server_cpu, 3)
    finally:
        code = server.stop()
    printed = server.printed()
    return {
        "loadavg_before": load_before,
        "loadavg_after": _loadavg(),
        "server_printed": printed,
        "server": server.info,
        "server_exit": code,
        "server_peak_threads": sampler.peak_threads or None,
        "server_peak_rss_mib": round(sampler.peak_rss_kib / 1024, 1) if sampler.peak_rss_kib else None,
        "swarm_cpu_s": round(cpu, 3),
        "server_cpu_s": server_cpu,
        "summary": result.summary,
        "text": result.text(),
        "sample_failures": result.as_dict()["sample_failures"],
    }


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--messages", type=int, default=2)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--impl", default="stdlib", help="stdlib | reference | dotted module | path.py")
    parser.add_argument("--server-class", default="ThreadingTCPServer")
    parser.add_argument("--family", default="inet", choices=["inet", "inet6"])
    parser.add_argument("--connect-batch", type=int, default=swarm.SwarmConfig.connect_batch)
    parser.add_argument("--first-attempt", type=float, default=None,
                        help="first connect attempt's timeout (default: harness.clients.swarm.FIRST_ATTEMPT)")
    parser.add_argument("--connect-timeout", type=float, default=None,
                        help="per-client connect window (default: long(); the accept loop is slow at 10,000)")
    parser.add_argument("--reply-timeout", type=float, default=None,
                        help="per-message echo timeout (default: long(); see the module docstring)")
    parser.add_argument("--budget", type=float, default=None, help="seconds for each swarm (default 3 x long())")
    parser.add_argument("--thread-stack-size", type=int, default=0,
                        help="threading.stack_size in the server process only (bytes; 0: the default)")
    parser.add_argument("--switch-interval", type=float, default=0.0,
                        help="sys.setswitchinterval in the server process only (seconds; 0: the default 0.005). "
                             "Every thread waiting for the GIL wakes up once per interval, so thousands of "
                             "runnable handler threads turn the default into a futex storm")
    parser.add_argument("--skip-ceiling", action="store_true", help="do not measure the raw echo ceiling")
    parser.add_argument("--json", action="store_true", help="print only the JSON document")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-raw", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lifetime", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.budget is None:
        args.budget = 3 * timeouts.long()
    if args.connect_timeout is None:
        args.connect_timeout = timeouts.long()
    if args.reply_timeout is None:
        args.reply_timeout = timeouts.long()
    if args.lifetime is None:
        args.lifetime = args.budget + timeouts.long()
    if args.serve:
        return serve_main(args)
    if args.serve_raw:
        return serve_raw_main(args)

    # both ends of every connection live on this machine, the server in a child that inherits the limit
    nofile = swarm.raise_nofile_limit(swarm.fds_needed(args.clients))
    report: Dict[str, Any] = {
        "machine": machine(),
        "nofile": nofile.as_dict(),
        "options": {k: v for k, v in vars(args).items() if k not in ("serve", "serve_raw", "json")},
    }
    report["server"] = one_run("--serve", args)
    if not args.skip_ceiling:
        report["ceiling"] = one_run("--serve-raw", args)
    verdict = report["server"]["summary"]
    report["ok"] = (verdict["served"] == verdict["clients"] and verdict["lost"] == 0
                    and verdict["corrupted"] == 0 and not verdict["errors"])
    if not args.json:
        m = report["machine"]
        print(f"machine: {m.get('nproc')} CPUs, {m.get('mem_total_mib')} MiB, {m.get('implementation')} "
              f"{m.get('python')}, {m.get('platform')}; threads-max {m.get('threads_max')}, "
              f"ulimit -u {m.get('ulimit_u')}, somaxconn {m.get('somaxconn')}")
        print(f"RLIMIT_NOFILE: {nofile.note}")
        for key, label in (("server", f"{args.impl} {args.server_class}"), ("ceiling", "raw selectors echo (ceiling)")):
            if key not in report:
                continue
            run = report[key]
            print(f"\n[{label}] pid {run['server']['pid']}, backlog {run['server']['request_queue_size']}, "
                  f"peak threads {run['server_peak_threads']}, peak RSS {run['server_peak_rss_mib']} MiB, "
                  f"CPU: swarm {run['swarm_cpu_s']}s, server {run['server_cpu_s']}s; handle_error reports "
                  f"{run['server_printed']['handle_error_reports']}; load average {run['loadavg_before']} -> "
                  f"{run['loadavg_after']}")
            print(run["text"])
        print(f"\nverdict: {'OK' if report['ok'] else 'NOT OK'} (0 lost / 0 corrupted / no errors expected)\n")
    for key in ("server", "ceiling"):
        if key in report:
            report[key].pop("text", None)
    print(json.dumps(report, indent=None if args.json else 2, sort_keys=True, default=repr))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
