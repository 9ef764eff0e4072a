"""A host-side mirror of the subject's module, built from the agent's snapshot.

Theory of operation
-------------------
Introspection checks (API-*) read names, ``__all__``, class relations,
class attributes and signatures.  Rather than teaching each check to ask an
agent, :func:`build_module` turns the agent's ``snapshot`` (every name of
the subject's module, every class with its bases and own attributes, every
function's parameters) into a module object on the host whose classes are
real classes with the same names, ``__module__``, bases, attribute values
and ``inspect.signature`` results.  The checks then run unchanged:
``issubclass``, ``__mro__``, ``hasattr``, ``vars(module)``,
``inspect.signature`` all answer from the subject's facts.

A mirror can only be looked at.  Creating an instance of a mirrored class
(or of a check's subclass of one), calling a mirrored function, or using a
mirrored module reference raises :class:`NeedsInProcess`, and
:data:`TOUCHED` remembers it for the check being run: the plugin ends such a
check UNSUPPORTED ("needs in-process access to ..."), whatever the check did
with the exception.  It derives from ``BaseException`` so that a check's
``except Exception`` cannot mistake it for the implementation's own error.

Classes of other modules (``io.BufferedIOBase``, the base of the stdlib's
``_SocketWriter``) are mirrored by name only, without their own bases: an
MRO is exact up to its first such class.  Two more facts of the subject cannot be mirrored exactly and are recorded as
they are instead: a Python 2 classic class has no ``__mro__`` (its MRO in
the snapshot is ``inspect.getmro``'s depth-first order; the mirror's is
C3, the same for every socketserver class), and values that are not plain
JSON (an enum member prints as its ``repr``) keep their ``repr`` only.
"""

from __future__ import annotations

import inspect
import types
from typing import Any, Dict, List, Optional, Tuple

#: Reasons a check reached for in-process access, since the plugin last cleared it.
TOUCHED: List[str] = []


class NeedsInProcess(BaseException):
    """A check needs the implementation in its own process (see the module docstring)."""

    def __init__(self, what: str):
        super().__init__(f"needs in-process access to {what}")
        self.what = what
        TOUCHED.append(what)


def clear() -> None:
    """Forget what the previous check reached for (the plugin calls this per check)."""
    del TOUCHED[:]


def reason(exc: Optional[BaseException] = None) -> Optional[str]:
    """Why the current check cannot run through the agent, or None."""
    if isinstance(exc, NeedsInProcess):
        return str(exc)
    if TOUCHED:
        return f"needs in-process access to {TOUCHED[0]}"
    return None


class MirrorType(type):
    """The metaclass of every mirrored class: instances cannot be made on the host."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise NeedsInProcess(f"an instance of {cls.__name__} (the implementation runs in the subject)")


class _Opaque:
    """A value the snapshot only knows by its ``repr``."""

    def __init__(self, text: str, type_name: str):
        self._text = text
        self.type_name = type_name

    def __repr__(self) -> str:
        return self._text


class _ModuleRef(types.ModuleType):
    """A module the subject's module refers to (``socket``, ``selectors`` ...)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise NeedsInProcess(f"{self.__name__}.{name} of the subject")


def _value(described: Dict[str, Any]) -> Any:
    if "value" in described:
        value = described["value"]
        return tuple(value) if described.get("tuple") else value
    return _Opaque(str(described.get("repr")), str(described.get("type")))


