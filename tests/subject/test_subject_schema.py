"""Every message of a real agent session is valid against docs/subject-protocol.schema.json.

The session exercises every op, a refused request of each kind, a served
server with recorded hooks and a client, and the teardown; replies are checked
against the result shape of their request's op (correlated by id), and the
events the agent wrote to the log against ``$defs/event``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jsonschema
import pytest

from harness.clients import bounded as clients
from harness.core import addresses, timeouts
from harness.serving import instrument
from harness.subject.client import AgentRefused, SubjectAgent

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "subject-protocol.schema.json")
                    .read_text(encoding="utf-8"))


def _validator(ref=None):
    schema = dict(SCHEMA) if ref is None else {"$ref": f"#/$defs/{ref}", "$defs": SCHEMA["$defs"]}
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    return jsonschema.Draft202012Validator(schema)


def _session(python):
    agent = SubjectAgent.start(python)
    try:
        agent.request("ping")
        with pytest.raises(AgentRefused, match="not_loaded"):
            agent.request("snapshot")
        agent.request("load", impl="stdlib", budgets={"short": timeouts.short(), "medium": timeouts.medium(),
                                                      "long": timeouts.long(), "poll": timeouts.poll()})
        agent.request("snapshot")
        agent.request("fingerprint")
        with pytest.raises(AgentRefused, match="unknown_op"):
            agent.request("teleport")
        with addresses.private_dir() as directory:
            log = instrument.EventLog.create(directory)
            with pytest.raises(AgentRefused, match="bad_spec"):
                agent.request("serve", spec={"server_class": "TCPServer", "behaviour": "dance", "log": log.path})
            with pytest.raises(AgentRefused, match="missing_class"):
                agent.request("serve", spec={"server_class": "WarpServer", "log": log.path})
            ready = agent.request("serve", spec={"server_class": "ThreadingTCPServer", "behaviour": "echo",
                                                 "family": "inet", "attrs": {"daemon_threads": True},
                                                 "hooks": {"verify_request": "record"}, "log": log.path,
                                                 "directory": directory, "poll_interval": 0.05})
            with clients.connect(tuple(ready["address"]), "inet") as sock:
                sock.sendall(b"hello\n")
                assert clients.recv_line(sock, timeouts.Deadline(timeouts.short(), "echo")) == b"hello\n"
            log.wait_for(lambda events: any(e.get("phase") == "finish" and e.get("edge") == "end" for e in events),
                         timeouts.short(), "the handler to finish")
            agent.request("call", server=ready["server"], method="fileno", budget=timeouts.short())
            agent.request("stop_server", server=ready["server"], budget=timeouts.long())
            with pytest.raises(AgentRefused, match="unknown_server"):
                agent.request("stop_server", server=ready["server"])
            _probe_ops(agent, log, directory)
            # a bench server (SERVE, SHUTDOWN, THREADING): built, one handle_request() timing out
            built = agent.request("bench_build", spec={"server_class": "TCPServer", "action": "returns",
                                                       "hooks": {"handle_timeout": "record"},
                                                       "attrs": {"timeout": 0.05}, "log": log.path,
                                                       "directory": directory})
            call = agent.request("bench_start", server=built["server"], method="handle_request", args=[])["call"]
            state = agent.request("bench_wait", budget=2 * timeouts.short(), call=call, until={"done": True},
                                  wait=timeouts.short())
            assert state["done"] and state["error"] is None, state
            agent.request("bench_fileno", server=built["server"])
            agent.request("bench_record", log=log.path, name="release", info={"by": "host"})
            agent.request("bench_threads", log=log.path, collect=True)
            agent.request("bench_hasattr", server=built["server"], name="__enter__")
            agent.request("bench_forget", server=built["server"])
            _built_servers(agent, log, directory)
            _ext_ops(agent, log, directory)
            events = log.read()
        agent.request("bye")
    finally:
        agent.stop()
    return agent.transcript, events


def _probe_ops(agent, log, directory):
    """The HANDLER/PIPELINE/DISCONNECT vocabulary: a built server with a probe handler and
    observing hooks, a bounded handle_request(), a described object's fileno(), a direct handler."""
    built = agent.request("probe_build", spec={
        "server_class": "TCPServer", "family": "inet", "handler_base": "BaseRequestHandler",
        "probe": {"handle": [["fact", "attributes"], ["sendall", "ok"]], "attrs": {}},
        "hooks": {"verify_request": "observe", "handle_error": "observe_quiet"}, "log": log.path,
        "directory": directory})
    with clients.connect(tuple(built["address"]), "inet") as sock:
        answer = agent.request("probe_invoke", server=built["server"], method="handle_request", args=[],
                               limit=timeouts.short())
        assert answer["returned"] and sock.recv(2) == b"ok"
    seen = [e["value"] for e in log.read() if e.get("kind") == "step" and e.get("arg") == "attributes"]
    assert seen[0]["server"]["ref"] == built["ref"]
    agent.request("ref_call", server=built["server"], ref=seen[0]["request"]["ref"], method="fileno")
    agent.request("join", server=built["server"], limit=timeouts.short())
    agent.request("stop_server", server=built["server"])
    with clients.dgram_client("inet") as client:
        ran = agent.request("run_handler", spec={"handler_base": "DatagramRequestHandler", "log": log.path,
                                                 "probe": {"handle": [["write", "hi"]]}},
                            data="6869", client=list(client.getsockname()), limit=timeouts.short())
        assert ran["returned"] and clients.recvfrom(client)[0] == b"hi"
