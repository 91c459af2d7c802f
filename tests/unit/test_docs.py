"""The documentation stays short where it must, and every link and path it gives leads somewhere.

Covers README.md, docs/*.md and benchmarks/README.md: relative links resolve to files (and
``#anchors`` to headings, with GitHub's slugs), and every ``scripts/...`` or ``examples/...``
path in a command block exists (and ``benchmarks/...`` too).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from support.paths import ROOT

README = ROOT / "README.md"
README_MAX_BYTES = 12_000
DOCS = sorted([README, *(ROOT / "docs").glob("*.md"), ROOT / "benchmarks" / "README.md"])
COMMAND_LANGUAGES = frozenset({"sh", "bash", "shell", "console"})

FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
REPO_PATH = re.compile(r"(?<![\w./-])((?:scripts|examples|benchmarks)/[\w./-]*[\w/])")


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _blocks(text: str) -> Iterator[tuple[bool, str, str]]:
    """``(in_fence, language, line)`` for every line; fence lines themselves count as fenced."""
    fence: str | None = None
    language = ""
    for line in text.splitlines():
        match = FENCE.match(line.strip())
        if fence is None and match:
            fence, language = match.group(1), match.group(2).lower()
            yield True, language, line
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)) and not line.strip()[len(fence) :]:
            fence = None
            yield True, language, line
        else:
            yield fence is not None, language if fence is not None else "", line


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed, spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip())  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, duplicates numbered as GitHub does (``-1``, ``-2``)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for fenced, _, line in _blocks(path.read_text()):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fenced or not match:
            continue
        slug = github_slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def relative_links(path: Path) -> Iterator[str]:
    for fenced, _, line in _blocks(path.read_text()):
        if fenced:
            continue
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, https:, mailto: ...
                yield target


def command_block_paths(path: Path) -> Iterator[str]:
    for fenced, language, line in _blocks(path.read_text()):
        if fenced and language in COMMAND_LANGUAGES and not FENCE.match(line.strip()):
            yield from REPO_PATH.findall(line)


def test_the_documents_exist() -> None:
    names = {_name(path) for path in DOCS}
    assert {"README.md", "docs/README.md", "benchmarks/README.md"} <= names
    for path in DOCS:
        assert path.is_file(), _name(path)


def test_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes; move reference material into docs/"


def test_github_slug() -> None:
    assert github_slug("Configuration (`sli:` section)") == "configuration-sli-section"
    assert github_slug("Full path: receive → derive → forward") == "full-path-receive--derive--forward"
    assert github_slug("Canary gate: `otel-impact gate`") == "canary-gate-otel-impact-gate"
    assert github_slug("Dependencies and why") == "dependencies-and-why"


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_relative_links_resolve(doc: Path) -> None:
    broken = []
    for target in relative_links(doc):
        file_part, _, anchor = target.partition("#")
        linked = (doc.parent / file_part).resolve() if file_part else doc
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or anchor not in anchors(linked)):
            broken.append(f"{target}: no heading #{anchor} in {_name(linked)}")
    assert not broken, f"{_name(doc)}: " + "; ".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=_name)
def test_command_blocks_name_existing_paths(doc: Path) -> None:
    missing = [p for p in command_block_paths(doc) if not (ROOT / p).exists()]
    assert not missing, f"{_name(doc)} runs paths that do not exist: {missing}"


def test_the_readme_shows_both_quickstart_commands() -> None:
    commands = list(command_block_paths(README))
    assert "scripts/demo" in commands and "scripts/test" in commands


def test_the_processor_config_example_is_the_tested_one() -> None:
    """The example in docs/processor-config.md is the file the config tests load."""
    doc = (ROOT / "docs" / "processor-config.md").read_text()
    section = doc[doc.index("## Config file") :]
    shown = re.search(r"```yaml\n(.*?)```", section, flags=re.S)
    assert shown is not None
    tested = ROOT / "tests" / "unit" / "processors" / "config" / "testdata" / "config.yaml"
    assert yaml.safe_load(shown.group(1)) == yaml.safe_load(tested.read_text())
