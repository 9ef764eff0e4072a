"""What each OS is documented (or measured) to do, encoded as data.

Theory of operation
-------------------
PLATFORM checks legitimately see different behaviour on Linux, Windows and
macOS.  A check records what it measured; this module says what was
*expected* on each OS and why, so that a record can carry the documented
value next to the measurement (``documented``/``agrees``) and the report
can explain every divergence with a mechanism paragraph and a minimal
reproduction.

The knowledge is a dict, :data:`TOPICS`, keyed by a short topic name
(``"rst"``, ``"udp_dead_port"`` ...).  Each topic has a ``title``, a
``mechanism`` paragraph, a ``repro`` snippet (plain standard library,
loopback only) and ``expect``: per OS (``linux``, ``windows``, ``macos``
and sometimes ``freebsd``) a ``value`` in the report's *observation
summary* style, a ``confidence`` tag and a ``source``.  Optional
``accept`` lists other summaries that also agree with the documentation.

Confidence tags come from the research notes this data was written from
(``shared/research/platform_semantics.md``): ``M`` measured on a Linux
host, ``D`` documented (official docs or OS/CPython source), ``R``
reported by third parties, ``U`` unverified inference.  Nothing for
Windows or macOS is ``M`` until a real runner measured it.

A check names its topic explicitly (the plugin calls
``documented_for(topic, os)``).  For records whose checks did not, the
report resolves a topic with :func:`topic_for`: the explicit
:data:`CHECK_TOPICS` patterns first, then a variant that is itself a topic
name (``DISCONNECT-001[rst]`` -> ``rst``), then a capability the check
requires (an UNSUPPORTED ``fork`` check is explained by topic ``fork``).

Values are written in the observation-summary style of
:func:`harness.observations.summary` (``ConnectionResetError [ECONNRESET]``,
``ConnectionResetError [ECONNRESET] (WinError 10054)``, ``b''``), so that
``comparable(value) == comparable(summary)`` decides agreement; the
parenthesised Windows number is detail, not disagreement.  A topic may
list further summaries that agree (``accept``); :func:`accepted` returns
them with the main value.  :func:`documented_for` returns exactly the
record's ``documented`` shape, which has no room for ``accept``.
"""

from __future__ import annotations

import fnmatch
import re
import sys
from typing import Dict, Iterable, List, Optional, Tuple

#: OS names used as keys in ``expect``; fingerprints and callers may use aliases.
OSES = ("linux", "windows", "macos", "freebsd")

_OS_ALIASES = {
    "linux": "linux",
    "linux2": "linux",
    "windows": "windows",
    "win32": "windows",
    "win": "windows",
    "nt": "windows",
    "cygwin": "windows",
    "macos": "macos",
    "darwin": "macos",
    "mac": "macos",
    "osx": "macos",
    "freebsd": "freebsd",
}

_PS = "platform_semantics.md"
_LINUX_M = "measured on Linux 6.18, CPython 3.11.7/3.12.1/3.13.0 (" + _PS + " appendix A)"

