"""API-*: the public surface of the module, its class defaults and its MRO.

These checks import nothing but the module under test: they establish that
the names, defaults and class relations a user programs against exist with
the documented values.  Names that legitimately depend on the platform
(``Forking*`` on ``os.fork``, ``Unix*`` on ``AF_UNIX``) are PLATFORM checks:
their outcome is INFO, but they FAIL when the gating is inconsistent with the
platform's capabilities.  Defaults that changed between Python versions are
VERSION checks keyed on the API level the implementation claims.
"""

from __future__ import annotations

import inspect
import os
import socket

from conformance.api import (
    PLATFORM,
    REQUIRED,
    VERSION,
    check,
    require_attr,
    unsupported,
    verify,
    verify_equal,
)
from harness.core.prerequisites import DOCUMENTED_SERVER_METHODS
from harness.subject.session import where_it_runs

ALWAYS = (
    "BaseServer",
    "TCPServer",
    "UDPServer",
    "ThreadingUDPServer",
    "ThreadingTCPServer",
    "BaseRequestHandler",
    "StreamRequestHandler",
    "DatagramRequestHandler",
    "ThreadingMixIn",
)
FORKING = ("ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn")
UNIX = ("UnixStreamServer", "UnixDatagramServer", "ThreadingUnixStreamServer", "ThreadingUnixDatagramServer")
FORKING_UNIX = ("ForkingUnixStreamServer", "ForkingUnixDatagramServer")

COMBINED = {
    "ThreadingUDPServer": ("ThreadingMixIn", "UDPServer"),
    "ThreadingTCPServer": ("ThreadingMixIn", "TCPServer"),
    "ForkingUDPServer": ("ForkingMixIn", "UDPServer"),
    "ForkingTCPServer": ("ForkingMixIn", "TCPServer"),
    "ThreadingUnixStreamServer": ("ThreadingMixIn", "UnixStreamServer"),
    "ThreadingUnixDatagramServer": ("ThreadingMixIn", "UnixDatagramServer"),
    "ForkingUnixStreamServer": ("ForkingMixIn", "UnixStreamServer"),
    "ForkingUnixDatagramServer": ("ForkingMixIn", "UnixDatagramServer"),
}


def _public_all(ss):
    names = getattr(ss, "__all__", None)
    if names is None:
        unsupported(f"{ss.__name__} defines no __all__")
    return list(names)


@check("API-001", REQUIRED, clause="module contents: the classes every platform provides "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L134-L137]")
def test_always_present_names(ss, observe):
    """The nine platform-independent classes exist and are listed in __all__."""
    names = _public_all(ss)
    missing = [name for name in ALWAYS if not hasattr(ss, name)]
    unlisted = [name for name in ALWAYS if name not in names]
    observe("missing", missing)
    observe("unlisted", unlisted)
    verify(not missing, "always-present names", "all present", missing)
    verify(not unlisted, "always-present names in __all__", "all listed", unlisted)


def _verify_gated(ss, observe, names, label, capability, available):
    """``names`` are present and listed in __all__ exactly when ``capability`` is."""
    present = [name for name in names if hasattr(ss, name)]
    listed = [name for name in names if name in _public_all(ss)]
    observe(capability, available)
    observe("present", present)
    observe.summary(f"{label} present" if present else f"{label} absent")
    expected = list(names) if available else []
    verify_equal(f"{label} names given {capability}={available}", expected, present)
    verify_equal(f"{label} names in __all__", expected, listed)


@check("API-002", PLATFORM, clause="Forking* classes are defined only where os.fork exists "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L138-L139, "
                                   "docs/platform-knowledge.md#fork_availability]",
       topic="fork_availability")
def test_forking_names_follow_os_fork(ss, impl, observe):
    """Forking names are present exactly when os.fork exists."""
    _verify_gated(ss, observe, FORKING, "Forking*", "os_fork", where_it_runs(impl, "fork", hasattr(os, "fork")))


@check("API-003", PLATFORM, clause="Unix* classes are defined only where socket.AF_UNIX exists "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L140-L145, "
                                   "docs/platform-knowledge.md#af_unix_availability]",
       topic="af_unix_availability")
def test_unix_names_follow_af_unix(ss, impl, observe):
    """Unix-domain names are present exactly when socket.AF_UNIX exists."""
    _verify_gated(ss, observe, UNIX, "Unix*", "af_unix", where_it_runs(impl, "af_unix", hasattr(socket, "AF_UNIX")))


