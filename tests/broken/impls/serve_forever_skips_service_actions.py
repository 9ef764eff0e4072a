"""BROKEN: serve_forever() never calls service_actions() (the loop is otherwise the stdlib's).

The checks that own the hook fail: SERVE-005/006/008/010 (it runs on every
loop iteration, in the serving thread), and the ForkingMixIn checks whose
behaviour the stdlib implements in service_actions() -- reaping children
while serving, so max_children and dropping a child reaped elsewhere
(FORKING-002/003/014).  A child's exit status (FORKING-005) and active_children
while it runs (FORKING-012) are observed without the hook (at the lab's
teardown, after each fork): their clauses hold.  Nothing else may fail: the harness detects a running loop without the hook
(the harness readiness probe, harness/serving/servers.py)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# FORKING-014 judges the collect_children() after a child was reaped elsewhere; none runs here,
# which is FORKING-003's defect (its PRECONDITION_FAILED names FORKING-003)
BREAKS = {"SERVE-005": "FAIL", "SERVE-006": "TIMEOUT", "SERVE-008": "FAIL", "SERVE-010": "FAIL",
          "FORKING-002": "FAIL", "FORKING-003": "FAIL", "FORKING-014": "PRECONDITION_FAILED"}


def serve_forever(self, poll_interval=0.5):
    self._BaseServer__is_shut_down.clear()
    try:
        with _ServerSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            while not self._BaseServer__shutdown_request:
                ready = selector.select(poll_interval)
                if self._BaseServer__shutdown_request:
                    break
                if ready:
                    self._handle_request_noblock()
                # BROKEN: no self.service_actions() here
    finally:
        self._BaseServer__shutdown_request = False
        self._BaseServer__is_shut_down.set()


BaseServer.serve_forever = serve_forever
