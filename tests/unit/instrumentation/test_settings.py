"""ExtractionSettings: every variable read, every bad value reported once with its fix, the rest kept."""

from __future__ import annotations

import pytest

from otel_impact import ConfigurationError
from otel_impact.instrumentation.settings import KNOWN_VARIABLES, ExtractionSettings, misspelled_variables

VALID = {
    "OTEL_IMPACT_CUSTOMER_HEADER": "X-Customer-Id",
    "OTEL_IMPACT_TIER_HEADER": "X-Customer-Tier",
    "OTEL_IMPACT_CUSTOMER_JWT_CLAIM": "https://example.com/account",
    "OTEL_IMPACT_TIER_JWT_CLAIM": "plan",
    "OTEL_IMPACT_CUSTOMER_COOKIE": "cid",
    "OTEL_IMPACT_CUSTOMER_CALLABLE": "myapp.impact:customer_of",
    "OTEL_IMPACT_TIER_CALLABLE": "myapp.plans:Plans.tier_of",
    "OTEL_IMPACT_DJANGO_USER_ATTRIBUTE": "profile.account_id",
    "OTEL_IMPACT_OPENFEATURE_HOOK": "false",
}


def test_defaults_extract_nothing() -> None:
    settings, problems = ExtractionSettings.from_env({})
    assert problems == []
    assert settings == ExtractionSettings()
    assert not settings.has_source and settings.openfeature_hook


def test_every_variable_is_read() -> None:
    settings, problems = ExtractionSettings.from_env(VALID)
    assert problems == []
    assert settings == ExtractionSettings(
        customer_header="X-Customer-Id",
        tier_header="X-Customer-Tier",
        customer_jwt_claim="https://example.com/account",
        tier_jwt_claim="plan",
        customer_cookie="cid",
        customer_callable="myapp.impact:customer_of",
        tier_callable="myapp.plans:Plans.tier_of",
        django_user_attribute="profile.account_id",
        openfeature_hook=False,
    )
    assert set(VALID) <= KNOWN_VARIABLES


@pytest.mark.parametrize(
    ("variable", "value", "explanation"),
    [
        ("OTEL_IMPACT_CUSTOMER_HEADER", "X Customer", "is not an HTTP header name"),
        ("OTEL_IMPACT_CUSTOMER_HEADER", "X-Customer:", "is not an HTTP header name"),
        ("OTEL_IMPACT_CUSTOMER_HEADER", "HTTP_X_CUSTOMER_ID", "e.g. X-Customer-Id"),
        ("OTEL_IMPACT_CUSTOMER_HEADER", "Authorization", "OTEL_IMPACT_CUSTOMER_JWT_CLAIM"),
        ("OTEL_IMPACT_TIER_HEADER", "cookie", "OTEL_IMPACT_CUSTOMER_COOKIE"),
        ("OTEL_IMPACT_CUSTOMER_COOKIE", "c id", "is not a cookie name"),
        ("OTEL_IMPACT_CUSTOMER_JWT_CLAIM", "s" * 300, "is not a claim name"),
        ("OTEL_IMPACT_CUSTOMER_CALLABLE", "myapp.impact.customer_of", "module:function"),
        ("OTEL_IMPACT_CUSTOMER_CALLABLE", "myapp:", "module:function"),
        ("OTEL_IMPACT_DJANGO_USER_ATTRIBUTE", "user.pk()", "is not an attribute name"),
        ("OTEL_IMPACT_OPENFEATURE_HOOK", "perhaps", "is not a boolean"),
    ],
)
def test_a_bad_value_is_one_problem_naming_the_variable_and_the_rest_applies(
    variable: str, value: str, explanation: str
) -> None:
    environ = {**VALID, variable: value}
    settings, problems = ExtractionSettings.from_env(environ)
    assert len(problems) == 1
    problem = problems[0]
    assert isinstance(problem, ConfigurationError)
    assert problem.setting == variable and explanation in str(problem) and "Fix:" in str(problem)
    kept = {name: getattr(settings, name) for name in ("customer_cookie", "tier_jwt_claim")}
    if variable not in ("OTEL_IMPACT_CUSTOMER_COOKIE", "OTEL_IMPACT_TIER_JWT_CLAIM"):
        assert kept == {"customer_cookie": "cid", "tier_jwt_claim": "plan"}


def test_a_tier_lookup_without_any_customer_source_is_reported_and_left_out() -> None:
    settings, problems = ExtractionSettings.from_env({"OTEL_IMPACT_TIER_CALLABLE": "myapp:tier_of"})
    assert [p.setting for p in problems] == ["OTEL_IMPACT_TIER_CALLABLE"]
    assert settings.tier_callable is None
    with pytest.raises(ConfigurationError, match="needs a customer ID"):
        ExtractionSettings(tier_callable="myapp:tier_of")


def test_direct_construction_validates() -> None:
    with pytest.raises(ConfigurationError, match="OTEL_IMPACT_CUSTOMER_HEADER"):
        ExtractionSettings(customer_header="bad header")


def test_misspelt_variables_are_reported_with_the_likely_name_others_are_left_alone() -> None:
    problems = misspelled_variables(
        {
            "OTEL_IMPACT_CUSTOMER_HEDAER": "X-Customer-Id",
            "OTEL_IMPACT_HASHKEY": "00",
            "OTEL_IMPACT_PROCESSOR_CONFIG": "/etc/impact.yaml",  # the processor's own: not ours to judge
            "OTEL_IMPACT_HASH_KEY": "00",
        }
    )
    assert [(p.setting, p.fix) for p in problems] == [
        ("OTEL_IMPACT_CUSTOMER_HEDAER", "did you mean OTEL_IMPACT_CUSTOMER_HEADER?"),
        ("OTEL_IMPACT_HASHKEY", "did you mean OTEL_IMPACT_HASH_KEY?"),
    ]
