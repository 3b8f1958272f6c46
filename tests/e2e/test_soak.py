"""A 60-second soak: exactly once at the end, and no sampled series drifting up.

``make soak`` is the benchmark (minutes, strict tolerance); this is its short version, with
a tolerant bound since a minute on a shared machine is noisy.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from loadtests.soak.__main__ import run_soak, soak_settings
from loadtests.soak.load import SoakPlan
from shared.settings import Settings

DURATION_S = 60.0
BATCH_TTL_S = 20
UNJUDGED = {"io_touch_keys"}
"""Their TTL (60 s) is as long as the whole run, so they cannot have levelled off yet."""


def test_a_minute_of_mixed_load_leaves_every_series_flat(
    settings: Settings, tmp_path: Path
) -> None:
    soak = soak_settings(
        settings,
        tmp_path / "cluster",
        port=settings.gateway_port,
        batch_ttl_s=BATCH_TTL_S,
        private_redis=True,
    ).replace(namespace=settings.namespace)
    plan = SoakPlan(
        duration_s=DURATION_S,
        warm_up_s=30.0,
        every_s=1.0,
        calibration_jobs=150,
    )
    out = tmp_path / "soak"
    out.mkdir()
    results = run_soak(soak, plan, workers=1, tolerance=0.5, out=out, console=Console(quiet=True))
    tally = results["tally"]
    assert tally["submitted_jobs"] > 100, tally
    assert results["exactly_once"], tally
    assert tally["failed_jobs"] == 0
    judged = {s["series"]: s for s in results["slopes"]}
    assert {"redis_used_memory_mb", "batch_keys", "status_read_ms"} <= set(judged)
    assert any(name.startswith("rss_mb:gateway") for name in judged)
    assert any(name.startswith("queue:") for name in judged)
    leaning = [s for name, s in judged.items() if not s["flat"] and name not in UNJUDGED]
    assert not leaning
    assert json.loads((out / "results.json").read_text())["exactly_once"] is True
    assert (out / "chart.png").stat().st_size > 0
