from __future__ import annotations

import logging

import pytest
from support.canaries import TEST_KEY_HEX

from otel_impact import ConfigurationError, SdkSettings
from otel_impact._runtime import build_runtime

GOOD = {"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX}


def test_defaults() -> None:
    settings, problems = SdkSettings.from_env({})
    assert problems == []
    assert settings.hash_key is None
    assert settings.algorithm == "hmac-sha256"
    assert settings.trust_incoming_baggage is False
    assert settings.pii_attributes == ("enduser.id", "user.id", "user.email")


def test_all_variables() -> None:
    settings, problems = SdkSettings.from_env(
        {
            **GOOD,
            "OTEL_IMPACT_HASH_ALGORITHM": "BLAKE2B",
            "OTEL_IMPACT_TRUST_INCOMING_BAGGAGE": "true",
            "OTEL_IMPACT_PII_ATTRIBUTES": "enduser.id, app.account_email ,enduser.id",
            "OTEL_IMPACT_HASH_MEMO_SIZE": "10",
        }
    )
    assert problems == []
    assert settings.hash_key is not None
    assert settings.algorithm == "blake2b"
    assert settings.trust_incoming_baggage is True
    assert settings.pii_attributes == ("enduser.id", "app.account_email")
    assert settings.memo_size == 10


@pytest.mark.parametrize(
    ("env", "setting", "check"),
    [
        ({"OTEL_IMPACT_HASH_KEY": "abcd"}, "OTEL_IMPACT_HASH_KEY", lambda s: s.hash_key is None),
        ({**GOOD, "OTEL_IMPACT_HASH_ALGORITHM": "md5"}, "OTEL_IMPACT_HASH_ALGORITHM", lambda s: s.hash_key is None),
        (
            {"OTEL_IMPACT_TRUST_INCOMING_BAGGAGE": "maybe"},
            "OTEL_IMPACT_TRUST_INCOMING_BAGGAGE",
            lambda s: s.trust_incoming_baggage is False,
        ),
        (
            {"OTEL_IMPACT_PII_ATTRIBUTES": "enduser.id,bad name"},
            "OTEL_IMPACT_PII_ATTRIBUTES",
            lambda s: s.pii_attributes == ("enduser.id", "user.id", "user.email"),
        ),
        ({"OTEL_IMPACT_HASH_MEMO_SIZE": "-3"}, "OTEL_IMPACT_HASH_MEMO_SIZE", lambda s: s.memo_size == 4096),
    ],
)
def test_bad_values_fall_back_privately_and_name_the_setting(env: dict[str, str], setting: str, check: object) -> None:
    settings, problems = SdkSettings.from_env(env)
    assert [p.setting for p in problems] == [setting]
    assert "Fix:" in str(problems[0])
    assert check(settings)  # type: ignore[operator]


def test_direct_construction_validates() -> None:
    with pytest.raises(ConfigurationError, match="OTEL_IMPACT_HASH_MEMO_SIZE"):
        SdkSettings(memo_size=-1)


def test_runtime_logs_each_problem_once_and_warns_without_key(caplog: pytest.LogCaptureFixture) -> None:
    settings, problems = SdkSettings.from_env({"OTEL_IMPACT_TRUST_INCOMING_BAGGAGE": "maybe"})
    with caplog.at_level(logging.WARNING, logger="otel_impact"):
        runtime = build_runtime(settings, problems)
    assert runtime.pseudonymizer is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert any("OTEL_IMPACT_TRUST_INCOMING_BAGGAGE" in line for line in lines)
    assert any("no pseudonymization key" in line and "OTEL_IMPACT_HASH_KEY" in line for line in lines)
