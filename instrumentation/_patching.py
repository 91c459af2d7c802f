"""Composing our hooks with the user's, and reversible patches of instrumentation entry points.

Hooks are composed, never replaced: ours runs first, then the hook the user (or their distro)
passed, with the same arguments, so a user's hook sees the attribution and an explicit
``set_customer`` in it wins. Composing twice does not call ours twice. An instrumentation takes
its hooks either as keyword arguments of its instrumentor's public ``instrument(**kwargs)``
(`hook_instrument_arguments`) or as attributes of the middleware it builds
(`hook_middleware_attribute`).

Why patch at all: under ``opentelemetry-instrument`` the distro calls ``instrument()`` on each
instrumentor itself, with no way for us to add arguments, and an instrumentor instruments once
(a second ``instrument(request_hook=...)`` is ignored), so calling it first with our hooks
would drop the hooks of a user who instruments in code. Only public names are replaced (the
instrumentor's ``instrument``, the middleware's ``__init__``); every patch is undone by
`undo_all`, and the tests in tests/unit/instrumentation check that the instrumentors still
take the hook arguments we pass.
"""

from __future__ import annotations

import functools
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
    """``owner.name`` replaced by ``replacement``; `undo` puts ``original`` back.

    ``inherited`` means ``owner`` had no ``name`` of its own (it came from a base class): undo
    removes the replacement instead of setting the original on ``owner``.
    """

    owner: Any
    name: str
    original: Any
    replacement: Any
    inherited: bool = False

    def undo(self) -> None:
        if getattr(self.owner, self.name, None) is self.replacement:
            if self.inherited:
                delattr(self.owner, self.name)
            else:
                setattr(self.owner, self.name, self.original)


_lock = threading.Lock()
_patches: list[Patch] = []


def patch(owner: Any, name: str, make: Callable[[Any], Any]) -> bool:
    """Replace ``owner.name`` by ``make(original)``, once. Returns ``False`` when already patched."""
    with _lock:
        original = getattr(owner, name)
        if getattr(original, _ORIGINAL, None) is not None:
            return False
        inherited = isinstance(owner, type) and name not in vars(owner)
        replacement = make(original)
        setattr(replacement, _ORIGINAL, original)
        setattr(owner, name, replacement)
        _patches.append(Patch(owner, name, original, replacement, inherited))
        return True


def undo_all() -> None:
    """Undo every patch, newest first."""
    with _lock:
        while _patches:
            _patches.pop().undo()


def hook_instrument_arguments(instrumentor: type, **hooks: Callable[..., None]) -> bool:
    """Compose each of ``hooks`` into the hook argument of that name of every later
    ``instrumentor().instrument(...)`` call. Returns ``False`` when already done.

    ``instrument(**kwargs)`` is `BaseInstrumentor`'s public entry point, and it hands its keyword
    arguments to the instrumentation, which documents its hooks as such arguments.
    """

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def instrument(self: Any, **kwargs: Any) -> Any:
            for name, hook in hooks.items():
                kwargs[name] = compose(hook, kwargs.get(name))
            return original(self, **kwargs)

        return instrument

    return patch(instrumentor, "instrument", make)


def hook_middleware_attribute(middleware: type, name: str, hook: Callable[..., None]) -> bool:
    """Compose ``hook`` into the ``name`` hook attribute of every ``middleware`` made from now on.
    Returns ``False`` when already done."""
    return hook_middleware_attributes(middleware, **{name: hook})


def hook_middleware_attributes(middleware: type, **hooks: Callable[..., None]) -> bool:
    """Compose each of ``hooks`` into the hook attribute of that name of every ``middleware`` made
    from now on. Returns ``False`` when already done."""

    def make(original: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(original)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            for name, hook in hooks.items():
                setattr(self, name, compose(hook, getattr(self, name, None)))

        return __init__

    return patch(middleware, "__init__", make)
