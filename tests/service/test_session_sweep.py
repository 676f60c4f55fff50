"""Sessions left behind (their coordinator died or gave up) are dropped by the node itself.

The node sweeps every SESSION_SWEEP_SECONDS and drops a session no Start or Step has reached for
SESSION_IDLE_SECONDS, and any session older than SESSION_TTL_SECONDS. Trio's autojump clock
makes the minutes pass instantly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio
import trio.testing

from mpcnode.identity import NodeIdentity, Roster
from mpcnode.server import (
    SESSION_IDLE_SECONDS,
    SESSION_SWEEP_SECONDS,
    SESSION_TTL_SECONDS,
    NodeService,
)
from mpcnode.storage import KeyStore
from protos.mpc.v1 import node_pb2


@pytest.fixture
def service(tmp_path: Path) -> NodeService:
    identities = [NodeIdentity.generate(f"mpc-{k}", k + 1) for k in range(3)]
    roster = Roster([i.public_entry() for i in identities])
    return NodeService(identities[0], roster, KeyStore(tmp_path / "node", "mpc-0", os.urandom(32)))


async def start_dkg(service: NodeService) -> bytes:
    sid = os.urandom(16)
    request = node_pb2.StartRequest(
        session_id=sid,
        protocol="frost-dkg",
        key_id=sid.hex(),
        threshold=2,
        parties=[1, 2, 3],
        scheme="ed25519",
    )
    response = await service.start(request, None)
    assert response.envelopes and not response.done
    assert sid in service.sessions
    return sid


async def test_idle_session_is_swept_without_any_new_call(
    service: NodeService, autojump_clock: trio.testing.MockClock
) -> None:
    sid = await start_dkg(service)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(service.sweep_sessions)
        await trio.sleep(SESSION_IDLE_SECONDS - 1)
        assert sid in service.sessions  # not idle long enough yet
        await trio.sleep(1 + SESSION_SWEEP_SECONDS + 1)
        assert sid not in service.sessions
        nursery.cancel_scope.cancel()


async def test_session_that_is_computing_is_never_idle(
    service: NodeService, autojump_clock: trio.testing.MockClock
) -> None:
    sid = await start_dkg(service)
    live = service.sessions[sid]
    async with live.lock:  # a Step holds the lock while its round runs (e.g. in a worker)
        await trio.sleep(SESSION_IDLE_SECONDS + SESSION_SWEEP_SECONDS)
        service._expire_sessions()
        assert sid in service.sessions
    service._expire_sessions()
    assert sid not in service.sessions


async def test_lifetime_limit_and_activity(
    service: NodeService, autojump_clock: trio.testing.MockClock
) -> None:
    sid = await start_dkg(service)
    live = service.sessions[sid]
    waited = 0.0
    while waited < SESSION_TTL_SECONDS - SESSION_IDLE_SECONDS:
        await trio.sleep(SESSION_IDLE_SECONDS / 2)
        waited += SESSION_IDLE_SECONDS / 2
        live.last_activity = trio.current_time()  # as a Step would
        service._expire_sessions()
        assert sid in service.sessions  # active sessions stay
    await trio.sleep(SESSION_IDLE_SECONDS)
    live.last_activity = trio.current_time()
    service._expire_sessions()
    assert sid not in service.sessions  # past its lifetime, however busy
