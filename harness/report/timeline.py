"""Concurrency timelines as small inline SVG images.

Theory of operation
-------------------
Concurrency checks record ``observed["timeline"]``: one entry per client,
``{"client", "start", "end", "pid", "tid"}`` with times in seconds relative
to the first handler start.  Drawn as one horizontal bar per client on a
common time axis, the three classic server shapes are visible at a glance:
a plain ``TCPServer`` makes a staircase (each handler starts when the
previous one ended), ``ThreadingMixIn`` and ``ForkingMixIn`` make bars
that overlap.  Bars are coloured by worker (``(pid, tid)``), so a
staircase in one colour is one thread doing everything, and a forking
server shows a colour per child process.

:func:`timeline_svg` returns SVG text.  Every string that came from a
record (client ids, pids, tids, the title) is escaped with
:func:`html.escape`; numbers are parsed as floats, and entries that are not
finite numbers with ``end >= start`` are left out and counted in the
image's title, so a hostile or broken record can neither inject markup nor
break the drawing.  :func:`max_overlap` counts how many handlers ran at
the same time, the number the report prints next to the image.
"""

from __future__ import annotations

import html
import math
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

#: Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#7F7F7F", "#000000")

WIDTH = 130
MAX_PLOT_HEIGHT = 72
MAX_BAR = 7.0
AXIS = 13


class Interval(NamedTuple):
    client: str
    start: float
    end: float
    worker: Tuple[str, str]


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def intervals(timeline: Iterable[Any]) -> Tuple[List[Interval], int]:
    """The drawable intervals of ``timeline`` and how many entries were unusable."""
    found: List[Interval] = []
    skipped = 0
    for entry in timeline or ():
        if not isinstance(entry, dict):
            skipped += 1
            continue
        start, end = _number(entry.get("start")), _number(entry.get("end"))
        if start is None or end is None or end < start:
            skipped += 1
            continue
        found.append(Interval(str(entry.get("client", len(found))), start, end,
                              (str(entry.get("pid")), str(entry.get("tid")))))
    found.sort(key=lambda item: (item.start, item.end))
    return found, skipped


def max_overlap(timeline: Iterable[Any]) -> int:
    """The largest number of handlers running at the same instant.

    Intervals that merely touch (one ends when the next starts) do not
    overlap: a serialising server scores 1.
    """
    events: List[Tuple[float, int]] = []
    for item in intervals(timeline)[0]:
        events.append((item.start, 1))
        events.append((item.end, -1))
    events.sort(key=lambda event: (event[0], event[1]))  # ends before starts at equal times
    running = best = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best


def workers(timeline: Iterable[Any]) -> int:
    """How many distinct ``(pid, tid)`` workers ran handlers."""
    return len({item.worker for item in intervals(timeline)[0]})


def _fmt(value: float) -> str:
    text = f"{value:.2f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ms(seconds: float) -> str:
    ms = seconds * 1000.0
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"


def timeline_svg(timeline: Iterable[Any], title: str = "", width: int = WIDTH) -> str:
    """An SVG image with one bar per client (see the module docstring)."""
    items, skipped = intervals(timeline)
    esc = html.escape
    if not items:
        label = "no usable timeline entries" + (f" ({skipped} unusable)" if skipped else "")
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{AXIS}" '
                f'role="img" aria-label="{esc(label)}"><title>{esc(label)}</title>'
                f'<text x="0" y="10" font-size="9" fill="#666">{esc(label)}</text></svg>')
    origin = min(item.start for item in items)
    span = max(item.end for item in items) - origin
    span = span if span > 0 else 1e-6
    slot = min(MAX_BAR + 1.0, MAX_PLOT_HEIGHT / len(items))
    bar = max(slot - 1.0, slot * 0.7) if slot >= 2 else slot
    plot_height = slot * len(items)
    height = plot_height + AXIS
    colours: Dict[Tuple[str, str], str] = {}
    for item in items:
        colours.setdefault(item.worker, PALETTE[len(colours) % len(PALETTE)])
    overlap = max_overlap([{"start": i.start, "end": i.end} for i in items])
    summary = (f"{title + ': ' if title else ''}{len(items)} handlers, {len(colours)} workers, "
               f"at most {overlap} at once, {_ms(span)}" + (f"; {skipped} unusable entries left out" if skipped else ""))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" height="{_fmt(height)}" '
        f'viewBox="0 0 {width} {_fmt(height)}" role="img" aria-label="{esc(summary)}">',
        f"<title>{esc(summary)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{_fmt(plot_height)}" fill="#f6f8fa"/>',
    ]
    for row, item in enumerate(items):
        x = (item.start - origin) / span * width
        w = max((item.end - item.start) / span * width, 1.0)
        y = row * slot
        tip = (f"client {item.client}: {_ms(item.start - origin)} to {_ms(item.end - origin)}, "
               f"pid {item.worker[0]}, tid {item.worker[1]}")
        parts.append(
            f'<rect class="bar" x="{_fmt(x)}" y="{_fmt(y)}" width="{_fmt(w)}" height="{_fmt(bar)}" '
            f'fill="{colours[item.worker]}"><title>{esc(tip)}</title></rect>'
        )
    axis_y = plot_height + 0.5
    parts.append(f'<line x1="0" y1="{_fmt(axis_y)}" x2="{width}" y2="{_fmt(axis_y)}" stroke="#888" stroke-width="1"/>')
    parts.append(f'<text x="0" y="{_fmt(height - 2)}" font-size="9" fill="#555">0</text>')
    parts.append(f'<text x="{width}" y="{_fmt(height - 2)}" font-size="9" fill="#555" text-anchor="end">'
                 f"{esc(_ms(span))}</text>")
    parts.append("</svg>")
    return "".join(parts)