_KINDS = {name: getattr(inspect.Parameter, name) for name in
          ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD", "VAR_POSITIONAL", "KEYWORD_ONLY", "VAR_KEYWORD")}


def signature(described: Optional[Dict[str, Any]]) -> Optional[inspect.Signature]:
    """The ``inspect.Signature`` a snapshot's parameter list describes (None: unknown)."""
    if not described:
        return None
    params = []
    for entry in described.get("params", []):
        kind = _KINDS.get(entry.get("kind"), inspect.Parameter.POSITIONAL_OR_KEYWORD)
        default = _value(entry["default"]) if "default" in entry else inspect.Parameter.empty
        params.append(inspect.Parameter(entry["name"], kind, default=default))
    try:
        return inspect.Signature(params)
    except ValueError:  # an order Python 3 refuses: keep the names, drop the kinds
        return inspect.Signature([inspect.Parameter(p.name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                  for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)])


def _function(owner: str, name: str, described: Dict[str, Any]) -> Any:
    what = f"{owner}.{name}()" if owner else f"{name}()"

    def stub(*args: Any, **kwargs: Any) -> Any:
        raise NeedsInProcess(what)

    stub.__name__ = name
    stub.__qualname__ = f"{owner}.{name}" if owner else name
    sig = signature(described.get("signature"))
    if sig is not None:
        stub.__signature__ = sig  # type: ignore[attr-defined]
    kind = described.get("kind")
    if kind == "staticmethod":
        return staticmethod(stub)
    if kind == "classmethod":
        return classmethod(stub)
    return stub


def _attribute(owner: str, name: str, described: Dict[str, Any], module_name: str,
               refs: Dict[Tuple[Optional[str], str], Any]) -> Any:
    kind = described.get("kind")
    if kind in ("function", "staticmethod", "classmethod", "callable"):
        return _function(owner, name, described)
    if kind == "property":
        return property(lambda self: (_ for _ in ()).throw(NeedsInProcess(f"{owner}.{name}")))
    if kind == "module":
        return _ModuleRef(str(described.get("name")))
    if kind == "class":
        return refs.get((described.get("module"), str(described.get("name"))))
    return _value(described)


def build_module(snap: Dict[str, Any]) -> types.ModuleType:
    """The mirror of the subject's module (see the module docstring)."""
    module_name = snap["module"]
    module = types.ModuleType(module_name)
    module.__file__ = snap.get("file")
    classes: Dict[str, Dict[str, Any]] = snap.get("classes", {})
    refs: Dict[Tuple[Optional[str], str], Any] = {}
    by_local: Dict[str, Any] = {}
    by_origin = {(c.get("module"), c["name"]): local for local, c in classes.items()}

    def foreign(ref: Dict[str, Any]) -> Any:
        key = (ref.get("module"), ref["name"])
        if ref["name"] == "object" and ref.get("module") in ("builtins", "__builtin__"):
            return object
        if key not in refs:
            refs[key] = MirrorType(ref["name"], (), {"__module__": ref.get("module")})
        return refs[key]

    def make(local: str, pending: Tuple[str, ...] = ()) -> Any:
        if local in by_local:
            return by_local[local]
        described = classes[local]
        bases = []
        for base in described["bases"]:
            known = by_origin.get((base.get("module"), base["name"]))
            if known is not None and known not in pending:
                bases.append(make(known, pending + (local,)))
            else:
                bases.append(foreign(base))
        bases = [b for b in bases if b is not object] or [object]
        namespace: Dict[str, Any] = {"__module__": described.get("module") or module_name,
                                     "__doc__": None, "_ssconform_mirror": True}
        try:
            cls = MirrorType(described["name"], tuple(bases), namespace)
        except TypeError:  # a classic MRO C3 cannot linearise: keep the attributes
            cls = MirrorType(described["name"], (object,), namespace)
        by_local[local] = cls
        refs[(described.get("module"), described["name"])] = cls
        return cls

    for local in classes:
        make(local)
    for local, described in classes.items():
        cls = by_local[local]
        for name, attr in described.get("attrs", {}).items():
            if name in ("__init__", "__new__", "__call__", "__class__", "__getattr__", "__getattribute__",
                        "__setattr__", "__init_subclass__", "__subclasshook__", "__slots__"):
                if name == "__init__":  # a stub with the subject's signature; never called
                    cls.__init__ = _attribute(cls.__name__, name, attr, module_name, refs)
                continue
            setattr(cls, name, _attribute(cls.__name__, name, attr, module_name, refs))
    for name, described in snap.get("names", {}).items():
        if described.get("kind") == "class" and name in by_local:
            setattr(module, name, by_local[name])
        else:
            setattr(module, name, _attribute("", name, described, module_name, refs))
    if snap.get("all") is not None:
        vars(module)["__all__"] = list(snap["all"])
    return module


__all__ = ["NeedsInProcess", "TOUCHED", "build_module", "clear", "reason", "signature"]
