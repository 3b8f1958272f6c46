"""Locust entry point: ``locust -f loadtests/locustfile.py --host http://127.0.0.1:8000``.

The user classes live in ``loadtests/users.py``; this file wires the options to them:
``--mix`` and ``--waiters`` choose the classes and their weights, the job sizes come from the
other ``--*``/``LOAD_*`` options, and the host defaults to the gateway that the ``COORD_*``
settings describe. ``make load`` runs it headless; ``make load-ui`` with the web UI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from pydantic import ValidationError

from loadtests.options import add_arguments, default_host, profile_from_options
from loadtests.profile import ProfileError
from loadtests.summary import write_summary
from loadtests.users import BatchWaiter, CpuSubmitter, IoSubmitter, MixedSubmitter, configure_users
from shared.settings import load_settings

__all__ = ["BatchWaiter", "CpuSubmitter", "IoSubmitter", "MixedSubmitter"]

log = logging.getLogger("loadtests")


def on_parser(parser: Any, **_: Any) -> None:
    add_arguments(parser)


def on_init(environment: Environment, **_: Any) -> None:
    """Fix the user classes and the host before the first user spawns."""
    options = environment.parsed_options
    if options is None:
        return
    try:
        settings = load_settings()
        profile = profile_from_options(options, settings)
    except (ProfileError, ValidationError) as exc:
        log.error("error: %s", str(exc).splitlines()[0])
        raise SystemExit(2) from None
    environment.user_classes = list(configure_users(profile))
    if not environment.host:
        environment.host = default_host(settings)
    log.info(
        "load profile: mix=%s waiters=%.2f cpu_n=%d io_ms=%d count=%d..%d host=%s",
        options.mix,
        profile.waiters,
        profile.cpu_n,
        profile.io_ms,
        profile.count_min,
        profile.count_max,
        environment.host,
    )


def on_quitting(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None or not options.summary_json or getattr(options, "worker", False):
        return
    write_summary(
        environment.stats,
        Path(options.summary_json),
        host=environment.host,
        users=options.num_users,
        run_time_s=options.run_time,
        mix=options.mix,
        waiters=options.waiters,
        finished_at=time.time(),
    )


LISTENERS: tuple[tuple[Any, Callable[..., None]], ...] = (
    (events.init_command_line_parser, on_parser),
    (events.init, on_init),
    (events.quitting, on_quitting),
)
for hook, listener in LISTENERS:
    hook.add_listener(listener)
