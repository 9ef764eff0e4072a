"""Find and load the implementation under test.

Theory of operation
-------------------
``--impl`` (or ``SSCONFORM_IMPL``) takes one of three forms, tried in this
order:

1. an **adapter name**: a built-in adapter (``stdlib``, ``reference``, and the
   optional ``gevent``/``eventlet``/``eventlet_green``/``future`` adapters)
   or one registered by a third party in the ``ssconform.implementations``
   entry-point group.  The entry point must resolve to an
   :class:`~harness.implementations.base.Implementation` whose ``name``
   equals the entry-point name;
2. a **path to a ``.py`` file** (anything ending in ``.py`` or containing a
   path separator): executed under a private module name
   ``_ssconform_impl_<hash>`` so it can never shadow a real module.  This runs
   the file's code, like importing it would;
3. a **dotted module name** (``mypkg.socketserver``), imported normally.

Anything else, or a load that raises, gives one :class:`ImplementationError`
that says what was tried and lists the adapters available.

Modules of this package (choosing and loading the implementation, and the
interpreters it runs on):

* ``base``          what an implementation is: the :class:`Implementation` declaration and the loaded facts
* ``stdlib``, ``reference``, ``greenlets``  the built-in adapters (gevent, eventlet, ``future`` in ``greenlets``)
* ``launch``        ``python -m harness.implementations.launch``: bootstrap (monkey-patch) first, then pytest
* ``pythons``       find the local matrix's Python interpreters
* ``alternatives``  ``docs/alternatives.md``: where each alternative implementation deviates from the stdlib
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
import traceback
from typing import TYPE_CHECKING, Dict, List

from harness.core.extensions import UnknownExtension, declared_by_module

from .base import (
    ApiVersion,
    Implementation,
    LoadedImplementation,
    module_version,
    running_python_api,
)

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENV_VAR = "SSCONFORM_IMPL"
ENTRY_POINT_GROUP = "ssconform.implementations"

#: Built-in adapters: name -> "module:attribute", imported lazily so that a
#: missing optional dependency (gevent) only matters when it is selected.
BUILTIN = {
    "stdlib": "harness.implementations.stdlib:ADAPTER",
    "reference": "harness.implementations.reference:ADAPTER",
    "gevent": "harness.implementations.greenlets:GEVENT",
    "eventlet": "harness.implementations.greenlets:EVENTLET",
    "eventlet_green": "harness.implementations.greenlets:EVENTLET_GREEN",
    "future": "harness.implementations.greenlets:FUTURE",
}

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class ImplementationError(Exception):
    """The requested implementation could not be found or loaded."""


def _entry_points() -> Dict[str, EntryPoint]:
    from importlib import metadata

    try:
        eps = metadata.entry_points()
        # A version test rather than hasattr(eps, "select"): the same split
        # (3.10 added select()), and one a type checker can follow.
        if sys.version_info >= (3, 10):
            selected = eps.select(group=ENTRY_POINT_GROUP)
        else:  # Python 3.9: a plain dict of group -> list
            selected = eps.get(ENTRY_POINT_GROUP, [])
    except Exception:  # a broken distribution must not hide the built-ins
        return {}
    return {ep.name: ep for ep in selected}


def available() -> List[str]:
    """Every adapter name that can be asked for (built-in and entry points)."""
    return sorted(set(BUILTIN) | set(_entry_points()))


def _load_target(target: str):
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute)


def get_adapter(name: str) -> Implementation:
    """The adapter declaration named ``name`` (without loading its module)."""
    if name in BUILTIN:
        adapter = _load_target(BUILTIN[name])
    else:
        eps = _entry_points()
        if name not in eps:
            raise KeyError(name)
        adapter = eps[name].load()
    if not isinstance(adapter, Implementation):
        raise ImplementationError(
            f"adapter {name!r} is {type(adapter).__name__}, not harness.implementations.base.Implementation"
        )
    if adapter.name != name:
        raise ImplementationError(f"adapter registered as {name!r} declares name {adapter.name!r}")
    return adapter


def looks_like_path(spec: str) -> bool:
    return spec.endswith(".py") or os.sep in spec or (os.altsep is not None and os.altsep in spec)


def _load_file(path: str):
    absolute = os.path.abspath(path)
    if not os.path.isfile(absolute):
        raise FileNotFoundError(f"no such file: {absolute}")
    digest = hashlib.sha1(absolute.encode("utf-8")).hexdigest()[:12]
    name = f"_ssconform_impl_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, absolute)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot build an import spec for {absolute}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _fail(spec: str, tried: List[str]) -> ImplementationError:
    lines = [f"cannot load implementation {spec!r}:"]
    lines += [f"  - {attempt}" for attempt in tried]
    lines.append(f"available adapters: {', '.join(available())}")
    lines.append("also accepted: a dotted module name (mypkg.socketserver) or a path to a .py file")
    return ImplementationError("\n".join(lines))


def _short_exc(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def resolve(spec: str) -> LoadedImplementation:
    """Load the implementation named by ``spec`` (see module docstring)."""
    spec = (spec or "").strip()
    if not spec:
        raise _fail(spec, ["an empty name"])
    tried: List[str] = []

    try:
        adapter = get_adapter(spec)
    except KeyError:
        tried.append(f"adapter {spec!r}: not a built-in adapter nor an entry point in {ENTRY_POINT_GROUP!r}")
    except ImplementationError as exc:
        raise _fail(spec, [str(exc)]) from None
    except Exception as exc:
        raise _fail(spec, [f"adapter {spec!r}: its declaration failed to import: {_short_exc(exc)}"]) from exc
    else:
        try:
            module = adapter.load()
        except Exception as exc:
            raise _fail(spec, [f"adapter {spec!r}: loading its module raised {_short_exc(exc)}"]) from exc
        api: ApiVersion = tuple(adapter.api_version(module))  # type: ignore[assignment]
        extra = adapter.extra() if adapter.extra else {}
        try:
            extensions = adapter.extensions(module)
        except UnknownExtension as exc:
            raise _fail(spec, [f"adapter {spec!r}: {exc}"]) from None
        return LoadedImplementation(
            name=adapter.name,
            spec=spec,
            kind="adapter",
            module=module,
            module_name=module.__name__,
            file=getattr(module, "__file__", None),
            version=adapter.version(module),
            api_version=api,
            adapter=adapter,
            extra=extra,
            extensions=extensions,
        )

    if looks_like_path(spec):
        try:
            module = _load_file(spec)
        except Exception as exc:
            tried.append(f"file {spec!r}: {_short_exc(exc)}")
            raise _fail(spec, tried) from exc
        kind = "file"
        name = os.path.splitext(os.path.basename(spec))[0]
        # Child processes (server processes) resolve the spec again from
        # another working directory, so a file spec is made absolute.
        spec = os.path.abspath(spec)
    elif _DOTTED.match(spec):
        try:
            module = importlib.import_module(spec)
        except Exception as exc:
            tried.append(f"module {spec!r}: {_short_exc(exc)}")
            raise _fail(spec, tried) from exc
        kind = "module"
        name = spec
    else:
        tried.append(f"{spec!r} is neither a .py path nor a dotted module name")
        raise _fail(spec, tried)

    if not hasattr(module, "BaseServer") and not hasattr(module, "TCPServer"):
        tried.append(f"{kind} {spec!r} loaded but provides neither BaseServer nor TCPServer")
        raise _fail(spec, tried)
    try:
        extensions = declared_by_module(module)
    except UnknownExtension as exc:
        raise _fail(spec, [f"{kind} {spec!r}: {exc}"]) from None
    return LoadedImplementation(
        name=name,
        spec=spec,
        kind=kind,
        module=module,
        module_name=module.__name__,
        file=getattr(module, "__file__", None),
        version=module_version(module),
        api_version=running_python_api(module),
        extensions=extensions,
    )


__all__ = [
    "ENV_VAR",
    "ENTRY_POINT_GROUP",
    "Implementation",
    "LoadedImplementation",
    "ImplementationError",
    "available",
    "get_adapter",
    "resolve",
]
