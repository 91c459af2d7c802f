"""Registered top-level config sections, so components add their own without touching the loader.

A component (the SLI engine's ``sli:``, ``slos:``, ``alerting:``, ``dashboard:``) registers its
section once, at import time::

    from otel_impact.processors.config import Fields, register_section

    def parse_sli(raw: object, path: str) -> SliConfig:
        fields = Fields(raw, path)       # raw is None when the file has no such section
        config = SliConfig(max_segments=fields.take_int("max_segments", 1000, minimum=1))
        fields.done()                    # unknown keys are an error; raises every problem noted
        return config

    register_section("sli", parse_sli)

and lists its module in `SECTION_MODULES`, which the loader imports before reading a file. The
parser gets the raw YAML value (``None`` when the section is absent, so it returns the default)
and the path to use in messages; it returns a frozen dataclass and raises `ConfigurationError`
naming the field and the fix (`ConfigurationErrors` for several): the returned object is
validated. Problems from every section are reported together. A top-level key that is neither
built in nor registered is an error.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SectionParser = Callable[[Any, str], Any]
"""``parser(raw_yaml_value_or_None, path) -> frozen config object``."""

SECTION_MODULES: tuple[str, ...] = ("otel_impact.processors.components",)
"""Modules that call `register_section` when imported (e.g. ``otel_impact.processors.sli.config``)."""


@dataclass(frozen=True)
class Section:
    name: str
    parse: SectionParser


_sections: dict[str, Section] = {}


def register_section(name: str, parser: SectionParser) -> None:
    """Register the parser of top-level section ``name``. Registering the same parser twice is a no-op."""
    known = _sections.get(name)
    if known is not None and known.parse is not parser:
        raise ValueError(f"config section {name!r} is already registered by another parser.")
    _sections[name] = Section(name, parser)


def unregister_section(name: str) -> None:
    """Remove a registered section (for tests)."""
    _sections.pop(name, None)


def registered_sections() -> dict[str, Section]:
    """Every registered section, after importing `SECTION_MODULES`."""
    for module in SECTION_MODULES:
        importlib.import_module(module)
    return dict(_sections)
