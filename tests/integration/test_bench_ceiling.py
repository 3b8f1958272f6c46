"""The bench's bare relay really moves every message through both hops."""

from __future__ import annotations

from coordctl.namespace import purge_namespace
from loadtests.bench.ceiling import Hops, measure_ceiling, relay_latency
from shared.settings import Settings


async def test_the_bare_relay_delivers_every_message(settings: Settings) -> None:
    hops = Hops.of(settings, "bench")
    try:
        result = await measure_ceiling(hops, 300, window=64)
    finally:
        await purge_namespace(settings, extra_queues=(hops.first, hops.second))
    assert result.messages == 300
    assert result.seconds > 0 and result.jobs_s > 0


async def test_the_bare_relay_times_every_message_after_the_warm_up(settings: Settings) -> None:
    hops = Hops.of(settings, "latency")
    try:
        figures = await relay_latency(
            hops, rate_jobs_s=200, seconds=0.5, per_batch=10, window=64, warmup_s=0.2
        )
    finally:
        await purge_namespace(settings, extra_queues=(hops.first, hops.second))
    # 0.7 s at one batch of 10 every 50 ms: 14 batches, the first 4 (0.2 s) not counted.
    assert figures["jobs"] == 100
    assert figures["p50"] is not None and figures["p99"] is not None
    assert figures["p50"] <= figures["p99"]
