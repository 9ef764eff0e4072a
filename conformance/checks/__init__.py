"""The conformance checks: one ``test_<area>.py`` per area (check IDs ``AREA-NNN``), nothing else.

Helpers shared by checks live in :mod:`conformance.tools`, programs run as
child processes in :mod:`conformance.children`, the API in :mod:`conformance.api`.
"""
