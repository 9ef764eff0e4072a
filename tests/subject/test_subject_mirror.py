"""The mirror of the host's own socketserver says what the module itself says.

Built from a real snapshot of the host's stdlib through the agent, it must
agree with ``import socketserver`` on every fact an introspection check can
read: names, ``__all__``, each class's MRO, plain class attributes, whether
a name is callable, and every signature.
"""

from __future__ import annotations

import inspect
import socketserver
import sys

import pytest

from harness.subject.session import SubjectSession


@pytest.fixture(scope="module")
def mirrored():
    session = SubjectSession(sys.executable, "stdlib")
    try:
        yield session.implementation().module
    finally:
        session.close()


def _own(mro):
    """The MRO up to its first class from another module (mirrored by name only)."""
    names = []
    for cls in mro:
        names.append(cls.__name__)
        if cls.__module__ != "socketserver":
            break
    return names


def _plain(value):
    return value is None or isinstance(value, (bool, int, float, str))


def test_names_and_all_agree(mirrored):
    real = {n for n in vars(socketserver) if not n.startswith("__")}
    assert {n for n in vars(mirrored) if not n.startswith("__")} == real
    assert mirrored.__all__ == socketserver.__all__
    assert mirrored.__name__ == "socketserver"


def test_every_class_agrees(mirrored):
    compared = 0
    for name, cls in vars(socketserver).items():
        if not inspect.isclass(cls) or cls.__module__ != "socketserver":
            continue
        twin = getattr(mirrored, name)
        assert _own(twin.__mro__) == _own(cls.__mro__), name
        assert twin.__module__ == cls.__module__
        for attr, value in vars(cls).items():
            if attr in ("__dict__", "__weakref__", "__module__", "__doc__", "__qualname__"):
                continue
            mine = vars(twin).get(attr)
            if _plain(value):
                assert mine == value and isinstance(mine, bool) == isinstance(value, bool), f"{name}.{attr}"
            elif inspect.isfunction(value):
                assert callable(mine), f"{name}.{attr}"
                assert str(inspect.signature(mine)) == str(inspect.signature(value)), f"{name}.{attr}"
            compared += 1
    assert compared > 60
