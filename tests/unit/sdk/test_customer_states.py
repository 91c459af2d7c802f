"""The cache of customer-only states: bounded, keyed by pseudonym, never holding a raw ID, and
sharing baggage entries that nothing can change in place."""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Iterator

import pytest
from opentelemetry import baggage
from opentelemetry import context as context_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from support.canaries import CANARIES

import otel_impact
from otel_impact import _attributes as attrs
from otel_impact._baggage import context_with_state
from otel_impact._context import customer_state
from otel_impact._state import CUSTOMER_STATES, EMPTY_STATE, CustomerStates, ImpactState, current_state

HASHES = [f"{n:032x}" for n in range(20)]


@pytest.fixture(autouse=True)
def empty_cache() -> Iterator[None]:
    CUSTOMER_STATES.clear()
    yield
    CUSTOMER_STATES.clear()


def test_the_cache_keeps_at_most_max_entries_and_drops_the_oldest() -> None:
    states = CustomerStates(max_entries=4)
    made = [states.get(customer_hash, "pro") for customer_hash in HASHES[:10]]
    assert len(states) == 4
    assert states.cached_keys() == [(customer_hash, "pro") for customer_hash in HASHES[6:10]]
    assert states.get(HASHES[9], "pro") is made[9]  # kept: the same state again
    assert states.get(HASHES[0], "pro") is not made[0]  # dropped: built anew
    assert len(states) == 4


def test_a_cache_of_zero_entries_keeps_nothing() -> None:
    states = CustomerStates(max_entries=0)
    state = states.get(HASHES[0], "pro")
    assert (state.customer_hash, state.tier) == (HASHES[0], "pro")
    assert len(states) == 0
    with pytest.raises(ValueError, match="max_entries"):
        CustomerStates(max_entries=-1)


def test_only_values_of_bounded_size_are_kept() -> None:
    states = CustomerStates(max_entries=8)
    states.get("not-a-pseudonym", "pro")
    states.get(HASHES[0], "t" * (attrs.MAX_TIER_LENGTH + 1))
    assert len(states) == 0
    states.get(HASHES[0], "t" * attrs.MAX_TIER_LENGTH)
    states.get(None, "pro")
    assert len(states) == 2


def test_the_cache_bounds_its_bytes() -> None:
    """Entries of the largest size allowed stay under 2 KiB each, everything they hold included."""
    states = CustomerStates(max_entries=256)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1000):
            state = states.get(f"{n:032x}", f"{n:064d}")
            context_with_state(state, Context())  # fills the per-state baggage entries
            assert state.customer_stamp
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(states) == 256
    assert used < 256 * 2048


def test_a_customer_only_state_comes_from_the_cache() -> None:
    first = EMPTY_STATE.with_customer(HASHES[1], "pro")
    assert EMPTY_STATE.with_customer(HASHES[1], "pro") is first
    assert EMPTY_STATE.with_customer(HASHES[1], "free") is not first
    flagged = EMPTY_STATE.with_flag("a", "on")
    with_flag = flagged.with_customer(HASHES[1], "pro")  # other fields: never from the cache
    assert with_flag is not first
    assert with_flag.flags == (("a", "on"),)
    assert (with_flag.customer_hash, with_flag.tier) == (HASHES[1], "pro")


def test_shared_baggage_entries_are_never_changed_by_later_context_changes() -> None:
    state = EMPTY_STATE.with_customer(HASHES[2], "pro")
    ctx = context_with_state(state, Context())
    changed = baggage.set_baggage("other", "x", ctx)
    changed = baggage.remove_baggage(attrs.BAGGAGE_CUSTOMER_TIER, changed)
    again = context_with_state(state, baggage.set_baggage("caller", "y", Context()))
    assert dict(baggage.get_all(ctx)) == {attrs.BAGGAGE_CUSTOMER_HASH: HASHES[2], attrs.BAGGAGE_CUSTOMER_TIER: "pro"}
    assert dict(state.baggage_entries) == dict(baggage.get_all(ctx))
    assert dict(baggage.get_all(again)) == {**state.baggage_entries, "caller": "y"}
    assert dict(baggage.get_all(changed)) == {attrs.BAGGAGE_CUSTOMER_HASH: HASHES[2], "other": "x"}
    assert state.customer_attributes() == dict(state.customer_stamp)
    assert state.customer_attributes() is not state.customer_attributes()  # a copy the caller may change


def test_the_state_replaces_impact_baggage_a_caller_sent_and_keeps_the_rest() -> None:
    sent = baggage.set_baggage(attrs.BAGGAGE_CUSTOMER_TIER, "enterprise", baggage.set_baggage("caller", "y", Context()))
    ctx = context_with_state(EMPTY_STATE.with_customer(HASHES[3], None), sent)
    assert dict(baggage.get_all(ctx)) == {"caller": "y", attrs.BAGGAGE_CUSTOMER_HASH: HASHES[3]}
    assert current_state(ctx) is EMPTY_STATE.with_customer(HASHES[3], None)
    unchanged_base = context_with_state(EMPTY_STATE, baggage.set_baggage("caller", "y", Context()))
    assert dict(baggage.get_all(unchanged_base)) == {"caller": "y"}


def _reachable(root: object) -> Iterator[object]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type) or type(item).__name__ == "module":
            continue
        seen.add(id(item))
        yield item
        stack.extend(gc.get_referents(item))


def test_no_raw_id_is_kept_in_the_cache_or_the_states(hash_key: str) -> None:
    """After canary IDs went through set_customer and the hook's path, nothing reachable from the
    cache (keys, states, their stamps and baggage entries) holds a canary, in any form."""
    provider = TracerProvider()
    tracer = provider.get_tracer("test")
    for canary in CANARIES:
        with tracer.start_as_current_span("server"):
            otel_impact.set_customer(canary, tier="pro")
            context_with_state(customer_state(canary, "free", EMPTY_STATE))
        assert current_state(context_api.get_current()) is None
    assert len(CUSTOMER_STATES) == 2 * len(CANARIES)
    texts: list[str] = []
    for item in _reachable(CUSTOMER_STATES):
        if isinstance(item, str):
            texts.append(item)
        elif isinstance(item, (bytes, bytearray)):
            texts.append(bytes(item).decode("utf-8", "replace"))
    assert texts, "the walk found the cached strings"
    assert all(attrs.is_pseudonym(state.customer_hash) for state in _states_in(CUSTOMER_STATES))
    for canary in CANARIES:
        for text in texts:
            assert canary not in text
            assert canary.encode("utf-8", "surrogatepass").hex() not in text


def _states_in(states: CustomerStates) -> list[ImpactState]:
    return [states.get(*key) for key in states.cached_keys()]


def test_the_cache_does_not_keep_states_alive_beyond_its_bound() -> None:
    states = CustomerStates(max_entries=2)
    first = states.get(HASHES[4], "pro")
    count = sys.getrefcount(first)
    states.get(HASHES[5], "pro")
    states.get(HASHES[6], "pro")
    assert sys.getrefcount(first) == count - 1  # dropped from the cache
