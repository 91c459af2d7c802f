"""Times and numbers out of range in a query: a 400 naming the parameter, never an overflow."""

from __future__ import annotations

import pytest

from otel_impact.processors.api.params import BadRequest, QueryParams
from otel_impact.processors.durations import MAX_TIMESTAMP_S, parse_timestamp

OUT_OF_RANGE = ["99999999999999999999", "1e308", "-1e308", "inf", "-inf", "nan", "0", "-5", "253402300800"]


@pytest.mark.parametrize("text", OUT_OF_RANGE)
@pytest.mark.parametrize("name", ["end", "from", "to", "mitigated_at"])
def test_times_out_of_range_are_bad_requests_naming_the_parameter(name: str, text: str) -> None:
    with pytest.raises(BadRequest) as raised:
        QueryParams({name: text}).timestamp(name)
    assert raised.value.parameter == name and str(raised.value).startswith(f"{name} ")
    assert "from 1970 to 9999" in str(raised.value)
    with pytest.raises(BadRequest):
        QueryParams({name: text}).minute(name)


def test_the_range_ends_where_datetime_does() -> None:
    for text in (str(MAX_TIMESTAMP_S), "9999-12-31T23:59:59Z"):
        assert abs(parse_timestamp(text) - MAX_TIMESTAMP_S * 1_000_000_000) < 1_000_000  # float seconds
    assert parse_timestamp("1767225600") == 1_767_225_600 * 1_000_000_000


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e400"])
def test_numbers_must_be_finite(text: str) -> None:
    with pytest.raises(BadRequest) as raised:
        QueryParams({"confidence": text}).number("confidence", 0.95)
    assert raised.value.parameter == "confidence"
    assert QueryParams({"confidence": "1e308"}).number("confidence", 0.95) == 1e308
