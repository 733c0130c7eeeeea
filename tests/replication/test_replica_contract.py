"""The API contract with every read served by a streaming standby: no GET of any operation
writes (a standby would refuse it with a 503), and answers conform as on the primary."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, settings

from swarm_director import create_app
from swarm_director.web.context import database
from tests.api.conftest import SHORT_STREAMS
from tests.api.test_contract import AUTH, CHECKS, TOKEN, _seed, schema
from tests.replication.cluster import Server, replay_caught_up, wait_until

pytestmark = pytest.mark.replication


@pytest.fixture(scope="module")
def replica_app(
    pair: tuple[Server, Server], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    primary, standby = pair
    app = create_app(
        {
            "DATABASE_URL": primary.url_text(),
            "SWARM_REPLICA_URLS": standby.url_text(),
            "SWARM_API_TOKEN": TOKEN,
            "SWARM_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            **SHORT_STREAMS,
        }
    )
    try:
        _seed(app)
        wait_until(lambda: replay_caught_up(primary, standby), 30, "replay")
        replicas = database(app).replicas
        assert replicas is not None
        replicas.check()
        assert replicas.choose() is not None  # reads go to the standby
        yield app
    finally:
        database(app).dispose()


@schema.parametrize()
@settings(
    max_examples=1,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_honours_the_contract_with_reads_on_a_standby(
    case: Any, replica_app: Flask
) -> None:
    case.call_and_validate(app=replica_app, headers=AUTH, checks=CHECKS)
