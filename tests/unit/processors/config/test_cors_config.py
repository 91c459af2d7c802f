"""``receivers.http.cors``: read and validated naming the field and the fix; ``*`` alone is refused."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from support.paths import ROOT

from otel_impact.processors.config import CorsConfig
from otel_impact.processors.serve_config import ConfigurationErrors, Overrides, ServeConfig, load_config


def load(tmp_path: Path, text: str) -> ServeConfig:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_config(replace(Overrides(), config_file=str(path)), environ={})


def problems_of(tmp_path: Path, text: str) -> dict[str, str]:
    with pytest.raises(ConfigurationErrors) as raised:
        load(tmp_path, text)
    return {problem.setting: str(problem) for problem in raised.value.problems}


def test_cors_is_read_with_wildcards_headers_and_max_age(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        "receivers:\n  http:\n    cors:\n"
        "      allowed_origins: ['https://shop.example.com', 'https://*.example.com']\n"
        "      allowed_headers: [X-Shop-Version]\n"
        "      max_age: 2h\n",
    )
    assert config.receivers.http.cors == CorsConfig(
        ("https://shop.example.com", "https://*.example.com"), ("X-Shop-Version",), 7200.0
    )
    assert config.receivers.grpc.cors is None


def test_cors_is_off_by_default(tmp_path: Path) -> None:
    assert load(tmp_path, "receivers: {}\n").receivers.http.cors is None


def test_star_alone_is_refused_naming_the_field_and_the_fix(tmp_path: Path) -> None:
    found = problems_of(tmp_path, "receivers: {http: {cors: {allowed_origins: ['https://a.example', '*']}}}\n")
    assert set(found) == {"receivers.http.cors.allowed_origins[1]"}
    message = found["receivers.http.cors.allowed_origins[1]"]
    assert "every web site" in message and "https://*.example.com" in message and '"https://*"' in message


@pytest.mark.parametrize(
    ("cors", "field"),
    [
        ("{allowed_origins: ['https://shop.example.com/checkout']}", "allowed_origins[0]"),
        ("{allowed_origins: ['shop.example.com']}", "allowed_origins[0]"),
        ("{allowed_origins: ['null']}", "allowed_origins[0]"),
        ("{allowed_origins: ['ftp://x.example']}", "allowed_origins[0]"),
        ("{allowed_origins: 'https://x.example'}", "allowed_origins"),
        ("{allowed_origins: ['https://x.example'], allowed_headers: ['bad header']}", "allowed_headers[0]"),
        ("{allowed_origins: ['https://x.example'], max_age: 3d}", "max_age"),
        ("{allowed_origins: ['https://x.example'], max_age: soon}", "max_age"),
        ("{allowed_headers: [X-A]}", "allowed_origins"),
        ("{allowed_origins: ['https://x.example'], exposed: [a]}", "exposed"),
    ],
    ids=[
        "path",
        "no-scheme",
        "null",
        "ftp",
        "not-a-list",
        "header",
        "max-age-long",
        "max-age-text",
        "no-origins",
        "typo",
    ],
)
def test_bad_cors_settings_are_refused_naming_the_field(tmp_path: Path, cors: str, field: str) -> None:
    found = problems_of(tmp_path, f"receivers: {{http: {{cors: {cors}}}}}\n")
    assert set(found) == {f"receivers.http.cors.{field}"}


@pytest.mark.parametrize("listener", ["grpc", "admin"])
def test_cors_belongs_to_the_otlp_http_receiver_only(tmp_path: Path, listener: str) -> None:
    section = "admin" if listener == "admin" else "receivers:\n  grpc"
    indent = "  " if listener == "admin" else "    "
    text = f"{section}:\n{indent}cors: {{allowed_origins: ['https://x.example']}}\n"
    found = problems_of(tmp_path, text)
    assert [key for key in found if key.endswith(".cors")], found


def test_the_documented_example_loads(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "processor-config.md").read_text()
    section = doc[doc.index("### Browsers (CORS)") :]
    shown = re.search(r"```yaml\n(.*?)```", section, flags=re.S)
    assert shown is not None
    cors = load(tmp_path, shown.group(1)).receivers.http.cors
    assert cors is not None and cors.allowed_origins == ("https://shop.example.com", "https://*.shop.example.com")
