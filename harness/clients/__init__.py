"""Clients: everything that talks to a server under test from the client side.

Every client call is bounded by :mod:`harness.core.timeouts`; a server that
never answers becomes a ``HarnessTimeout``, never a hung check.

* ``bounded``     bounded single-connection helpers: connect, send, read, round trips, datagrams
* ``swarm``       many concurrent clients against one server, every message verified
* ``disconnect``  abrupt-disconnect scenarios (FIN, RST, half-close, killed client) and what the server saw
"""
