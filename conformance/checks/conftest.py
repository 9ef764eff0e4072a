"""Fixtures every check may use: the implementation under test and its module.

``impl`` is the :class:`harness.implementations.base.LoadedImplementation`
resolved once by the plugin; ``ss`` is the module under test (what
``import socketserver`` would give); ``caps`` are the platform capabilities.
"""

from __future__ import annotations

import pytest

from conformance.plugin import STATE
from harness.core.capabilities import caps as _caps


@pytest.fixture(scope="session")
def impl(pytestconfig):
    state = pytestconfig.stash.get(STATE, None)
    if state is None:
        pytest.fail("no implementation selected (use --impl)", pytrace=False)
    return state.impl


@pytest.fixture(scope="session")
def ss(impl):
    return impl.module


@pytest.fixture
def caps():
    return _caps()
