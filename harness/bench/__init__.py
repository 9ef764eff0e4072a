"""Bench: ``ssconform bench``, two implementations measured side by side.

Benchmarks are measurements, never tests: the server runs alone in its own
process, the clients (:mod:`harness.clients.swarm`) run in the measuring
process, and the two implementations alternate round by round.

* ``runner``        the measuring side: metrics, interleaved rounds, verdicts, tables
* ``bench_server``  the server side: one server per process, started as ``python -m harness.bench.bench_server``
"""
