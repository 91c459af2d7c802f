"""Checking the answers of ``/api/v1/impact`` and ``/api/v1/customers/top`` against a `Truth`.

Events (totals, good, bad, latency thresholds met) and revenue are counted exactly, so they must
equal the truth. Distinct and impacted users are estimates: the truth must lie within the
bounds the document states (``upper`` null means no upper bound: the telemetry is incomplete
and the figures are lower bounds), and the estimate within four of the stated relative
standard errors of the truth (about 1 in 15,000 to miss by chance; for a fixed workload the
sketches are deterministic anyway).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from support.shared_workload import FAILING, THRESHOLDS, WHALES, Truth

SIGMAS = 4


def assert_users(bounds: dict[str, Any], truth: int, relative_error: float, what: str, *, complete: bool) -> None:
    """``truth`` within the stated ``bounds`` and near the estimate (see the module docstring);
    a ``complete`` answer must state an upper bound."""
    upper = bounds["upper"]
    assert upper is not None or not complete, f"{what}: a complete answer has an upper bound"
    assert bounds["lower"] <= truth, f"{what}: the lower bound {bounds['lower']} is above the truth {truth}"
    assert upper is None or truth <= upper, f"{what}: the upper bound {upper} is below the truth {truth}"
    slack = SIGMAS * relative_error * truth + 1  # +1: estimates are rounded to whole users
    assert abs(bounds["estimate"] - truth) <= slack, f"{what}: estimate {bounds['estimate']}, truth {truth}"


def assert_matches_truth(document: dict[str, Any], truth: Truth) -> None:
    """An impact document (grouped by every dimension, as by default) against ``truth``."""
    error = document["accuracy"]["users_relative_error"]
    complete = bool(document["telemetry"]["complete"])
    events, bad = truth.events, sum(truth.bad.values())
    assert document["events"] == {"total": events, "good": events - bad, "bad": bad}, "the whole task's events"
    assert document["revenue_at_risk"] == pytest.approx(sum(truth.revenue.values()), rel=1e-9)
    assert_users(document["users"], len(truth.all_users()), error, "users", complete=complete)
    assert_users(document["impacted_users"], len(truth.all_impacted()), error, "impacted users", complete=complete)
    segments = {(s["segment"]["tier"], s["segment"]["new_checkout"]): s for s in document["segments"]}
    assert set(segments) == set(truth.total), "the segments"
    assert document["segments"][0]["segment"] == {"tier": FAILING[0], "new_checkout": FAILING[1]}  # worst first
    for key, segment in segments.items():
        total, bad = truth.total[key], truth.bad[key]
        assert segment["events"] == {"total": total, "good": total - bad, "bad": bad}, key
        assert segment["revenue_at_risk"] == pytest.approx(truth.revenue[key], rel=1e-9), key
        assert segment["latency_met"] == {format(t, "g"): truth.met[key][t] for t in THRESHOLDS}, key
        users, impacted = len(truth.users[key]), len(truth.impacted[key])
        assert_users(segment["users"], users, error, f"users of {key}", complete=complete)
        assert_users(segment["impacted_users"], impacted, error, f"impacted users of {key}", complete=complete)
        if key != FAILING:
            assert segment["impacted_users"]["estimate"] == 0, key


def assert_events_match(document: dict[str, Any], truth: Truth) -> None:
    """Only the exact part: every segment's events equal the truth's."""
    events = {(s["segment"]["tier"], s["segment"]["new_checkout"]): s["events"] for s in document["segments"]}
    expected = {key: {"total": n, "good": n - truth.bad[key], "bad": truth.bad[key]} for key, n in truth.total.items()}
    assert events == expected


def assert_top_matches(document: dict[str, Any], truth: Truth) -> None:
    """The whales top the impacted customers, their bad events within the stated bounds."""
    whales = dict(truth.bad_by_customer.most_common(WHALES))
    customers = document["customers"][:WHALES]
    assert {c["customer"] for c in customers} == set(whales), "the most impacted customers"
    for customer in customers:
        assert customer["lower"] <= whales[customer["customer"]] <= customer["upper"], customer


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with what may rightly differ between two askers removed: the numbers in the
    telemetry reason (how much of the window the state has seen, measured at the time of asking),
    and the pipeline lag, which each replica measures of its own intake (it is not shared)."""
    stripped = copy.deepcopy(document)
    telemetry = stripped.get("telemetry")
    if telemetry and telemetry.get("reason"):
        telemetry["reason"] = re.sub(r"\d[\dhms.]*", "N", telemetry["reason"])
    for field in PER_REPLICA_TELEMETRY:
        if telemetry:
            telemetry.pop(field, None)
    return stripped


PER_REPLICA_TELEMETRY = ("lag_seconds", "delayed", "behind_seconds", "delay_reason")
"""Telemetry fields each replica answers for itself (pipeline lag: docs/impact.md)."""


def events_total(document: dict[str, Any]) -> int:
    return int(document["events"]["total"])


def differences(first: Any, second: Any, path: str = "") -> list[str]:
    """Where two JSON documents differ, as ``path: first != second`` lines."""
    if isinstance(first, dict) and isinstance(second, dict):
        found = []
        for key in sorted(set(first) | set(second), key=str):
            found += differences(first.get(key), second.get(key), f"{path}.{key}")
        return found
    if isinstance(first, list) and isinstance(second, list) and len(first) == len(second):
        pairs = enumerate(zip(first, second, strict=True))
        return [line for i, (a, b) in pairs for line in differences(a, b, f"{path}[{i}]")]
    return [] if first == second else [f"{path or '.'}: {first!r} != {second!r}"]