@check("API-004", VERSION, clause="ForkingUnixStreamServer/ForkingUnixDatagramServer: new in 3.12 "
                                  "[gh-103673, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L732-L735]")
def test_forking_unix_names_by_version(ss, impl, observe):
    """ForkingUnix* exist from API 3.12 on where both fork and AF_UNIX exist."""
    both = where_it_runs(impl, "fork", hasattr(os, "fork")) and where_it_runs(impl, "af_unix", hasattr(socket, "AF_UNIX"))
    present = [name for name in FORKING_UNIX if hasattr(ss, name)]
    listed = [name for name in FORKING_UNIX if name in _public_all(ss)]
    expected = list(FORKING_UNIX) if both and impl.api_at_least(3, 12) else []
    observe("present", present)
    observe.expected("present", expected)
    verify_equal(f"ForkingUnix* names at API {impl.api_version}", expected, present)
    verify_equal("ForkingUnix* names in __all__", expected, listed)


@check("API-005", REQUIRED, clause="__all__ lists exactly the public classes the module defines "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L134-L145]")
def test_all_matches_public_definitions(ss, observe):
    """__all__ equals the set of public classes defined by the module."""
    names = set(_public_all(ss))
    defined = {
        name
        for name, value in vars(ss).items()
        if not name.startswith("_")
        and inspect.isclass(value)
        and getattr(value, "__module__", None) == ss.__name__
    }
    observe("not_in_all", sorted(defined - names))
    observe("not_defined", sorted(names - defined))
    verify(defined <= names, "public classes missing from __all__", "none", sorted(defined - names))


@check("API-006", REQUIRED, clause="every name in __all__ exists "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L134-L145]")
def test_all_names_exist(ss, observe):
    """Every name in __all__ is an attribute of the module."""
    missing = [name for name in _public_all(ss) if not hasattr(ss, name)]
    observe("missing", missing)
    verify(not missing, "names in __all__ that do not exist", "none", missing)


@check("API-007", REQUIRED, clause="class hierarchy: UDPServer derives from TCPServer, which "
                                   "derives from BaseServer "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L392, "
                                   "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L523]")
def test_inet_hierarchy(ss, observe):
    """UDPServer -> TCPServer -> BaseServer."""
    observe("UDPServer.__mro__", [c.__name__ for c in ss.UDPServer.__mro__])
    verify(issubclass(ss.TCPServer, ss.BaseServer), "TCPServer base", "BaseServer", ss.TCPServer.__bases__)
    verify(issubclass(ss.UDPServer, ss.TCPServer), "UDPServer base", "TCPServer", ss.UDPServer.__bases__)


@check("API-008", REQUIRED, clause="UnixStreamServer derives from TCPServer, UnixDatagramServer "
                                   "from UDPServer "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L722-L726]",
       requires=("af_unix",))
def test_unix_hierarchy(ss, observe):
    """UnixStreamServer -> TCPServer and UnixDatagramServer -> UDPServer."""
    stream = require_attr(ss, "UnixStreamServer")
    dgram = require_attr(ss, "UnixDatagramServer")
    observe("UnixStreamServer.__bases__", [c.__name__ for c in stream.__bases__])
    observe("UnixDatagramServer.__bases__", [c.__name__ for c in dgram.__bases__])
    verify(issubclass(stream, ss.TCPServer), "UnixStreamServer base", "TCPServer", stream.__bases__)
    verify(issubclass(dgram, ss.UDPServer), "UnixDatagramServer base", "UDPServer", dgram.__bases__)


@check("API-009", REQUIRED, clause="the combined classes are (MixIn, Server) with the mix-in "
                                   "first "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L713-L718, "
                                   "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L728-L735]")
def test_combined_classes_put_mixin_first(ss, observe):
    """Every Threading*/Forking* server class lists its mix-in before its server class."""
    seen = {}
    for name, (mixin, base) in COMBINED.items():
        cls = getattr(ss, name, None)
        if cls is None or not hasattr(ss, mixin) or not hasattr(ss, base):
            continue
        mro = [c.__name__ for c in cls.__mro__]
        seen[name] = mro
        verify(
            mixin in mro and base in mro and mro.index(mixin) < mro.index(base),
            f"{name}.__mro__ order",
            f"{mixin} before {base}",
            mro,
        )
    observe("mro", seen)
    verify("ThreadingTCPServer" in seen, "combined classes examined", "at least ThreadingTCPServer", sorted(seen))


@check("API-010", REQUIRED, clause="TCPServer: address_family AF_INET, socket_type SOCK_STREAM, "
                                   "allow_reuse_address False "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L440-L446]")
