"""The subject: the implementation under test in another interpreter, driven by an agent.

``agent.py`` runs in the subject (stdlib only, Python 2.7 and 3.x); ``client.py``
speaks the protocol from the host (``docs/subject-protocol.md``); ``mirror.py``
rebuilds the subject's module for introspection checks; ``session.py`` is what
the pytest plugin uses for ``--subject-python``; ``cell.py`` is one subject cell
of the matrix (nox, tox).
"""
