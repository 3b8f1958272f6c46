"""make bench-gateway's arithmetic: medians over rounds, the ratios and the target's verdict."""

from __future__ import annotations

from typing import Any

from loadtests.bench_gateway import (
    PUBLISH_SHARE_TARGET,
    TARGET_USERS,
    cores_allow,
    evaluate_targets,
    medians,
    ratios,
)


def run(target: str, rps: float, p99: float, users: int = TARGET_USERS) -> dict[str, Any]:
    return {
        "target": target,
        "users": users,
        "rps": rps,
        "p50_ms": 1.0,
        "p95_ms": 2.0,
        "p99_ms": p99,
        "server_cpu_us_per_request": 500,
    }


def test_each_figure_is_the_median_of_its_rounds() -> None:
    rows = medians([run("gateway", 100, 9), run("gateway", 300, 30), run("gateway", 200, 10)])
    assert [(r["target"], r["rounds"], r["rps"], r["p99_ms"]) for r in rows] == [
        ("gateway", 3, 200, 10)
    ]


def test_the_target_is_met_at_its_threshold_and_missed_below() -> None:
    publish = run("publish", 1000, 10)
    met = ratios(medians([run("gateway", 1000 * PUBLISH_SHARE_TARGET, 20), publish]), "publish")
    missed = ratios(medians([run("gateway", 600, 20), publish]), "publish")
    assert met[0]["gateway_share"] == PUBLISH_SHARE_TARGET and met[0]["p99_ratio"] == 2.0
    assert [t["result"] for t in evaluate_targets(met)] == ["met"]
    assert [(t["figure"], t["result"]) for t in evaluate_targets(missed)] == [(0.6, "missed")]


def test_a_run_without_publish_or_the_target_user_count_says_not_measured() -> None:
    other_users = medians([run("gateway", 10, 1, users=10), run("publish", 10, 1, users=10)])
    for overhead in ([], ratios(other_users, "publish")):
        (target,) = evaluate_targets(overhead)
        assert (target["figure"], target["result"]) == (None, "not measured")
        assert target["threshold"] == f">= {PUBLISH_SHARE_TARGET}"


def test_the_cores_allow_all_cores_over_the_busy_share_of_one_gateway() -> None:
    runs = [
        {"rps": rps, "cpu_pct": {"machine (all processes)": busy}}
        for rps, busy in ((300, 150), (320, 160), (310, 170))
    ]
    bound = cores_allow(runs)
    assert bound is not None
    assert bound["rps"] == 310 and bound["machine_pct"] == 160
    assert bound["ratio"] == round(bound["capacity_pct"] / 160, 2)
