"""Socket-address probe, imported at start-up by every Python process of a probed run.

Theory of operation
-------------------
``tests/reliability/test_reliability_security.py`` puts this directory first
on ``PYTHONPATH`` and names a log file in ``SSC_PROBE_SOCKET_LOG``.  Python
imports ``sitecustomize`` at start-up, so the ``ssconform`` CLI, its pytest
processes, ``python -m harness.processes.server_process`` children, killed clients and
every forked child of them run this code before the kit does anything.  It
wraps ``socket.socket.bind``, ``connect``, ``connect_ex`` and ``sendto`` to
append one JSON line per *distinct* (operation, family, address) and process
-- ``{"op", "family", "address", "pid"}``, plus for AF_UNIX paths the mode and
owner of the directory the path lives in, taken at the moment of the call
(the kit removes its private directories afterwards).  The wrapped call is
then made unchanged: its result and exceptions are the original's.

Writes use ``O_APPEND`` and one ``os.write`` per line, opened and closed each
time, so lines from concurrent processes do not interleave and the probe holds
no descriptor that a leak check could count.  Without the environment
variable this module does nothing.  Not for gevent/eventlet runs: importing
``socket`` here would precede their monkey-patching.
"""
import os

_LOG = os.environ.get("SSC_PROBE_SOCKET_LOG")

if _LOG:
    import json
    import socket

    _seen = set()

    def _jsonable(address):
        if isinstance(address, bytes):
            return {"bytes": address.decode("latin-1")}
        if isinstance(address, tuple):
            return [_jsonable(part) for part in address]
        return address

    def _log(op, sock, address):
        try:
            family = socket.AddressFamily(sock.family).name
        except (ValueError, OSError):
            family = str(getattr(sock, "family", None))
        key = (os.getpid(), op, family, repr(address))
        if key in _seen:
            return
        _seen.add(key)
        entry = {"op": op, "family": family, "address": _jsonable(address), "pid": os.getpid()}
        if family == "AF_UNIX" and isinstance(address, (str, bytes)):
            path = os.fsdecode(address)
            if path and not path.startswith("\0"):
                try:
                    info = os.stat(os.path.dirname(os.path.abspath(path)))
                    entry["dir_mode"] = info.st_mode & 0o777
                    entry["dir_uid"] = info.st_uid
                except OSError as exc:
                    entry["dir_error"] = str(exc)
        line = (json.dumps(entry) + "\n").encode("utf-8")
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    _bind, _connect, _connect_ex, _sendto = (
        socket.socket.bind, socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto)

    def bind(self, address):
        _log("bind", self, address)
        return _bind(self, address)

    def connect(self, address):
        _log("connect", self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        _log("connect", self, address)
        return _connect_ex(self, address)

    def sendto(self, data, *rest):
        _log("sendto", self, rest[-1] if rest else None)
        return _sendto(self, data, *rest)

    socket.socket.bind = bind
    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.socket.sendto = sendto
