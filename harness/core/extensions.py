"""Declared extensions: optional promises an implementation makes beyond the contract.

Theory of operation
-------------------
The conformance checks hold every implementation to what CPython's
``socketserver`` does.  Some implementations promise more (``reference_impl``
wakes its loop on ``shutdown()`` instead of polling, backs off when
``accept()`` runs out of descriptors, ...).  A check cannot require that of
everyone, and an unchecked promise is worth little, so promises are
*declared*, the way test262 tags tests with feature flags that an engine
claims or not:

* the vocabulary is data, ``harness/core/extensions.toml``: each name, the EXT
  check that verifies it, its title, what it means (precisely enough to
  check) and the source showing what the contract itself says;
* an implementation declares what it keeps with a module attribute
  ``__socketserver_extensions__`` (any iterable of names; the analogue of
  ``__socketserver_api__``) or through its adapter's ``extensions``;
* each ``EXT-NNN`` check (level ``EXTENSION``) verifies one promise when it
  is declared and ends UNSUPPORTED ("not declared") when it is not.

An unknown name is an error at resolution time (a typo would otherwise turn
a promise into a silent UNSUPPORTED).

The vocabulary is read on first use, not at import: this module is imported
by ``harness.implementations`` before gevent/eventlet patch the process
(``harness.implementations.launch``), and ``importlib.resources`` imports ``threading``.
"""

from __future__ import annotations

import functools
import types
from typing import Any, Dict, FrozenSet, Iterable

#: The module attribute an implementation declares its extensions with.
ATTRIBUTE = "__socketserver_extensions__"

_FIELDS = ("check", "title", "meaning", "source")


@functools.cache
def vocabulary() -> Dict[str, Dict[str, str]]:
    """``{name: {"check", "title", "meaning", "source"}}``, in file order."""
    from importlib import resources

    from harness.core import tomlfile

    text = resources.files(__package__ or "harness.core").joinpath("extensions.toml").read_text(encoding="utf-8")
    data = tomlfile.loads(text)
    for name, entry in data.items():
        missing = [field for field in _FIELDS if not str(entry.get(field, "")).strip()]
        if missing:
            raise ValueError(f"harness/core/extensions.toml: [{name}] lacks {', '.join(missing)}")
    return {name: {field: " ".join(str(entry[field]).split()) for field in _FIELDS} for name, entry in data.items()}


class UnknownExtension(ValueError):
    """A declaration names an extension the vocabulary does not define."""


def validate(names: Iterable[Any], where: str) -> FrozenSet[str]:
    """``names`` as a frozenset, or :class:`UnknownExtension` naming ``where``."""
    if isinstance(names, (str, bytes)):
        raise UnknownExtension(f"{where}: declare a set of names, not the string {names!r}")
    declared = frozenset(str(name) for name in names)
    unknown = sorted(declared - set(vocabulary()))
    if unknown:
        raise UnknownExtension(f"{where} declares unknown extension(s) {', '.join(unknown)}; "
                               f"known: {', '.join(vocabulary())}")
    return declared


def declared_by_module(module: types.ModuleType) -> FrozenSet[str]:
    """What ``module.__socketserver_extensions__`` declares (empty when absent), read by
    the subject agent's :func:`~harness.subject.agent.declared_extensions`: the same rule
    for a module loaded here and one loaded in a subject interpreter."""
    from harness.subject.agent import declared_extensions  # on use: the agent imports threading

    try:
        names = declared_extensions(module)
    except ValueError as exc:
        raise UnknownExtension(str(exc)) from None
    return validate(names, f"{getattr(module, '__name__', module)}.{ATTRIBUTE}")


def clause(name: str) -> str:
    """The clause of the check verifying ``name``: the promise, and what the contract says instead."""
    entry = vocabulary()[name]
    return f"declared extension {name!r}: {entry['meaning']} Beyond the contract: {entry['source']}"


__all__ = ["ATTRIBUTE", "vocabulary", "UnknownExtension", "validate", "declared_by_module", "clause"]
