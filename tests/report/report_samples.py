"""Synthetic run records for the report tests (valid against the record schema).

``make_record`` builds one record with harness.results.records' own constructors, so
the tests exercise the real validation.  ``realistic_records`` builds a
hand-written but plausible set of runs -- Linux CPython 3.9/3.12/3.13,
PyPy, the reference implementation, macOS and Windows -- whose platform
observations follow docs/platform-knowledge.md.  It drives the
screenshot in docs/report-screenshot.png until real CI records replace it.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any, Dict, List, Optional

from harness.results import records

BASE_FINGERPRINT: Dict[str, Any] = {
    "os": "linux",
    "os_release": "6.8.0-1017-azure",
    "os_version": "#20-Ubuntu SMP",
    "machine": "x86_64",
    "python_implementation": "CPython",
    "python_version": "3.12.7",
    "python_build": "main, Oct  1 2024 (GCC 11.4.0)",
    "gil": "enabled",
    "capabilities": {"fork": True, "af_unix": True, "ipv6": True, "reuse_port": True, "signals": True,
                     "rlimit": True, "poll": True, "simulated_absent": []},
    "selector": "PollSelector",
    "default_selector": "EpollSelector",
    "mp_start_method": "fork",
    "rlimit_nofile": [1024, 1048576],
    "hostname_hash": "0123456789abcdef",
    "ci": None,
}

WINDOWS = {
    "os": "windows", "os_release": "2022Server", "os_version": "10.0.20348", "machine": "AMD64",
    "capabilities": {"fork": False, "af_unix": False, "ipv6": True, "reuse_port": False, "signals": False,
                     "rlimit": False, "poll": False, "simulated_absent": []},
    "selector": "SelectSelector", "default_selector": "SelectSelector", "mp_start_method": "spawn",
    "rlimit_nofile": None, "hostname_hash": "fedcba9876543210",
}
MACOS = {
    "os": "macos", "os_release": "23.6.0", "os_version": "Darwin Kernel Version 23.6.0", "machine": "arm64",
    "default_selector": "KqueueSelector", "mp_start_method": "spawn", "rlimit_nofile": [256, None],
    "hostname_hash": "00112233aabbccdd",
}


def check(check_id: str, level: str = "REQUIRED", outcome: str = "PASS", **fields: Any) -> dict:
    """One checks[] entry (``title`` defaults to something readable)."""
    fields.setdefault("title", f"check {check_id}")
    return records.check_entry(id=check_id, level=level, outcome=outcome, **fields)


def make_record(checks: List[dict], *, impl: str = "stdlib", impl_version: Optional[str] = None,
                api_version: Optional[str] = None, repeat_index: Optional[int] = None,
                run_id: Optional[str] = None, finished: str = "2026-11-30T00:30:21.000000+00:00",
                aborted: Optional[str] = None, **fingerprint: Any) -> dict:
    fp = copy.deepcopy(BASE_FINGERPRINT)
    fp.update(copy.deepcopy(fingerprint))
    pyver = fp["python_version"]
    implementation = {
        "name": impl, "spec": impl, "kind": "adapter",
        "module": "socketserver" if impl == "stdlib" else f"{impl}_socketserver",
        "file": None,
        "version": impl_version or (f"{fp['python_implementation']} {pyver}" if impl == "stdlib" else "0.1.0"),
        "api_version": api_version or ".".join(pyver.split(".")[:2]), "extra": {},
    }
    record = {
        "schema_version": records.SCHEMA_VERSION,
        "suite_version": "0.1.0",
        "run_id": run_id or str(uuid.uuid4()),
        "started": "2026-11-30T00:30:00.123456+00:00",
        "finished": finished,
        "implementation": implementation,
        "fingerprint": fp,
        "options": {"timeout_multiplier": 1.0, "expectations": None, "xdist_workers": 0,
                    "selection": None, "repeat_index": repeat_index},
        "checks": [copy.deepcopy(c) for c in checks],
    }
    if aborted:
        record["aborted"] = aborted
    records.validate(record)
    return record


# --------------------------------------------------------------------------- realistic set

def _serial(n: int, each: float = 0.05) -> List[dict]:
    return [{"client": i, "start": round(i * each, 4), "end": round((i + 1) * each - 0.002, 4),
             "pid": 4242, "tid": 140001} for i in range(n)]


def _threads(n: int, each: float = 0.05, pid: int = 4242) -> List[dict]:
    return [{"client": i, "start": round(i * 0.002, 4), "end": round(each + i * 0.003, 4),
             "pid": pid, "tid": 140100 + i} for i in range(n)]


def _forks(n: int, each: float = 0.05) -> List[dict]:
    return [{"client": i, "start": round(0.004 * i, 4), "end": round(each + 0.006 * i, 4),
             "pid": 5000 + i, "tid": 1} for i in range(n)]


def _doc(topic: str, os_name: str) -> Optional[dict]:
    from harness.report.platform_notes import documented_for

    return documented_for(topic, os_name)


def _platform(check_id: str, topic: str, os_name: str, summary: str, variant: str = "", title: str = "",
              agrees: Optional[bool] = None, **observed: Any) -> dict:
    from harness.core.observations import comparable
    from harness.report.platform_notes import accepted

    documented = _doc(topic, os_name)
    if agrees is None and documented:
        agrees = any(comparable(v) == comparable(summary) for v in accepted(topic, os_name))
    return check(check_id, "PLATFORM", "INFO", variant=variant, title=title,
                 observed=dict(observed, summary=summary), documented=documented, agrees=agrees)


def _checks_for(os_name: str, pyimpl: str, pyver: str, impl: str) -> List[dict]:
    minor = tuple(int(p) for p in pyver.split(".")[:2])
    windows = os_name == "windows"
    macos = os_name == "macos"
    out = [
        check("API-001", title="The nine platform-independent classes exist and are listed in __all__",
              observed={"missing": [], "unlisted": []}),
        _platform("API-002", "fork_availability", os_name, "Forking* absent" if windows else "Forking* present",
                  title="Forking names are present exactly when os.fork exists"),
        _platform("API-003", "af_unix_availability", os_name, "Unix* absent" if windows else "Unix* present",
                  title="Unix-domain names are present exactly when socket.AF_UNIX exists"),
        check("API-004", "VERSION", "UNSUPPORTED" if windows else "PASS",
              title="ForkingUnix* exist from API 3.12 on where both fork and AF_UNIX exist",
              observed={"summary": "absent" if windows or (minor < (3, 12) and impl == "stdlib") else "present"},
              message="os.fork and AF_UNIX are absent" if windows else ""),
        check("TCP-003", title="Binding port 0 stores the real port in server_address",
              observed={"server_address": ["127.0.0.1", 40211 + minor[1]]}),
        check("TCP-007", title="shutdown() returns within one poll_interval of an idle server",
              observed={"latency_s": 0.011 if not windows else 0.016}),
    ]
    # Disconnect scenarios.
    out.append(_platform("DISCONNECT-001", "fin", os_name, "b''", variant="fin",
                         title="What the handler sees when the client closes"))
    rst = "ConnectionResetError [ECONNRESET]" + (" (WinError 10054)" if windows else "")
    out.append(_platform("DISCONNECT-001", "rst", os_name, rst, variant="rst",
                         title="What the handler sees when the client closes"))
    killed = "ConnectionResetError [ECONNRESET] (WinError 10054)" if windows else "b''"
    out.append(_platform("DISCONNECT-001", "killed", os_name, killed, variant="killed",
                         title="What the handler sees when the client closes"))
    if macos:
        send = "BrokenPipeError [EPIPE]"
    elif windows:
        send = "ConnectionAbortedError [ECONNABORTED] (WinError 10053)"
    else:
        send = "ConnectionResetError [ECONNRESET]"
    out.append(_platform("DISCONNECT-002", "send_after_rst", os_name, send, variant="send_after_rst",
                         title="First send() after the peer reset the connection"))
    out.append(_platform("UDP-004", "udp_dead_port", os_name,
                         "ConnectionResetError [ECONNRESET] (WinError 10054)" if windows else "no error",
                         variant="udp_dead_port", title="recvfrom after replying to a vanished client"))
    out.append(_platform("UDP-005", "udp_truncation", os_name,
                         "OSError [EMSGSIZE] (WinError 10040)" if windows else "truncated to 8192",
                         title="A 9000-byte datagram with max_packet_size 8192"))
    out.append(_platform("TCP-012", "ipv6_v6only", os_name, "1" if windows else "0",
                         title="IPV6_V6ONLY default on an AF_INET6 server socket"))
    if macos:
        # A disagreement with the documentation, to show the flag.
        out.append(_platform("TCP-013", "backlog_overflow", os_name, "ConnectionRefusedError [ECONNREFUSED]",
                             title="A client beyond the listen backlog"))
    else:
        out.append(_platform("TCP-013", "backlog_overflow", os_name,
                             "ConnectionRefusedError [ECONNREFUSED] (WinError 10061)" if windows else "TimeoutError",
                             title="A client beyond the listen backlog"))
    # Concurrency timelines.
    out.append(check("MIXIN-001", title="A plain TCPServer serves one client at a time",
                     observed={"max_overlap": 1, "timeline": _serial(6)}))
    out.append(check("MIXIN-002", title="ThreadingMixIn runs handlers concurrently",
                     observed={"max_overlap": 6, "timeline": _threads(6)}))
    if windows:
        out.append(check("MIXIN-003", outcome="UNSUPPORTED", requires=["fork"],
                         title="ForkingMixIn runs handlers in child processes concurrently",
                         message="requires fork, absent here"))
    else:
        out.append(check("MIXIN-003", requires=["fork"],
                         title="ForkingMixIn runs handlers in child processes concurrently",
                         observed={"max_overlap": 6, "timeline": _forks(6)}))
    if windows:
        out.append(check("UNIX-001", outcome="UNSUPPORTED", requires=["af_unix"],
                         title="UnixStreamServer echoes over a socket file", message="requires af_unix"))
    else:
        out.append(check("UNIX-001", requires=["af_unix"], title="UnixStreamServer echoes over a socket file"))
    # One genuine failure and one expected failure.
    if pyimpl == "PyPy":
        out.append(check("SHUTDOWN-004", outcome="FAIL",
                         title="server_close() joins non-daemon handler threads",
                         message="SHUTDOWN-004 [stdlib]: server_close() returned after 0.002 s; "
                                 "expected it to wait for the 0.2 s handler | observed threads=1"))
    else:
        out.append(check("SHUTDOWN-004", title="server_close() joins non-daemon handler threads"))
    if impl == "reference":
        out.append(check("API-010", outcome="XFAIL", expected_outcome="FAIL",
                         expectation_reason="reference_impl omits the deprecated __version__",
                         title="socketserver.__version__ exists", message="no attribute __version__"))
    else:
        out.append(check("API-010", title="socketserver.__version__ exists"))
    return out


def realistic_records() -> List[dict]:
    plan = [
        ({}, "CPython", "3.9.20", "stdlib"),
        ({}, "CPython", "3.12.7", "stdlib"),
        ({}, "CPython", "3.13.0", "stdlib"),
        ({}, "PyPy", "3.10.14", "stdlib"),
        ({}, "CPython", "3.12.7", "reference"),
        (MACOS, "CPython", "3.12.7", "stdlib"),
        (WINDOWS, "CPython", "3.12.7", "stdlib"),
    ]
    result = []
    for overrides, pyimpl, pyver, impl in plan:
        fp = dict(overrides, python_implementation=pyimpl, python_version=pyver)
        os_name = fp.get("os", "linux")
        result.append(make_record(_checks_for(os_name, pyimpl, pyver, impl), impl=impl,
                                  api_version="3.13" if impl == "reference" else None, **fp))
    return result


def write_all(recs: List[dict], directory) -> list:
    return [records.write_record(record, directory) for record in recs]
