"""Reading a running processor's admin API, for the commands that do (report, gate, postmortem).

Standard library only, so these commands work without the processor extra.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

DEFAULT_ADMIN = "http://localhost:9464"


def add_admin_arguments(parser: argparse.ArgumentParser, *, timeout: float = 10.0) -> None:
    """``--admin`` (the processor's admin address) and ``--timeout``, shared by the client commands."""
    parser.add_argument(
        "--admin", default=DEFAULT_ADMIN, help=f"the processor's admin address (default {DEFAULT_ADMIN})"
    )
    parser.add_argument(
        "--timeout", type=float, default=timeout, help=f"seconds to wait for the processor (default {timeout:g})"
    )


class AdminError(Exception):
    """The processor could not be read (``refused`` False) or refused the request (``refused`` True).

    The message says which and why, with the processor's own reason for a refusal.
    """

    def __init__(self, message: str, *, refused: bool) -> None:
        super().__init__(message)
        self.refused = refused


def base_url(admin: str) -> str:
    """``localhost:9464`` or ``http://host:port/`` → ``http://host:port``."""
    return (admin if "://" in admin else f"http://{admin}").rstrip("/")


def get_json(admin: str, path: str, query: Sequence[tuple[str, str]], timeout: float) -> dict[str, Any]:
    """GET ``path`` with ``query`` from the admin API; raises `AdminError`."""
    url = f"{base_url(admin)}{path}?{urllib.parse.urlencode(query)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            reason = json.loads(error.read()).get("error", error.reason)
        except (ValueError, AttributeError):
            reason = error.reason
        raise AdminError(f"the processor refused the request: {reason}", refused=True) from None
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise AdminError(
            f"cannot read {base_url(admin)}{path}: {getattr(error, 'reason', error)}", refused=False
        ) from None
    if not isinstance(document, dict):
        raise AdminError(f"{path} did not answer a JSON object", refused=False)
    return document
