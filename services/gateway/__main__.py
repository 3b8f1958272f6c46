"""Gateway wiring: settings -> logging -> uvicorn (which handles SIGTERM and the lifespan).

Exit codes as ``uvicorn.run`` gives them (3: it never started), and 1 when a background
task of the gateway failed, which stops the server.
"""

from __future__ import annotations

import contextlib

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from services.gateway.app import create_app
from shared.logging import configure_logging
from shared.metrics import GatewayMetrics
from shared.settings import load_settings


def main() -> None:
    settings = load_settings()
    configure_logging(settings, "gateway")
    failures: list[BaseException] = []

    def stop_serving(error: BaseException) -> None:
        failures.append(error)
        server.should_exit = True

    app = create_app(settings, GatewayMetrics(settings.instance), on_failure=stop_serving)
    server = uvicorn.Server(
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
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
