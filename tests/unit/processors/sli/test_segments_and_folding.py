"""Segment keys for every dimension layout, and folding a batch's groups at once (as the hot path does)."""

from __future__ import annotations

import bisect
import math
import random
from typing import Any

import pytest
from support.otlp_traces import request, span

from otel_impact.processors.sli import aggregates
from otel_impact.processors.sli.aggregates import BatchArrays, PendingGroup, Series, histogram_bounds
from otel_impact.processors.sli.buckets import Layout
from otel_impact.processors.sli.config import DimensionConfig, TierConfig
from otel_impact.processors.sli.segments import SegmentReader
from otel_impact.processors.sli.sketches import SketchParams
from otel_impact.proto import view

MINUTE = 60 * 10**9
T0 = 1_800_000_000 * 10**9 // MINUTE * MINUTE


def first_span(attributes: dict[str, Any], resource: dict[str, Any], events: Any = ()) -> tuple[Any, Any]:
    data = request([span(end_ns=T0, attributes=attributes, events=events)], resource)
    resource_spans = view.parse_traces(data).resource_spans[0]
    return resource_spans.scope_spans[0].spans[0], resource_spans.resource.attributes


@pytest.mark.parametrize(
    ("dimensions", "expected"),
    [
        ([], ()),
        ([DimensionConfig("tier", attribute="tier")], ("pro",)),
        ([DimensionConfig("v", flag="new")], ("on",)),
        (
            [
                DimensionConfig("tier", attribute="tier"),
                DimensionConfig("region", attribute="cloud.region"),
                DimensionConfig("empty", attribute="empty"),
                DimensionConfig("missing", attribute="missing"),
                DimensionConfig("v", flag="new"),
                DimensionConfig("code", attribute="code"),
                DimensionConfig("w", flag="absent"),
            ],
            ("pro", "eu", "unknown", "unknown", "on", "503", "unknown"),  # an empty string is a value: unknown
        ),
    ],
    ids=["none", "one-attribute", "one-flag", "many"],
)
def test_segment_keys_decode_to_the_label_values(dimensions: list[DimensionConfig], expected: tuple[str, ...]) -> None:
    reader = SegmentReader(dimensions)
    attributes = {"tier": "pro", "empty": "", "code": 503, "impact.feature_flags": ["new=on", "other=x"]}
    resource = {"cloud.region": "eu", "empty": "from-resource", "tier": "not-this"}
    span_view, resource_attributes = first_span(attributes, resource)
    key = reader.key(span_view.attributes, span_view, reader.resource_values(resource_attributes), b"task", 7)
    assert key[:2] == (b"task", 7)
    assert reader.decode(key[2:]) == expected


def test_flag_variants_come_from_openfeature_events_when_the_attribute_lacks_them() -> None:
    reader = SegmentReader([DimensionConfig("tier", attribute="tier"), DimensionConfig("v", flag="new")])
    events = [("feature_flag.evaluation", {"feature_flag.key": "new", "feature_flag.result.variant": "b"})]
    span_view, resource_attributes = first_span({"tier": "pro", "impact.feature_flags": ["old=x"]}, {}, events)
    key = reader.key(span_view.attributes, span_view, reader.resource_values(resource_attributes), b"t", 0)
    assert reader.decode(key[2:]) == ("pro", "b")


def make_series(thresholds_s: tuple[float, ...]) -> Series:
    tiers = (TierConfig(60, 6 * 3600), TierConfig(3600, 35 * 86400))
    layout = Layout.from_tiers(tiers)
    return Series(
        1,
        "task",
        ("x",),
        thresholds_s=thresholds_s,
        histogram_bounds_s=histogram_bounds(thresholds_s),
        count_layout=layout,
        sketch_layout=layout,
        sketch_params=SketchParams(),
        created_ns=T0,
    )


