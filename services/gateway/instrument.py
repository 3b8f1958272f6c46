"""HTTP request metrics for the gateway, as a few lines of plain ASGI middleware.

Chosen over prometheus-fastapi-instrumentator: Starlette leaves the matched route in
``scope["route"]``, so the route template (``/batches/{batch_id}``, never the raw path
with its unbounded ids) is one attribute away; the figures land in the service's own
registry under the same ``coord_`` names and labels as every other metric; and there is
no second, differently named set of default metrics to configure away.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import GatewayMetrics

UNMATCHED = "unmatched"


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route's template; a mount (the static files) by its prefix.

    FastAPI leaves an ``APIRoute`` in ``scope["route"]``; a mount only extends
    ``root_path``, so its prefix is what was added. Anything else is ``unmatched``.
    """
    route = getattr(scope.get("route"), "path", None)
    if route:
        return str(route)
    mounted = str(scope.get("root_path", "")).removeprefix(root_path)
    return mounted or UNMATCHED


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: GatewayMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        root_path = scope.get("root_path", "")

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            route = route_template(scope, root_path)
            self.metrics.http_request(scope["method"], route, status, time.perf_counter() - started)
