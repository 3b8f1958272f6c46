"""The bench's bare relay really moves every message through both hops."""

from __future__ import annotations

from coordctl.namespace import purge_namespace
from loadtests.bench.ceiling import Hops, measure_ceiling
from shared.settings import Settings


async def test_the_bare_relay_delivers_every_message(settings: Settings) -> None:
    hops = Hops(
        settings.amqp_url.get_secret_value(),
        f"{settings.namespace}.bench.hop1",
        f"{settings.namespace}.bench.hop2",
    )
    try:
        result = await measure_ceiling(hops, 300, window=64)
    finally:
        await purge_namespace(settings, extra_queues=(hops.first, hops.second))
    assert result.messages == 300
    assert result.seconds > 0 and result.jobs_s > 0
