"""Baselines for the gateway benchmark: the same ``POST /batches`` without Redis or a broker.

``bare`` is Starlette answering 202 at once: what uvicorn alone costs per request.
``fastapi`` parses and validates the body with the gateway's own ``BatchRequest`` model
before answering: what the framework adds. The gateway then adds Redis and the broker's
confirm, so the three side by side show where a request's time goes.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.jobs import BatchRequest


async def accept(_: Request) -> JSONResponse:
    return JSONResponse({"batch_id": uuid.uuid4().hex, "status": "running"}, status_code=202)


bare = Starlette(routes=[Route("/batches", accept, methods=["POST"])])

validated = FastAPI(title="gateway baseline")


@validated.post("/batches", status_code=202)
async def accept_validated(body: BatchRequest) -> dict[str, str]:
    return {"batch_id": uuid.uuid4().hex, "kind": body.kind.value, "status": "running"}
