"""pytest plugin: what one pytest process holds before and after the whole suite.

Theory of operation
-------------------
Loaded into the pytest process of ``ssconform run`` through the
``PYTEST_PLUGINS`` environment variable (the CLI passes its environment on),
with the output file in ``SSC_PROBE_LEAK_FILE``.  ``pytest_sessionstart``
takes a snapshot -- live threads, open descriptors (``/proc/self/fd`` with
their targets), live and zombie child processes (``/proc/*/stat`` whose
parent is this process) -- before the first check; ``pytest_unconfigure``
takes another after the last check and after the run record was written.
Threads and children may take a moment to end after the last teardown, so
the second snapshot waits (bounded by ``timeouts.short()``) until the counts
are back to the first; what is still there then is a leak.  One JSON line
``{"pid", "before", "after"}`` is appended to the file.
"""
import json
import os
import threading

from harness.core import timeouts

_BEFORE = {}


def _children():
    live, zombies = [], []
    me = os.getpid()
    try:
        names = os.listdir("/proc")
    except OSError:
        return None, None
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == me:
            (zombies if fields[0] == "Z" else live).append(int(name))
    return sorted(live), sorted(zombies)


def _fds():
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = {}
    for name in names:
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the descriptor of the listdir itself, already closed
    return found


def snapshot():
    live, zombies = _children()
    return {"threads": sorted(t.name for t in threading.enumerate()), "fds": _fds(),
            "children": live, "zombies": zombies}


def _settled(before):
    now = snapshot()
    return (len(now["threads"]) <= len(before["threads"]) and not now["children"] and not now["zombies"]
            and (now["fds"] is None or len(now["fds"]) <= len(before["fds"])))


def pytest_sessionstart(session):
    _BEFORE.update(snapshot())


def pytest_unconfigure(config):
    path = os.environ.get("SSC_PROBE_LEAK_FILE")
    if not path or not _BEFORE:
        return
    try:
        timeouts.wait_until(lambda: _settled(_BEFORE), timeouts.short(), "threads/fds/children to settle")
    except timeouts.HarnessTimeout:
        pass  # what remains is reported
    line = json.dumps({"pid": os.getpid(), "before": _BEFORE, "after": snapshot()}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)
