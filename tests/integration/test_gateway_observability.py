"""The gateway's /metrics, /api/overview and dashboard, in-process against the real servers."""

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.app import create_app
from shared.settings import Settings


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            yield c


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


async def test_metrics_count_accepted_jobs_and_requests_by_route(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    accepted = await client.post("/batches", json={"kind": "io", "count": 25})
    batch_id = accepted.json()["batch_id"]
    assert (await client.get(f"/batches/{batch_id}")).status_code == 200
    assert (await client.get("/no-such-page")).status_code == 404
    assert (await client.get("/static/dashboard.css")).status_code == 200
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    base = {"service": "gateway", "instance": settings.instance}
    assert samples(answer.text, "coord_jobs_accepted_total") == [({**base, "kind": "io"}, 25.0)]
    requests = {
        (labels["method"], labels["route"], labels["status"]): value
        for labels, value in samples(answer.text, "coord_http_requests_total")
    }
    assert requests[("POST", "/batches", "202")] == 1
    assert requests[("GET", "/batches/{batch_id}", "200")] == 1
    assert requests[("GET", "unmatched", "404")] == 1
    assert requests[("GET", "/static", "200")] == 1
    assert not any(batch_id in route for _, route, _ in requests)


async def test_overview_has_heartbeats_queue_depths_and_batches_in_flight(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await client.post("/batches", json={"kind": "io", "count": 7})
    deadline = time.monotonic() + 10
    while True:
        overview = (await client.get("/api/overview")).json()
        ready = (
            overview["queues"].get("jobs") == 7
            and overview["batches_in_flight"] == 1
            and any(i["service"] == "gateway" for i in overview["instances"])
        )
        if ready or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert overview["namespace"] == settings.namespace
    assert overview["queues"]["jobs"] == 7
    assert overview["batches_in_flight"] == 1
    (gateway,) = [i for i in overview["instances"] if i["service"] == "gateway"]
    assert gateway["metrics_port"] == settings.gateway_port
    assert gateway["stale"] is False
    assert set(gateway["loop_lag_recent_ms"]) >= {"p50", "p99", "max"}
    metrics = (await client.get("/metrics")).text
    assert samples(metrics, "coord_batches_in_flight")[0][1] == 1
    depths = {labels["queue"]: value for labels, value in samples(metrics, "coord_queue_depth")}
    assert depths[settings.names.jobs_queue] == 7


async def test_dashboard_page_and_its_assets_are_served(client: httpx.AsyncClient) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "://" not in page.text, "the page must work offline: no external URL"
    for asset in ("/static/dashboard.js", "/static/dashboard.css"):
        assert asset in page.text
        served = await client.get(asset)
        assert served.status_code == 200
        assert "://" not in served.text
