"""The load test's own Locust command-line options, each also read from a ``LOAD_*`` variable.

Registered on Locust's parser, so ``locust -f loadtests/locustfile.py --help`` lists them, and
Locust's master hands them to its workers.
"""

from __future__ import annotations

import argparse
from typing import Any

from loadtests.profile import DEFAULT_MIX, LoadProfile, parse_mix
from shared.settings import Settings

DEFAULTS = LoadProfile()

OPTIONS: tuple[tuple[str, type, object, str], ...] = (
    (
        "mix",
        str,
        DEFAULT_MIX,
        "job kinds to submit, optionally weighted: cpu,io,mixed or cpu:3,io:1",
    ),
    (
        "waiters",
        float,
        DEFAULTS.waiters,
        "share of users that wait on every batch they submit (0..1); the rest only submit",
    ),
    ("cpu-n", int, DEFAULTS.cpu_n, "n of cpu and mixed jobs (count primes below n)"),
    ("io-ms", int, DEFAULTS.io_ms, "io_ms of io and mixed jobs"),
    ("count-min", int, DEFAULTS.count_min, "fewest jobs per batch"),
    ("count-max", int, DEFAULTS.count_max, "most jobs per batch"),
    ("think-min", float, DEFAULTS.think_min_s, "shortest pause between two tasks of a user, s"),
    ("think-max", float, DEFAULTS.think_max_s, "longest pause between two tasks of a user, s"),
    ("wait-s", float, DEFAULTS.wait_s, "long-poll timeout of each GET /batches/{id}?wait=S"),
    (
        "batch-timeout",
        float,
        DEFAULTS.batch_timeout_s,
        "a waited batch not done after this many seconds counts as a failure",
    ),
    ("api-key", str, None, "X-API-Key for POST /batches (default: COORD_API_KEY)"),
    ("steps", int, 4, "stairs of the step-ramp shape (loadtests/shapes.py) up to --users"),
    ("summary-json", str, None, "write totals and percentiles per request type here at the end"),
)


def add_arguments(parser: Any) -> None:
    """Add the options to Locust's parser; each is also read from ``LOAD_<NAME>``.

    They are read once at start-up, so they are kept out of the web UI's form, where a
    change would have no effect.
    """
    for name, kind, default, help_text in OPTIONS:
        parser.add_argument(
            f"--{name}",
            env_var=f"LOAD_{name.replace('-', '_').upper()}",
            type=kind,
            default=default,
            help=help_text,
            include_in_web_ui=False,
        )


def profile_from_options(options: argparse.Namespace, settings: Settings) -> LoadProfile:
    """The profile the options describe; raises ``ProfileError`` with a one-line reason."""
    api_key = options.api_key
    if not api_key and settings.api_key is not None:
        api_key = settings.api_key.get_secret_value()
    return LoadProfile(
        mix=parse_mix(options.mix),
        waiters=options.waiters,
        cpu_n=options.cpu_n,
        io_ms=options.io_ms,
        count_min=options.count_min,
        count_max=options.count_max,
        think_min_s=options.think_min,
        think_max_s=options.think_max,
        wait_s=options.wait_s,
        batch_timeout_s=options.batch_timeout,
        api_key=api_key or None,
    )


def default_host(settings: Settings) -> str:
    """The gateway the ``COORD_*`` settings describe, so ``make up`` and ``make load`` agree."""
    host = "127.0.0.1" if settings.gateway_host in ("0.0.0.0", "") else settings.gateway_host
    return f"http://{host}:{settings.gateway_port}"
