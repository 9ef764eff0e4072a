"""coll-bind: prerequisites of the BIND/UNIX checks and of the serving loop, and who owns them."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.tools.lab import lab
from harness.core.prerequisites import PreconditionFailed
from harness.implementations import resolve

REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests" / "broken" / "impls"


def test_a_late_bind_on_a_socket_the_constructor_bound_names_bind_002():
    """A constructor that binds whatever bind_and_activate says leaves the check nothing to bind
    later (EINVAL): the check cannot judge server_bind()/server_activate() and names BIND-002.
    A constructor that leaves the socket unbound is bound by the check as before."""
    with lab(resolve("stdlib")) as made:
        server = made.build("TCPServer", bind_and_activate=False).built()
        assert server.invoke("server_bind").error is None
    with lab(resolve(str(BROKEN / "bind_ignores_bind_and_activate.py"))) as made:
        server = made.build("UDPServer", bind_and_activate=False).built()
        with pytest.raises(PreconditionFailed) as info:
            server.invoke("server_bind")
        assert info.value.prerequisite == "BIND-002" and "bound to" in info.value.detail
        built = made.build("TCPServer").built()  # bind_and_activate=True: nothing to refuse
        assert built.invoke("server_close").error is None
