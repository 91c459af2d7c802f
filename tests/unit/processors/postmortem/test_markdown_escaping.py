"""Telemetry text in the Markdown postmortem is shown, never rendered: no HTML, links or broken tables."""

from __future__ import annotations

from support.impact_store import MINUTE_NS, InMemoryImpactStore

from otel_impact.processors.api.documents import postmortem_document
from otel_impact.processors.postmortem.markdown import render_markdown, text
from otel_impact.processors.postmortem.report import build_postmortem
from otel_impact.processors.slo.config import SloConfig

T0 = 1_800_000_000 * 10**9 // MINUTE_NS * MINUTE_NS
HOSTILE = "<img src=x onerror=alert(1)> [click](https://evil.example) ![i](https://evil.example/p.png) a|b"


def test_hostile_segment_values_stay_text_in_every_table() -> None:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    store.set_state_start(0)
    store.traffic("checkout", T0, 5, good=8, bad=2, segment={"tier": HOSTILE})
    end = T0 + 5 * MINUTE_NS
    slo = SloConfig(name="checkout-availability", task="checkout", objective=99, by=("tier",))
    markdown = render_markdown(
        postmortem_document(build_postmortem(store, [slo], [], "checkout", T0, end, mitigated_ns=None, now_ns=end))
    )
    assert HOSTILE not in markdown
    assert "<img" not in markdown and "](https://" not in markdown
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in markdown
    header = "| SLO | segment | failed in the incident | budget of the period consumed |"
    (row,) = [line for line in markdown.splitlines() if "tier=" in line]
    assert row.count("|") - row.count("\\|") == header.count("|")  # the value's bar is escaped, columns kept


def test_hostile_explain_values_stay_text() -> None:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    store.set_state_start(0)
    store.traffic("checkout", T0, 5, good=8, bad=2, segment={"tier": "pro"})
    end = T0 + 5 * MINUTE_NS
    doc = postmortem_document(build_postmortem(store, [], [], "checkout", T0, end, mitigated_ns=None, now_ns=end))
    finding = {
        "attribute": "app.note",
        "value": HOSTILE,
        "and": {"attribute": "x|y", "value": "[a](b)"},
        "failing_share": 0.9,
        "passing_share": 0.1,
        "difference": {"estimate": 0.8, "low": 0.7, "high": 0.9},
        "failing_users": 3,
    }
    explanation = {"failing_events": 2, "passing_events": 8, "candidates_tested": 4, "scope": "this processor"}
    markdown = render_markdown({**doc, "explanation": {**explanation, "findings": [finding]}})
    assert HOSTILE not in markdown and "<img" not in markdown and "](https://" not in markdown
    (row,) = [line for line in markdown.splitlines() if "app.note" in line]
    assert row.count("|") - row.count("\\|") == 6  # five columns, the values' bars escaped
    assert "Nothing stood out" in render_markdown({**doc, "explanation": {**explanation, "findings": []}})


def test_text_escapes_html_markdown_and_line_breaks() -> None:
    assert text("<b>") == "&lt;b&gt;"
    assert text("[a](b)") == "\\[a\\]\\(b\\)"
    assert text("x|y\nz") == "x\\|y z"
    assert text("checkout") == "checkout"
