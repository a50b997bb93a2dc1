"""The tests of this folder run on a real three-master Redis Cluster (tests/redis_cluster.py)
instead of the session's Redis: the `redis_url` fixture here overrides the one in
tests/conftest.py for every test collected here, those imported from other modules included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_cluster import ThreeMasterCluster


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = ThreeMasterCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()
