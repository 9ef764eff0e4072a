"""The socketserver conformance suite: a pytest plugin and its checks.

``conformance.plugin`` is registered through the ``pytest11`` entry point and
stays inert until an implementation is selected (``--impl``,
``SSCONFORM_IMPL`` or the ``ssconform_impl`` ini key).  The checks live in
``conformance.checks`` so that ``pytest --pyargs conformance.checks`` works
from an installed wheel.
"""

__version__ = "0.1.0"
