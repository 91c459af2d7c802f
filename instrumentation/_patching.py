"""Composing our hooks with the user's, and reversible patches of instrumentation entry points.

Hooks are composed, never replaced: ours runs first, then the hook the user (or their distro)
passed, with the same arguments, so a user's hook sees the attribution and an explicit
``set_customer`` in it wins. Composing twice does not call ours twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_OURS = "__otel_impact_hook__"
_ORIGINAL = "__otel_impact_original__"


def compose(ours: Callable[..., None], theirs: Callable[..., Any] | None) -> Callable[..., Any]:
    """A hook calling ``ours`` and then ``theirs`` (when given) with the same arguments.

    ``ours`` must not raise (every hook of ours catches its own errors); ``theirs`` keeps the
    behaviour it has without otel-impact, exceptions included.
    """
    if theirs is None or not callable(theirs):
        return ours
    if theirs is ours or getattr(theirs, _OURS, None) is ours:
        return theirs

    def both(*args: Any, **kwargs: Any) -> Any:
        ours(*args, **kwargs)
        return theirs(*args, **kwargs)

    setattr(both, _OURS, ours)
    both.__wrapped__ = theirs  # type: ignore[attr-defined]
    return both


@dataclass
class Patch:
    """``owner.name`` replaced by ``replacement``; `undo` puts ``original`` back."""

    owner: Any
    name: str
    original: Any
    replacement: Any

    def undo(self) -> None:
        if getattr(self.owner, self.name, None) is self.replacement:
            setattr(self.owner, self.name, self.original)


_lock = threading.Lock()
_patches: list[Patch] = []


def patch(owner: Any, name: str, make: Callable[[Any], Any]) -> bool:
    """Replace ``owner.name`` by ``make(original)``, once. Returns ``False`` when already patched."""
    with _lock:
        original = getattr(owner, name)
        if getattr(original, _ORIGINAL, None) is not None:
            return False
        replacement = make(original)
        setattr(replacement, _ORIGINAL, original)
        setattr(owner, name, replacement)
        _patches.append(Patch(owner, name, original, replacement))
        return True


def undo_all() -> None:
    """Undo every patch, newest first."""
    with _lock:
        while _patches:
            _patches.pop().undo()
