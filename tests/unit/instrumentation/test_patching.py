"""The instrumentations still have the shape our patches rely on.

`hook_instrument_arguments` composes our hooks into the keyword arguments of an instrumentor's
public ``instrument(**kwargs)``; `hook_middleware_attribute` composes a hook into a middleware's
public hook attribute after its ``__init__``. When an upgrade of an instrumentation changes
that shape, the hooks silently stop running; these tests fail first, naming what changed.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware as AsgiMiddleware
from opentelemetry.instrumentation.django import DjangoInstrumentor
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware as WsgiMiddleware

from otel_impact.instrumentation import asgi as impact_asgi
from otel_impact.instrumentation import django as impact_django
from otel_impact.instrumentation import flask as impact_flask
from otel_impact.instrumentation import wsgi as impact_wsgi
from otel_impact.instrumentation._patching import hook_instrument_arguments, patch, undo_all


@pytest.fixture(autouse=True)
def undo_patches() -> Iterator[None]:
    yield
    undo_all()


@pytest.mark.parametrize(
    ("instrumentor", "hooks"),
    [(FlaskInstrumentor, ("request_hook",)), (DjangoInstrumentor, ("request_hook", "response_hook"))],
)
def test_instrumentors_take_their_hooks_as_instrument_arguments(
    instrumentor: type[BaseInstrumentor], hooks: tuple[str, ...]
) -> None:
    name = instrumentor.__name__
    parameters = inspect.signature(instrumentor.instrument).parameters.values()
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters), (
        f"{name}.instrument() no longer takes keyword arguments: our hooks cannot be passed to it"
    )
    source = inspect.getsource(instrumentor._instrument)
    for hook in hooks:
        assert f'"{hook}"' in source, f"{name} no longer reads {hook!r} from instrument()'s arguments"


@pytest.mark.parametrize(
    ("middleware", "attribute"), [(AsgiMiddleware, "server_request_hook"), (WsgiMiddleware, "request_hook")]
)
def test_middlewares_keep_their_hook_in_a_public_attribute(middleware: type, attribute: str) -> None:
    calls: list[tuple[Any, ...]] = []

    def app(*args: Any) -> None:
        pass

    def theirs(*args: Any) -> None:
        calls.append(args)

    made = middleware(app, **{attribute: theirs})
    kept = getattr(made, attribute, None)
    assert callable(kept), f"{middleware.__module__}.OpenTelemetryMiddleware no longer keeps {attribute!r}"
    kept("span", {"type": "http"})  # the middleware may wrap it (ASGI makes it failsafe); it must call it
    assert calls == [("span", {"type": "http"})], (
        f"{middleware.__module__}.OpenTelemetryMiddleware's {attribute!r} attribute no longer calls the hook given"
    )


def test_arming_passes_our_hooks_through_instrument_and_undo_restores_the_instrumentor() -> None:
    seen: dict[str, Any] = {}

    class Recorder(BaseInstrumentor):
        def instrumentation_dependencies(self) -> tuple[str, ...]:
            return ()

        def _instrument(self, **kwargs: Any) -> None:
            seen.update(kwargs)

        def _uninstrument(self, **kwargs: Any) -> None:
            pass

    def ours(*args: Any) -> None:
        pass

    def theirs(*args: Any) -> None:
        pass

    assert "instrument" not in vars(Recorder)
    assert hook_instrument_arguments(Recorder, request_hook=ours)
    assert not hook_instrument_arguments(Recorder, request_hook=ours)  # once
    Recorder().instrument(request_hook=theirs)
    try:
        assert seen["request_hook"].__wrapped__ is theirs
    finally:
        Recorder().uninstrument()
    undo_all()
    assert "instrument" not in vars(Recorder) and Recorder.instrument is BaseInstrumentor.instrument


def test_each_framework_arms_and_disarms() -> None:
    originals = (FlaskInstrumentor.instrument, DjangoInstrumentor.instrument, AsgiMiddleware.__init__)
    assert impact_flask.arm() and impact_django.arm() and impact_asgi.arm() and impact_wsgi.arm()
    assert FlaskInstrumentor.instrument is not originals[0] and DjangoInstrumentor.instrument is not originals[1]
    undo_all()
    assert (FlaskInstrumentor.instrument, DjangoInstrumentor.instrument, AsgiMiddleware.__init__) == originals
    assert "instrument" not in vars(FlaskInstrumentor) and "instrument" not in vars(DjangoInstrumentor)


def test_an_own_attribute_is_put_back_on_undo() -> None:
    class Owner:
        def method(self) -> str:
            return "original"

    original = Owner.method
    assert patch(Owner, "method", lambda method: lambda self: "patched")
    assert Owner().method() == "patched"
    undo_all()
    assert Owner.method is original
