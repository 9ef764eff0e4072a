"""Concurrency timelines: SVG shape follows the server model."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import report_samples as rs

from harness.report.timeline import PALETTE, max_overlap, timeline_svg, workers

NS = "{http://www.w3.org/2000/svg}"


def _bars(svg):
    root = ET.fromstring(svg)  # well-formed XML
    return [
        (float(r.get("x")), float(r.get("y")), float(r.get("width")), r.get("fill"))
        for r in root.iter(NS + "rect") if r.get("class") == "bar"
    ]


def test_serial_server_draws_a_one_colour_staircase():
    timeline = rs._serial(5)
    bars = _bars(timeline_svg(timeline))
    assert len(bars) == 5
    assert len({fill for *_, fill in bars}) == 1
    for (x1, y1, w1, _), (x2, y2, _, _) in zip(bars, bars[1:]):
        assert x2 >= x1 + w1 - 0.01  # the next handler starts after the previous one ended
        assert y2 > y1
    assert max_overlap(timeline) == 1 and workers(timeline) == 1


def test_threads_and_forks_overlap_in_distinct_colours():
    for timeline in (rs._threads(6), rs._forks(6)):
        bars = _bars(timeline_svg(timeline))
        assert len(bars) == 6
        assert len({fill for *_, fill in bars}) == 6
        assert all(fill in PALETTE for *_, fill in bars)
        starts_before_first_end = [x for x, _, _, _ in bars if x < bars[0][0] + bars[0][2]]
        assert len(starts_before_first_end) == 6
        assert max_overlap(timeline) == 6


def test_touching_intervals_do_not_overlap():
    timeline = [{"client": 0, "start": 0.0, "end": 1.0}, {"client": 1, "start": 1.0, "end": 2.0}]
    assert max_overlap(timeline) == 1


def test_bad_entries_are_left_out_and_counted():
    timeline = [{"client": 0, "start": 0.0, "end": 0.1}, {"client": 1, "start": "x", "end": 1},
                {"client": 2, "start": 0.5, "end": 0.1}, "junk", {"client": 3, "start": float("nan"), "end": 1},
                {"client": 4, "start": True, "end": 1}]
    svg = timeline_svg(timeline)
    assert len(_bars(svg)) == 1
    assert "5 unusable entries left out" in svg
    empty = timeline_svg([])
    ET.fromstring(empty)
    assert "no usable timeline entries" in empty


def test_many_clients_stay_small():
    svg = timeline_svg(rs._threads(300))
    root = ET.fromstring(svg)
    assert float(root.get("height")) <= 100
    assert len(_bars(svg)) == 300


def test_strings_are_escaped():
    svg = timeline_svg([{"client": "<b>&", "start": 0, "end": 1, "pid": '"x', "tid": "y"}], title="<t>")
    ET.fromstring(svg)
    assert "<b>" not in svg and "&lt;b&gt;&amp;" in svg and "&lt;t&gt;" in svg
