"""Adapter for this project's clean-room ``reference_impl``."""

from __future__ import annotations

import importlib

from .base import Implementation


def _load():
    return importlib.import_module("reference_impl")


ADAPTER = Implementation(
    name="reference",
    description="reference_impl: the kit's clean-room socketserver (3.13 API)",
    load=_load,
    api_version=lambda module: tuple(module.__socketserver_api__),
)
