"""Settings of a minimal Django site (``DJANGO_SETTINGS_MODULE=zc_django_site``); see `zc_django_urls`."""

from __future__ import annotations

from typing import Any

SECRET_KEY = "zero-code-test-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "zc_django_urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, Any] = {}
MIDDLEWARE = ["zc_django_urls.TokenUserMiddleware"]
USE_TZ = True
LOGGING_CONFIG = None
