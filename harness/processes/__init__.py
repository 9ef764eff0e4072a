"""Child processes of the kit: how they are started, read, stopped and reaped, and the programs run as children.

Every child of the kit -- the suite's pytest processes, server processes,
bench servers, forking labs and one-shot helper scripts -- is started and
stopped by the supervisor.  The programs here are the ones the kit runs as
children for the checks (started with ``python -m``).  This ``__init__``
imports nothing, so a child that must stay importable before an adapter's
monkey-patching can import ``child_protocol`` alone.

* ``supervisor``      the one place that starts a child (its own session or process group), reads
  its line protocol and stderr, answers "is its group still alive", stops it (ask, interrupt,
  kill the group, reap) and builds its environment
* ``child_protocol``  the child's side of the line protocol and the one bootstrap of every child
  (imports almost nothing)
* ``server_process``  a server of the implementation under test in a separate process
  (``python -m harness.processes.server_process``; forking servers), started by ``serve_in_process``
* ``killed_client``   a client process that connects, sends and waits to be killed
  (``python -m harness.processes.killed_client``; the ``killed`` disconnect scenario)
"""
