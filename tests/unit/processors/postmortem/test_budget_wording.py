"""The postmortem's budgets: what period they are of, and 'exhausted' instead of 2000%."""

from __future__ import annotations

from support.impact_store import MINUTE_NS, InMemoryImpactStore

from otel_impact.processors.api.documents import postmortem_document
from otel_impact.processors.postmortem.markdown import render_markdown
from otel_impact.processors.postmortem.report import build_postmortem
from otel_impact.processors.slo.config import SloConfig

T0 = 1_800_000_000 * 10**9 // MINUTE_NS * MINUTE_NS
SLO = SloConfig(name="checkout-availability", task="checkout", objective=99, by=("tier",))


def _postmortem(state_start_ns: int) -> str:
    store = InMemoryImpactStore()
    store.declare("checkout", dimensions=("tier",))
    store.set_state_start(state_start_ns)
    store.traffic("checkout", T0, 12, good=80, bad=20, segment={"tier": "pro"})
    end = T0 + 12 * MINUTE_NS
    postmortem = build_postmortem(store, [SLO], [], "checkout", T0, end, mitigated_ns=None, now_ns=end)
    document = postmortem_document(postmortem)
    (budget,) = document["budgets"]
    assert budget["observed_seconds"] == 12 * 60 if state_start_ns == T0 else budget["observed_seconds"] > 12 * 60
    (segment,) = budget["segments"]
    assert segment["budget_consumed"] == 20.0  # the numeric field keeps its meaning
    assert segment["budget_text"] == "exhausted: 20× the budget spent"
    return render_markdown(document)


def test_a_young_state_says_its_budgets_are_of_what_it_observed() -> None:
    text = _postmortem(T0)
    assert "| exhausted: 20× the budget spent (of the 12 minutes observed) |" in text
    assert "budgets are of the 12 minutes observed only" in text
    assert "2000" not in text
    assert "- **Telemetry:** complete for the window" in text  # the incident itself was observed whole


def test_a_state_older_than_the_period_says_the_period() -> None:
    text = _postmortem(0)
    assert "| exhausted: 20× the budget spent (of the 30d period) |" in text
    assert "observed only" not in text and "- **Telemetry:** complete for the window" in text
