"""Shared by the kit's own tests: pytester drives end-to-end plugin runs."""

pytest_plugins = ["pytester"]