def test_tcpserver_defaults(ss, observe):
    """TCPServer's class defaults match the documentation."""
    tcp = ss.TCPServer
    values = {
        "address_family": tcp.address_family,
        "socket_type": tcp.socket_type,
        "allow_reuse_address": tcp.allow_reuse_address,
    }
    observe("defaults", {k: int(v) if not isinstance(v, bool) else v for k, v in values.items()})
    verify_equal("TCPServer.address_family", socket.AF_INET, tcp.address_family)
    verify_equal("TCPServer.socket_type", socket.SOCK_STREAM, tcp.socket_type)
    verify(tcp.allow_reuse_address is False, "TCPServer.allow_reuse_address", False, tcp.allow_reuse_address)


@check("API-011", VERSION, clause="request_queue_size: 5 through 3.14, socket.SOMAXCONN from 3.15 "
                                  "[gh-80184, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L444]")
def test_request_queue_size(ss, impl, observe):
    """TCPServer.request_queue_size has the default of the claimed API level."""
    value = ss.TCPServer.request_queue_size
    expected = getattr(socket, "SOMAXCONN", 5) if impl.api_at_least(3, 15) else 5
    observe("request_queue_size", value)
    observe.expected("request_queue_size", expected)
    verify_equal(f"TCPServer.request_queue_size at API {impl.api_version}", expected, value)


@check("API-012", REQUIRED, clause="BaseServer.timeout defaults to None "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L201]")
def test_baseserver_timeout_none(ss, observe):
    """BaseServer.timeout is None by default."""
    observe("timeout", ss.BaseServer.timeout)
    verify(ss.BaseServer.timeout is None, "BaseServer.timeout", None, ss.BaseServer.timeout)


@check("API-013", REQUIRED, clause="UDPServer: socket_type SOCK_DGRAM, max_packet_size 8192, "
                                   "allow_reuse_address False "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L527-L533]")
def test_udpserver_defaults(ss, observe):
    """UDPServer's class defaults match the documentation."""
    udp = ss.UDPServer
    observe("max_packet_size", udp.max_packet_size)
    verify_equal("UDPServer.socket_type", socket.SOCK_DGRAM, udp.socket_type)
    verify_equal("UDPServer.max_packet_size", 8192, udp.max_packet_size)
    verify(udp.allow_reuse_address is False, "UDPServer.allow_reuse_address", False, udp.allow_reuse_address)


@check("API-014", REQUIRED, clause="ThreadingMixIn.daemon_threads defaults to False "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L678]")
def test_daemon_threads_default(ss, observe):
    """ThreadingMixIn.daemon_threads is False by default."""
    observe("daemon_threads", ss.ThreadingMixIn.daemon_threads)
    verify(ss.ThreadingMixIn.daemon_threads is False, "ThreadingMixIn.daemon_threads", False,
           ss.ThreadingMixIn.daemon_threads)


@check("API-015", REQUIRED, clause="ForkingMixIn: max_children 40, timeout 300, active_children "
                                   "None "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L555-L557]",
       requires=("fork",))
def test_forking_defaults(ss, observe):
    """ForkingMixIn's class defaults match the documentation."""
    mixin = require_attr(ss, "ForkingMixIn")
    values = {"max_children": mixin.max_children, "timeout": mixin.timeout, "active_children": mixin.active_children}
    observe("defaults", values)
    verify_equal("ForkingMixIn defaults", {"max_children": 40, "timeout": 300, "active_children": None}, values)


@check("API-016", REQUIRED, clause="StreamRequestHandler: rbufsize -1, wbufsize 0, timeout None, "
                                   "disable_nagle_algorithm False "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L794-L802]")
def test_stream_handler_defaults(ss, observe):
    """StreamRequestHandler's class defaults match the documentation."""
    handler = ss.StreamRequestHandler
    values = {
        "rbufsize": handler.rbufsize,
        "wbufsize": handler.wbufsize,
        "timeout": handler.timeout,
        "disable_nagle_algorithm": handler.disable_nagle_algorithm,
    }
    observe("defaults", values)
    verify_equal("StreamRequestHandler defaults", {"rbufsize": -1, "wbufsize": 0, "timeout": None, "disable_nagle_algorithm": False},
                 values)


@check("API-017", VERSION, clause="allow_reuse_port (3.11+): False on TCPServer and UDPServer "
                                  "[bpo-16594, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L448, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L529]")