TOPICS: Dict[str, dict] = {
    "fin": {
        "title": "Peer closed gracefully (FIN): recv returns b''",
        "mechanism": (
            "When the client closes normally its kernel sends FIN. The server's recv() then "
            "returns an empty bytes object, on every OS, and keeps returning it on later calls. "
            "Bytes sent before the FIN are delivered first. This is the one teardown every OS "
            "agrees on; a difference here points at the implementation, not the platform."
        ),
        "repro": (
            "import socket\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname())\n"
            "conn, _ = srv.accept()\n"
            "cli.close()                  # FIN\n"
            "print(repr(conn.recv(100)))  # b'' everywhere\n"
        ),
        "expect": {
            "linux": {"value": "b''", "confidence": "M", "source": _LINUX_M + " #1"},
            "windows": {
                "value": "b''",
                "confidence": "D",
                "source": "https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-recv",
            },
            "macos": {"value": "b''", "confidence": "D", "source": "XNU bsd/kern/uipc_socket.c soreceive (SS_CANTRCVMORE)"},
            "freebsd": {"value": "b''", "confidence": "U", "source": "BSD socket semantics (unverified)"},
        },
        "section": "1.1, 1.2",
    },
    "half_close": {
        "title": "Peer half-closed (shutdown SHUT_WR): server reads EOF but can still send",
        "mechanism": (
            "shutdown(SHUT_WR) sends FIN but leaves the receive side open. The server sees "
            "recv() == b'' and may still send a reply, which the client receives. Protocols that "
            "signal 'end of request' this way work the same on every OS (Windows calls it "
            "SD_SEND)."
        ),
        "repro": (
            "import socket\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname())\n"
            "conn, _ = srv.accept()\n"
            "cli.shutdown(socket.SHUT_WR)\n"
            "print(repr(conn.recv(100)))  # b''\n"
            "conn.sendall(b'reply')\n"
            "print(repr(cli.recv(100)))   # b'reply'\n"
        ),
        "expect": {
            "linux": {"value": "b''", "confidence": "M", "source": _LINUX_M + " #2"},
            "windows": {
                "value": "b''",
                "confidence": "D",
                "source": "https://learn.microsoft.com/en-us/windows/win32/api/winsock/nf-winsock-shutdown",
            },
            "macos": {"value": "b''", "confidence": "U", "source": "BSD socket semantics (unverified)"},
        },
        "section": "1.3",
    },
    "rst": {
        "title": "Peer reset the connection (RST): ECONNRESET with an OS-specific number",
        "mechanism": (
            "A client that closes with SO_LINGER (1, 0) aborts the connection: its kernel sends "
            "RST instead of FIN. The server's next recv() raises ConnectionResetError, whose "
            "errno is 104 on Linux, 54 on macOS and WSAECONNRESET 10054 on Windows (Python "
            "shows it as [WinError 10054]). Linux reports the error once and then returns b''; "
            "Windows may also throw away bytes that had already arrived, so the error can come "
            "with no data delivered. macOS handles loopback RST asynchronously, so a check must "
            "poll with a deadline before asserting. Portable code compares e.errno with "
            "errno.ECONNRESET, never with a literal."
        ),
        "repro": (
            "import socket, struct\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname())\n"
            "conn, _ = srv.accept()\n"
            "cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
            "cli.close()                  # RST, not FIN\n"
            "try:\n"
            "    print(repr(conn.recv(100)))\n"
            "except OSError as e:\n"
            "    print(type(e).__name__, e.errno, getattr(e, 'winerror', None))\n"
        ),
        "expect": {
            "linux": {"value": "ConnectionResetError [ECONNRESET]", "confidence": "M", "source": _LINUX_M + " #3"},
            "windows": {
                "value": "ConnectionResetError [ECONNRESET] (WinError 10054)",
                "confidence": "D",
                "source": "https://learn.microsoft.com/en-us/windows/desktop/api/winsock/nf-winsock-closesocket",
            },
            "macos": {
                "value": "ConnectionResetError [ECONNRESET]",
                "confidence": "D",
                "source": "XNU bsd/netinet/tcp_input.c (RST in ESTABLISHED sets so_error = ECONNRESET)",
            },
            "freebsd": {"value": "ConnectionResetError [ECONNRESET]", "confidence": "U", "source": "BSD errno.h (unverified)"},
        },
        "section": "0, 1.4",
    },
    "unread_close": {
        "title": "Peer closed with unread data in its buffer: RST instead of FIN",
        "mechanism": (
            "RFC 1122 says a close() that discards unread received data should reset the "
            "connection. Linux, macOS and Windows do so, so the server sees ECONNRESET although "
            "the client 'closed normally'. Data the client sent before closing is read first on "
            "Linux; Windows may discard it. FreeBSD is the exception: it flushes the buffer and "
            "sends FIN. For AF_UNIX streams Linux reports ECONNRESET too, macOS plain EOF."
        ),
        "repro": (
            "import socket\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname())\n"
            "conn, _ = srv.accept()\n"
            "conn.sendall(b'never read by the client')\n"
            "cli.sendall(b'req')\n"
            "cli.close()                  # unread data -> RST\n"
            "print(repr(conn.recv(100)))  # b'req' on Linux\n"
            "conn.recv(100)               # ConnectionResetError\n"
        ),
        "expect": {
            "linux": {"value": "ConnectionResetError [ECONNRESET]", "confidence": "M", "source": _LINUX_M + " #4, #4b"},
            "windows": {
                "value": "ConnectionResetError [ECONNRESET] (WinError 10054)",
                "confidence": "R",
                "source": "https://github.com/openssl/openssl/pull/4333",
            },
            "macos": {
                "value": "ConnectionResetError [ECONNRESET]",
                "confidence": "D",
                "source": "XNU bsd/netinet/tcp_usrreq.c tcp_disconnect (unread data -> tcp_drop)",
            },
            "freebsd": {"value": "b''", "confidence": "D", "source": "FreeBSD tcp_usrreq.c tcp_disconnect (sbflush, FIN)"},
        },
        "section": "1.5, 1.5u, 1.13",
    },
    "unix_rst": {
        "title": "SO_LINGER (1, 0) then close() on an AF_UNIX stream: plain EOF",
        "mechanism": (
            "An abortive close is a TCP notion: SO_LINGER with a zero timeout makes TCP send RST "
            "instead of FIN. A Unix-domain stream has no RST; the linger option does not change "
            "how the kernel tears the pair down, so the server side reads EOF (b'') exactly as "
            "after a graceful close, as long as the client left no unread data behind (that case "
            "is unix_unread_close)."
        ),
        "repro": (
            "import socket, struct\n"
            "a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
            "a.close()\n"
            "print(repr(b.recv(100)))   # b''\n"
        ),
        "expect": {
            "windows": {"value": "absent", "confidence": "D", "source": "https://github.com/python/cpython/issues/77589 (no AF_UNIX in CPython on Windows)"},
            "linux": {"value": "b''", "confidence": "M",
                      "source": "measured by this kit (DISCONNECT-001 rst on UnixStreamServer, Linux 6.18, CPython 3.9-3.13)"},
            "macos": {"value": "b''", "confidence": "U", "source": "BSD AF_UNIX has no RST; unverified"},
        },
        "section": "1.4, 1.5u",
    },
    "unix_unread_close": {
        "title": "AF_UNIX stream closed with unread data: ECONNRESET on Linux, EOF on macOS",
        "mechanism": (
            "When a Unix-domain stream socket is closed while data it never read is still queued "
            "for it, Linux marks the peer with ECONNRESET, mirroring TCP's reset; the BSD kernels "
            "(macOS, FreeBSD) simply report end-of-file."
        ),
        "repro": (
            "import socket\n"
            "a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)\n"
            "b.sendall(b'never read')\n"
            "a.close()\n"
            "b.recv(100)   # Linux: ConnectionResetError; macOS: b''\n"
        ),
        "expect": {
            "windows": {"value": "absent", "confidence": "D", "source": "https://github.com/python/cpython/issues/77589 (no AF_UNIX in CPython on Windows)"},
            "linux": {"value": "ConnectionResetError [ECONNRESET]", "confidence": "M", "source": _LINUX_M + " (AF_UNIX block)"},
            "macos": {"value": "b''", "confidence": "R", "source": "https://github.com/ocaml-multicore/eio/issues/312"},
            "freebsd": {"value": "b''", "confidence": "R", "source": "https://github.com/ocaml-multicore/eio/issues/312"},
        },
        "section": "1.5u, 5.7",
    },
    "server_closed": {
        "title": "Client talks on after the server closed the connection: b'' on Linux, WinError 10053 on Windows",
        "mechanism": (
            "The tutorial's single-shot handler returns after one exchange, so TCPServer shuts the "
            "socket down for writing (FIN) and closes it. The client does not notice until it sends "
            "again: its next segment reaches a closed socket and is answered with RST. Linux has "
            "already queued the FIN, so the client's recv returns b'' (later sends fail with EPIPE). "
            "Windows reports the torn-down connection as WinError 10053 (ConnectionAbortedError), "
            "which is what the tutorial's author saw; macOS sets ECONNRESET for an RST received in "
            "CLOSE_WAIT."
        ),
        "repro": (
            "import socket\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname())\n"
            "conn, _ = srv.accept()\n"
            "conn.shutdown(socket.SHUT_WR); conn.close()   # what TCPServer does after handle()\n"
            "cli.send(b'bb')\n"
            "cli.settimeout(5)\n"
            "print(repr(cli.recv(1024)))   # b'' on Linux\n"
        ),
        "expect": {
            "linux": {"value": "b''", "confidence": "M", "source": _LINUX_M + " #5b"},
            "windows": {
                "value": "ConnectionAbortedError [ECONNABORTED] (WinError 10053)",
                "accept": ["ConnectionResetError [ECONNRESET] (WinError 10054)"],
                "confidence": "R",
                "source": "the seed tutorial's own run (Windows, Python 3.6.5)",
            },
            "macos": {
                "value": "ConnectionResetError [ECONNRESET]",
                "accept": ["b''"],
                "confidence": "D",
                "source": "XNU bsd/netinet/tcp_input.c (RST in CLOSE_WAIT sets ECONNRESET)",
            },
        },
        "section": "1.8, 1.9",
    },
    "killed": {
        "title": "Client process killed: FIN on POSIX, RST on Windows",
        "mechanism": (
            "When a process dies without closing its sockets, the kernel closes them. Linux and "
            "macOS send FIN (so the server reads the data, then b''), unless the dead process "
            "had unread data, which turns it into RST as for any close. Windows resets sockets "
            "abandoned at process exit, so the server gets WinError 10054 even when nothing was "
            "left unread."
        ),
        "repro": (
            "import socket, subprocess, sys\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "port = srv.getsockname()[1]\n"
            "code = ('import socket, os; s = socket.create_connection((\"127.0.0.1\", %d)); '\n"
            "        's.sendall(b\"hi\"); os._exit(0)' % port)\n"
            "subprocess.run([sys.executable, '-c', code], timeout=30)\n"
            "conn, _ = srv.accept()\n"
            "print(repr(conn.recv(100)))  # b'hi'\n"
            "print(repr(conn.recv(100)))  # b'' (POSIX) or ConnectionResetError (Windows)\n"
        ),
        "expect": {
            "linux": {"value": "b''", "confidence": "M", "source": _LINUX_M + " #7, #7c"},
            "windows": {
                "value": "ConnectionResetError [ECONNRESET] (WinError 10054)",
                "confidence": "R",
                "source": "https://github.com/oven-sh/bun/pull/34556",
            },
            "macos": {"value": "b''", "confidence": "U", "source": "BSD fd reap sends FIN (unverified)"},
        },
        "section": "1.6",
    },
    "send_after_rst": {
        "title": "send() after the peer reset: ECONNRESET, then EPIPE (or EPIPE at once on macOS)",
        "mechanism": (
            "After an RST the socket holds a pending error. Linux hands it to the first send() "
            "as ConnectionResetError and answers later sends with BrokenPipeError (EPIPE 32). "
            "macOS checks 'cannot send any more' before the pending error, so the first send "
            "already raises BrokenPipeError and the ECONNRESET waits for the next recv() "
            "(rarely an OSError EPROTOTYPE 41 appears in the teardown race). Windows has no "
            "EPIPE: expect WinError 10054 or 10053. Python ignores SIGPIPE, so EPIPE never kills "
            "the process."
        ),
        "repro": (
            "import socket, struct\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname())\n"
            "conn, _ = srv.accept()\n"
            "cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
            "cli.close()\n"
            "for _ in range(2):\n"
            "    try:\n"
            "        conn.send(b'x')\n"
            "    except OSError as e:\n"
            "        print(type(e).__name__, e.errno)\n"
        ),
        "expect": {
            "linux": {
                "value": "ConnectionResetError [ECONNRESET]",
                "confidence": "M",
                "source": _LINUX_M + " #3c, #5c",
                "accept": ["BrokenPipeError [EPIPE]"],
            },
            "windows": {
                "value": "ConnectionResetError [ECONNRESET] (WinError 10054)",
                "confidence": "R",
                "source": "https://github.com/python/cpython/pull/117484",
                "accept": ["ConnectionAbortedError [ECONNABORTED] (WinError 10053)"],
            },
            "macos": {
                "value": "BrokenPipeError [EPIPE]",
                "confidence": "D",
                "source": "XNU bsd/kern/uipc_socket.c sosendcheck; https://github.com/oven-sh/bun/pull/42182",
                "accept": ["OSError [EPROTOTYPE]"],
            },
            "freebsd": {"value": "BrokenPipeError [EPIPE]", "confidence": "U", "source": "BSD sosend order (unverified)"},
        },
        "section": "1.7, 1.8",
    },
    "accept_after_rst": {
        "title": "Client reset while still in the accept backlog",
        "mechanism": (
            "A client can connect and abort before the server calls accept(). Linux still hands "
            "the dead connection to accept(), and the first recv() reports ECONNRESET. Windows "
            "may fail accept() itself with WSAECONNRESET 10054, and FreeBSD with ECONNABORTED; "
            "socketserver swallows any OSError from get_request(), so the request silently "
            "disappears. macOS accepts it too, and for IPv6 listeners the peer address can be "
            "None, so handlers must tolerate client_address None."
        ),
        "repro": (
            "import socket, struct\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "cli = socket.create_connection(srv.getsockname())\n"
            "cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n"
            "cli.close()                  # RST before accept\n"
            "srv.settimeout(5)\n"
            "conn, addr = srv.accept()    # Linux: succeeds; Windows: may raise 10054\n"
            "print(addr)\n"
        ),
        "expect": {
            "linux": {"value": "accepted", "confidence": "M", "source": _LINUX_M + " #8"},
            "windows": {
                "value": "ConnectionResetError [ECONNRESET] (WinError 10054)",
                "confidence": "D",
                "source": "https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-accept",
                "accept": ["accepted"],
            },
            "macos": {
                "value": "accepted",
                "confidence": "D",
                "source": "XNU bsd/kern/uipc_syscalls.c accept1; https://github.com/cloudflare/workerd/issues/4623",
            },
            "freebsd": {
                "value": "ConnectionAbortedError [ECONNABORTED]",
                "confidence": "R",
                "source": "https://github.com/MisterTea/EternalTerminal/pull/756",
            },
        },
        "section": "2.1, 9",
    },
    "backlog_overflow": {
        "title": "Listen backlog overflow: silent drop (Linux, macOS) versus refusal (Windows)",
        "mechanism": (
            "TCPServer listens with request_queue_size = 5. When the accept queue is full, Linux "
            "and macOS drop further SYNs silently, so the client's connect() hangs until its own "
            "timeout; Windows answers with RST, so the client gets ConnectionRefusedError "
            "[WinError 10061] after about two seconds of retries. The queue length also differs: "
            "backlog+1 on Linux, exactly backlog on macOS (and listen(0) means 128 there), "
            "1.5 x backlog on FreeBSD."
        ),
        "repro": (
            "import socket\n"
            "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
            "clients = []\n"
            "for i in range(4):\n"
            "    c = socket.socket(); c.settimeout(1.5)\n"
            "    try:\n"
            "        c.connect(srv.getsockname()); print(i, 'connected')\n"
            "    except OSError as e:\n"
            "        print(i, type(e).__name__)   # TimeoutError (Linux) / ConnectionRefusedError (Windows)\n"
            "    clients.append(c)\n"
        ),
        "expect": {
            "linux": {"value": "TimeoutError", "confidence": "M", "source": _LINUX_M + " (listen(0..2))"},
            "windows": {
                "value": "ConnectionRefusedError [ECONNREFUSED] (WinError 10061)",
                # The refusal arrives only after ~2 s of SYN retries; a client
                # with a shorter timeout (the check's) sees TimeoutError first.
                "accept": ["TimeoutError"],
                "confidence": "R",
                "source": "https://github.com/microsoft/CSS_SQL_Networking_Tools/wiki/Server-has-a-Connection-Backlog",
            },
            "macos": {
                "value": "TimeoutError",
                "confidence": "D",
                "source": "XNU bsd/netinet/tcp_input.c (listen drop)",
            },
            "freebsd": {"value": "TimeoutError", "confidence": "D", "source": "https://www.unix.com/man-page/freebsd/2/LISTEN"},
        },
        "section": "2.3",
    },
    "udp_dead_port": {
        "title": "UDP reply to a vanished client: Windows raises WinError 10054 on the next recvfrom",
        "mechanism": (
            "When a UDP server replies to a port nobody listens on, the client host answers with "
            "ICMP port unreachable. Linux and macOS deliver that only to connected UDP sockets, "
            "so UDPServer's unconnected socket sees nothing. Windows delivers it to unconnected "
            "sockets too (SIO_UDP_CONNRESET is on by default and Python cannot switch it off): "
            "the next recvfrom() raises ConnectionResetError [WinError 10054]. UDPServer "
            "swallows the OSError in get_request(), so one datagram or wakeup is lost per ICMP "
            "and the following datagrams are served."
        ),
        "repro": (
            "import socket\n"
            "dead = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); dead.bind(('127.0.0.1', 0))\n"
            "addr = dead.getsockname(); dead.close()\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))\n"
            "s.settimeout(0.5)\n"
            "s.sendto(b'reply', addr)     # ICMP port unreachable comes back\n"
            "try:\n"
            "    s.recvfrom(100)\n"
            "except OSError as e:\n"
            "    print(type(e).__name__, e)  # TimeoutError (Linux, macOS); 10054 (Windows)\n"
        ),
        "expect": {
            "linux": {"value": "no error", "confidence": "M", "source": _LINUX_M + " #9", "accept": ["TimeoutError"]},
            "windows": {
                "value": "ConnectionResetError [ECONNRESET] (WinError 10054)",
                "confidence": "D",
                "source": "https://learn.microsoft.com/en-us/windows/win32/api/winsock/nf-winsock-recvfrom",
            },
            "macos": {
                "value": "no error",
                "confidence": "D",
                "source": "XNU bsd/netinet/udp_usrreq.c udp_ctlinput (exact 4-tuple lookup)",
                "accept": ["TimeoutError"],
            },
            "freebsd": {"value": "no error", "confidence": "R", "source": "https://github.com/tokio-rs/tokio/issues/2017", "accept": ["TimeoutError"]},
        },
        "section": "3.1, 3.2, 9",
    },
    "udp_truncation": {
        "title": "UDP datagram larger than max_packet_size: truncated (POSIX) or dropped (Windows)",
        "mechanism": (
            "UDPServer reads with recvfrom(max_packet_size = 8192). On Linux and macOS a longer "
            "datagram is silently cut to 8192 bytes and the rest discarded. Windows fills the "
            "buffer but then raises WSAEMSGSIZE (OSError [WinError 10040]); get_request() "
            "swallows it, so the handler never runs for that datagram."
        ),
        "repro": (
            "import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0))\n"
            "c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "c.sendto(b'x' * 9000, s.getsockname())\n"
            "s.settimeout(5)\n"
            "try:\n"
            "    print(len(s.recvfrom(8192)[0]))   # 8192 on Linux/macOS\n"
            "except OSError as e:\n"
            "    print(e)                         # [WinError 10040] on Windows\n"
        ),
        "expect": {
            "linux": {"value": "truncated to 8192", "confidence": "M", "source": _LINUX_M + " (UDP truncation)"},
            "windows": {
                "value": "OSError [EMSGSIZE] (WinError 10040)",
                "confidence": "D",
                "source": "https://learn.microsoft.com/en-us/windows/win32/api/winsock2/nf-winsock2-recv",
                "accept": ["dropped"],
            },
            "macos": {"value": "truncated to 8192", "confidence": "U", "source": "BSD recvfrom semantics (unverified)"},
        },
        "section": "3.3, 3.4",
    },
    "reuse_addr": {
        "title": "Rebinding a port with connections in TIME_WAIT (allow_reuse_address)",
        "mechanism": (
            "A server that closed its accepted connections first leaves them in TIME_WAIT. On "
            "Linux a new listener can bind the same port only if SO_REUSEADDR was set on both "
            "the old listener and the new one (EADDRINUSE 98 otherwise). macOS and BSD need it "
            "on the new socket only. Windows lets bind() succeed without SO_REUSEADDR at all, "
            "and there SO_REUSEADDR means something else: it lets a second socket steal an "
            "active port unless the first one set SO_EXCLUSIVEADDRUSE."
        ),
        "repro": (
            "import socket\n"
            "a = socket.socket(); a.bind(('127.0.0.1', 0)); a.listen()\n"
            "port = a.getsockname()[1]\n"
            "c = socket.create_connection(('127.0.0.1', port)); s, _ = a.accept()\n"
            "s.close(); c.close(); a.close()    # server closed first -> TIME_WAIT\n"
            "b = socket.socket()\n"
            "try:\n"
            "    b.bind(('127.0.0.1', port)); print('rebound')\n"
            "except OSError as e:\n"
            "    print(type(e).__name__, e.errno)   # EADDRINUSE on Linux and macOS\n"
        ),
        "expect": {
            "linux": {"value": "OSError [EADDRINUSE]", "confidence": "M", "source": _LINUX_M + " (TIME_WAIT matrix)"},
            "windows": {
                "value": "rebound",
                "confidence": "D",
                "source": "CPython Lib/socket.py create_server comment; https://learn.microsoft.com/en-us/windows/win32/WinSock/using-so-reuseaddr-and-so-exclusiveaddruse",
            },
            "macos": {"value": "OSError [EADDRINUSE]", "confidence": "D", "source": "XNU bsd/netinet/in_pcb.c in_pcbbind"},
        },
        "section": "4.1-4.4",
    },
    "reuse_port": {
        "title": "SO_REUSEPORT availability (allow_reuse_port)",
        "mechanism": (
            "socketserver sets SO_REUSEPORT only if allow_reuse_port is true and the socket "
            "module has the constant. Linux, macOS and the BSDs have it; Windows does not, so "
            "allow_reuse_port = True is silently ignored there. Recent Linux kernels reject "
            "SO_REUSEPORT on AF_UNIX sockets (EOPNOTSUPP 95), which broke Unix*Server with "
            "allow_reuse_port on older CPython patch releases (gh-128916)."
        ),
        "repro": (
            "import socket\n"
            "print(hasattr(socket, 'SO_REUSEPORT'))   # False on Windows\n"
        ),
        "expect": {
            "linux": {"value": "present", "confidence": "M", "source": _LINUX_M},
            "windows": {"value": "absent", "confidence": "D", "source": "CPython Lib/socketserver.py hasattr guard"},
            "macos": {"value": "present", "confidence": "D", "source": "XNU bsd/sys/socket.h"},
        },
        "section": "4.5, 4.7",
    },
    "ipv6_v6only": {
        "title": "IPv6 listener and IPv4 clients: the IPV6_V6ONLY default",
        "mechanism": (
            "socketserver never sets IPV6_V6ONLY, so the OS default decides whether a server "
            "bound to '::' also accepts IPv4 clients. Linux and macOS default to 0 (dual stack; "
            "the client address is '::ffff:127.0.0.1'); Windows and FreeBSD default to 1, so "
            "IPv4 clients are refused. socket.create_server(dualstack_ipv6=...) sets it "
            "explicitly, which is the portable way."
        ),
        "repro": (
            "import socket\n"
            "s = socket.socket(socket.AF_INET6)\n"
            "print(s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))  # 0 Linux/macOS, 1 Windows\n"
        ),
        "expect": {
            "linux": {"value": "0", "confidence": "M", "source": _LINUX_M + " (bindv6only 0)"},
            "windows": {
                "value": "1",
                "confidence": "D",
                "source": "https://learn.microsoft.com/en-us/windows/win32/WinSock/dual-stack-sockets",
            },
            "macos": {"value": "0", "confidence": "D", "source": "XNU bsd/netinet6/in6_proto.c ip6_v6only = 0"},
            "freebsd": {"value": "1", "confidence": "R", "source": "https://github.com/rust-lang/socket2/pull/196"},
        },
        "section": "8.1, 8.2",
    },
    "af_unix_availability": {
        "title": "AF_UNIX availability (Unix*Server)",
        "mechanism": (
            "UnixStreamServer and UnixDatagramServer need socket.AF_UNIX. Released CPython on "
            "Windows does not define it (socketmodule.h undefines AF_UNIX without sys/un.h), "
            "even though Windows 10 1803+ supports AF_UNIX streams in the kernel; so the Unix* "
            "checks are UNSUPPORTED there. Code should test hasattr(socket, 'AF_UNIX') rather "
            "than the OS name, because a pending CPython change may add it."
        ),
        "repro": (
            "import socket, socketserver\n"
            "print(hasattr(socket, 'AF_UNIX'))            # False on Windows\n"
            "print(hasattr(socketserver, 'UnixStreamServer'))\n"
        ),
        "expect": {
            "linux": {"value": "Unix* present", "confidence": "M", "source": _LINUX_M},
            "windows": {"value": "Unix* absent", "confidence": "D", "source": "https://github.com/python/cpython/issues/77589"},
            "macos": {"value": "Unix* present", "confidence": "D", "source": "XNU bsd/sys/un.h"},
        },
        "section": "5.1",
    },
    "af_unix_path": {
        "title": "AF_UNIX path length limit: 107 bytes on Linux, 103 on macOS",
        "mechanism": (
            "The socket path is copied into sun_path, 108 bytes on Linux and 104 on macOS, "
            "including the terminating NUL. Longer paths fail with OSError 'AF_UNIX path too "
            "long' before any system call. macOS temporary directories are already about 50 "
            "characters long, so servers should put their sockets in a short private directory. "
            "Linux also has the abstract namespace (a leading NUL), which macOS lacks."
        ),
        "repro": (
            "import socket, os, tempfile\n"
            "d = tempfile.mkdtemp(dir='/tmp')\n"
            "for n in (103, 104, 107, 108):\n"
            "    p = os.path.join(d, 'x' * (n - len(d) - 1))\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n"
            "        s.bind(p); print(n, 'ok'); os.unlink(p)\n"
            "    except OSError as e:\n"
            "        print(n, e)\n"
            "    s.close()\n"
        ),
        "expect": {
            "linux": {"value": "107", "confidence": "M", "source": _LINUX_M + " (AF_UNIX bind 106..109)"},
            "windows": {"value": "absent", "confidence": "D", "source": "https://github.com/python/cpython/issues/77589"},
            "macos": {"value": "103", "confidence": "D", "source": "XNU bsd/sys/un.h (sun_path[104])"},
            "freebsd": {"value": "103", "confidence": "U", "source": "BSD sys/un.h (unverified)"},
        },
        "section": "5.2, 5.3",
    },
    "fork_availability": {
        "title": "os.fork availability (ForkingMixIn, Forking*Server)",
        "mechanism": (
            "ForkingMixIn and the Forking*Server classes are defined only if os.fork exists. "
            "Windows has no fork, so those names do not exist and the forking checks are "
            "UNSUPPORTED. macOS has fork, but a child that initialises Objective-C classes "
            "while another thread might have been doing so aborts; plain socket handlers rarely "
            "trigger that."
        ),
        "repro": (
            "import os, socketserver\n"
            "print(hasattr(os, 'fork'), hasattr(socketserver, 'ForkingTCPServer'))  # False False on Windows\n"
        ),
        "expect": {
            "linux": {"value": "Forking* present", "confidence": "M", "source": _LINUX_M},
            "windows": {"value": "Forking* absent", "confidence": "D", "source": "CPython Lib/socketserver.py (if hasattr(os, 'fork'))"},
            "macos": {"value": "Forking* present", "confidence": "D", "source": "CPython Lib/socketserver.py"},
        },
        "section": "6.1, 6.3",
    },
    "fork_warning": {
        "title": "Python 3.12+: DeprecationWarning when forking a multi-threaded process",
        "mechanism": (
            "Since 3.12, os.fork() warns 'This process is multi-threaded, use of fork() may lead "
            "to deadlocks in the child' when other threads exist. A ForkingTCPServer whose "
            "serve_forever() runs in a background thread (the usual test arrangement) therefore "
            "warns on every request on 3.12 and 3.13, and not on 3.11 or earlier. The fork still "
            "happens even with -W error::DeprecationWarning. This is a difference between Python "
            "versions, not OSes (Windows has no fork at all)."
        ),
        "repro": (
            "import os, threading, warnings, time\n"
            "t = threading.Thread(target=time.sleep, args=(1,)); t.start()\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    pid = os.fork()\n"
            "    if pid == 0:\n"
            "        os._exit(0)\n"
            "os.waitpid(pid, 0); t.join()\n"
            "print([str(x.message)[:40] for x in w])   # one warning on 3.12+\n"
        ),
        "expect": {
            "linux": {"value": "DeprecationWarning (3.12+)", "confidence": "M", "source": _LINUX_M + " (fork warnings); gh-100228"},
            "windows": {"value": "absent", "confidence": "D", "source": "no os.fork on Windows"},
            "macos": {"value": "DeprecationWarning (3.12+)", "confidence": "D", "source": "gh-100228 (thread count via the macOS API)"},
        },
        "section": "6.2",
    },
    "selector": {
        "title": "Which selector serve_forever uses",
        "mechanism": (
            "socketserver picks its own _ServerSelector: PollSelector where select.poll exists, "
            "else SelectSelector. That is PollSelector on Linux, macOS and BSD and "
            "SelectSelector on Windows, independent of selectors.DefaultSelector (epoll, kqueue). "
            "On Windows select() only handles sockets and, in CPython, at most 512 per call; "
            "the server itself only waits on one."
        ),
        "repro": (
            "import selectors, socketserver\n"
            "print(socketserver._ServerSelector.__name__, selectors.DefaultSelector.__name__)\n"
        ),
        "expect": {
            "linux": {"value": "PollSelector", "confidence": "M", "source": _LINUX_M},
            "windows": {"value": "SelectSelector", "confidence": "D", "source": "CPython Lib/socketserver.py; no select.poll on Windows"},
            "macos": {"value": "PollSelector", "confidence": "D", "source": "CPython Lib/socketserver.py, Modules/selectmodule.c"},
        },
        "section": "7.1-7.3",
    },
    "shutdown_latency": {
        "title": "shutdown() latency is bounded by poll_interval",
        "mechanism": (
            "serve_forever() waits in select/poll for at most poll_interval (0.5 s by default) "
            "and checks its shutdown flag between waits. shutdown() sets the flag and blocks "
            "until the loop exits, so an idle server stops within one poll_interval; calling "
            "shutdown() on the serving thread itself deadlocks. On Windows Ctrl+C is also only "
            "noticed when the wait returns."
        ),
        "repro": (
            "import socketserver, threading, time\n"
            "srv = socketserver.TCPServer(('127.0.0.1', 0), socketserver.BaseRequestHandler)\n"
            "t = threading.Thread(target=srv.serve_forever, args=(2.0,)); t.start()\n"
            "time.sleep(0.3)\n"
            "t0 = time.monotonic(); srv.shutdown()\n"
            "print(round(time.monotonic() - t0, 2))   # up to 2.0 s\n"
            "t.join(5); srv.server_close()\n"
        ),
        "expect": {
            "linux": {"value": "<= poll_interval", "confidence": "M", "source": "cpython_socketserver.md #38 (1.70 s at poll_interval=2)"},
            "windows": {"value": "<= poll_interval", "confidence": "D", "source": "CPython Lib/socketserver.py; https://github.com/python/cpython/issues/85609"},
            "macos": {"value": "<= poll_interval", "confidence": "D", "source": "CPython Lib/socketserver.py"},
        },
        "section": "7.4",
    },
    "emfile": {
        "title": "accept() failing with EMFILE: swallowed, and serve_forever busy-loops",
        "mechanism": (
            "When the process runs out of file descriptors, accept() fails with EMFILE. "
            "_handle_request_noblock() swallows every OSError from get_request(), but the "
            "pending connection keeps the listening socket readable, so serve_forever spins "
            "(about 136k iterations per second measured on Linux) without logging anything, "
            "until descriptors are freed. Windows reports WSAEMFILE, mapped to errno 24 on "
            "3.11+; the loop is the same."
        ),
        "repro": (
            "import resource, socket\n"
            "resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))\n"
            "srv = socket.create_server(('127.0.0.1', 0))\n"
            "hog = []\n"
            "try:\n"
            "    while True: hog.append(socket.socket())\n"
            "except OSError:\n"
            "    pass\n"
            "hog.pop().close()\n"
            "cli = socket.create_connection(srv.getsockname())  # uses the last fd\n"
            "try:\n"
            "    srv.accept()\n"
            "except OSError as e:\n"
            "    print(e.errno)   # 24 (EMFILE); the listener stays readable\n"
        ),
        "expect": {
            "linux": {"value": "OSError [EMFILE]", "confidence": "M", "source": "cpython_socketserver.md #34 (3.13, RLIMIT_NOFILE=64)"},
            "windows": {"value": "OSError [EMFILE] (WinError 10024)", "confidence": "U", "source": "PC/errmap.h maps WSAEMFILE (unverified)", "accept": ["OSError [EMFILE]"]},
            "macos": {"value": "OSError [EMFILE]", "confidence": "U", "source": "POSIX accept(2) (unverified)"},
        },
        "section": "9; cpython_socketserver.md #34",
    },
    "server_close_during_serve": {
        "title": "server_close() while serve_forever() runs: the loop spins (poll) or raises (select)",
        "mechanism": (
            "Closing the listening socket under a running serve_forever() leaves the selector "
            "watching a dead descriptor. With PollSelector (Linux, macOS) poll() reports it "
            "ready at once (POLLNVAL), accept() fails with EBADF, _handle_request_noblock() "
            "swallows the OSError and the loop spins at full speed until shutdown() is called "
            "(about 93k iterations per second measured on Linux, 3.13). With SelectSelector "
            "(Windows) select() itself is expected to raise, which ends serve_forever() with "
            "the error. An implementation that notices the closed socket can simply idle."
        ),
        "repro": (
            "import socketserver, threading, time\n"
            "class S(socketserver.TCPServer):\n"
            "    calls = 0\n"
            "    def service_actions(self):\n"
            "        S.calls += 1\n"
            "srv = S(('127.0.0.1', 0), socketserver.BaseRequestHandler)\n"
            "t = threading.Thread(target=srv.serve_forever, args=(0.05,)); t.start()\n"
            "time.sleep(0.2); srv.server_close(); before = S.calls\n"
            "time.sleep(0.25)\n"
            "print(S.calls - before, 'iterations in 0.25 s')  # thousands with poll: it spins\n"
            "srv.shutdown(); t.join(5)\n"
        ),
        "expect": {
            "linux": {"value": "spins", "confidence": "M", "source": "cpython_socketserver.md #33, #46 (3.13)"},
            "windows": {
                "value": "raises OSError [ENOTSOCK] (WinError 10038)",
                "confidence": "U",
                "source": "cpython_socketserver.md #46 (select is expected to raise; not run)",
            },
            "macos": {"value": "spins", "confidence": "U", "source": "PollSelector as on Linux (unverified)"},
        },
        "section": "cpython_socketserver.md #33, #46",
    },
    "mp_start_method": {
        "title": "multiprocessing default start method",
        "mechanism": (
            "The default start method is fork on Linux through 3.13 (forkserver from 3.14), "
            "spawn on macOS since 3.8 and on Windows always. Harness code that starts helper "
            "processes must not rely on fork semantics."
        ),
        "repro": "import multiprocessing\nprint(multiprocessing.get_start_method())\n",
        "expect": {
            "linux": {"value": "fork", "confidence": "M", "source": _LINUX_M},
            "windows": {"value": "spawn", "confidence": "D", "source": "https://docs.python.org/3/library/multiprocessing.html#contexts-and-start-methods"},
            "macos": {"value": "spawn", "confidence": "D", "source": "bpo-33725"},
        },
        "section": "6.4",
    },
}

