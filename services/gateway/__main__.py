"""Gateway wiring: settings -> logging -> uvicorn (which handles SIGTERM and the lifespan).

Exit codes as ``uvicorn.run`` gives them (3: it never started), and 1 when a background
task of the gateway failed, which stops the server. With ``COORD_GATEWAYS`` above 1 and no
``COORD_GATEWAY_INDEX``, this process supervises that many gateways on the one port
(:mod:`services.gateway.group`); with an index, it is one of them.
"""

from __future__ import annotations

import contextlib
import os

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from services.gateway.app import create_app
from services.gateway.group import bind_reuse_port, run_group
from services.gateway.server import GatewayServer
from shared.logging import configure_logging
from shared.metrics import GatewayMetrics, forget_process
from shared.settings import Settings, load_settings


def main() -> None:
    settings = load_settings()
    configure_logging(settings, "gateway")
    if settings.gateways > 1 and settings.gateway_index == 0:
        raise SystemExit(run_group(settings))
    serve(settings)


def serve(settings: Settings) -> None:
    failures: list[BaseException] = []

    def stop_serving(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    in_group = settings.gateways > 1
    app = create_app(settings, GatewayMetrics(settings.instance), on_failure=stop_serving)
    server = GatewayServer(
        uvicorn.Config(
            app,
            host=settings.gateway_host,
            port=settings.gateway_port,
            loop="uvloop",
            http="httptools",
            access_log=False,
            log_level=settings.log_level.lower(),
            timeout_graceful_shutdown=int(settings.drain_timeout_s),
        )
    )
    sockets = None
    if in_group:
        try:
            sockets = [bind_reuse_port(settings.gateway_host, settings.gateway_port)]
        except OSError as exc:
            structlog.get_logger().error("gateway_bind_failed", error=repr(exc))
            raise SystemExit(STARTUP_FAILURE) from exc
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=sockets)
    finally:
        if in_group:
            forget_process(os.getpid())
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