def test_allow_reuse_port_by_version(ss, impl, observe):
    """allow_reuse_port exists and is False from API 3.11 on, and is absent before."""
    present = {name: hasattr(getattr(ss, name), "allow_reuse_port") for name in ("TCPServer", "UDPServer")}
    observe("present", present)
    if impl.api_at_least(3, 11):
        verify(all(present.values()), "allow_reuse_port present at API >= 3.11", "present", present)
        values = {name: getattr(ss, name).allow_reuse_port for name in ("TCPServer", "UDPServer")}
        observe("values", values)
        verify(all(v is False for v in values.values()), "allow_reuse_port default", False, values)
    else:
        verify(not any(present.values()), f"allow_reuse_port at API {impl.api_version}", "absent", present)


@check("API-018", VERSION, clause="block_on_close (3.7+): True on ThreadingMixIn and ForkingMixIn "
                                  "[bpo-33540, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L559, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L680]")
def test_block_on_close_default(ss, impl, observe):
    """block_on_close is True on both mix-ins from API 3.7 on."""
    mixins = [name for name in ("ThreadingMixIn", "ForkingMixIn") if hasattr(ss, name)]
    values = {name: getattr(getattr(ss, name), "block_on_close", "<absent>") for name in mixins}
    observe("block_on_close", values)
    expected = True if impl.api_at_least(3, 7) else "<absent>"
    for name, value in values.items():
        verify(value == expected, f"{name}.block_on_close at API {impl.api_version}", expected, value)


@check("API-019", VERSION, clause="servers are context managers (3.6+): __enter__ returns self, "
                                  "__exit__ closes [bpo-26404, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L385-L389]")
def test_context_manager_protocol_present(ss, impl, observe):
    """BaseServer defines __enter__ and __exit__ from API 3.6 on."""
    present = hasattr(ss.BaseServer, "__enter__") and hasattr(ss.BaseServer, "__exit__")
    observe("present", present)
    verify_equal(f"context manager methods at API {impl.api_version}", impl.api_at_least(3, 6), present)


@check("API-020", REQUIRED, clause="BaseServer interface: the documented methods exist and are "
                                   "callable "
                                   "[https://docs.python.org/3/library/socketserver.html#socketserver.BaseServer]")
def test_baseserver_methods(ss, observe):
    """BaseServer provides every documented method."""
    found = {}
    for name in DOCUMENTED_SERVER_METHODS:  # the docs' list, shared with the prerequisite probes
        owner = ss.TCPServer
        found[name] = callable(getattr(owner, name, None))
    observe("callable", found)
    missing = [name for name, ok in found.items() if not ok]
    verify(not missing, "TCPServer methods", "all documented methods callable", missing)


@check("API-021", REQUIRED, clause="serve_forever(poll_interval=0.5) "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L218]")
def test_serve_forever_signature(ss, observe):
    """serve_forever's poll_interval defaults to 0.5 seconds."""
    parameter = inspect.signature(ss.BaseServer.serve_forever).parameters.get("poll_interval")
    default = parameter.default if parameter is not None else "<missing>"
    observe("poll_interval_default", default)
    verify_equal("serve_forever poll_interval default", 0.5, default)


@check("API-022", REQUIRED, clause="TCPServer(server_address, RequestHandlerClass, "
                                   "bind_and_activate=True) "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L450]")
def test_constructor_signature(ss, observe):
    """Server constructors take server_address, RequestHandlerClass and bind_and_activate=True."""
    params = inspect.signature(ss.TCPServer.__init__).parameters
    names = list(params)[1:4]
    default = params["bind_and_activate"].default if "bind_and_activate" in params else "<missing>"
    observe("parameters", names)
    verify_equal("TCPServer.__init__ parameters", ["server_address", "RequestHandlerClass", "bind_and_activate"], names)
    verify(default is True, "bind_and_activate default", True, default)


@check("API-023", REQUIRED, clause="StreamRequestHandler and DatagramRequestHandler derive from "
                                   "BaseRequestHandler "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L783, "
                                   "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L847]")
def test_handler_hierarchy(ss, observe):
    """Both concrete handlers derive from BaseRequestHandler."""
    bases = {name: [c.__name__ for c in getattr(ss, name).__mro__] for name in ("StreamRequestHandler", "DatagramRequestHandler")}
    observe("mro", bases)
    for name in bases:
        verify(issubclass(getattr(ss, name), ss.BaseRequestHandler), f"{name} base", "BaseRequestHandler", bases[name])


@check("API-024", REQUIRED, clause="collect_children(*, blocking=False) (keyword-only since 3.7) "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L561]",
       requires=("fork",))