#: Explicit map from check IDs to topics: ``(id_glob, variant_glob, topic)``,
#: first match wins.  Globs use fnmatch syntax on the ID and the variant
#: separately, so brackets in variants never act as character classes.
CHECK_TOPICS: Tuple[Tuple[str, str, str], ...] = (
    # AF_UNIX streams have no RST: their own topics come before the TCP ones.
    ("DISCONNECT-*", "rst*Unix*", "unix_rst"),
    ("DISCONNECT-*", "unread_close*Unix*", "unix_unread_close"),
    ("DISCONNECT-*", "fin*", "fin"),
    ("DISCONNECT-*", "half_close*", "half_close"),
    ("DISCONNECT-*", "rst*", "rst"),
    ("DISCONNECT-*", "unread_close*", "unread_close"),
    ("DISCONNECT-*", "killed*", "killed"),
    ("DISCONNECT-*", "udp_dead_port*", "udp_dead_port"),
    ("DISCONNECT-*", "send_after_rst*", "send_after_rst"),
    ("SHUTDOWN-012", "*", "server_close_during_serve"),
    ("*", "*ipv6*", "ipv6_v6only"),
)

#: A capability a check ``requires`` that explains its UNSUPPORTED outcome.
REQUIRES_TOPICS = {"fork": "fork_availability", "af_unix": "af_unix_availability", "reuse_port": "reuse_port", "ipv6": "ipv6_v6only"}

