"""The group's sockets and names: several processes bind one port, each its own socket."""

from __future__ import annotations

import socket

import pytest

from coordctl.servers import free_port
from services.gateway.group import bind_reuse_port, member_env, member_instance
from shared.metrics import MULTIPROCESS_DIR_ENV


def test_two_sockets_bind_one_port_and_a_plain_bind_is_refused() -> None:
    port = free_port()
    first = bind_reuse_port("127.0.0.1", port)
    second = bind_reuse_port("127.0.0.1", port)
    try:
        for sock in (first, second):
            sock.listen()
        with socket.socket() as plain, pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    finally:
        first.close()
        second.close()


def test_each_member_is_named_and_numbered() -> None:
    env = member_env(
        {"COORD_NAMESPACE": "x"},
        gateways=3,
        index=2,
        instance=member_instance("pod-a", 2),
        metrics_dir="/tmp/m",
    )
    assert env == {
        "COORD_NAMESPACE": "x",
        "COORD_GATEWAYS": "3",
        "COORD_GATEWAY_INDEX": "2",
        "COORD_INSTANCE": "pod-a-2",
        MULTIPROCESS_DIR_ENV: "/tmp/m",
    }
