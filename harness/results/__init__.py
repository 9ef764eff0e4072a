"""Results: what a run produced, where it ran, and what was expected of it.

A run of the suite ends in one JSON record per implementation; this package
writes, reads and validates those records against their JSON Schema, takes
the platform fingerprint they carry, and holds the expected deviations each
implementation is judged by.  The report (:mod:`harness.report`) reads
records with ``records``.

* ``records``       run records: build, write, read, validate (both ways), summarise
* ``schema/``       the JSON Schemas (run record, platform knowledge), shipped as package data
* ``fingerprint``   the platform fingerprint: every fact about where a run happened
* ``expectations``  expected deviations per implementation, read from TOML files
* ``packaged``      find data files in a checkout or the installed wheel (``data/expectations/`` in a wheel)
"""
