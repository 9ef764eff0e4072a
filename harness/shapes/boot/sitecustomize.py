"""Applies the OS shape named by ``SSCONFORM_OS_SHAPE`` as the interpreter starts.

This directory is put first on ``PYTHONPATH`` by :func:`harness.shapes.env_for`;
``site`` imports ``sitecustomize`` after the ``.pth`` files and before the
program's own first import, which is the moment a shape must take effect
(the same reason gevent and eventlet patch first).  Every child process
inherits the environment, so server processes, forking labs and helper
scripts are shaped the same way.  A ``sitecustomize`` that this one hides
(a distribution's own) is run afterwards.
"""

import os
import sys


def _chain() -> None:
    """Run the next ``sitecustomize`` on ``sys.path``, if there is one."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    path = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


if os.environ.get("SSCONFORM_OS_SHAPE"):
    from harness.shapes import apply_from_env

    apply_from_env()
_chain()
