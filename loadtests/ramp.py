"""The step ramp as plain arithmetic: how many users should run at a given second.

Kept apart from the Locust shape class so it can be tested without importing Locust.
"""

from __future__ import annotations

import math


def step_users(elapsed_s: float, *, peak_users: int, steps: int, duration_s: float) -> int | None:
    """Users at ``elapsed_s``: ``steps`` equal stairs up to ``peak_users``; ``None`` once over.

    Each stair lasts ``duration_s / steps``, so the last one holds the peak for as long as
    every other stair, which lets the charts show a plateau per level.
    """
    if peak_users < 1 or steps < 1 or duration_s <= 0:
        raise ValueError("step ramp needs peak_users >= 1, steps >= 1 and duration_s > 0")
    if elapsed_s >= duration_s:
        return None
    stair = min(int(elapsed_s / (duration_s / steps)), steps - 1)
    return max(1, math.ceil(peak_users * (stair + 1) / steps))
