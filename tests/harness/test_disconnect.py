"""harness.clients.disconnect: what the server side sees when a client vanishes.

The errno specifics are asserted on Linux only (measured there; see
docs/platform-knowledge.md); elsewhere the observation must be one of the
documented "peer went away" outcomes.
"""

from __future__ import annotations

import json
import socketserver
import sys
import types

import pytest

from harness.clients import disconnect
from harness.core import capabilities, timeouts
from harness.core.addresses import UnsupportedFeature
from harness.implementations import ImplementationError, resolve

LINUX = sys.platform == "linux"
needs_unix = pytest.mark.skipif(not capabilities.caps().af_unix, reason="AF_UNIX absent")
needs_fork = pytest.mark.skipif(not capabilities.caps().fork, reason="fork absent")

#: "peer went away" as any OS may report it on recv (docs/platform-knowledge.md)
GONE = {None, "ConnectionResetError", "ConnectionAbortedError", "BrokenPipeError"}


def _impls():
    found = [pytest.param("stdlib", id="stdlib")]
    try:
        resolve("reference")
        found.append(pytest.param("reference", id="reference"))
    except ImplementationError:  # pragma: no cover - while reference_impl is incomplete
        pass
    return found


@pytest.fixture
def fast():
    saved = timeouts._multiplier
    timeouts.set_multiplier(0.2, export=False)
    yield
    timeouts.set_multiplier(saved, export=False)


def _check_common(result, name, server_class):
    json.dumps(result)  # JSON-able as promised
    assert result["scenario"] == name and result["server_class"] == server_class
    assert result["next_client_served"] is True, result
    recv = result["server_recv"]
    assert recv is not None and recv["exception"] in GONE | {"FileNotFoundError"}


def test_scenarios_are_the_documented_list():
    assert list(disconnect.SCENARIOS) == [
        "fin", "half_close", "rst", "unread_close", "killed", "partial_send", "udp_dead_port"]
    assert all(disconnect.SCENARIOS.values())
    assert set(disconnect.PROCESS_SCENARIOS) <= set(disconnect.STREAM_SCENARIOS)


@pytest.mark.parametrize("impl", _impls())
@pytest.mark.parametrize("server_class", ["TCPServer", "ThreadingTCPServer"])
@pytest.mark.parametrize("name", disconnect.STREAM_SCENARIOS)
def test_stream_scenarios(impl, server_class, name):
    result = disconnect.run_scenario(name, impl, server_class)
    _check_common(result, name, server_class)
    recv, errors = result["server_recv"], result["handle_error_called"]
    # the handler re-raises its recv error, so handle_error runs exactly when recv failed
    assert errors == (recv["exception"] is not None)
    if errors:
        assert result["handle_error_exc"] == recv["exception"]
    if name == "fin":
        assert recv["result"] == "b''" and not errors
        assert result["server_recv_all"][0]["result"] == repr(disconnect.HELLO)
    elif name == "half_close":
        assert recv["result"] == "b''" and not errors
        assert result["server_send"]["result"] == len(disconnect.REPLY)
        assert result["client_side"]["reply_received"] is True
    elif name == "partial_send":
        assert recv["result"] == repr(disconnect.PARTIAL) and recv["line_complete"] is False
    elif name == "unread_close":
        assert result["client_side"]["unread_data_waiting"] is True
        assert result["server_greeting"]["result"] == len(disconnect.GREETING)
    elif name == "killed":
        assert result["client_side"]["killed_with"] == ("SIGKILL" if capabilities.caps().signals else "Popen.kill")
    if LINUX:
        expected = {
            "fin": (None, None),
            "half_close": (None, None),
            "rst": ("ConnectionResetError", "ECONNRESET"),
            "unread_close": ("ConnectionResetError", "ECONNRESET"),
            "killed": (None, None),  # empty receive buffer: the kernel sends FIN
            "partial_send": (None, None),
        }[name]
        assert (recv["exception"], recv["errno_name"]) == expected, result
        if name in ("rst", "unread_close"):
            assert recv["errno"] == 104 and recv["winerror"] is None
            assert "Exception occurred during processing of request" in result["handle_error_printed"]
        if name == "killed":
            assert recv["result"] == "b''" and result["client_side"]["returncode"] == -9


@needs_unix
@pytest.mark.parametrize("impl", _impls())
@pytest.mark.parametrize("name", disconnect.STREAM_SCENARIOS)
def test_unix_stream_scenarios(impl, name):
    result = disconnect.run_scenario(name, impl, "UnixStreamServer")
    _check_common(result, name, "UnixStreamServer")
    assert result["family"] == "unix"
    recv = result["server_recv"]
    if name == "half_close":
        assert result["client_side"]["reply_received"] is True
    if LINUX:
        # AF_UNIX has no RST: SO_LINGER (1, 0) is just a close; unread data still resets
        expected = ("ConnectionResetError", "ECONNRESET") if name == "unread_close" else (None, None)
        assert (recv["exception"], recv["errno_name"]) == expected, result
        if name == "fin":
            # no FIN/RST handshake on AF_UNIX: the first reply to a closed peer already fails
            assert result["server_send"]["exception"] == "BrokenPipeError"