def reference(durations_ns: list[int], bounds_s: tuple[float, ...], thresholds_s: tuple[float, ...]) -> dict[str, Any]:
    """What one series must hold after its events, computed one event at a time in plain Python."""
    expo: dict[int, int] = {}
    zeros = 0
    for duration in durations_ns:
        if duration == 0:
            zeros += 1
        else:
            index = math.ceil(math.log2(duration / 1e9) * 8) - 1
            expo[index] = expo.get(index, 0) + 1
    hist = [0] * (len(bounds_s) + 1)
    for duration in durations_ns:
        hist[bisect.bisect_left([round(b * 1e9) for b in bounds_s], duration)] += 1
    return {
        "met": [sum(d <= round(t * 1e9) for d in durations_ns) for t in thresholds_s],
        "hist": hist,
        "sum_s": sum(durations_ns) / 1e9,
        "zeros": zeros,
        "expo": expo,
    }


@pytest.mark.parametrize("table_limit", [aggregates.EXPO_TABLE_LIMIT, 0], ids=["one-table", "per-group"])
def test_folding_a_batch_at_once_gives_each_series_its_own_events(
    table_limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregates, "EXPO_TABLE_LIMIT", table_limit)
    rng = random.Random(7)
    layouts = [(0.3, 1.0), (0.3, 1.0), (0.05,), (), (0.3, 1.0)]
    series = [make_series(thresholds) for thresholds in layouts]
    durations = [
        [rng.choice([0, 1, 999, 10**6, 3 * 10**8, 10**9, 10**9 + 1, 7 * 10**12]) for _ in range(rng.randrange(1, 40))]
        for _ in series
    ]
    durations[3] = [0, 0, 0]  # only zero durations
    durations[4] = [5 * 10**7]  # a single event
    groups = [
        PendingGroup(
            None,
            s,
            T0 // MINUTE,
            bad=i,
            revenue=2.5 * i,
            durations_ns=list(d),
            no_customer=i + 1,
            bad_no_customer=i // 2,
        )
        for i, (s, d) in enumerate(zip(series, durations, strict=True))
    ]
    batch = BatchArrays.of(groups)
    for index, (group, s) in enumerate(zip(groups, series, strict=True)):
        s.fold(group, batch, index)
    for index, (s, d, thresholds) in enumerate(zip(series, durations, layouts, strict=True)):
        want = reference(d, histogram_bounds(thresholds), thresholds)
        assert s.cumulative.tolist() == [len(d), index, 2.5 * index, *want["met"], index + 1, index // 2]
        assert s.counts.sum(T0, T0 + MINUTE).tolist() == s.cumulative.tolist()
        assert s.hist_counts.tolist() == want["hist"]
        assert s.hist_sum_s == pytest.approx(want["sum_s"], rel=1e-12)
        assert s.expo.zero_count == want["zeros"]
        got = {s.expo.offset + k: int(c) for k, c in enumerate(s.expo.counts.tolist())}
        assert {k: c for k, c in got.items() if c} == want["expo"]
        if want["expo"]:  # the histogram spans exactly the buckets used, as OTLP exports it
            assert (s.expo.offset, s.expo.offset + s.expo.counts.size - 1) == (min(want["expo"]), max(want["expo"]))
        cell = s.sketches.cell_for(T0)
        assert cell is not None and cell.latency is not None
        assert cell.latency.n == len(d)
        assert (cell.latency.get_min_value(), cell.latency.get_max_value()) == (min(d) / 1e6, max(d) / 1e6)


def test_later_batches_grow_the_exponential_histogram_both_ways() -> None:
    s = make_series((1.0,))
    for durations in ([10**9], [10**6, 10**9], [10**12, 0]):
        group = PendingGroup(None, s, T0 // MINUTE, durations_ns=durations)
        s.fold(group, BatchArrays.of([group]), 0)
    want = reference([10**9, 10**6, 10**9, 10**12, 0], histogram_bounds((1.0,)), (1.0,))
    got = {s.expo.offset + k: int(c) for k, c in enumerate(s.expo.counts.tolist()) if c}
    assert got == want["expo"] and s.expo.zero_count == 1
