"""Exceptions raised by otel-impact.

The tree::

    OtelImpactError                 base of everything otel-impact raises
    └── ConfigurationError          a setting is invalid; names the setting and the fix
        ├── ConfigurationErrors     several settings are invalid; ``problems`` lists each one
        └── HashKeyError            the pseudonymization key is missing, short or unreadable

On the hot path (span processing, context calls inside requests) nothing is raised: problems
are logged once and counted. These exceptions come from explicit configuration calls and from
the processor's start-up, where refusing to run is the safe answer.

No message ever contains a raw customer ID or key material.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ConfigurationError", "ConfigurationErrors", "HashKeyError", "OtelImpactError"]


class OtelImpactError(Exception):
    """Base class of every exception otel-impact raises."""


class ConfigurationError(OtelImpactError, ValueError):
    """A setting is invalid.

    ``setting`` is the variable, flag or config field at fault, and ``fix`` says what to do.
    """

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(f"{setting}: {problem}. Fix: {fix}")


class HashKeyError(ConfigurationError):
    """The pseudonymization key is missing, too short or cannot be read."""


class ConfigurationErrors(ConfigurationError):
    """Several settings are invalid: ``problems`` holds one `ConfigurationError` per setting.

    Config files are checked whole, so a user sees every problem at once; the message lists
    them one per line. Nested `ConfigurationErrors` are flattened.
    """

    def __init__(self, problems: Sequence[ConfigurationError]) -> None:
        flat: list[ConfigurationError] = []
        for problem in problems:
            flat.extend(problem.problems if isinstance(problem, ConfigurationErrors) else (problem,))
        if not flat:
            raise ValueError("ConfigurationErrors needs at least one problem")
        self.problems: tuple[ConfigurationError, ...] = tuple(flat)
        first = self.problems[0]
        super().__init__(first.setting, first.problem, first.fix)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)
