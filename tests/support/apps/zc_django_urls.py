"""Middleware, views and URLs of the minimal Django site.

`TokenUserMiddleware` stands in for Django's authentication middleware: like it, it runs after
the OpenTelemetry middleware and sets ``request.user`` (from ``Authorization: Token <username>``),
so ``request.user`` does not exist yet when the instrumentation's request hook runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import urllib3
from django.http import HttpRequest, JsonResponse
from django.urls import path
from opentelemetry import trace
from zc_common import state_json, status_json

import otel_impact


class TokenUser:
    is_authenticated = True

    def __init__(self, username: str) -> None:
        self.username = username


class AnonymousUser:
    is_authenticated = False


class TokenUserMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> Any:
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        request.user = TokenUser(token) if scheme == "Token" and token else AnonymousUser()  # type: ignore[assignment]
        return self.get_response(request)


def whoami(request: HttpRequest) -> JsonResponse:
    with trace.get_tracer("zc-django").start_as_current_span("django.work"):
        return JsonResponse(state_json())


def explicit(request: HttpRequest) -> JsonResponse:
    otel_impact.set_customer("explicit-django-9", tier="enterprise")  # the view's own call wins
    return JsonResponse(state_json())


def fanout(request: HttpRequest) -> JsonResponse:
    reply = urllib3.PoolManager().request("GET", f"{os.environ['ZC_BACKEND_URL']}/echo", timeout=10)
    return JsonResponse({"urllib3": json.loads(reply.data)["headers"], "state": state_json()})


def impact_status(request: HttpRequest) -> JsonResponse:
    return JsonResponse(status_json())


urlpatterns = [
    path("whoami", whoami),
    path("explicit", explicit),
    path("fanout", fanout),
    path("_status", impact_status),
]
