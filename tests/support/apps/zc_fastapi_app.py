"""A FastAPI app on uvicorn under opentelemetry-instrument; ``/fanout`` calls the backend with httpx.AsyncClient."""

from __future__ import annotations

import os
import socket
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from opentelemetry import trace
from zc_common import state_json, status_json

app = FastAPI()
tracer = trace.get_tracer("zc-fastapi")


@app.get("/whoami")
async def whoami() -> dict[str, Any]:
    with tracer.start_as_current_span("fastapi.work"):
        return state_json()


@app.get("/fanout")
async def fanout() -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"{os.environ['ZC_BACKEND_URL']}/echo", timeout=10)
    return {"httpx": reply.json()["headers"], "state": state_json()}


@app.get("/_status")
async def impact_status() -> dict[str, Any]:
    return status_json()


if __name__ == "__main__":
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
