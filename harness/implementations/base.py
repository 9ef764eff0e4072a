"""What an implementation under test is: a declaration, not a script.

Theory of operation
-------------------
An :class:`Implementation` says how to obtain the module that provides the
``socketserver`` API, which API level it claims, how to read its version,
and (optionally) what must run first in a process that tests it.  A
resolved implementation is a :class:`LoadedImplementation`: the module
plus the facts every run record carries (name, module name, file,
version, API level).

The API level is what VERSION checks key on.  For the standard library it
is the running Python's ``(major, minor)``; ``reference_impl`` claims the
3.13 API on every interpreter it runs on; a third-party module may declare
``__socketserver_api__ = (3, 12)`` and otherwise is taken to claim the API
of the Python running it.

Declared extensions (``harness.core.extensions``): promises beyond the
contract, read from the module's ``__socketserver_extensions__`` unless the
adapter's ``extensions`` says otherwise; the EXT checks verify them.

``bootstrap`` names a zero-argument callable (``"module:function"``) that
must run before anything imports ``socket``, ``threading`` or ``select`` in
the process running the suite (gevent's and eventlet's monkey-patching).
Such adapters are started through ``python -m harness.implementations.launch`` by the CLI.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from typing import Callable, FrozenSet, Optional, Tuple

from harness.core.extensions import declared_by_module

ApiVersion = Tuple[int, int]


def running_python_api(module: types.ModuleType) -> ApiVersion:
    declared = getattr(module, "__socketserver_api__", None)
    if declared is not None:
        return (int(declared[0]), int(declared[1]))
    return (sys.version_info[0], sys.version_info[1])


def module_version(module: types.ModuleType) -> str:
    version = getattr(module, "__version__", None)
    return str(version) if version is not None else "unknown"


@dataclasses.dataclass(frozen=True)
class Implementation:
    name: str
    description: str
    load: Callable[[], types.ModuleType]
    api_version: Callable[[types.ModuleType], ApiVersion] = running_python_api
    version: Callable[[types.ModuleType], str] = module_version
    bootstrap: Optional[str] = None
    #: extra facts for the fingerprint (e.g. {"gevent": "24.2.1"}); called after load
    extra: Optional[Callable[[], dict]] = None
    #: the declared extensions (names from harness/core/extensions.toml); called after load
    extensions: Callable[[types.ModuleType], FrozenSet[str]] = declared_by_module


@dataclasses.dataclass(frozen=True)
class LoadedImplementation:
    name: str
    spec: str  # what the user typed (adapter name, dotted name or path)
    kind: str  # "adapter", "module" or "file"
    module: types.ModuleType
    module_name: str
    file: Optional[str]
    version: str
    api_version: ApiVersion
    adapter: Optional[Implementation] = None
    extra: dict = dataclasses.field(default_factory=dict)
    extensions: FrozenSet[str] = frozenset()

    def describe(self) -> dict:
        """The facts that go into every run record."""
        return {
            "name": self.name,
            "spec": self.spec,
            "kind": self.kind,
            "module": self.module_name,
            "file": self.file,
            "version": self.version,
            "api_version": f"{self.api_version[0]}.{self.api_version[1]}",
            "extra": dict(self.extra),
            "extensions": sorted(self.extensions),
        }

    def api_at_least(self, major: int, minor: int) -> bool:
        return self.api_version >= (major, minor)
