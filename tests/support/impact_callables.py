"""Customer and tier callables for extraction tests (``OTEL_IMPACT_*_CALLABLE=support.impact_callables:...``)."""

from __future__ import annotations

from otel_impact.instrumentation import IncomingRequest

TIERS = {"acct-1": "enterprise", "acct-2": "free"}


def account_header(request: IncomingRequest) -> str | None:
    """Application logic: the account from a header only the app knows about."""
    return request.header("X-Account")


def raises(request: IncomingRequest) -> str:
    raise KeyError("canary.alice+leak@example.com")  # a message that must never be logged


def returns_a_dict(request: IncomingRequest) -> object:
    return {"id": "acct-1"}


def tier_of(customer_id: object) -> str | None:
    return TIERS.get(str(customer_id))


def tier_raises(customer_id: object) -> str:
    raise RuntimeError(f"no tier for {customer_id}")


NOT_CALLABLE = 42
