"""Turn what a check saw into JSON-able data and short comparable summaries.

Theory of operation
-------------------
Records are JSON, and reports compare observations across operating
systems, so every observation goes through :func:`to_jsonable` (bytes become
their ``repr``, tuples become lists, exceptions become a small dict with
type, errno, errno name and winerror) and, where a short string is wanted in
a report cell, through :func:`summary`.

Summaries name errors by their POSIX errno name, never by number, because
the numbers differ per OS (ECONNRESET is 104 on Linux, 54 on macOS and
10054 on Windows).  Windows socket errors are mapped back to the POSIX
name through :data:`WINSOCK_NAMES`, and the Windows number is kept beside
it: ``ConnectionResetError [ECONNRESET] (WinError 10054)``.  Two
observations agree when their summaries without the parenthesised
platform detail are equal (:func:`comparable`).
"""

from __future__ import annotations

import enum
import errno as errno_module
import math
import os
import re
from typing import Any, Dict, Optional

WINSOCK_NAMES = {
    10004: "EINTR",
    10009: "EBADF",
    10013: "EACCES",
    10014: "EFAULT",
    10022: "EINVAL",
    10024: "EMFILE",
    10035: "EWOULDBLOCK",
    10040: "EMSGSIZE",
    10041: "EPROTOTYPE",
    10045: "EOPNOTSUPP",
    10048: "EADDRINUSE",
    10049: "EADDRNOTAVAIL",
    10053: "ECONNABORTED",
    10054: "ECONNRESET",
    10057: "ENOTCONN",
    10058: "ESHUTDOWN",
    10060: "ETIMEDOUT",
    10061: "ECONNREFUSED",
}


def errno_name(number: Optional[int], winerror: Optional[int] = None) -> Optional[str]:
    if winerror is not None and winerror in WINSOCK_NAMES:
        return WINSOCK_NAMES[winerror]
    if number is None:
        return None
    if number in WINSOCK_NAMES:
        return WINSOCK_NAMES[number]
    name = errno_module.errorcode.get(number)
    if name and name.startswith("WSA") and name[3:] and hasattr(errno_module, name[3:]):
        return name[3:]
    return name


def describe_exception(exc: BaseException) -> Dict[str, Any]:
    number = getattr(exc, "errno", None)
    winerror = getattr(exc, "winerror", None)
    return {
        "type": type(exc).__name__,
        "errno": number if isinstance(number, int) else None,
        "errno_name": errno_name(number if isinstance(number, int) else None, winerror),
        "winerror": winerror,
        "message": str(exc)[:200],
    }


def to_jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-compatible copy of ``value``, bounded in depth and size: the kit's one.

    Observations come from arbitrary implementations and records must still
    serialise (strictly: no NaN), so tuples and sets become lists (sets
    sorted), enums their value, non-finite floats their repr, bytes their
    (cut) repr, exceptions :func:`describe_exception`, paths their string,
    classes their qualified name, anything else its (cut) repr.  Applying it
    twice gives the same value."""
    if depth > 20:
        return repr(value)[:200]
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if value is None or isinstance(value, (bool, int, str)):
        if isinstance(value, str) and len(value) > 2000:
            return value[:2000] + "..."
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        text = repr(data if len(data) <= 200 else data[:200])
        return text if len(data) <= 200 else text + f"...({len(data)} bytes)"
    if isinstance(value, BaseException):
        return describe_exception(value)
    if isinstance(value, dict):
        return {str(key): to_jsonable(item, depth + 1) for key, item in list(value.items())[:200]}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if isinstance(value, (set, frozenset)):
            items = sorted(items, key=repr)
        return [to_jsonable(item, depth + 1) for item in items[:1000]]
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)[:500]


def summary(value: Any) -> str:
    """A short, OS-comparable rendering of one observation."""
    if isinstance(value, BaseException):
        value = describe_exception(value)
    if isinstance(value, dict) and "type" in value and ("errno" in value or "errno_name" in value):
        text = value["type"]
        if value.get("errno_name"):
            text += f" [{value['errno_name']}]"
        elif value.get("errno") is not None:
            text += f" [errno {value['errno']}]"
        if value.get("winerror") is not None:
            text += f" (WinError {value['winerror']})"
        return text
    if isinstance(value, (bytes, bytearray)):
        return repr(bytes(value))
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, str):
        return value
    return repr(to_jsonable(value))


_DETAIL = re.compile(r"\s*\((?:WinError|errno) [^)]*\)")


def comparable(text: str) -> str:
    """``summary`` without platform-specific numbers, for agreement tests."""
    return _DETAIL.sub("", text).strip()
