"""Settings of request extraction, read from ``OTEL_IMPACT_*`` environment variables.

Same policy as the SDK settings: a bad value never stops the application. `ExtractionSettings.
from_env` returns the settings with every problem it found (each names the variable and the
fix); the bad value is left out and the rest applies. Auto-instrumentation logs each problem
once, at start-up.

====================================== ========================================================
variable                               meaning
====================================== ========================================================
``OTEL_IMPACT_CUSTOMER_HEADER``        request header holding the customer ID, e.g. ``X-Customer-Id``
``OTEL_IMPACT_TIER_HEADER``            request header holding the tier, e.g. ``X-Customer-Tier``
``OTEL_IMPACT_CUSTOMER_JWT_CLAIM``     claim of the ``Authorization: Bearer`` JWT holding the ID, e.g. ``sub``
``OTEL_IMPACT_TIER_JWT_CLAIM``         claim of that JWT holding the tier, e.g. ``plan``
``OTEL_IMPACT_CUSTOMER_COOKIE``        cookie holding the customer ID
``OTEL_IMPACT_CUSTOMER_CALLABLE``      ``module:function`` taking an `IncomingRequest`, returning the ID or ``None``
``OTEL_IMPACT_TIER_CALLABLE``          ``module:function`` taking the customer ID, returning the tier or ``None``
``OTEL_IMPACT_DJANGO_USER_ATTRIBUTE``  attribute of Django's authenticated ``request.user`` used as the ID, e.g. ``pk``
``OTEL_IMPACT_OPENFEATURE_HOOK``       register the OpenFeature hook under auto-instrumentation (default ``true``)
``OTEL_IMPACT_TASKS``                  user tasks named from server spans, e.g. ``checkout=POST /api/checkout``
``OTEL_IMPACT_TASK_FAILURE``           responses that fail those tasks besides the defaults, e.g. ``5xx,429``
``OTEL_IMPACT_SYNTHETIC_HEADER``       request header marking synthetic traffic: ``Name`` or ``Name=value``
====================================== ========================================================

``OTEL_IMPACT_SYNTHETIC_HEADER``: ``X-Synthetic`` marks every request that carries the header
(any value, even empty); ``X-Synthetic=probe`` marks only those whose value is ``probe`` (exactly,
after trimming spaces; values are case-sensitive). Header names are case-insensitive. A synthetic
request's spans carry ``impact.synthetic=true``, and so do downstream services' through baggage.

``OTEL_IMPACT_TASKS`` and ``OTEL_IMPACT_TASK_FAILURE`` are read by `otel_impact.instrumentation.tasks`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from otel_impact._exceptions import ConfigurationError
from otel_impact._hash_key import ENV_HASH_KEY, ENV_HASH_KEY_FILE
from otel_impact._settings import (
    ENV_HASH_ALGORITHM,
    ENV_HASH_MEMO_SIZE,
    ENV_PII_ATTRIBUTES,
    ENV_TRUST_INCOMING_BAGGAGE,
)

ENV_CUSTOMER_HEADER: Final = "OTEL_IMPACT_CUSTOMER_HEADER"
ENV_TIER_HEADER: Final = "OTEL_IMPACT_TIER_HEADER"
ENV_CUSTOMER_JWT_CLAIM: Final = "OTEL_IMPACT_CUSTOMER_JWT_CLAIM"
ENV_TIER_JWT_CLAIM: Final = "OTEL_IMPACT_TIER_JWT_CLAIM"
ENV_CUSTOMER_COOKIE: Final = "OTEL_IMPACT_CUSTOMER_COOKIE"
ENV_CUSTOMER_CALLABLE: Final = "OTEL_IMPACT_CUSTOMER_CALLABLE"
ENV_TIER_CALLABLE: Final = "OTEL_IMPACT_TIER_CALLABLE"
ENV_DJANGO_USER_ATTRIBUTE: Final = "OTEL_IMPACT_DJANGO_USER_ATTRIBUTE"
ENV_OPENFEATURE_HOOK: Final = "OTEL_IMPACT_OPENFEATURE_HOOK"
ENV_TASKS: Final = "OTEL_IMPACT_TASKS"
ENV_TASK_FAILURE: Final = "OTEL_IMPACT_TASK_FAILURE"
ENV_SYNTHETIC_HEADER: Final = "OTEL_IMPACT_SYNTHETIC_HEADER"

_FIELD_ENV: Final = {
    "customer_header": ENV_CUSTOMER_HEADER,
    "tier_header": ENV_TIER_HEADER,
    "customer_jwt_claim": ENV_CUSTOMER_JWT_CLAIM,
    "tier_jwt_claim": ENV_TIER_JWT_CLAIM,
    "customer_cookie": ENV_CUSTOMER_COOKIE,
    "customer_callable": ENV_CUSTOMER_CALLABLE,
    "tier_callable": ENV_TIER_CALLABLE,
    "django_user_attribute": ENV_DJANGO_USER_ATTRIBUTE,
    "synthetic_header": ENV_SYNTHETIC_HEADER,
}

KNOWN_VARIABLES: Final = frozenset(
    {
        ENV_HASH_KEY,
        ENV_HASH_KEY_FILE,
        ENV_HASH_ALGORITHM,
        ENV_TRUST_INCOMING_BAGGAGE,
        ENV_PII_ATTRIBUTES,
        ENV_HASH_MEMO_SIZE,
        ENV_OPENFEATURE_HOOK,
        ENV_TASKS,
        ENV_TASK_FAILURE,
        *_FIELD_ENV.values(),
    }
)
"""Every ``OTEL_IMPACT_*`` variable the SDK plugin reads."""

_TOKEN = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}\Z")  # an HTTP field name or cookie name
_CALLABLE = re.compile(r"\A[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")
_DOTTED_NAME = re.compile(r"\A[A-Za-z_]\w*(\.[A-Za-z_]\w*)*\Z")
_MAX_CLAIM_CHARS: Final = 256
MAX_SYNTHETIC_VALUE_CHARS: Final = 256
"""The longest value ``OTEL_IMPACT_SYNTHETIC_HEADER`` may require (``Name=value``)."""
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@dataclass(frozen=True)
class ExtractionSettings:
    """Where the customer ID and tier of an incoming request are read from.

    Every field is optional; with none set there is nothing to extract and the framework hooks
    are not installed. Callables are given as ``module:function`` and imported by
    `RequestExtractor.from_settings`, not here.
    """

    customer_header: str | None = None
    tier_header: str | None = None
    customer_jwt_claim: str | None = None
    tier_jwt_claim: str | None = None
    customer_cookie: str | None = None
    customer_callable: str | None = None
    tier_callable: str | None = None
    django_user_attribute: str | None = None
    synthetic_header: str | None = None
    """``Name`` or ``Name=value``: the request header that marks synthetic traffic (see
    `synthetic_rule`)."""
    openfeature_hook: bool = True

    def __post_init__(self) -> None:
        problems = self.validate()
        if problems:
            raise problems[0]

    @property
    def has_customer_source(self) -> bool:
        return any(
            (
                self.customer_header,
                self.customer_jwt_claim,
                self.customer_cookie,
                self.customer_callable,
                self.django_user_attribute,
            )
        )

    @property
    def has_source(self) -> bool:
        """True when anything is to be extracted from requests."""
        return self.has_customer_source or bool(self.tier_header or self.tier_jwt_claim or self.synthetic_header)

    @property
    def synthetic_rule(self) -> tuple[str, str | None] | None:
        """``synthetic_header`` parsed: ``(header name, required value or None)``; ``None`` unset."""
        return None if self.synthetic_header is None else parse_synthetic_header(self.synthetic_header)

    def validate(self) -> list[ConfigurationError]:
        """Every problem with these settings; empty when they are valid."""
        problems: list[ConfigurationError] = []
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in _FIELD_ENV and value is not None:
                problem = _check(field.name, value)
                if problem is not None:
                    problems.append(problem)
        if self.tier_callable is not None and not self.has_customer_source:
            problems.append(_TIER_CALLABLE_ALONE)
        return problems

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> tuple[ExtractionSettings, list[ConfigurationError]]:
        """Read the settings; a bad value is left out. Returns the settings and the problems found,
        including ``OTEL_IMPACT_*`` variables that look like misspellings of known ones."""
        env = os.environ if environ is None else environ
        problems: list[ConfigurationError] = []
        values: dict[str, str] = {}
        for name, variable in _FIELD_ENV.items():
            raw = env.get(variable, "").strip()
            if not raw:
                continue
            problem = _check(name, raw)
            if problem is None:
                values[name] = raw
            else:
                problems.append(problem)
        openfeature_hook = True
        raw_hook = env.get(ENV_OPENFEATURE_HOOK, "").strip().lower()
        if raw_hook in _FALSE:
            openfeature_hook = False
        elif raw_hook and raw_hook not in _TRUE:
            problems.append(
                ConfigurationError(
                    ENV_OPENFEATURE_HOOK, f"{raw_hook!r} is not a boolean", "use true or false; true applies"
                )
            )
        if "tier_callable" in values and not any(
            name in values
            for name in (
                "customer_header",
                "customer_jwt_claim",
                "customer_cookie",
                "customer_callable",
                "django_user_attribute",
            )
        ):
            del values["tier_callable"]
            problems.append(_TIER_CALLABLE_ALONE)
        settings = cls(
            customer_header=values.get("customer_header"),
            tier_header=values.get("tier_header"),
            customer_jwt_claim=values.get("customer_jwt_claim"),
            tier_jwt_claim=values.get("tier_jwt_claim"),
            customer_cookie=values.get("customer_cookie"),
            customer_callable=values.get("customer_callable"),
            tier_callable=values.get("tier_callable"),
            django_user_attribute=values.get("django_user_attribute"),
            synthetic_header=values.get("synthetic_header"),
            openfeature_hook=openfeature_hook,
        )
        problems.extend(misspelled_variables(env))
        return settings, problems


_TIER_CALLABLE_ALONE: Final = ConfigurationError(
    ENV_TIER_CALLABLE,
    "is set but no customer source is, and the tier lookup needs a customer ID",
    f"also set {ENV_CUSTOMER_HEADER}, {ENV_CUSTOMER_JWT_CLAIM}, {ENV_CUSTOMER_COOKIE}, {ENV_CUSTOMER_CALLABLE} "
    f"or {ENV_DJANGO_USER_ATTRIBUTE}",
)


def misspelled_variables(environ: Mapping[str, str]) -> list[ConfigurationError]:
    """``OTEL_IMPACT_*`` variables that are not read but are close to one that is.

    Unknown names far from every known one are left alone: the impact processor, a separate
    service, has variables of its own under the same prefix.
    """
    problems: list[ConfigurationError] = []
    for name in sorted(environ):
        if not name.startswith("OTEL_IMPACT_") or name in KNOWN_VARIABLES:
            continue
        close = difflib.get_close_matches(name, sorted(KNOWN_VARIABLES), n=1, cutoff=0.85)
        if close:
            problems.append(
                ConfigurationError(name, "is not a variable otel-impact reads", f"did you mean {close[0]}?")
            )
    return problems


def parse_synthetic_header(value: str) -> tuple[str, str | None]:
    """``Name`` -> ``(name, None)`` (presence marks), ``Name=value`` -> ``(name, value)``; the
    name lower-cased, both trimmed. The value is not checked: `ExtractionSettings` does that."""
    name, sep, wanted = value.partition("=")
    return name.strip().lower(), (wanted.strip() if sep else None)


def _check_synthetic(variable: str, value: str) -> ConfigurationError | None:
    name, wanted = parse_synthetic_header(value)
    problem = _check_header(variable, name)
    if problem is not None:
        return ConfigurationError(
            variable, problem.problem, f"{problem.fix}, alone or as Name=value (e.g. X-Synthetic or X-Synthetic=true)"
        )
    if wanted is not None and not (0 < len(wanted) <= MAX_SYNTHETIC_VALUE_CHARS and wanted.isprintable()):
        return ConfigurationError(
            variable,
            "the value after '=' is empty, too long or not printable",
            f"give 1 to {MAX_SYNTHETIC_VALUE_CHARS} printable characters (X-Synthetic=true), "
            "or the name alone to mark every request carrying the header",
        )
    return None


def _check(field: str, value: str) -> ConfigurationError | None:
    variable = _FIELD_ENV[field]
    if field in ("customer_header", "tier_header"):
        return _check_header(variable, value)
    if field == "synthetic_header":
        return _check_synthetic(variable, value)
    if field == "customer_cookie":
        if not _TOKEN.match(value):
            return ConfigurationError(variable, f"{value!r} is not a cookie name", "give the cookie's name, e.g. cid")
        return None
    if field in ("customer_jwt_claim", "tier_jwt_claim"):
        if not (0 < len(value) <= _MAX_CLAIM_CHARS and value.isprintable()):
            return ConfigurationError(
                variable, "is not a claim name", f"give a claim name of up to {_MAX_CLAIM_CHARS} characters, e.g. sub"
            )
        return None
    if field in ("customer_callable", "tier_callable"):
        if not _CALLABLE.match(value):
            return ConfigurationError(
                variable, f"{value!r} is not of the form module:function", "e.g. myapp.impact:customer_of"
            )
        return None
    if field == "django_user_attribute" and not _DOTTED_NAME.match(value):
        return ConfigurationError(
            variable, f"{value!r} is not an attribute name", "e.g. pk, username or profile.account_id"
        )
    return None


def _check_header(variable: str, value: str) -> ConfigurationError | None:
    if value.upper().startswith("HTTP_"):
        suggestion = value[5:].replace("_", "-").title()
        return ConfigurationError(
            variable, f"{value!r} is the WSGI form of a header name", f"give the HTTP header name, e.g. {suggestion}"
        )
    if not _TOKEN.match(value):
        return ConfigurationError(variable, f"{value!r} is not an HTTP header name", "e.g. X-Customer-Id")
    if value.lower() == "authorization":
        return ConfigurationError(
            variable,
            "names the Authorization header, whose value is a credential, not a customer ID",
            f"to read a claim of a bearer JWT set {ENV_CUSTOMER_JWT_CLAIM} (or {ENV_TIER_JWT_CLAIM}) instead",
        )
    if value.lower() == "cookie":
        return ConfigurationError(
            variable, "names the Cookie header", f"to read one cookie set {ENV_CUSTOMER_COOKIE} to its name instead"
        )
    return None
