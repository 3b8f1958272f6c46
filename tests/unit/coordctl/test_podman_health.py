"""coordctl.podman.health: which containers the driver probes, and how often."""

from __future__ import annotations

from coordctl.podman.health import HEALTHY_S, STARTING_S, Container, due, parse_ps

PS = """\
1c979ac75685 Up 20 seconds ago (healthy)
c9a4bfcbef29 Up 3 seconds ago (starting)
d191a8f8119d Up 12 seconds ago (unhealthy)
9ea0ed3fead8 Up 12 seconds ago
"""


def test_only_containers_with_a_healthcheck_are_listed() -> None:
    assert parse_ps(PS) == [
        Container("1c979ac75685", "healthy"),
        Container("c9a4bfcbef29", "starting"),
        Container("d191a8f8119d", "unhealthy"),
    ]


def test_starting_containers_are_probed_often_healthy_ones_rarely() -> None:
    containers = parse_ps(PS)
    never = due(containers, {}, now=100.0)
    assert never == [c.id for c in containers]
    probed = dict.fromkeys(never, 100.0)
    assert due(containers, probed, now=100.0 + STARTING_S) == ["c9a4bfcbef29"]
    later = due(containers, probed, now=100.0 + HEALTHY_S)
    assert set(later) == set(never)
