"""Schemathesis against the app's own OpenAPI schema: no generated request may cause a server error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from dashboards.app import create_app
from dashboards.policy import POLICY
from dashboards.sessions import create_token
from simulators.embedded_postgres import DatabaseUrls
from tests.dashboards.conftest import settings_for
from tests.dashboards.live import serve
from tests.dashboards.seed import World

EXAMPLES = 20


@pytest.fixture(scope="module")
def server(module_db_urls: DatabaseUrls, module_world: World) -> Iterator[str]:
    with serve(create_app(settings_for(module_db_urls.dashboard))) as url:
        yield url


@pytest.fixture(scope="module")
def tokens(module_db_url: str, module_world: World) -> dict[str, str]:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        return {role: create_token(conn, uid, "fuzz")[1] for role, uid in module_world.users.items()}


def _fuzz(
    op: Any, server: str, headers: dict[str, str], failures: list[str], statuses: dict[int, int]
) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=server, headers=headers, timeout=10)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 500:
            failures.append(f"{op.method.upper()} {op.path}: {response.status_code} for"
                            f" {case.path_parameters} {case.query} {case.body!r:.200}: {response.text[:200]}")

    run()


@pytest.mark.slow
def test_no_server_error_on_any_api_operation(server: str, tokens: dict[str, str]) -> None:
    raw = httpx.get(f"{server}/openapi.json", headers={"Authorization": f"Bearer {tokens['nurse']}"}).json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = [r.ok() for r in schema.get_all_operations()]  # type: ignore[union-attr]
    # The event stream never ends by design; its auth is covered by the role matrix and test_sse.
    operations = [op for op in operations if op.path != "/events/flags"]
    assert len(operations) >= 12
    failures: list[str] = []
    statuses: dict[int, int] = {}
    for op in operations:
        roles = POLICY.get((op.method.upper(), op.path))
        role = sorted(roles)[0] if roles else "nurse"
        _fuzz(op, server, {"Authorization": f"Bearer {tokens[role]}"}, failures, statuses)
    assert failures == []
    assert sum(statuses.values()) >= 5 * len(operations), statuses
    assert statuses.get(200, 0) > len(operations), statuses  # valid requests got through, not just 4xx
