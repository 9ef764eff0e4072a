"""Programs the conformance checks start as child processes (never collected as checks).

Each module here is run as ``python -m conformance.children.NAME SPEC`` by a
check-side tool, always through :mod:`harness.processes.supervisor` (its own
session or process group, a JSON-lines protocol on a private descriptor,
bounded stop and reap).  A child runs the adapter's bootstrap
(gevent/eventlet patching) before it imports the implementation, sends its
results as protocol messages (:mod:`harness.processes.child_protocol`), and bounds its
own life.

* ``forking_lab``: a single-threaded forking server whose hooks and reaped
  children are logged (started by :func:`conformance.tools.forking_lab.forking_lab`);
* ``process_wide``: a scenario that changes process-wide state (descriptor
  limit, ``socket.socketpair``) (started by
  :func:`conformance.tools.child_runs.run_child`);
* ``no_poll``: a server whose socket is closed under its loop, in an
  interpreter without ``PollSelector`` (started by
  :func:`conformance.tools.child_runs.closed_under_loop_without_poll`);
* ``tutorial_client``: the original tutorial's interactive client, killed
  by the check (started by TUTORIAL-003).
"""
