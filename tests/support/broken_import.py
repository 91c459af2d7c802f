"""A module whose import fails (for the callable-loading tests)."""

raise RuntimeError("this module cannot be imported at start-up")