def _built_servers(agent, log, directory):
    """The built-server ops (BIND, UDP, UNIX): a failed construction, a spied activation, a served one."""
    spec = {"server_class": "TCPServer", "behaviour": "respond", "handler_base": "BaseRequestHandler",
            "options": {"reply": "fixed", "text": "hi"}, "log": log.path, "directory": directory}
    failed = agent.request("build", spec=dict(spec, hooks={"server_bind": "raise", "server_close": "record"}))
    assert failed["server"] is None and failed["injected"]
    built = agent.request("build", spec=dict(spec, bind_and_activate=False, attrs={"request_queue_size": 2}))
    agent.request("invoke", server=built["server"], method="server_bind", bound=timeouts.short())
    spied = agent.request("invoke", server=built["server"], method="server_activate", spy_listen=True)
    assert spied["listen_calls"] == [[2]]
    agent.request("inspect", server=built["server"], attrs=["request_queue_size"], sockopts=["SO_ACCEPTCONN"])
    ready = agent.request("serve_built", server=built["server"], budget=timeouts.long())
    with clients.connect(tuple(ready["address"]), "inet") as sock:
        assert clients.recv_until_eof(sock, timeouts.Deadline(timeouts.short(), "the reply")) == b"hi"
    assert agent.request("discard", server=built["server"], budget=timeouts.long())["hung"] == []


def _ext_ops(agent, log, directory):
    """ext (EXT-001..003): socket.socketpair() failing in the subject and back, a lateness
    control, and runs of accept() failures, each run after a get_request() that returned."""
    assert agent.request("ext_socketpair", fail=True) == {"was_failing": False}
    assert agent.request("ext_socketpair", fail=True) == {"was_failing": True}
    assert agent.request("ext_socketpair", fail=False) == {"was_failing": True}
    control = agent.request("ext_lateness_start", pauses=[0.001, 0.002])["control"]
    late = None
    for _ in range(1000):
        late = agent.request("ext_lateness_result", control=control, wait=0.05)["late"]
        if late is not None:
            break
    assert late is not None and late >= 0
    built = agent.request("bench_build", spec={"server_class": "TCPServer", "action": "returns",
                                               "hooks": {"get_request": "record"}, "log": log.path,
                                               "directory": directory,
                                               "fail_accept": {"errno": 24, "count": 1, "then": [1]}})
    for _client in range(2):
        with clients.connect(tuple(built["address"]), "inet"):
            for _call in range(2):  # the failure drops nothing: the client is still pending
                call = agent.request("bench_start", server=built["server"], method="handle_request")["call"]
                state = agent.request("bench_wait", budget=2 * timeouts.short(), call=call, until={"done": True},
                                      wait=timeouts.short())
                assert state["done"] and state["error"] is None, state
    names = [e["name"] for e in log.read() if e.get("kind") == "record" and e["name"] in ("accept_failed", "get_request")]
    assert names == ["accept_failed", "get_request"] * 2, names
    agent.request("bench_forget", server=built["server"])


def test_every_message_of_a_session_is_valid(subject_python):
    transcript, events = _session(subject_python)
    whole = _validator()
    ops = {}
    for message in transcript:
        if message.get("op") == "teleport" or (message.get("spec") or {}).get("behaviour") == "dance":
            # sent on purpose: the schema must refuse them too
            assert not whole.is_valid(message)
            ops[message["id"]] = message["op"]
            continue
        errors = sorted(whole.iter_errors(message), key=str)
        assert not errors, f"{message!r}: {errors[0].message}"
        if "op" in message:
            ops[message["id"]] = message["op"]
        elif message.get("event") == "reply" and message["ok"]:
            op = ops[message["id"]]
            errors = list(_validator(f"result_{op}").iter_errors(message["result"]))
            assert not errors, f"result of {op}: {errors[0].message}"
    kinds = {m.get("event") for m in transcript} - {None}
    assert kinds == {"hello", "reply", "goodbye"}, kinds
    assert set(ops.values()) == set(SCHEMA["$defs"]["op"]["enum"]) | {"teleport"}, "every op was exercised"
    event_validator = _validator("event")
    assert any(e["kind"] == "hook" for e in events), "verify_request was recorded"
    assert any(e["kind"] == "record" and e["name"] == "handle_timeout" for e in events), "the bench recorded"
    for event in events:
        errors = list(event_validator.iter_errors(event))
        assert not errors, f"{event!r}: {errors[0].message}"


