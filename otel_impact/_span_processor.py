"""`ImpactSpanProcessor`: stamps the impact state on every span as it starts."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry import baggage
from opentelemetry.context import Context, get_current
from opentelemetry.sdk.trace import Span, SpanProcessor

from ._baggage import BAGGAGE_CONTEXT_KEY, state_from_baggage
from ._log import log_once
from ._runtime import get_runtime
from ._span_write import write_starting
from ._state import STATE_KEY, ImpactState


class ImpactSpanProcessor(SpanProcessor):
    """Stamps ``impact.customer.hash``, ``impact.customer.tier``, ``impact.feature_flags``,
    ``impact.task.name``, ``impact.task.root`` and ``impact.synthetic`` on each span, from the
    span's parent context.

    Contract (as for every SDK span processor):

    * ``on_start`` runs synchronously on the thread that starts the span, before the span is
      returned to its creator. It does no I/O, takes no lock, never blocks and never raises:
      an unexpected error is counted in `failures` and logged once.
    * It stamps only recording spans (the SDK calls it only for those; it checks anyway).
    * The attributes come from the `ImpactState` that `set_customer`, `set_feature_flag` and
      `user_task` put in the context. Their values were validated and precomputed when the
      state was made, so each span costs a dictionary lookup and one update. While the span is
      being started no other thread can see it, so the update goes straight into the SDK's
      attribute dictionary (falling back to ``Span.set_attributes`` whenever the SDK's layout,
      attribute limits or value-length limit would make that unsafe).
    * Incoming ``impact.*`` baggage is used only when ``trust_incoming_baggage`` is set; by
      default it is ignored, so a caller cannot choose the tier its requests are counted in.
    * ``on_end``, ``shutdown`` and ``force_flush`` do nothing: there is nothing to flush.

    ``trust_incoming_baggage`` defaults to ``OTEL_IMPACT_TRUST_INCOMING_BAGGAGE``.
    """

    def __init__(self, *, trust_incoming_baggage: bool | None = None) -> None:
        if trust_incoming_baggage is None:
            trust_incoming_baggage = get_runtime().settings.trust_incoming_baggage
        self._trust_baggage = trust_incoming_baggage
        self._baggage_memo: tuple[object, ImpactState | None] = (None, None)
        self.failures = 0
        """Spans that could not be stamped because of an unexpected error."""

    @property
    def trust_incoming_baggage(self) -> bool:
        return self._trust_baggage

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            ctx = parent_context if parent_context is not None else get_current()
            state: ImpactState | None = ctx.get(STATE_KEY)  # type: ignore[assignment]
            if state is None:
                if not self._trust_baggage:
                    return
                state = self._state_from_baggage(ctx)
                if state is None:
                    return
            stamped = state.span_attributes
            if stamped and span.is_recording():
                write_starting(span, stamped)
        except Exception:
            self.failures += 1
            log_once(
                "ImpactSpanProcessor.on_start",
                logging.ERROR,
                "otel-impact: could not stamp a span; it is exported without impact attributes.",
                exc_info=True,
            )

    def _state_from_baggage(self, ctx: Context) -> ImpactState | None:
        if BAGGAGE_CONTEXT_KEY is None:  # pragma: no cover
            return state_from_baggage(baggage.get_all(ctx))
        entries: Mapping[str, object] | None = ctx.get(BAGGAGE_CONTEXT_KEY)  # type: ignore[assignment]
        if not entries:
            return None
        memo_entries, memo_state = self._baggage_memo  # one atomic read; a race costs a re-parse
        if memo_entries is entries:
            return memo_state
        state = state_from_baggage(entries)
        self._baggage_memo = (entries, state)
        return state
