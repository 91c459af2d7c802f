"""Reading a config file: the parsed YAML document with its ``${env:NAME}`` references replaced.

A string value may refer to an environment variable as ``${env:NAME}`` (the OpenTelemetry
Collector's convention), alone or inside a longer string (``Bearer ${env:API_TOKEN}``); the
reference is replaced by the variable's value, always as a string. ``$${`` stands for a
literal ``${`` (``$${env:X}`` stays ``${env:X}``). Any other ``${...}`` is left as it is.
Mapping keys are never expanded. A reference to a variable that is not set is a problem of the
field that holds it, naming the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import yaml

from otel_impact import ConfigurationError

from .fields import Problems, join

MAX_CONFIG_BYTES: Final = 1 << 20

_REFERENCE: Final = re.compile(r"\$\$\{|\$\{env:([^}]*)\}")
_VARIABLE_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ConfigDocument:
    """A config file as read: ``data`` is the parsed YAML with its references replaced."""

    data: Any
    variables: frozenset[str] = frozenset()
    """The names of the environment variables the file refers to with ``${env:NAME}``."""


def read_document(path: str, problems: Problems, environ: Mapping[str, str] | None = None) -> ConfigDocument:
    """The config file in ``path``, parsed and expanded against ``environ`` (default: the process's).

    A reference to an unset variable is noted in ``problems`` under the field holding it and
    replaced by an empty string (the field's own checks then note nothing more: `Problems`
    keeps the first problem of a field). Raises `ConfigurationError` when nothing of the file
    can be read (see `read_yaml`).
    """
    data = _parse(path)
    env = os.environ if environ is None else environ
    variables: set[str] = set()
    return ConfigDocument(_expand(data, "", env, problems, variables), frozenset(variables))


def read_yaml(path: str, environ: Mapping[str, str] | None = None, *, sections: Collection[str] | None = None) -> Any:
    """The parsed YAML document in ``path`` (``None`` for an empty file), references replaced.

    With ``sections``, a tool reading only some top-level keys gets only those (when the
    document is a mapping), and references elsewhere in the file need no variable.

    Raises `ConfigurationError` for a file that cannot be read, is larger than 1 MiB or is not
    valid YAML (naming the line and column): nothing of it can be read then; and
    `ConfigurationErrors` naming every field that refers to an unset variable.
    """
    data = _parse(path)
    if sections is not None and isinstance(data, Mapping):
        data = {key: value for key, value in data.items() if key in sections}
    problems = Problems()
    expanded = _expand(data, "", os.environ if environ is None else environ, problems, set())
    problems.raise_if_any()
    return expanded


def _parse(path: str) -> Any:
    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigurationError(
            "--config", f"cannot read {path} ({error.strerror or type(error).__name__})", "point it to a readable file"
        ) from None
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigurationError("--config", "the file is larger than 1 MiB", "is this the right file?")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigurationError(path, f"{problem}{where}", "fix the YAML syntax") from None


def _expand(value: Any, path: str, env: Mapping[str, str], problems: Problems, variables: set[str]) -> Any:
    if isinstance(value, str):
        return _expand_string(value, path, env, problems, variables)
    if isinstance(value, Mapping):
        return {key: _expand(item, join(path, str(key)), env, problems, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(item, join(path, index), env, problems, variables) for index, item in enumerate(value)]
    return value


def _expand_string(text: str, path: str, env: Mapping[str, str], problems: Problems, variables: set[str]) -> str:
    if "${" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:  # $${ → a literal ${
            return "${"
        if not _VARIABLE_NAME.fullmatch(name):
            problems.add(
                path,
                f"${{env:{name}}} is not a variable reference",
                "write ${env:NAME} with a variable name, or $${ for a literal ${",
            )
            return ""
        variables.add(name)
        found = env.get(name)
        if found is None:
            problems.add(
                path,
                f"refers to ${{env:{name}}}, but {name} is not set",
                f"set {name} or write the value in the file",
            )
            return ""
        return found

    return _REFERENCE.sub(replace, text)
