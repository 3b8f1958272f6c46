"""Gateway wiring: settings -> logging -> uvicorn (which handles SIGTERM and the lifespan)."""

from __future__ import annotations

import uvicorn

from services.gateway.app import create_app
from shared.logging import configure_logging
from shared.metrics import Metrics
from shared.settings import load_settings


def main() -> None:
    settings = load_settings()
    configure_logging(settings, "gateway")
    uvicorn.run(
        create_app(settings, Metrics("gateway", settings.instance)),
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
    )


if __name__ == "__main__":
    main()
