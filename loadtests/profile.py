"""What the load test sends: the job mix, job sizes, think time and the share of waiting users.

Pure Python without Locust, so the runner can validate options before Locust starts and the
unit tests can check the arithmetic without gevent's monkey-patching. The defaults are small
enough that a 2-core machine running the whole cluster keeps up with 50 users.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from shared.jobs import MAX_BATCH, MAX_IO_MS, MAX_N, JobKind

DEFAULT_MIX = "cpu,io,mixed"
WEIGHT_SCALE = 1000


class ProfileError(ValueError):
    """An option a person can fix; printed as one line."""


def parse_mix(text: str) -> dict[JobKind, int]:
    """``"cpu,io"`` or ``"cpu:3,io:1"`` -> the relative weight of each kind of job."""
    mix: dict[JobKind, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, weight_text = item.partition(":")
        try:
            kind = JobKind(name.strip().lower())
        except ValueError:
            choices = ", ".join(k.value for k in JobKind)
            raise ProfileError(
                f"unknown job kind {name!r} in mix {text!r} (use {choices})"
            ) from None
        try:
            weight = int(weight_text) if weight_text else 1
        except ValueError:
            raise ProfileError(f"weight of {name!r} in mix {text!r} is not a number") from None
        if weight < 0:
            raise ProfileError(f"weight of {name!r} in mix {text!r} is negative")
        mix[kind] = mix.get(kind, 0) + weight
    if not any(mix.values()):
        raise ProfileError(f"mix {text!r} names no job kind with a weight above 0")
    return {kind: weight for kind, weight in mix.items() if weight > 0}


@dataclass(frozen=True)
class LoadProfile:
    """Everything a simulated user needs to build its requests."""

    mix: dict[JobKind, int] = field(default_factory=lambda: parse_mix(DEFAULT_MIX))
    waiters: float = 0.5
    cpu_n: int = 10_000
    io_ms: int = 20
    count_min: int = 1
    count_max: int = 10
    think_min_s: float = 0.5
    think_max_s: float = 1.5
    wait_s: float = 30.0
    batch_timeout_s: float = 120.0
    api_key: str | None = None

    def __post_init__(self) -> None:
        checks = [
            (0 <= self.waiters <= 1, "waiters must be a share between 0 and 1"),
            (2 <= self.cpu_n <= MAX_N, f"cpu n must be between 2 and {MAX_N}"),
            (0 <= self.io_ms <= MAX_IO_MS, f"io_ms must be between 0 and {MAX_IO_MS}"),
            (
                1 <= self.count_min <= self.count_max <= MAX_BATCH,
                f"batch count range must satisfy 1 <= min <= max <= {MAX_BATCH}",
            ),
            (0 <= self.think_min_s <= self.think_max_s, "think time must satisfy 0 <= min <= max"),
            (0 < self.wait_s <= 60, "long-poll wait must be above 0 and at most 60 s"),
            (self.batch_timeout_s > 0, "batch timeout must be above 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ProfileError(message)

    def user_weights(self) -> dict[str, int]:
        """Locust weight of each user class: submitters share ``1 - waiters`` by the mix."""
        total = sum(self.mix.values())
        weights = {
            f"{kind.value}": round(WEIGHT_SCALE * (1 - self.waiters) * weight / total)
            for kind, weight in self.mix.items()
        }
        weights["waiter"] = round(WEIGHT_SCALE * self.waiters)
        return weights

    def pick_kind(self, rng: random.Random) -> JobKind:
        kinds = list(self.mix)
        return rng.choices(kinds, weights=[self.mix[k] for k in kinds])[0]

    def batch_body(self, kind: JobKind, rng: random.Random) -> dict[str, Any]:
        """A ``POST /batches`` body of ``kind`` with a random count in the configured range."""
        return {
            "kind": kind.value,
            "count": rng.randint(self.count_min, self.count_max),
            "params": {"n": self.cpu_n, "io_ms": self.io_ms},
        }

    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key} if self.api_key else {}
