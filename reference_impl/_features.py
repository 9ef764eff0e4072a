"""What this interpreter and OS offer, probed once at import time.

Theory of operation
-------------------
``socketserver`` adapts to its platform in exactly three places, and all
three are decided here so that the rest of the package never asks
``sys.platform``:

``HAVE_FORK``
    ``os.fork`` exists.  Without it (Windows, WASI, Emscripten) the
    ``Forking*`` names are not defined at all, as in the standard library
    since 3.6: code that needs them fails with ``AttributeError`` at
    import time rather than at the first request.

``HAVE_AF_UNIX``
    ``socket.AF_UNIX`` exists.  Without it (CPython on Windows) the
    ``Unix*`` names are not defined.  ``ForkingUnix*`` needs both.

``ServerSelector``
    The selector class used by ``serve_forever`` and ``handle_request``:
    ``PollSelector`` where ``select.poll`` exists (it has no fd limit and
    needs no extra descriptor), otherwise ``SelectSelector`` (Windows,
    whose ``select()`` accepts only sockets -- which is why the wake-up
    channel in :mod:`reference_impl._wakeup` is a socket pair, never a
    pipe).

The probes read attributes of ``os``, ``socket`` and ``selectors`` at the
moment this module is first imported.  Tests simulate another platform by
deleting those attributes in a fresh interpreter *before* importing
``reference_impl``.
"""

from __future__ import annotations

import os
import selectors
import socket

HAVE_FORK = hasattr(os, "fork")
HAVE_AF_UNIX = hasattr(socket, "AF_UNIX")

# Annotated with the common base: which concrete class it is depends on the
# platform, and callers only use the BaseSelector interface.
ServerSelector: type[selectors.BaseSelector]
if hasattr(selectors, "PollSelector"):
    ServerSelector = selectors.PollSelector
else:  # Windows, or a platform whose poll() CPython found broken
    ServerSelector = selectors.SelectSelector
