"""The pytest-free machinery of the socketserver conformance kit.

``harness`` never imports pytest: the CLI, benchmarks and other runners use
it directly.  Modules, one job each:

* ``timeouts``        every bound on every wait, times one multiplier
* ``capabilities``    fork / AF_UNIX / IPv6 / SO_REUSEPORT / signals probes, simulable
* ``outcomes``        levels and outcomes (closed vocabularies)
* ``implementations`` adapters: which module is under test, loaded how
* ``servers``         run a server of the implementation under test, bounded teardown
* ``server_process``  the same in a separate process (forking servers)
* ``instrument``      handlers that record setup/handle/finish intervals across processes
* ``clock``           the one clock for interval evidence (fine-grained, cross-process, every OS)
* ``shapes``          OS shapes: a Linux interpreter reshaped as Windows or macOS is documented
* ``swarm``           many concurrent clients; ``disconnect``: abrupt-disconnect scenarios
* ``fingerprint``     the platform fingerprint; ``records``: JSON run records + schema
* ``expectations``    expected deviations per implementation (TOML)
* ``report``          merged reports (Markdown, HTML, JSON); ``cli``: ``ssconform``
"""

__version__ = "0.1.0"
