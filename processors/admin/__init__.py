"""The admin HTTP server (health, readiness, metrics, and routes added by other components)."""

from .server import AdminServer

__all__ = ["AdminServer"]
