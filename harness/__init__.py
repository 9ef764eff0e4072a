"""The pytest-free machinery of the socketserver conformance kit, one package per job.

``harness`` never imports pytest: the CLI, benchmarks and other runners use
it directly, and the checks in ``conformance/`` use it through pytest.  Each
package's ``__init__`` lists its modules; none of them imports its modules
on import except ``implementations`` (the adapter registry) and ``report``
(its public API).

* ``core/``             vocabulary and primitives: outcomes, timeouts, clock, capabilities,
  addresses, observations, prerequisites, declared extensions
* ``implementations/``  choosing and loading the implementation under test: adapters, the
  bootstrap launcher, the local interpreters, the alternatives page
* ``processes/``        child processes: the one supervisor, the child protocol, and the programs
  run as children (a server in its own process, a client that gets killed)
* ``serving/``          running a server of the implementation under test in this process and
  always getting it back; instrumented handlers
* ``clients/``          driving clients: bounded single connections, the client swarm, abrupt
  disconnects
* ``results/``          run records and their JSON Schemas (validation), the platform
  fingerprint, expectations, package data lookup
* ``report/``           the report drawn from records: merge, Markdown, HTML, JSON, diff, and the
  platform knowledge it compares with
* ``bench/``            ``ssconform bench``: two implementations measured side by side
* ``cli/``              the ``ssconform`` command (``python -m harness``) and the suite run behind it
* ``shapes/``           OS shapes: a Linux interpreter reshaped as Windows or macOS is documented
* ``subject/``          the implementation under test in another interpreter (2.7, 3.6+, PyPy):
  the stdlib-only agent, its protocol's host side, the mirror module, ``--subject-python``
"""

__version__ = "0.1.0"
