import time

import pytest
from pydantic import ValidationError

from shared.heartbeat import (
    AggregatorBeat,
    GatewayBeat,
    LoopLag,
    WorkerBeat,
    parse_beat,
    parse_beats,
)


def test_each_service_round_trips_through_json_as_its_own_model() -> None:
    lag = LoopLag(p50=0.1, p99=2.5, max=3.0, max_since_start=9.0, histogram={"12": 40})
    beats = [
        GatewayBeat(instance="g", port=8500, accepted_jobs=7, loop_lag_ms=lag),
        WorkerBeat(instance="w", mode="processes", completed=5, in_flight=2),
        AggregatorBeat(instance="a", folded=11, batches_done=1),
    ]
    for beat in beats:
        assert parse_beat(beat.model_dump_json()) == beat
        assert parse_beat(beat.model_dump(mode="json")) == beat
    assert [b.done for b in beats] == [7, 5, 11]


def test_a_reader_gets_the_service_figures_by_name() -> None:
    beat = parse_beat(
        b'{"service":"worker","instance":"w-1","last_seen":1.5,"completed":3,'
        b'"loop_lag_ms":{"p50":0.2,"p99":1.0,"max":4.0,"max_since_start":4.0}}'
    )
    assert isinstance(beat, WorkerBeat)
    assert (beat.completed, beat.last_seen, beat.loop_lag_ms.p99) == (3, 1.5, 1.0)


def test_an_unknown_service_is_refused_and_left_out_of_a_listing() -> None:
    with pytest.raises(ValidationError):
        parse_beat({"service": "poller", "instance": "p"})
    beats = parse_beats(
        [
            {"service": "poller", "instance": "p"},
            {"service": "worker", "instance": "w", "last_seen": time.time()},
            {"service": "aggregator", "instance": "a"},
        ]
    )
    assert [(b.service, b.instance) for b in beats] == [("aggregator", "a"), ("worker", "w")]
