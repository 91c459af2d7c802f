"""Reading a config file: the parsed YAML document, or a `ConfigurationError` saying what is wrong with it."""

from __future__ import annotations

from typing import Any, Final

import yaml

from otel_impact import ConfigurationError

MAX_CONFIG_BYTES: Final = 1 << 20


def read_yaml(path: str) -> Any:
    """The parsed YAML document in ``path`` (``None`` for an empty file).

    Raises `ConfigurationError` for a file that cannot be read, is larger than 1 MiB or is not
    valid YAML (naming the line and column): nothing of it can be read then.
    """
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