@pytest.mark.parametrize("impl", _impls())
@pytest.mark.parametrize("server_class", ["UDPServer", "ThreadingUDPServer"])
def test_udp_dead_port_does_not_stop_the_server(impl, server_class):
    result = disconnect.run_scenario("udp_dead_port", impl, server_class)
    _check_common(result, "udp_dead_port", server_class)
    assert result["subject_datagram"]["nbytes"] > 0
    if LINUX:
        # an unconnected UDP socket never hears of the ICMP port-unreachable
        assert result["server_send"]["result"] == len(disconnect.REPLY)
        assert result["get_request_errors"] == [] and result["handle_error_called"] is False
        assert result["server_recv"]["result"] == repr(disconnect.PROBE)
    else:  # Windows: one swallowed WSAECONNRESET (10054) from recvfrom, then the probe
        for error in result["get_request_errors"]:
            assert error["exception"] == "ConnectionResetError"


@needs_unix
@pytest.mark.parametrize("impl", _impls())
def test_unix_datagram_reply_to_a_vanished_path_goes_to_handle_error(impl):
    result = disconnect.run_scenario("udp_dead_port", impl, "UnixDatagramServer")
    _check_common(result, "udp_dead_port", "UnixDatagramServer")
    send = result["server_send"]
    assert send["exception"] in ("FileNotFoundError", "ConnectionRefusedError")
    assert result["handle_error_called"] and result["handle_error_exc"] == send["exception"]


def test_killed_without_signals_takes_the_popen_kill_branch():
    with capabilities.simulate_absent("signals"):
        result = disconnect.run_scenario("killed", "stdlib", "TCPServer")
    assert result["client_side"]["killed_with"] == "Popen.kill"
    assert result["next_client_served"] is True
    if LINUX:
        assert result["server_recv"]["result"] == "b''"


@needs_fork
@pytest.mark.parametrize("name, expected", [("fin", (None, "b''")), ("rst", ("ConnectionResetError", None))])
def test_forking_server_runs_in_a_child_process(name, expected):
    result = disconnect.run_scenario(name, "stdlib", "ForkingTCPServer")
    assert result["server_in"] == "process" and result["handle_error_called"] is None
    assert result["next_client_served"] is True
    if LINUX:
        assert (result["server_recv"]["exception"], result["server_recv"]["result"]) == expected


def test_a_server_killed_by_a_disconnect_is_reported_not_served(fast):
    """The check can fail: a serving loop that dies on the RST leaves the next client unserved."""

    class DiesOnError(socketserver.TCPServer):
        def handle_error(self, request, client_address):
            raise  # noqa: PLE0704 - re-raise the handler's exception out of serve_forever

    broken = types.ModuleType("broken_socketserver")
    broken.__dict__.update({k: v for k, v in vars(socketserver).items() if not k.startswith("__")})
    broken.TCPServer = DiesOnError
    result = disconnect.run_scenario("rst", broken, "TCPServer", impl_spec="broken")
    assert result["next_client_served"] is False
    assert result["serve_forever_died"]["exc_type"] == "ConnectionResetError" or not LINUX
    assert result["probe_error"] is not None


def test_refusals():
    with pytest.raises(KeyError, match="unknown scenario"):
        disconnect.run_scenario("teleport")
    with pytest.raises(ValueError, match="datagram"):
        disconnect.run_scenario("udp_dead_port", "stdlib", "TCPServer")
    with pytest.raises(ValueError, match="stream"):
        disconnect.run_scenario("fin", "stdlib", "UDPServer")
    with capabilities.simulate_absent("af_unix"):
        with pytest.raises(UnsupportedFeature):
            disconnect.run_scenario("fin", "stdlib", "UnixStreamServer")


@needs_fork
def test_unread_close_is_refused_for_a_server_in_a_child_process():
    with pytest.raises(ValueError, match="not available"):
        disconnect.run_scenario("unread_close", "stdlib", "ForkingTCPServer")


def test_run_all_picks_the_scenarios_that_fit_the_class():
    stream = disconnect.run_all("stdlib", "ThreadingTCPServer", names=["fin", "udp_dead_port"])
    assert [r["scenario"] for r in stream] == ["fin"]
    dgram = disconnect.run_all("stdlib", "UDPServer", names=["fin", "udp_dead_port"])
    assert [r["scenario"] for r in dgram] == ["udp_dead_port"]


def test_a_request_left_open_names_the_error_path_when_its_handler_raised():
    """coll-server: a scenario whose wait for shutdown_request() ran out names PIPELINE-012
    (process_request() does not end requests), or PIPELINE-005 when the subject's handler
    raised and went to handle_error() (the error path does not end them); not at all when
    the handler never finished."""
    from harness.core.prerequisites import PreconditionFailed

    ended = [{"kind": "handler_end", "role": "subject"}]
    raised = ended + [{"kind": "hook", "hook": "handle_error", "exc_info": {"type": "OSError"}}]
    timeout = timeouts.HarnessTimeout("the server to finish the subject's request", 1.0)
    for events, owner in ((ended, "PIPELINE-012"), (raised, "PIPELINE-005")):
        with pytest.raises(PreconditionFailed) as info:
            disconnect._raise_if_only_shutdown_missing(events, timeout)
        assert info.value.prerequisite == owner
    disconnect._raise_if_only_shutdown_missing([{"kind": "hook", "hook": "handle_error"}], timeout)
