"""The on-call page in real headless Chromium against a running processor fed with spans."""

from __future__ import annotations

import json
import urllib.request
from html.parser import HTMLParser

from support.browser import dump_dom, screenshot
from support.paths import ROOT as REPO_ROOT
from support.processor import Processor, get_json

ARTIFACTS = REPO_ROOT / "test-artifacts"


class Values(HTMLParser):
    """Collects ``data-field``/``data-value`` pairs inside the element with ``data-task``."""

    def __init__(self) -> None:
        super().__init__()
        self.task_state: dict[str, str] = {}
        self.banner_state = ""
        self.kpis: dict[str, dict[str, str]] = {}
        self.segments: dict[str, dict[str, str]] = {}
        self._task = ""
        self._segment = ""
        self.ready = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "body" and a.get("data-ready") == "true":
            self.ready = True
        if tag == "header" and a.get("id") == "banner":
            self.banner_state = a.get("data-state", "")
        if tag == "section" and "data-task" in a:
            self._task = a["data-task"]
            self.task_state[self._task] = a.get("data-state", "")
            self.kpis[self._task] = {}
        if tag == "tr" and "data-segment" in a and self._task:
            self._segment = a["data-segment"]
            self.segments.setdefault(self._segment, {})
        field, value = a.get("data-field"), a.get("data-value")
        if field and value is not None and self._task:
            if tag == "td" and self._segment:
                self.segments[self._segment][field] = value
            elif tag == "div":
                self.kpis[self._task][field] = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._segment = ""


def test_page_shows_what_the_api_answers(fed: tuple[Processor, float]) -> None:
    processor, _ = fed
    url = processor.admin_url + "/#window=1h"
    parser = Values()
    parser.feed(dump_dom(url))
    api = get_json(processor, "/api/v1/impact?task=checkout&window=1h")
    assert parser.ready, "the page did not finish loading its data"
    kpis = parser.kpis["checkout"]
    assert float(kpis["impacted_users.estimate"]) == api["impacted_users"]["estimate"]
    assert float(kpis["users.estimate"]) == api["users"]["estimate"]
    assert float(kpis["revenue_at_risk"]) == api["revenue_at_risk"]
    assert float(kpis["success_ratio"]) == api["success_ratio"]
    for segment in api["segments"]:
        shown = parser.segments[json.dumps(segment["segment"], separators=(",", ":"))]
        assert int(shown["events.total"]) == segment["events"]["total"]
        assert int(shown["events.bad"]) == segment["events"]["bad"]
        assert float(shown["impacted_users.estimate"]) == segment["impacted_users"]["estimate"]
    assert parser.task_state["checkout"] in ("page", "ticket"), "the failing release burns the budget"
    assert parser.banner_state == parser.task_state["checkout"]
    picture = screenshot(url, ARTIFACTS / "dashboard.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_page_needs_nothing_from_the_network(fed: tuple[Processor, float]) -> None:
    processor, _ = fed
    with urllib.request.urlopen(processor.admin_url + "/", timeout=10) as response:
        html = response.read().decode()
    for asset in ("static/dashboard.css", "static/dashboard.js"):
        assert asset in html
        with urllib.request.urlopen(f"{processor.admin_url}/{asset}", timeout=10) as response:
            body = response.read().decode()
        assert "http://" not in body.replace("http://www.w3.org/2000/svg", "") and "https://" not in body
    assert "https://" not in html and "//cdn" not in html