def test_collect_children_signature(ss, impl, observe):
    """ForkingMixIn.collect_children accepts a keyword-only blocking=, defaulting to False."""
    mixin = require_attr(ss, "ForkingMixIn")
    params = inspect.signature(mixin.collect_children).parameters
    default = params["blocking"].default if "blocking" in params else "<missing>"
    kind = params["blocking"].kind.name if "blocking" in params else "<missing>"
    observe("blocking_default", default)
    observe("blocking_kind", kind)
    verify(default is False, "collect_children blocking default", False, default)
    if impl.api_at_least(3, 7):
        verify_equal("kind of collect_children's blocking parameter", inspect.Parameter.KEYWORD_ONLY.name, kind)


@check("API-025", REQUIRED, clause="UnixStreamServer/UnixDatagramServer use address_family "
                                   "AF_UNIX "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L722-L726]",
       requires=("af_unix",))
def test_unix_address_family(ss, observe):
    """The Unix-domain servers set address_family to AF_UNIX."""
    families = {name: require_attr(ss, name).address_family for name in ("UnixStreamServer", "UnixDatagramServer")}
    observe("address_family", {k: int(v) for k, v in families.items()})
    for name, family in families.items():
        verify_equal(f"{name}.address_family", socket.AF_UNIX, family)


@check("API-026", REQUIRED, clause="BaseServer.service_actions (3.3+) is a documented hook "
                                   "[https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py#L257-L263]")
def test_service_actions_hook(ss, observe):
    """BaseServer.service_actions exists as an overridable hook."""
    hook = getattr(ss.BaseServer, "service_actions", None)
    observe("present", hook is not None)
    verify(callable(hook), "BaseServer.service_actions", "callable", hook)


#: The API levels the kit knows (2.7, 3.6 .. 3.15).
KNOWN_MINORS = range(0, 16)


@check("API-027", REQUIRED, clause="a module that declares __socketserver_api__ = (major, minor) "
                                   "is tested at that level: the VERSION checks key on the same "
                                   "(3, minor) the module declares [README.md (a declared "
                                   "__socketserver_api__)]")
def test_declared_api_level(ss, impl, observe):
    """A declared __socketserver_api__ is a (3, minor) pair of ints and is the level the suite tests."""
    declared = getattr(ss, "__socketserver_api__", None)
    observe("declared", repr(declared))
    observe("tested_level", list(impl.api_version))
    if declared is None:
        return  # nothing declared: the level is the running Python's (or the adapter's)
    well_formed = (isinstance(declared, tuple) and len(declared) == 2
                   and all(isinstance(part, int) and not isinstance(part, bool) for part in declared))
    verify(well_formed, "__socketserver_api__", "a tuple of two ints (major, minor)", repr(declared))
    verify(declared[0] == 3 and declared[1] in KNOWN_MINORS, "__socketserver_api__",
           f"(3, {KNOWN_MINORS[0]}..{KNOWN_MINORS[-1]})", declared)
    verify_equal("API level the VERSION checks use vs __socketserver_api__", declared, tuple(impl.api_version))


@check("API-028", VERSION, clause="the standard library's module is SocketServer in Python 2 and "
                                  "socketserver from Python 3.0 on "
                                  "[https://github.com/python/cpython/blob/v2.7.18/Lib/SocketServer.py, "
                                  "https://github.com/python/cpython/blob/v3.13.0/Lib/socketserver.py]")
def test_stdlib_module_name_by_version(ss, impl, observe):
    """The standard library's module is named SocketServer before API 3.0 and socketserver from 3.0 on."""
    if impl.name != "stdlib":
        unsupported("the module name is a fact of the standard library's own module")
    expected = "socketserver" if impl.api_at_least(3, 0) else "SocketServer"
    observe("module", ss.__name__)
    observe.expected("module", expected)
    verify(ss.__name__ == expected, f"module name at API {impl.api_version}", expected, ss.__name__)


@check("API-029", VERSION, clause="BaseServer.service_actions: new in version 3.3 "
                                  "[https://docs.python.org/3/library/socketserver.html"
                                  "#socketserver.BaseServer.service_actions]")
def test_service_actions_by_version(ss, impl, observe):
    """BaseServer.service_actions exists from API 3.3 on and is absent before."""
    present = callable(getattr(ss.BaseServer, "service_actions", None))
    expected = impl.api_at_least(3, 3)
    observe("present", present)
    observe.expected("present", expected)
    verify(present == expected, f"BaseServer.service_actions at API {impl.api_version}", expected, present)
