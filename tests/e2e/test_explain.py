"""Issue 16, item 1, acceptance: explain through ``otel-impact serve`` fed by the SDK's OTLP exporter.

Failures come only from ``cloud.region=eu-west`` with ``service.version=1.5``, among 12 other
attributes varying at random: the API, the CLI and the dashboard all put that pair first, and
report nothing of the random attributes.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from support.browser import dump_dom
from support.canaries import TEST_KEY_HEX
from support.explain_workload import BAD_REGION, BAD_VERSION, NOISE, REGIONS, VERSIONS
from support.processor import CLI, Processor, get_json, serve

import otel_impact
from otel_impact import SdkSettings, load_hash_key

# The checkouts arrive within a minute or two, so the pair is judged on one or two minute
# buckets' samples: at the default pair_sample (64) about one run in a hundred would miss the pair
# (docs/impact.md, Explain); 128 makes that rare. The default is covered by the unit tests.
CONFIG = """
sli:
  tasks: [{name: checkout}]
  dimensions: [{name: region, attribute: cloud.region}]
  explain: {pair_sample: 128}
dashboard:
  refresh: 5s
"""
EVENTS = 3000
PAIR = {BAD_REGION, BAD_VERSION}
NOISE_KEYS = {key for key, _ in NOISE}


def send(processor: Processor, seed: int) -> int:
    """The known-truth checkouts through one SDK per (region, version); returns the failures sent."""
    rng = random.Random(seed)
    key = load_hash_key({"OTEL_IMPACT_HASH_KEY": TEST_KEY_HEX})
    providers = {}
    for region in REGIONS:
        for version in VERSIONS:
            resource = Resource({"service.name": "shop", "cloud.region": region, "service.version": version})
            provider = TracerProvider(resource=resource)
            exporter = OTLPSpanExporter(endpoint=processor.grpc_endpoint, insecure=True)
            provider.add_span_processor(BatchSpanProcessor(exporter))
            otel_impact.configure(provider, settings=SdkSettings(hash_key=key))
            providers[(region, version)] = provider
    failures = 0
    for _ in range(EVENTS):
        region, version = rng.choice(REGIONS), rng.choice(VERSIONS)
        provider = providers[(region, version)]
        with provider.get_tracer("test").start_as_current_span("POST /checkout"):
            otel_impact.set_customer(f"customer-{rng.randrange(300)}", tier="pro")
            with otel_impact.user_task("checkout", tracer_provider=provider) as task:
                for noise, count in NOISE:
                    task.span.set_attribute(noise, f"v{rng.randrange(count)}")
                if (region, version) == (BAD_REGION[1], BAD_VERSION[1]) and rng.random() < 0.5:
                    task.fail()
                    failures += 1
    for provider in providers.values():
        assert provider.force_flush()
        provider.shutdown()
    return failures


@pytest.fixture(scope="module")
def fed() -> Iterator[tuple[Processor, int]]:
    with serve(config=CONFIG) as processor:
        failures = send(processor, 16)
        processor.wait_for(
            lambda: get_json(processor, "/api/v1/impact?task=checkout&window=30m")["events"]["total"] == EVENTS,
            timeout=60,
            what="every checkout counted",
        )
        processor.wait_for(
            lambda: get_json(processor, "/api/v1/explain?task=checkout&window=30m")["failing_events"] == failures,
            timeout=60,
            what="every failure in the explain counts",
        )
        yield processor, failures


def reported(findings: list[dict[str, object]]) -> list[set[tuple[str, str]]]:
    out = []
    for finding in findings:
        values = {(str(finding["attribute"]), str(finding["value"]))}
        also = finding.get("and")
        if isinstance(also, dict):
            values.add((str(also["attribute"]), str(also["value"])))
        out.append(values)
    return out


def test_the_api_puts_the_pair_first(fed: tuple[Processor, int]) -> None:
    processor, failures = fed
    answer = get_json(processor, "/api/v1/explain?task=checkout&window=30m")
    assert answer["failing_events"] == failures and answer["failing_events"] + answer["passing_events"] == EVENTS
    found = reported(answer["findings"])
    assert found[0] == PAIR, found
    assert {frozenset(values) for values in found[1:3]} == {frozenset({BAD_REGION}), frozenset({BAD_VERSION})}
    assert not {key for values in found for key, _ in values} & NOISE_KEYS
    assert 0 < answer["findings"][0]["failing_users"] <= 300
    assert answer["candidates_tested"] >= 40


def test_the_cli_prints_the_pair_first(fed: tuple[Processor, int]) -> None:
    processor, _ = fed
    admin = processor.admin_url.removeprefix("http://")
    result = subprocess.run(
        [CLI, "explain", "--admin", admin, "--task", "checkout", "--window", "30m"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    first = lines[lines.index("What failing requests have in common (strongest first):") + 1]
    assert "cloud.region=eu-west" in first and "service.version=1.5" in first and " AND " in first


class Findings(HTMLParser):
    """The ``data-finding`` rows of the explain panel, in page order."""

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[str] = []
        self.ready = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "body" and values.get("data-ready") == "true":
            self.ready = True
        if tag == "tr" and "data-finding" in values:
            self.findings.append(values["data-finding"])


def test_the_dashboard_panel_shows_the_pair_first(fed: tuple[Processor, int]) -> None:
    processor, _ = fed
    parser = Findings()
    parser.feed(dump_dom(processor.admin_url + "/#window=30m"))
    assert parser.ready, "the page did not finish loading its data"
    assert parser.findings, "the explain panel shows no finding"
    first = parser.findings[0]
    assert "cloud.region=eu-west" in first and "service.version=1.5" in first and " AND " in first
    assert not any(key in row for row in parser.findings for key in NOISE_KEYS)
