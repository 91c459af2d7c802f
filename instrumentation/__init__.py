"""otel-impact's hooks into OpenTelemetry instrumentation (imported as ``otel_impact.instrumentation``).

Zero-code: under ``opentelemetry-instrument``, installing otel-impact and setting ``OTEL_IMPACT_*``
variables is enough (see `otel_impact.instrumentation.auto`). The pieces are public for setups
made in code:

* `ImpactInstrumentor`: ``otel_impact.configure()`` plus the framework hooks, as an instrumentor.
* Framework hooks: ``otel_impact.instrumentation.flask.request_hook``, ``.wsgi.request_hook``,
  ``.asgi.server_request_hook``, ``.django.request_hook`` / ``response_hook``,
  ``.grpc.ImpactServerInterceptor`` / ``ImpactAioServerInterceptor``.
* ``otel_impact.instrumentation.openfeature.ImpactFeatureFlagHook`` (the ``openfeature`` extra).
* `IncomingRequest`: what a customer callable (``OTEL_IMPACT_CUSTOMER_CALLABLE``) receives.
* `otel_impact.instrumentation.tasks`: user tasks named from server spans by ``OTEL_IMPACT_TASKS``
  (stamped by ``.flask.response_hook``, ``.wsgi.response_hook``, ``.asgi.client_response_hook``,
  Django's ``response_hook`` and the gRPC interceptors).
"""

from .auto import AutoInstrumentationStatus, ImpactInstrumentor, status
from .extract import Attribution, RequestExtractor
from .incoming import IncomingRequest
from .settings import ExtractionSettings

__all__ = [
    "Attribution",
    "AutoInstrumentationStatus",
    "ExtractionSettings",
    "ImpactInstrumentor",
    "IncomingRequest",
    "RequestExtractor",
    "status",
]