_CONFIDENCE = {
    "M": "measured",
    "D": "documented",
    "R": "reported",
    "U": "unverified",
}


def confidence_label(tag: str) -> str:
    """``"D"`` -> ``"documented"`` (unknown tags are returned unchanged)."""
    return _CONFIDENCE.get(tag, tag)


def normalize_os(name: Optional[str]) -> Optional[str]:
    """Map ``sys.platform``/fingerprint spellings to an ``expect`` key."""
    if not name:
        return None
    key = str(name).strip().lower()
    if key in _OS_ALIASES:
        return _OS_ALIASES[key]
    for prefix, os_name in (("linux", "linux"), ("win", "windows"), ("darwin", "macos"), ("freebsd", "freebsd")):
        if key.startswith(prefix):
            return os_name
    return key


def current_os() -> str:
    """The running OS as an ``expect`` key."""
    return normalize_os(sys.platform) or sys.platform


def topic_for(check_id: str, variant: str = "", requires: Iterable[str] = ()) -> Optional[str]:
    """The topic explaining check ``check_id[variant]``, or ``None``.

    Order: :data:`CHECK_TOPICS`, then a variant (or a ``-``/``_``-free part
    of it) that is a topic name, then the first required capability with a
    topic in :data:`REQUIRES_TOPICS`.
    """
    if check_id in TOPICS:
        return check_id
    variant = variant or ""
    for id_glob, variant_glob, topic in CHECK_TOPICS:
        if fnmatch.fnmatchcase(check_id, id_glob) and fnmatch.fnmatchcase(variant, variant_glob):
            return topic
    if variant in TOPICS:
        return variant
    for part in re.split(r"[-\[\],/ ]+", variant):
        if part in TOPICS:
            return part
    for cap in requires or ():
        if cap in REQUIRES_TOPICS:
            return REQUIRES_TOPICS[cap]
    return None


