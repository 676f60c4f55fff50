"""Metrics over the in-process cluster: a cheating dealer is counted as blamed, on the honest
nodes that caught it and on the coordinator, and the served RPCs and sessions are counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mpcnode.metrics import Metrics
from tests.integration.conftest import InProcessCluster, open_cluster
from tests.integration.test_reshare import WrongConstantTerm


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessCluster]:
    async with open_cluster(tmp_path) as opened:
        yield opened


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_cheating_dealer_is_counted_as_blamed(cluster: InProcessCluster) -> None:
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    cluster.services[2].reshare_factory = WrongConstantTerm  # a dealer of the first attempt
    await coordinator.reshare(info.key_id)
    assert [c for _, c in coordinator.blamed] == [2]

    cm = coordinator.metrics
    assert value(cm, "mpc_blamed_total", protocol="reshare", party="2") == 1
    assert value(cm, "mpc_operations_total", operation="keygen", scheme="ed25519", outcome="ok")
    assert value(cm, "mpc_operations_total", operation="reshare", scheme="ed25519", outcome="ok")

    honest = [p for p, s in cluster.services.items() if p != 2]
    caught = {
        p: value(cluster.services[p].metrics, "mpc_blamed_total", protocol="reshare", party="2")
        for p in honest
    }
    assert any(caught.values()), caught
    for party, service in cluster.services.items():
        m = service.metrics
        assert value(m, "mpc_blamed_total", protocol="reshare", party=str(party)) == 0
        assert value(m, "mpc_sessions_total", protocol="frost-dkg", outcome="completed") == 1
        # The second attempt (without party 2 as a dealer) completed everywhere.
        assert value(m, "mpc_sessions_total", protocol="reshare", outcome="completed") == 1
        for protocol in ("frost-dkg", "reshare"):
            assert value(m, "mpc_sessions_live", protocol=protocol) == 0
        ok = {"service": "mpc.v1.Node", "code": "OK"}
        assert value(m, "mpc_rpc_duration_seconds_count", method="Start", **ok) == 3
    # The first attempt failed on the nodes that caught the dealer; the others were aborted.
    ended = {
        p: {
            outcome: value(s.metrics, "mpc_sessions_total", protocol="reshare", outcome=outcome)
            for outcome in ("failed", "aborted")
        }
        for p, s in cluster.services.items()
    }
    assert all(e["failed"] + e["aborted"] == 1 for e in ended.values()), ended
    assert all(ended[p]["failed"] == 1 for p, hit in caught.items() if hit), ended
