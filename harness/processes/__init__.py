"""Child processes of the kit: how they are started, read, stopped and reaped.

* :mod:`harness.processes.supervisor` -- the one place that starts a child
  (its own session or process group), reads its line protocol and stderr,
  answers "is its group still alive", stops it (ask, interrupt, kill the
  group, reap) and builds its environment.  Every child of the kit goes
  through it: the suite's pytest processes, server processes, bench servers,
  forking labs and one-shot helper scripts.

The child's side of the line protocol is :mod:`harness.child_protocol`
(it must stay importable before an adapter's monkey-patching, so it lives
apart and imports almost nothing).
"""
