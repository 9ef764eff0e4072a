"""BROKEN: collect_children blocks by default"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: service_actions() calls collect_children(), which now waits for every child: the loop serves
#: nothing while one runs, so forked handlers never overlap.  The checks whose clauses promise
#: that (FORKING-001/009, CONCURRENCY-003/006, TUTORIAL-007, as for concurrency_forking_waits) fail;
#: FORKING-002, which needs the overlap only to reach its limit, ends PRECONDITION_FAILED naming FORKING-001.
#: FORKING-012 passes: active_children does hold the running child's pid (the lab sees it after the
#: fork, not only from service_actions(), which this loop blocks in)
#: fork-probe: CONCURRENCY-003/006 and TUTORIAL-007 end PRECONDITION_FAILED naming FORKING-001 at
#: once: the forking-overlap probe (conformance/tools/forking_overlap.py) saw 1 of 2 held handlers
BREAKS = {"API-024": "FAIL", "FORKING-001": "FAIL", "FORKING-009": "FAIL",
          "CONCURRENCY-003": "PRECONDITION_FAILED", "CONCURRENCY-006": "PRECONDITION_FAILED",
          "TUTORIAL-007": "PRECONDITION_FAILED"}

_collect = ForkingMixIn.collect_children  # noqa: F821


def _blocking_collect(self, *, blocking=True):
    return _collect(self, blocking=blocking)


ForkingMixIn.collect_children = _blocking_collect  # noqa: F821
