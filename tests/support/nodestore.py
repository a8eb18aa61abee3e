"""What tests of several real nodes share: the store they run on and the Redis they fan out
through, as node settings.

``store`` is a pytest fixture: a test module takes it by importing it (and naming it in its
``__all__``); ``fanout_settings`` is the body of each module's own ``shared`` fixture, which
may add settings of its own; ``postgres_cluster`` is that of a module's ``cluster`` fixture,
for tests that run on PostgreSQL only.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.postgres import fresh_database
from tests.support.redisserver import delete_prefix, shared_redis, unique_prefix


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The store every node of a test shares, as node settings: ``{}`` for the SQLite file
    ``start_nodes`` makes (its secret key lives beside it), or a fresh migrated database on
    the shared PostgreSQL (skipped without one, failing under CI=true) with one secret key
    for every node, since a PostgreSQL store has no directory to keep one in. Tests take it
    before ``nodes``, so the nodes stop before their database is dropped."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_database() as url:
        yield {"store": url, "secret_key": secrets.token_urlsafe(32)}


def fanout_settings(**extra: Any) -> Iterator[dict[str, Any]]:
    """Settings for nodes on the shared Redis, under a prefix of the test's own (its keys are
    deleted afterwards), with ``extra``."""
    url, prefix = shared_redis(), unique_prefix()
    yield {"fanout": url, "fanout_prefix": prefix, **extra}
    delete_prefix(url, prefix)


def postgres_cluster(**extra: Any) -> Iterator[dict[str, Any]]:
    """Settings for nodes on a fresh PostgreSQL database (one secret key for them all; skipped
    without one, failing under CI=true) and on the shared Redis, as ``fanout_settings``."""
    with fresh_database() as url:
        yield from fanout_settings(store=url, secret_key=secrets.token_urlsafe(32), **extra)
