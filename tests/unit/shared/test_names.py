from shared.names import Names


def test_every_name_carries_the_namespace() -> None:
    names = Names("ns1")
    built = [
        *names.queues,
        names.dead_exchange,
        names.batch("b"),
        names.batch_seen("b"),
        names.batch_done_channel,
        names.batches_index,
        names.io_touch("j"),
        names.instances,
    ]
    assert all(name.startswith("ns1.") or name.startswith("ns1:") for name in built)
    assert len(set(built)) == len(built)


def test_redis_keys_share_the_prefix_used_to_purge() -> None:
    names = Names("ns1")
    assert names.batch("b").startswith(names.redis_prefix)
    assert names.instances.startswith(names.redis_prefix)
