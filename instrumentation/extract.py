"""`RequestExtractor`: who is this request for, read from the request itself.

Sources, in order of precedence (the first that gives a value wins):

customer ID
    1. the customer callable (``OTEL_IMPACT_CUSTOMER_CALLABLE``), application logic;
    2. a header (``OTEL_IMPACT_CUSTOMER_HEADER``);
    3. a claim of the ``Authorization: Bearer`` JWT (``OTEL_IMPACT_CUSTOMER_JWT_CLAIM``);
    4. a cookie (``OTEL_IMPACT_CUSTOMER_COOKIE``);
    5. Django only: an attribute of the authenticated ``request.user``
       (``OTEL_IMPACT_DJANGO_USER_ATTRIBUTE``).
tier
    1. the tier callable (``OTEL_IMPACT_TIER_CALLABLE``), given the customer ID found above;
    2. a header (``OTEL_IMPACT_TIER_HEADER``);
    3. a JWT claim (``OTEL_IMPACT_TIER_JWT_CLAIM``).

An explicit ``otel_impact.set_customer`` call in the application always wins over all of them:
the framework hooks run before the handler, and the Django response phase never overrides it.

The raw ID leaves this module only towards ``set_customer``, which pseudonymizes it. Nothing
here logs a header, a token, a claim or a callable's result; a misbehaving callable is logged
once, by exception type.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Final, NamedTuple, TypeAlias

from otel_impact._exceptions import ConfigurationError
from otel_impact._log import log_once

from ._jwt import bearer_claims
from .incoming import IncomingRequest
from .settings import ENV_CUSTOMER_CALLABLE, ENV_DJANGO_USER_ATTRIBUTE, ENV_TIER_CALLABLE, ExtractionSettings

CustomerCallable: TypeAlias = Callable[[IncomingRequest], object]
"""``fn(request) -> str | int | None``: the customer ID of ``request``, or ``None`` when unknown."""

TierCallable: TypeAlias = Callable[[object], object]
"""``fn(customer_id) -> str | None``: the tier of the customer, or ``None`` when unknown."""

MAX_ID_CHARS: Final = 1024
"""Longer extracted IDs are ignored (no real customer ID is that long; a header could be)."""


class Attribution(NamedTuple):
    """What a request was attributed to. ``source`` names where the customer ID came from
    (``callable``, ``header``, ``jwt``, ``cookie``, ``django-user``) or is ``None``."""

    customer_id: str | int | None
    tier: str | None
    source: str | None

    def __repr__(self) -> str:  # never show the raw ID
        return f"Attribution(customer_id=<{'set' if self.customer_id is not None else 'none'}>, " + (
            f"tier={self.tier!r}, source={self.source!r})"
        )


def load_callable(spec: str, variable: str) -> Callable[..., object]:
    """Import ``module:function`` (the function part may be dotted). Raises `ConfigurationError`."""
    module_name, _, attribute_path = spec.partition(":")
    try:
        target: object = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigurationError(
            variable,
            f"cannot import module {module_name!r} ({type(error).__name__})",
            "check the module path and that it is importable from the application's working directory",
        ) from None
    except Exception as error:
        raise ConfigurationError(
            variable,
            f"importing module {module_name!r} raised {type(error).__name__}",
            "keep the module importable at start-up, before the application; import application modules "
            "inside the function",
        ) from None
    for part in attribute_path.split("."):
        if not hasattr(target, part):
            raise ConfigurationError(
                variable, f"module {module_name!r} has no attribute {attribute_path!r}", "check the function's name"
            )
        target = getattr(target, part)
    if not callable(target):
        raise ConfigurationError(variable, f"{spec!r} is not callable", "point it at a function")
    return target


class RequestExtractor:
    """Resolves the customer ID and tier of requests from the configured sources.

    Thread-safe and stateless per request. `resolve` never raises.
    """

    def __init__(
        self,
        settings: ExtractionSettings,
        *,
        customer_callable: CustomerCallable | None = None,
        tier_callable: TierCallable | None = None,
    ) -> None:
        self.settings = settings
        self._customer_callable = customer_callable
        self._tier_callable = tier_callable
        self._needs_claims = bool(settings.customer_jwt_claim or settings.tier_jwt_claim)
        self._user_attribute = (
            tuple(settings.django_user_attribute.split(".")) if settings.django_user_attribute else ()
        )
        self._headers_only = not (
            customer_callable or tier_callable or self._needs_claims or settings.customer_cookie or self._user_attribute
        )
        self.active = settings.has_source or customer_callable is not None
        """True when there is anything to extract (fixed at construction: read on every request)."""
        self.synthetic_rule = settings.synthetic_rule
        """``(header, value or None)`` marking synthetic traffic (``OTEL_IMPACT_SYNTHETIC_HEADER``)."""

    @classmethod
    def from_settings(cls, settings: ExtractionSettings) -> tuple[RequestExtractor, list[ConfigurationError]]:
        """An extractor with the settings' callables imported; a callable that cannot be loaded is
        left out and reported."""
        problems: list[ConfigurationError] = []
        loaded: dict[str, Callable[..., object] | None] = {}
        for name, spec, variable in (
            ("customer", settings.customer_callable, ENV_CUSTOMER_CALLABLE),
            ("tier", settings.tier_callable, ENV_TIER_CALLABLE),
        ):
            loaded[name] = None
            if spec:
                try:
                    loaded[name] = load_callable(spec, variable)
                except ConfigurationError as error:
                    problems.append(error)
        return cls(settings, customer_callable=loaded["customer"], tier_callable=loaded["tier"]), problems

    @property
    def has_late_sources(self) -> bool:
        """True when a source may know more after the handler ran (Django's ``request.user``,
        read directly or by the customer callable)."""
        return self._customer_callable is not None or bool(self._user_attribute)

    def is_synthetic(self, request: IncomingRequest) -> bool:
        """True when ``request`` carries the header ``OTEL_IMPACT_SYNTHETIC_HEADER`` names (with
        its value, when one is given). Never raises."""
        rule = self.synthetic_rule
        if rule is None:
            return False
        try:
            found = request.header(rule[0])
        except Exception:
            return False
        if found is None:
            return False
        return rule[1] is None or found.strip() == rule[1]

    def resolve(self, request: IncomingRequest) -> Attribution | None:
        """The customer ID and tier of ``request``, or ``None`` when no source gives either."""
        try:
            if self._headers_only:
                return self._from_headers(request)
            return self._resolve(request)
        except Exception:
            log_once(
                "extract:resolve",
                logging.ERROR,
                "otel-impact: customer extraction failed unexpectedly; the request is not attributed.",
            )
            return None

    def _from_headers(self, request: IncomingRequest) -> Attribution | None:
        """`_resolve` when headers are the only sources (the common configuration): two lookups."""
        settings = self.settings
        customer_id = request.header(settings.customer_header) if settings.customer_header else None
        if customer_id is not None:  # `_usable_id` of a str, inline
            customer_id = customer_id.strip()
            if not 0 < len(customer_id) <= MAX_ID_CHARS:
                customer_id = None
        tier = request.header(settings.tier_header) if settings.tier_header else None
        if tier is not None:
            tier = tier.strip() or None
        if customer_id is None and tier is None:
            return None
        return Attribution(customer_id, tier, "header" if customer_id is not None else None)

    def _resolve(self, request: IncomingRequest) -> Attribution | None:
        settings = self.settings
        claims = bearer_claims(request.header("authorization")) if self._needs_claims else None
        customer_id: str | int | None = None
        source: str | None = None
        if self._customer_callable is not None:
            customer_id = self._call_customer_callable(request)
            source = "callable"
        if customer_id is None and settings.customer_header:
            customer_id = _usable_id(request.header(settings.customer_header))
            source = "header"
        if customer_id is None and settings.customer_jwt_claim and claims is not None:
            customer_id = _usable_id(claims.get(settings.customer_jwt_claim))
            source = "jwt"
        if customer_id is None and settings.customer_cookie:
            customer_id = _usable_id(request.cookie(settings.customer_cookie))
            source = "cookie"
        if customer_id is None and self._user_attribute:
            customer_id = self._django_user_id(request)
            source = "django-user"
        if customer_id is None:
            source = None

        tier: str | None = None
        if customer_id is not None and self._tier_callable is not None:
            tier = self._call_tier_callable(customer_id)
        if tier is None and settings.tier_header:
            tier = _stripped(request.header(settings.tier_header))
        if tier is None and settings.tier_jwt_claim and claims is not None:
            claimed = claims.get(settings.tier_jwt_claim)
            tier = _stripped(claimed) if isinstance(claimed, str) else None

        if customer_id is None and tier is None:
            return None
        return Attribution(customer_id, tier, source)

    def _call_customer_callable(self, request: IncomingRequest) -> str | int | None:
        assert self._customer_callable is not None
        try:
            result = self._customer_callable(request)
        except Exception as error:
            _callable_failed(ENV_CUSTOMER_CALLABLE, error)
            return None
        customer_id = _usable_id(result)
        if customer_id is None and result is not None and result != "":
            _callable_returned(ENV_CUSTOMER_CALLABLE, result, "str or int")
        return customer_id

    def _call_tier_callable(self, customer_id: str | int) -> str | None:
        assert self._tier_callable is not None
        try:
            result = self._tier_callable(customer_id)
        except Exception as error:
            _callable_failed(ENV_TIER_CALLABLE, error)
            return None
        if result is None or isinstance(result, str):
            return _stripped(result)
        _callable_returned(ENV_TIER_CALLABLE, result, "str")
        return None

    def _django_user_id(self, request: IncomingRequest) -> str | int | None:
        user = getattr(request.native, "user", None)
        if user is None or not getattr(user, "is_authenticated", False):
            return None
        value: object = user
        for part in self._user_attribute:
            value = getattr(value, part, None)
            if value is None:
                return None
        customer_id = _usable_id(value)
        if customer_id is None:
            log_once(
                "extract:django-user-type",
                logging.WARNING,
                "otel-impact: %s names a user attribute of type %s; it must be a str or int.",
                ENV_DJANGO_USER_ATTRIBUTE,
                type(value).__name__,
            )
        return customer_id


def _usable_id(value: object) -> str | int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        value = value.strip()
        if 0 < len(value) <= MAX_ID_CHARS:
            return value
    return None


def _stripped(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _callable_failed(variable: str, error: Exception) -> None:
    log_once(
        f"extract:callable-raised:{variable}:{type(error).__name__}",
        logging.WARNING,
        "otel-impact: the function in %s raised %s; requests it fails on are left to the other sources.",
        variable,
        type(error).__name__,
    )


def _callable_returned(variable: str, result: object, expected: str) -> None:
    log_once(
        f"extract:callable-type:{variable}:{type(result).__name__}",
        logging.WARNING,
        "otel-impact: the function in %s returned a %s; expected %s or None.",
        variable,
        type(result).__name__,
        expected,
    )
