"""The socketserver conformance suite: a pytest plugin, its checks, and the tools to write them.

* ``conformance.plugin``: the plugin, registered through the ``pytest11``
  entry point; it stays inert until an implementation is selected
  (``--impl``, ``SSCONFORM_IMPL`` or the ``ssconform_impl`` ini key).
* ``conformance.api``: the public check-writing API (``check``, ``verify``,
  ``verify_equal``, ``verify_returned``, ``unsupported``, ``require_attr``).
* ``conformance.checks``: the checks, ``test_<area>.py`` only, so that
  ``pytest --pyargs conformance.checks`` works from an installed wheel.
* ``conformance.tools``: check-side tools, one module per tool.
* ``conformance.children``: programs the tools run as child processes.
"""

__version__ = "0.1.0"
