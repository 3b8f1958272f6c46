import random

import pytest

from loadtests.profile import LoadProfile, ProfileError, parse_mix
from shared.jobs import BatchRequest, JobKind


def test_mix_lists_kinds_with_equal_weight() -> None:
    assert parse_mix("cpu,io,mixed") == {JobKind.CPU: 1, JobKind.IO: 1, JobKind.MIXED: 1}


def test_mix_takes_weights_and_drops_zero() -> None:
    assert parse_mix(" CPU:3, io:1 ,mixed:0") == {JobKind.CPU: 3, JobKind.IO: 1}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("gpu", "unknown job kind 'gpu'"),
        ("cpu:x", "is not a number"),
        ("cpu:-1", "is negative"),
        ("", "names no job kind"),
        ("io:0", "names no job kind"),
    ],
)
def test_bad_mix_is_one_line(text: str, reason: str) -> None:
    with pytest.raises(ProfileError, match=reason) as caught:
        parse_mix(text)
    assert "\n" not in str(caught.value)


def test_weights_split_waiters_and_submitters_by_mix() -> None:
    profile = LoadProfile(mix=parse_mix("cpu:3,io:1"), waiters=0.5)
    assert profile.user_weights() == {"cpu": 375, "io": 125, "waiter": 500}


def test_all_waiters_leaves_submitters_at_zero() -> None:
    weights = LoadProfile(mix=parse_mix("io"), waiters=1).user_weights()
    assert weights == {"io": 0, "waiter": 1000}


def test_batch_body_is_a_valid_request_within_the_range() -> None:
    profile = LoadProfile(count_min=2, count_max=4, cpu_n=5000, io_ms=7)
    rng = random.Random(1)
    bodies = [profile.batch_body(JobKind.MIXED, rng) for _ in range(200)]
    assert {body["count"] for body in bodies} == {2, 3, 4}
    request = BatchRequest.model_validate(bodies[0])
    assert (request.kind, request.params.n, request.params.io_ms) == (JobKind.MIXED, 5000, 7)


def test_pick_kind_follows_the_weights() -> None:
    profile = LoadProfile(mix=parse_mix("cpu:9,io:1"))
    rng = random.Random(7)
    picks = [profile.pick_kind(rng) for _ in range(2000)]
    assert 0.85 < picks.count(JobKind.CPU) / len(picks) < 0.95


@pytest.mark.parametrize(
    "overrides",
    [
        {"waiters": 1.5},
        {"cpu_n": 1},
        {"io_ms": -1},
        {"count_min": 5, "count_max": 4},
        {"think_min_s": 2.0, "think_max_s": 1.0},
        {"wait_s": 0},
        {"wait_s": 61},
    ],
)
def test_out_of_range_profile_is_refused(overrides: dict[str, float]) -> None:
    with pytest.raises(ProfileError):
        LoadProfile(**overrides)


def test_api_key_becomes_a_header() -> None:
    assert LoadProfile(api_key="s3cret").headers() == {"X-API-Key": "s3cret"}
    assert LoadProfile().headers() == {}
