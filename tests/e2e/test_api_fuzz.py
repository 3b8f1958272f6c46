"""Property-based requests from the gateway's own OpenAPI schema find no server error.

Schemathesis generates the cases and Hypothesis runs them against a real gateway process;
its pytest plugin (``from_fixture``) is not used because it does not support pytest 9 yet.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from shared.settings import WorkerMode
from tests.conftest import ClusterFactory

MAX_FUZZ_COUNT = 20
"""Generated batches are capped at this many jobs so the run stays short; the bounds of
``count`` itself are covered by the unit and integration tests."""


def test_no_input_gets_a_server_error(start_cluster: ClusterFactory) -> None:
    cluster = start_cluster(workers=1, mode=WorkerMode.THREADS)
    schema = schemathesis.openapi.from_url(f"{cluster.gateway_url}/openapi.json")

    @schema.hook
    def map_body(context: Any, body: Any) -> Any:
        if isinstance(body, dict) and isinstance(body.get("count"), int | float):
            body["count"] = min(body["count"], MAX_FUZZ_COUNT)
        return body

    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/batches", "/batches/{batch_id}", "/readyz"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=[not_a_server_error])

        no_server_error()
