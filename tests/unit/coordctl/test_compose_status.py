"""`cluster status` under Compose: containers matched to the heartbeats of their processes."""

from __future__ import annotations

from coordctl.compose import members_by_process


def container(service: str, number: int, cid: str) -> dict[str, object]:
    return {"name": f"{service}-{number}", "service": service, "instance_prefix": f"{cid}-"}


def test_a_container_with_one_process_keeps_its_name_and_takes_its_heartbeat() -> None:
    rows = members_by_process([container("worker", 1, "aaa")], ["aaa-7", "bbb-7-1"])
    assert [(r["name"], r["instance"]) for r in rows] == [("worker-1", "aaa-7")]


def test_a_gateway_group_becomes_one_row_per_process() -> None:
    members = [container("gateway", 1, "bbb"), container("worker", 1, "aaa")]
    rows = members_by_process(members, ["bbb-7-2", "aaa-9", "bbb-7-1"])
    assert [(r["name"], r["instance"]) for r in rows] == [
        ("gateway-1.1", "bbb-7-1"),
        ("gateway-1.2", "bbb-7-2"),
        ("worker-1", "aaa-9"),
    ]
    assert all(r["service"] == "gateway" for r in rows[:2])


def test_a_container_without_a_heartbeat_is_still_listed_under_its_name() -> None:
    rows = members_by_process([container("aggregator", 1, "ccc")], [])
    assert [(r["name"], r["instance"]) for r in rows] == [("aggregator-1", "aggregator-1")]
