"""A node runs at most `max_sessions` protocol sessions at once (NodeConfig ``max_sessions``).

A Start beyond the cap is RESOURCE_EXHAUSTED before the node claims the session id or computes
anything; running sessions are untouched and finish, and their slots free up as they end. A
Step may carry only so many envelopes. Over real gRPC (an in-process cluster).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from nacl.signing import VerifyKey

from coordinator.server import NodeCallFailed
from mpcnode.envelope import package_of
from mpcnode.errors import InvalidInput
from mpcnode.protocols.base import BROADCAST, COORDINATOR
from mpcnode.protocols.frost.sign import FrostAggregator
from mpcnode.server import DEFAULT_MAX_SESSIONS, MAX_STEP_ENVELOPES_PER_PARTY, NodeConfig
from protos.mpc.v1 import node_pb2
from tests.integration.conftest import InProcessCluster, open_cluster

SIGNERS = [1, 2, 3]
TIMEOUT = 10.0


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[InProcessCluster, Any]]:
    async with open_cluster(tmp_path) as opened:
        info = await opened.coordinator.create_key("ed25519", 3, 5)
        record = await opened.coordinator.get_record(info.key_id)
        yield opened, record


def sign_start(record: Any, message: bytes, sid: bytes | None = None) -> Any:
    return node_pb2.StartRequest(
        session_id=os.urandom(16) if sid is None else sid,
        protocol="frost-sign",
        key_id=record.key_id,
        parties=SIGNERS,
        message=message,
        path=[],
    )


async def call(c: InProcessCluster, party: int, method: str, request: Any) -> Any:
    return await c.coordinator._call(party, method, request, TIMEOUT)


async def start_all(c: InProcessCluster, start: Any) -> dict[int, list[Any]]:
    out = {}
    for p in SIGNERS:
        resp = await call(c, p, "Start", start)
        assert not resp.done
        out[p] = list(resp.envelopes)
    return out


def inbox(round1: dict[int, list[Any]], party: int) -> list[Any]:
    return [
        e
        for p, es in sorted(round1.items())
        for e in es
        if p != party and e.recipient in (BROADCAST, party)
    ]


async def finish(
    c: InProcessCluster, record: Any, start: Any, round1: dict[int, list[Any]]
) -> None:
    sid = bytes(start.session_id)
    aggregator = FrostAggregator(package_of(record), SIGNERS, bytes(start.message))
    for p in SIGNERS:
        resp = await call(
            c, p, "Step", node_pb2.StepRequest(session_id=sid, envelopes=inbox(round1, p))
        )
        assert resp.done
        for env in round1[p]:
            aggregator.add_commitment(p, bytes(env.payload))
        for env in resp.envelopes:
            if env.recipient == COORDINATOR:
                aggregator.add_share(p, bytes(env.payload))
    VerifyKey(bytes(record.public_key)).verify(bytes(start.message), bytes(aggregator.signature()))


async def test_start_beyond_max_sessions_is_refused_and_running_ones_finish(
    cluster: tuple[InProcessCluster, Any],
) -> None:
    c, record = cluster
    node = c.services[1]
    node.max_sessions = 2
    first, second = sign_start(record, b"first"), sign_start(record, b"second")
    round1 = {bytes(s.session_id): await start_all(c, s) for s in (first, second)}
    assert len(node.sessions) == 2

    third = sign_start(record, b"third")
    with pytest.raises(NodeCallFailed) as info:
        await call(c, 1, "Start", third)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "2 sessions" in info.value.details
    assert set(node.sessions) == {bytes(first.session_id), bytes(second.session_id)}

    await finish(c, record, first, round1[bytes(first.session_id)])
    assert len(node.sessions) == 1  # a finished session frees its slot
    # The refused Start claimed nothing: the very same request now runs.
    await finish(c, record, third, await start_all(c, third))
    await finish(c, record, second, round1[bytes(second.session_id)])
    assert node.sessions == {}


async def test_aborted_sessions_free_their_slots(cluster: tuple[InProcessCluster, Any]) -> None:
    c, record = cluster
    node = c.services[1]
    node.max_sessions = 1
    start = sign_start(record, b"abandoned")
    await start_all(c, start)
    with pytest.raises(NodeCallFailed) as info:
        await call(c, 1, "Start", sign_start(record, b"refused"))
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    for p in SIGNERS:
        await call(c, p, "Abort", node_pb2.AbortRequest(session_id=start.session_id))
    again = sign_start(record, b"after the abort")
    await finish(c, record, again, await start_all(c, again))


async def test_signing_goes_around_a_node_at_its_cap(cluster: tuple[InProcessCluster, Any]) -> None:
    c, record = cluster
    node = c.services[1]
    node.max_sessions = 1
    await start_all(c, sign_start(record, b"holds the only slot of mpc-0"))
    outcome = await c.coordinator.sign_request(record.key_id, message=b"around")
    assert 1 not in outcome.signers
    VerifyKey(outcome.public_key).verify(b"around", outcome.signature)
    assert len(node.sessions) == 1


async def test_step_with_too_many_envelopes_is_refused_before_opening_any(
    cluster: tuple[InProcessCluster, Any],
) -> None:
    c, record = cluster
    start = sign_start(record, b"flooded")
    round1 = await start_all(c, start)
    sid = bytes(start.session_id)
    junk = inbox(round1, 1) * (MAX_STEP_ENVELOPES_PER_PARTY * len(SIGNERS))
    with pytest.raises(NodeCallFailed) as info:
        await call(c, 1, "Step", node_pb2.StepRequest(session_id=sid, envelopes=junk))
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "too many envelopes" in info.value.details
    await finish(c, record, start, round1)  # the session was not touched


def _config(tmp_path: Path, **extra: Any) -> Path:
    path = tmp_path / "node.json"
    raw = {
        "name": "mpc-0",
        "party": 1,
        "listen": "127.0.0.1:1",
        "health_listen": "127.0.0.1:2",
        "data_dir": str(tmp_path),
        "identity_file": str(tmp_path / "identity.json"),
        "roster_file": str(tmp_path / "roster.json"),
        "tls": {"ca": "ca", "cert": "cert", "key": "key"},
        **extra,
    }
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("bad", [0, -1, 1.5, "64", True, 10**9])
def test_max_sessions_config(tmp_path: Path, bad: Any) -> None:
    assert NodeConfig.load(_config(tmp_path)).max_sessions == DEFAULT_MAX_SESSIONS
    assert NodeConfig.load(_config(tmp_path, max_sessions=8)).max_sessions == 8
    with pytest.raises(InvalidInput, match="max_sessions"):
        NodeConfig.load(_config(tmp_path, max_sessions=bad))


def test_default_cap_covers_a_coordinator_under_full_load() -> None:
    from coordinator.presign_pool import DEFAULT_MAX_PARALLEL

    coordinator_handler_threads = 64  # coordinator.server.serve: running_server(max_workers=64)
    aux_info = 1
    assert DEFAULT_MAX_SESSIONS >= coordinator_handler_threads + DEFAULT_MAX_PARALLEL + aux_info
