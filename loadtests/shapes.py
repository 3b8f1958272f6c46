"""An optional step ramp: add it with ``-f loadtests/locustfile.py,loadtests/shapes.py``.

Locust uses a load shape whenever a locustfile defines one, so the shape lives in its own
file and the runner adds it only for ``--shape steps``.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests.ramp import step_users

DEFAULT_DURATION_S = 60


class StepRamp(LoadTestShape):
    """``--steps`` equal stairs up to ``--users`` over ``--run-time``, each held as long."""

    use_common_options = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        if options is None:
            return None
        users = step_users(
            self.get_run_time(),  # type: ignore[no-untyped-call]
            peak_users=options.num_users or 1,
            steps=options.steps,
            duration_s=options.run_time or DEFAULT_DURATION_S,
        )
        if users is None:
            return None
        return users, float(options.spawn_rate or users)