def test_the_schema_rejects_what_the_protocol_forbids():
    whole = _validator()
    assert not whole.is_valid({"event": "hello", "protocol": "1"})
    assert not whole.is_valid({"event": "reply", "id": 1, "ok": True})  # no result
    assert not whole.is_valid({"event": "reply", "id": 1, "ok": False, "error": {"code": "oops", "message": ""}})
    assert not whole.is_valid({"id": 1, "op": "serve", "spec": {"server_class": "TCPServer", "log": "x",
                                                                 "behaviour": "dance"}})
    assert whole.is_valid({"id": 1, "op": "call", "server": "s1", "method": "shutdown", "budget": 1.0})
    assert not whole.is_valid({"id": 1, "op": "call", "server": "s1", "method": "__del__"})


def test_the_agent_vocabulary_is_the_harness_vocabulary():
    """The agent's behaviours and calls are the schema's, and the host builds with the agent's own."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "harness" / "subject"))
    try:
        import agent  # as a subject runs it: by path, outside the kit's package
    finally:
        sys.path.pop(0)
    from harness.subject import agent as host_agent

    defs = SCHEMA["$defs"]
    assert instrument.BEHAVIOURS is host_agent.BEHAVIOURS
    assert sorted(agent.BEHAVIOURS) == sorted(defs["behaviour"]["enum"])
    assert sorted(agent.CALLS) == sorted(defs["method"]["enum"])
    assert sorted(agent.HOOKS) == sorted(defs["hook"]["enum"])
    assert sorted(agent.HOOK_ACTIONS) == sorted(defs["hook_action"]["enum"])
    assert sorted(agent.OPS) == sorted(defs["op"]["enum"])
    assert sorted(agent.PROBE_STEPS) == sorted(defs["probe_step"]["enum"])
    assert sorted(agent.PROBE_FACTS) == sorted(defs["probe_fact"]["enum"])
    assert sorted(agent.INVOKE_METHODS) == sorted(defs["invoke_method"]["enum"])
    # SERVE, SHUTDOWN, THREADING: the bench's handler actions are conformance.tools.handlers' (but raises)
    from conformance.tools.handlers import ACTIONS

    assert sorted(agent.BENCH_ACTIONS) == sorted(defs["bench_action"]["enum"]) == sorted(set(ACTIONS) - {"raises"})
    assert sorted(agent.BENCH_METHODS) == sorted(defs["bench_method"]["enum"])


def test_the_forking_lab_speaks_the_schema(subject_python, tmp_path):
    """FORKING: ``agent.py --lab SPEC`` under each subject: its spec, its lines and its events
    are valid, and it serves a ForkingTCPServer request in a child."""
    from harness.core.capabilities import caps
    from harness.processes import supervisor
    from harness.subject.session import SubjectSession

    if not caps().fork:
        pytest.skip("no fork here")
    with addresses.private_dir() as directory:
        log = instrument.EventLog.create(directory)
        spec = {"version": 1, "impl": None, "server_class": "ForkingTCPServer", "behaviour": "echo",
                "handler_base": None, "options": {}, "attrs": {}, "mode": "serve_forever", "requests": 1,
                "foreign_child": False, "final_timeout": None, "steal_first_child": False, "log": log.path,
                "directory": directory, "lifetime": timeouts.long()}
        command = SubjectSession(subject_python, "stdlib").lab_command(spec)
        assert not list(_validator("lab_spec").iter_errors(json.loads(command[-1])))
        child = supervisor.start(command, what="the forking lab", cwd=directory, protocol=True, stdin=True)
        try:
            ready = child.await_message(("ready", "error"), timeouts.long(), "the lab to start")
            assert ready and ready["event"] == "ready", (ready, child.stderr_tail())
            with clients.connect(tuple(ready["address"]), "inet") as sock:
                sock.sendall(b"lab\n")
                assert clients.recv_line(sock, timeouts.Deadline(timeouts.short(), "echo")) == b"lab\n"
        finally:
            stopped = child.stop(ask_budget=timeouts.short(), interrupt=True, interrupt_budget=timeouts.medium())
        teardown = child.await_message(("teardown",), timeouts.short(), "the lab's teardown") or {}
        events = log.read()
    assert stopped["reaped"]
    for message in (ready, teardown):
        errors = list(_validator("lab_message").iter_errors(message))
        assert not errors, f"{message!r}: {errors[0].message}"
    assert teardown.get("error") is None and teardown.get("close_error") is None, teardown
    handlers = {e["pid"] for e in events if e.get("kind") == "phase"}
    assert handlers and ready["pid"] not in handlers, "the request was handled in a child"
    event_validator = _validator("event")
    for event in events:
        errors = list(event_validator.iter_errors(event))
        assert not errors, f"{event!r}: {errors[0].message}"


def test_the_built_server_vocabulary_is_the_schemas():
    """BIND, UDP, UNIX: the built-server methods and socket options are the schema's."""
    from harness.subject import agent

    defs = SCHEMA["$defs"]
    assert sorted(agent.LAB_CALLS) == sorted(defs["built_method"]["enum"])
    assert sorted(agent.SOCKOPTS) == sorted(defs["sockopt"]["enum"])
    assert set(agent.CONSTRUCTION_HOOKS) <= set(agent.HOOKS)
