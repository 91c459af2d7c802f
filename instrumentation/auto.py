"""Zero-code setup under ``opentelemetry-instrument``.

How it plugs in, without taking the single distro or configurator slot:

1. ``opentelemetry-instrument`` loads the distro and the configurator (``opentelemetry-distro``,
   or your own), which set up the SDK tracer provider and its exporters.
2. Our ``opentelemetry_pre_instrument`` entry point (`pre_instrument`) runs next, before any
   instrumentor. Unless ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names ``otel_impact`` (or is
   ``*``), it calls `enable`: ``otel_impact.configure()`` on that provider (span processor, PII
   guard around its exporters, key id on the resource, untrusted-baggage filter), then, when a
   request source or ``OTEL_IMPACT_TASKS`` is configured, arms the framework hooks (response
   hooks too when tasks are named; see `otel_impact.instrumentation.tasks`): the Flask and Django instrumentors
   get our request hooks composed into their hook arguments, every WSGI/ASGI
   ``OpenTelemetryMiddleware`` gets its request hook composed, and ``grpc.server`` and
   ``grpc.aio.server`` get our interceptor. It registers the OpenFeature hook when the OpenFeature SDK is installed.
3. The instrumentors run; among them our ``opentelemetry_instrumentor`` entry point
   ``otel_impact`` (`ImpactInstrumentor`), which finds everything enabled. It is there so that
   ``otel_impact`` is an instrumentation name like the others, and for use in code.

Without an SDK tracer provider (no distro, no configurator) one line says what to install and
the application is left alone. With requests to read but no framework instrumentation that the
hooks ride on installed, one warning names the packages (`warn_if_nothing_hooked`). Nothing
here raises into the application's start-up.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.sdk.trace import TracerProvider

from otel_impact._log import logger
from otel_impact._setup import configure

from . import _patching, _task_stamp
from ._attribution import install_extractor
from .extract import RequestExtractor
from .settings import ENV_TASKS, ExtractionSettings
from .tasks import TaskRules

INSTRUMENTATION_NAME: Final = "otel_impact"
"""The name that ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` takes to switch otel-impact off."""

ENV_DISABLED_INSTRUMENTATIONS: Final = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
ENV_SDK_DISABLED: Final = "OTEL_SDK_DISABLED"

NO_SDK_MESSAGE: Final = (
    "otel-impact: no OpenTelemetry SDK tracer provider is set up, so otel-impact leaves this application "
    "alone. Fix: pip install opentelemetry-distro opentelemetry-exporter-otlp (or set up the SDK in your own "
    "configurator); when you set up the SDK in code, call otel_impact.configure() after it."
)

# The instrumentors whose requests our hooks see (entry point names of opentelemetry_instrumentor),
# with the package that provides each.
HOOKED_INSTRUMENTORS: Final = {
    "flask": "opentelemetry-instrumentation-flask",
    "django": "opentelemetry-instrumentation-django",
    "fastapi": "opentelemetry-instrumentation-fastapi",
    "starlette": "opentelemetry-instrumentation-starlette",
    "grpc_server": "opentelemetry-instrumentation-grpc",
    "grpc_aio_server": "opentelemetry-instrumentation-grpc",
}

# (name reported in the status, the instrumentor's name in OTEL_PYTHON_DISABLED_INSTRUMENTATIONS or None,
#  the adapter module under otel_impact.instrumentation, its arming function)
_FRAMEWORKS: Final = (
    ("flask", "flask", "flask", "arm"),
    ("django", "django", "django", "arm"),
    ("asgi", None, "asgi", "arm"),
    ("wsgi", None, "wsgi", "arm"),
    ("grpc_server", "grpc_server", "grpc", "arm"),
    ("grpc_aio_server", "grpc_aio_server", "grpc", "arm_aio"),
)


@dataclass(frozen=True)
class AutoInstrumentationStatus:
    """What the zero-code setup did in this process.

    ``reason`` is one of ``not started``, ``enabled``, ``disabled`` (by
    ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``), ``no sdk`` (no SDK tracer provider) or
    ``sdk disabled`` (``OTEL_SDK_DISABLED``). ``hooks`` lists the frameworks whose hooks are armed.
    """

    enabled: bool
    reason: str
    hooks: tuple[str, ...] = ()
    openfeature_hook: bool = False


_lock = threading.RLock()
_status = AutoInstrumentationStatus(False, "not started")


def status() -> AutoInstrumentationStatus:
    """What the zero-code setup did in this process."""
    return _status


def disabled_by_env(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` names ``otel_impact`` or is ``*``."""
    names = _disabled_names(os.environ if environ is None else environ)
    return INSTRUMENTATION_NAME in names or "*" in names


def _disabled_names(environ: Mapping[str, str]) -> set[str]:
    return {name.strip() for name in environ.get(ENV_DISABLED_INSTRUMENTATIONS, "").split(",") if name.strip()}


def pre_instrument() -> None:
    """The ``opentelemetry_pre_instrument`` entry point. Never raises."""
    global _status
    try:
        if disabled_by_env():
            with _lock:
                _status = AutoInstrumentationStatus(False, "disabled")
            logger.debug("otel-impact: disabled by %s.", ENV_DISABLED_INSTRUMENTATIONS)
            return
        enable()
    except Exception as error:  # the application starts whatever happens here
        logger.error(
            "otel-impact: auto-instrumentation failed (%s); the application runs without it.", type(error).__name__
        )


def enable(tracer_provider: Any = None) -> AutoInstrumentationStatus:
    """Enable otel-impact on ``tracer_provider`` (default: the global one) and arm the hooks.

    Idempotent: a second call returns the status of the first. Logs configuration problems once.
    """
    global _status
    with _lock:
        if _status.enabled:
            return _status
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            if os.environ.get(ENV_SDK_DISABLED, "").strip().lower() == "true":
                _status = AutoInstrumentationStatus(False, "sdk disabled")
                logger.debug("otel-impact: %s is set; otel-impact stays off.", ENV_SDK_DISABLED)
            elif _status.reason != "no sdk":
                _status = AutoInstrumentationStatus(False, "no sdk")
                logger.warning(NO_SDK_MESSAGE)
            return _status
        configure(provider)
        settings, problems = ExtractionSettings.from_env()
        extractor, more = RequestExtractor.from_settings(settings)
        for problem in (*problems, *more):
            logger.error("otel-impact configuration: %s", problem)
        install_extractor(extractor)
        rules, task_problems = TaskRules.from_env()
        for problem in task_problems:
            logger.warning("otel-impact configuration: %s", problem)
        _task_stamp.install_rules(rules)
        if rules.active:
            provider.add_span_processor(_task_stamp.TaskProbeProcessor())
        disabled = _disabled_names(os.environ)
        wanted = extractor.active or rules.active
        hooks = _arm_frameworks(disabled, tasks=rules.active) if wanted else ()
        if wanted:
            warn_if_nothing_hooked(settings, rules, disabled)
        openfeature_hook = _register_openfeature() if settings.openfeature_hook else False
        _status = AutoInstrumentationStatus(True, "enabled", hooks, openfeature_hook)
        return _status


def disable() -> None:
    """Disarm the framework hooks and the OpenFeature hook.

    Instrumentations already made keep our hook, which does nothing from now on. The span
    processor and the PII guard stay on the provider (the SDK cannot remove a processor).
    """
    global _status
    with _lock:
        _patching.undo_all()
        install_extractor(RequestExtractor(ExtractionSettings()))
        _task_stamp.install_rules(None)
        if _status.openfeature_hook:
            from .openfeature import unregister_global_hook  # noqa: PLC0415 - the openfeature extra

            unregister_global_hook()
        _status = AutoInstrumentationStatus(False, "disabled")


def _arm_frameworks(disabled: Collection[str], *, tasks: bool = False) -> tuple[str, ...]:
    armed: list[str] = []
    for name, instrumentor, module_name, function in _FRAMEWORKS:
        if instrumentor is not None and (instrumentor in disabled or "*" in disabled):
            continue
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
            arm = getattr(module, function)
            if tasks and function == "arm" and module_name != "grpc":
                arm(tasks=True)
            else:
                arm()
            armed.append(name)
        except ImportError:
            logger.debug("otel-impact: %s is not installed; its hook is not armed.", name)
        except Exception as error:
            logger.warning(
                "otel-impact: could not arm the %s hook (%s); its requests are not attributed.",
                name,
                type(error).__name__,
            )
    return tuple(armed)


def installed_instrumentors() -> set[str]:
    """Names of the ``opentelemetry_instrumentor`` entry points installed in this environment."""
    from opentelemetry.util._importlib_metadata import entry_points  # noqa: PLC0415 - start-up only

    return {entry_point.name for entry_point in entry_points(group="opentelemetry_instrumentor")}


def warn_if_nothing_hooked(
    settings: ExtractionSettings,
    rules: TaskRules,
    disabled: Collection[str],
    *,
    installed: Collection[str] | None = None,
) -> bool:
    """Warn once when requests are to be read (a customer source or ``OTEL_IMPACT_TASKS``) but no
    framework instrumentation that our hooks ride on is installed and enabled: every request
    would pass unseen. Returns True when it warned. Never raises."""
    try:
        found = installed_instrumentors() if installed is None else installed
    except Exception:  # the check is advice: never fail start-up over it
        return False
    if "*" in disabled:
        hooked: set[str] = set()
    else:
        hooked = {name for name in HOOKED_INSTRUMENTORS if name in found and name not in disabled}
    if hooked:
        return False
    what = []
    if settings.has_source:
        what.append(
            "a request source is configured (OTEL_IMPACT_CUSTOMER_*/OTEL_IMPACT_TIER_*/OTEL_IMPACT_SYNTHETIC_HEADER)"
        )
    if rules.active:
        what.append(f"{ENV_TASKS} names tasks")
    logger.warning(
        "otel-impact: %s, but no framework instrumentation that otel-impact hooks is installed and enabled, "
        "so no request is attributed and no task is named. Fix: install the one for your framework, e.g. "
        "pip install %s (Django: %s, FastAPI: %s, gRPC: %s), or run opentelemetry-bootstrap -a install. "
        "(An app you wrap in the WSGI/ASGI OpenTelemetryMiddleware yourself is hooked too.)",
        " and ".join(what) or "requests are to be read",
        HOOKED_INSTRUMENTORS["flask"],
        HOOKED_INSTRUMENTORS["django"],
        HOOKED_INSTRUMENTORS["fastapi"],
        HOOKED_INSTRUMENTORS["grpc_server"],
    )
    return True


def _register_openfeature() -> bool:
    try:
        from .openfeature import register_global_hook  # noqa: PLC0415 - the openfeature extra
    except ImportError:
        return False
    try:
        register_global_hook()
        return True
    except Exception as error:
        logger.warning("otel-impact: could not register the OpenFeature hook (%s).", type(error).__name__)
        return False


class ImpactInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """The ``otel_impact`` instrumentor: `enable` and `disable` as a `BaseInstrumentor`.

    Under ``opentelemetry-instrument`` the pre-instrument hook has already enabled everything
    (the framework hooks must be armed before the framework instrumentors run). In code, call
    ``ImpactInstrumentor().instrument()`` after setting up the SDK tracer provider and before
    instrumenting the frameworks; ``tracer_provider=`` picks a provider that is not the global one.
    """

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        enable(kwargs.get("tracer_provider"))

    def _uninstrument(self, **kwargs: Any) -> None:
        disable()
