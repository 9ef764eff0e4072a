"""Adapter for the interpreter's own ``socketserver`` (CPython, PyPy, ...)."""

from __future__ import annotations

import importlib
import platform

from .base import Implementation


def _load():
    return importlib.import_module("socketserver")


def _version(module) -> str:
    return f"{platform.python_implementation()} {platform.python_version()}"


ADAPTER = Implementation(
    name="stdlib",
    description="the running interpreter's socketserver module",
    load=_load,
    version=_version,
)
