"""Tools for writing checks, grouped by tool (the checks themselves are in ``conformance.checks``).

==========================  =====================================================
module                      tool
==========================  =====================================================
``recorder``                :class:`Recorder`: the one in-memory event recorder
                            (hooks, handlers, steps in order; bounded waits)
``handlers``                handlers and server classes built on the
                            implementation's own classes that record into a
                            Recorder (``recording_handler``, ``recording_class``,
                            ``failing_accept_server``)
``running``                 calls run and stopped under the check's control:
                            ``Background`` (one call in a thread), ``LoopThread``
                            (``serve_forever``), ``owned`` (close on exit)
``roundtrip``               a client exchange whose failure is an observation
``serving``                 any server kind with an instrumented handler, in a
                            thread or (forking) a server process
``event_log``               queries over a :class:`harness.serving.instrument.EventLog`
                            and the one ``timeline`` of handler intervals
``held_clients``            the one held-client class (handlers kept busy: the
                            proof of N handlers at once), and held datagrams
``forking_lab``             the parent side of the single-threaded forking lab
``child_runs``              one-shot child programs: process-wide scenarios and
                            the SelectSelector run
``closed_loop``             ``server_close()`` under a running loop (in process
                            and in the ``no_poll`` child)
``disconnect_scenarios``    disconnect scenarios run once per server kind, and
                            their summaries
==========================  =====================================================

The programs these tools start as child processes are in
``conformance.children``; the check-writing API (``check``, ``verify``...) is
``conformance.api``.
"""
