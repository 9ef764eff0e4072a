"""Find the kit's data files in a checkout or, failing that, in the installed wheel.

Theory of operation
-------------------
Two kinds of data travel with the kit: the expectation files of the built-in
adapters (``expectations/<impl>.toml`` at the top of a checkout) and the
platform knowledge (``harness/report/data/platform_notes.toml``).  In a source
checkout (or an editable install) they are plain files beside the packages.
A wheel has no checkout, so the build copies ``expectations/`` into the
package as ``harness/results/data/expectations/`` (``force-include`` in
``pyproject.toml``); this module finds them there through
:mod:`importlib.resources`, which also works for other installers and
layouts.

A checkout's file wins when it is present: someone editing
``expectations/eventlet.toml`` sees the effect at once, without
re-installing.  A resource that is not a plain file on disk (a zip import)
is not returned, because the callers pass paths to child processes.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Optional

#: The top of a source checkout, or ``None`` for an installed wheel.
HARNESS_DIR = Path(__file__).resolve().parent.parent
CHECKOUT: Optional[Path] = HARNESS_DIR.parent if (HARNESS_DIR.parent / "pyproject.toml").is_file() else None


def _resource(package: str, *parts: str) -> Optional[Path]:
    try:
        node = importlib.resources.files(package).joinpath("data", *parts)
    except (ModuleNotFoundError, FileNotFoundError):  # pragma: no cover - harness is importable
        return None
    if isinstance(node, Path) and node.is_file():
        return node
    return None


def expectation_file(name: str, checkout: Optional[Path] = CHECKOUT) -> Optional[Path]:
    """The expectation file of implementation ``name``, or ``None`` when it has none.

    ``checkout/expectations/<name>.toml`` first, then the copy shipped in the
    wheel (``harness/results/data/expectations/<name>.toml``).
    """
    if checkout is not None:
        local = checkout / "expectations" / f"{name}.toml"
        if local.is_file():
            return local
    return _resource("harness.results", "expectations", f"{name}.toml")


def data_file(name: str) -> Path:
    """A data file of the report package (``harness/report/data/<name>``)."""
    found = _resource("harness.report", name)
    if found is None:
        raise FileNotFoundError(f"harness/report/data/{name} is missing from this installation")
    return found
