"""Core vocabulary and primitives: the words and the bounds every other package uses.

Nothing here runs a server, drives a client or writes a record; these modules
are the shared ground underneath those jobs.  They import little (several are
imported in child processes before an adapter's monkey-patching), and this
``__init__`` imports none of them.

* ``outcomes``       levels and outcomes, the closed vocabularies of checks, records and reports
* ``timeouts``       every bound on every wait, times one multiplier (``SSCONFORM_TIMEOUT_MULTIPLIER``)
* ``clock``          the one clock for interval evidence, comparable across processes
* ``capabilities``   fork / AF_UNIX / IPv6 / SO_REUSEPORT / signals probes, simulable
* ``addresses``      loopback addresses and private 0700 AF_UNIX directories (and removing what they held)
* ``lines``          reading one line from a socket without consuming what follows it
* ``observations``   what a check saw as JSON-able data and short comparable summaries
* ``prerequisites``  which check owns a behaviour the harness relies on (PRECONDITION_FAILED)
* ``extensions``     declared extensions: promises beyond the contract (vocabulary in ``extensions.toml``)
"""
