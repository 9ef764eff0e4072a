"""Reading the kit's TOML data files, on every host Python the kit supports.

Theory of operation
-------------------
The kit keeps its knowledge (platform shapes, expectations, owners of
prerequisites, extension vocabulary, notes) in TOML files.  Python 3.11 reads
TOML with the standard library's :mod:`tomllib`
(https://docs.python.org/3/library/tomllib.html); 3.9 and 3.10 use ``tomli``,
the library ``tomllib`` was taken from, which ``pyproject.toml`` requires there.
This module picks one, once, so no other module repeats the choice.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.9/3.10
    import tomli as tomllib

#: the error a malformed file raises (``tomllib.TOMLDecodeError``)
TOMLDecodeError = tomllib.TOMLDecodeError


def loads(text: str) -> Dict[str, Any]:
    """The table of a TOML document."""
    return tomllib.loads(text)


def load(path: Union[str, Path]) -> Dict[str, Any]:
    """The table of the TOML file at ``path`` (UTF-8, as TOML requires)."""
    with open(path, "rb") as handle:
        return tomllib.load(handle)


__all__ = ("TOMLDecodeError", "load", "loads", "tomllib")
