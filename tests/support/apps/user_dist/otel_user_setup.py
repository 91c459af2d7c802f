"""A user's own OpenTelemetry distro and configurator, as a team would ship them in a package.

The distribution metadata beside this module (``otel_user_setup-1.0.dist-info``) registers them
under ``opentelemetry_distro`` and ``opentelemetry_configurator``; putting this folder on
``PYTHONPATH`` makes ``opentelemetry-instrument`` find them, exactly as if installed.

* `UserConfigurator` sets up the SDK itself: its own resource and an OTLP/HTTP exporter to
  ``USER_OTLP_URL``.
* `UserDistro` passes its own ``request_hook`` to the Flask instrumentation. The hook writes the
  raw customer ID into ``enduser.id``, as some teams do; otel-impact's PII guard must rewrite it.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


class UserConfigurator:
    def configure(self, **kwargs: Any) -> None:
        provider = TracerProvider(resource=Resource.create({"service.name": "user-configured", "team": "checkout"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=os.environ["USER_OTLP_URL"]), schedule_delay_millis=50)
        )
        trace.set_tracer_provider(provider)


def user_request_hook(span: Any, environ: dict[str, Any]) -> None:
    span.set_attribute("user.hook", "ran")
    customer = environ.get("HTTP_X_CUSTOMER_ID")
    if customer:
        span.set_attribute("enduser.id", customer)


class UserDistro(BaseDistro):  # type: ignore[misc]
    def _configure(self, **kwargs: Any) -> None:
        pass

    def load_instrumentor(self, entry_point: Any, **kwargs: Any) -> None:
        if entry_point.name == "flask":
            kwargs["request_hook"] = user_request_hook
        super().load_instrumentor(entry_point, **kwargs)