def documented_for(check_id_or_topic: str, os: Optional[str] = None) -> Optional[dict]:
    """The documented expectation for a topic (or a check ID) on ``os``.

    Returns ``{"os", "value", "source", "confidence"}`` (the record's
    ``documented`` shape; ``accept`` alternatives are not included) or
    ``None`` when nothing is documented.  ``os`` defaults to the running
    OS and accepts ``sys.platform`` spellings.
    """
    topic = check_id_or_topic if check_id_or_topic in TOPICS else topic_for(check_id_or_topic)
    if topic is None:
        return None
    os_key = normalize_os(os) if os is not None else current_os()
    entry = TOPICS[topic]["expect"].get(os_key or "")
    if entry is None:
        return None
    return {
        "os": os_key,
        "value": entry["value"],
        "source": entry["source"],
        "confidence": entry["confidence"],
    }


def expectation(topic: str, os: str) -> Optional[dict]:
    """The full ``expect`` entry (with ``accept``) for ``topic`` on ``os``."""
    info = TOPICS.get(topic)
    if info is None:
        return None
    return info["expect"].get(normalize_os(os) or "")


def accepted(topic: str, os: str) -> List[str]:
    """Every summary that agrees with the documentation of ``topic`` on ``os``
    (the ``value`` first, then the ``accept`` alternatives); empty if none."""
    entry = expectation(topic, os)
    if entry is None:
        return []
    return [entry["value"], *entry.get("accept", ())]
