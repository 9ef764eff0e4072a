"""JSON Schemas shipped with the kit, loaded as package data.

Theory of operation
-------------------
The schemas are plain ``.json`` files inside this package so that hatchling
ships them in the wheel (it includes every file under a package directory)
and so that other tools (``check-jsonschema``, editors) can use them as
they are.  :func:`load` reads one through :mod:`importlib.resources`, which
works from a checkout, an installed wheel and a zip alike.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, Dict


def load(name: str) -> Dict[str, Any]:
    """The parsed schema ``name`` (e.g. ``"record.schema.json"``)."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    return json.loads(text)
