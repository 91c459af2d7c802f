"""Serves the minimal Django site `zc_django_site` under opentelemetry-instrument (set
``DJANGO_SETTINGS_MODULE=zc_django_site``)."""

from __future__ import annotations

from django.core.wsgi import get_wsgi_application
from zc_common import serve_wsgi

if __name__ == "__main__":
    serve_wsgi(get_wsgi_application())
