"""CGGMP ECDSA over the in-process cluster: keygen, aux-info operation, pooled and digest signing,
blame, lost signers, pool rebuild. Every signature is checked by coincurve and `cryptography`.

Presigning at production Paillier size costs seconds of CPU per signer, so pool targets are
kept at 1-2 and aux-info comes from the committed TEST-ONLY fixture (tests/fixtures/aux_info.py)
instead of a real aux-info run; the aux-info operation itself is exercised with a stand-in
session that hands each node its fixture aux-info.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

import mpcnode.server as node_server
from coordinator.server import Coordinator, tls_channel_factory
from mpcnode.crypto.group import SECP256K1
from mpcnode.errors import InvalidInput, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, Incoming, Outgoing, Session
from mpcnode.protocols.cggmp import sign as cggmp_sign
from mpcnode.protocols.cggmp.aux_info import AuxInfo
from protos.mpc.v1 import coordinator_pb2, node_pb2
from tests.ecdsa_checks import check_ecdsa
from tests.fixtures.aux_info import TEST_COMMITTEE, load_test_aux_info_blobs
from tests.fixtures.primes import load_test_primes
from tests.integration.conftest import CLIENT_CTX, InProcessCluster, local_api, open_cluster

Q = SECP256K1.order


def seed_aux_info(cluster: InProcessCluster) -> None:
    blobs = load_test_aux_info_blobs()
    for party, service in cluster.services.items():
        service.store.put_aux_info(TEST_COMMITTEE, blobs[party])


@pytest.fixture
async def ecdsa(tmp_path: Path) -> AsyncIterator[InProcessCluster]:
    """The in-process cluster with fixture aux-info and the coordinator's background running."""
    async with open_cluster(tmp_path) as cluster:
        seed_aux_info(cluster)
        cluster.coordinator.pools.target = 0  # tests that want a pool raise it
        async with trio.open_nursery() as nursery:
            await nursery.start(cluster.coordinator.run_background)
            yield cluster
            nursery.cancel_scope.cancel()


async def wait_ready(coordinator: Coordinator, key_id: str, signers: Sequence[int], n: int) -> None:
    with trio.fail_after(120):
        while coordinator.pools.ready_count(key_id, signers) < n:
            await coordinator.pools.wait_changed(key_id)


def listed(cluster: InProcessCluster, party: int, key_id: str) -> set[bytes]:
    return {i.presignature_id for i in cluster.services[party].store.list_presignatures(key_id)}


async def api_sign(cluster: InProcessCluster, key_id: str, **fields: Any) -> Any:
    api = local_api(cluster.coordinator)
    return await api.sign(coordinator_pb2.SignRequest(key_id=key_id, **fields), CLIENT_CTX)


async def test_keygen_pool_signatures_and_digest_signature(ecdsa: InProcessCluster) -> None:
    coordinator = ecdsa.coordinator
    api = local_api(coordinator)
    info = await coordinator.create_key("secp256k1", 3, 5)
    assert info.scheme == "secp256k1" and len(info.public_key) == 33
    SECP256K1.decode_point(bytes(info.public_key))
    key_id = info.key_id

    coordinator.pools.target = 2
    coordinator.refiller.ensure(key_id)
    await wait_ready(coordinator, key_id, (1, 2, 3), 2)
    status = await api.presign_status(
        coordinator_pb2.PresignStatusRequest(key_id=key_id), CLIENT_CTX
    )
    [pool] = status.pools
    assert (status.target, list(pool.signers), pool.ready, pool.made, pool.used) == (
        2,
        ["mpc-0", "mpc-1", "mpc-2"],
        2,
        2,
        0,
    )
    coordinator.pools.target = 0  # no refills from here on (they would only cost CPU)
    pooled = set(coordinator.pools.pools(key_id)[0].ready)
    assert all(pooled <= listed(ecdsa, p, key_id) for p in (1, 2, 3))

    r_values = set()
    for i in range(2):
        message = f"pay {i} to bob".encode()
        reply = await api_sign(ecdsa, key_id, message=message)
        assert reply.scheme == "secp256k1"
        assert bytes(reply.digest) == hashlib.sha256(message).digest()
        assert bytes(reply.public_key) == bytes(info.public_key)
        assert list(reply.signers) == ["mpc-0", "mpc-1", "mpc-2"]
        check_ecdsa(
            bytes(reply.public_key),
            bytes(reply.digest),
            bytes(reply.signature),
            bytes(reply.signature_der),
            reply.recovery_id,
        )
        r_values.add(bytes(reply.signature)[:32])
    assert len(r_values) == 2
    [pool_state] = coordinator.pools.pools(key_id)
    assert pool_state.used == 2
    # Both pooled presignatures are consumed on every signer, and never handed out again.
    for p in (1, 2, 3):
        assert not pooled & listed(ecdsa, p, key_id)
    assert not pooled & set(pool_state.ready)

    # A digest is signed interactively, never from the pool.
    digest = hashlib.sha256(b"a caller's prehashed document").digest()
    used_before = pool_state.used
    reply = await api_sign(ecdsa, key_id, digest=digest)
    assert bytes(reply.digest) == digest
    check_ecdsa(
        bytes(reply.public_key),
        digest,
        bytes(reply.signature),
        bytes(reply.signature_der),
        reply.recovery_id,
    )
    assert bytes(reply.signature)[:32] not in r_values
    assert coordinator.pools.pools(key_id)[0].used == used_before

    with pytest.raises(InvalidInput, match="not both"):
        await coordinator.sign_request(key_id, b"message", digest)
    with pytest.raises(InvalidInput, match="32 bytes"):
        await coordinator.sign_request(key_id, b"", digest[:31])

    # Ed25519 keys refuse digests (INVALID_ARGUMENT), and still sign messages as before.
    ed = await coordinator.create_key("ed25519", 3, 5)
    with pytest.raises(InvalidInput, match="secp256k1"):
        await coordinator.sign_request(ed.key_id, b"", digest)
    reply = await api_sign(ecdsa, ed.key_id, message=b"hello")
    assert (reply.scheme, len(reply.signature), reply.signature_der) == ("ed25519", 64, b"")
    with pytest.raises(InvalidInput, match="secp256k1"):
        await coordinator.presign_status(ed.key_id)


async def test_pool_is_rebuilt_from_the_nodes(ecdsa: InProcessCluster, tmp_path: Path) -> None:
    coordinator = ecdsa.coordinator
    info = await coordinator.create_key("secp256k1", 3, 5)
    coordinator.pools.target = 1
    coordinator.refiller.ensure(info.key_id)
    await wait_ready(coordinator, info.key_id, (1, 2, 3), 1)
    coordinator.pools.target = 0
    [ready] = coordinator.pools.pools(info.key_id)[0].ready

    # A restarted coordinator (no background: it only rebuilds) finds the presignature ...
    pki = tmp_path / "tls"
    fresh = Coordinator(
        ecdsa.roster,
        list(coordinator.nodes.values()),
        tls_channel_factory(pki / "ca.pem", pki / "coordinator.pem", pki / "coordinator.key"),
        presign_pool_target=4,
    )
    try:
        status = await fresh.presign_status(info.key_id)
        assert [(list(p.signers), p.ready) for p in status.pools] == [
            (["mpc-0", "mpc-1", "mpc-2"], 1)
        ]
        assert list(fresh.pools.pools(info.key_id)[0].ready) == [ready]
        # ... and signs with it (a pooled presignature: no presign session runs).
        sessions = []
        original = fresh.run_session

        async def counting(start: Any, parties: Sequence[int], progress: Any = None) -> Any:
            sessions.append(start.protocol)
            return await original(start, parties, progress)

        fresh.run_session = counting  # type: ignore[method-assign]
        outcome = await fresh.sign_request(info.key_id, b"after a restart")
        assert sessions == []
        assert outcome.ecdsa is not None
        check_ecdsa(
            bytes(info.public_key),
            outcome.digest,
            outcome.ecdsa.compact(),
            outcome.ecdsa.der(),
            outcome.ecdsa.recovery_id,
        )
        # The old coordinator's index is stale now: the nodes refuse the consumed id, and
        # signing retries with a fresh presignature instead of failing.
        assert ready not in listed(ecdsa, 1, info.key_id)
        outcome = await coordinator.sign_request(info.key_id, b"stale pool")
        assert outcome.ecdsa is not None
        assert not coordinator.pools.pools(info.key_id)[0].ready
    finally:
        fresh.close()

    # An id counts only if every signer lists it: drop it from one signer and rebuild.
    coordinator.pools.target = 1
    await wait_ready(coordinator, info.key_id, (1, 2, 3), 1)
    coordinator.pools.target = 0
    [ready] = coordinator.pools.pools(info.key_id)[0].ready
    store = ecdsa.services[2].store
    store.consume_presignature(ready, info.key_id, b"\x01" * 32)
    other = Coordinator(
        ecdsa.roster,
        list(coordinator.nodes.values()),
        tls_channel_factory(pki / "ca.pem", pki / "coordinator.pem", pki / "coordinator.key"),
        presign_pool_target=4,
    )
    try:
        status = await other.presign_status(info.key_id)
        assert [p.ready for p in status.pools] == []
    finally:
        other.close()


async def test_bad_partial_signature_is_named_and_signing_retries_without_it(
    ecdsa: InProcessCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = ecdsa.coordinator
    info = await coordinator.create_key("secp256k1", 3, 5)
    cheater = 2
    honest = cggmp_sign.partial_sign

    def lying(presig: Any, request: Any) -> int:
        sigma = honest(presig, request)
        return (sigma + 1) % Q if presig.party == cheater else sigma

    monkeypatch.setattr(cggmp_sign, "partial_sign", lying)
    reply = await api_sign(ecdsa, info.key_id, message=b"blame me")
    assert "mpc-1" not in reply.signers and len(reply.signers) == 3
    assert list(reply.signers) == ["mpc-0", "mpc-2", "mpc-3"]
    check_ecdsa(
        bytes(reply.public_key),
        bytes(reply.digest),
        bytes(reply.signature),
        bytes(reply.signature_der),
        reply.recovery_id,
    )
    assert ("cggmp-sign", cheater) in coordinator.blamed

    # With every retry exhausted the error names the culprit.
    def everyone_lies(presig: Any, request: Any) -> int:
        return (honest(presig, request) + 1) % Q

    monkeypatch.setattr(cggmp_sign, "partial_sign", everyone_lies)
    monkeypatch.setattr("coordinator.server.SIGN_ATTEMPTS", 1)
    with pytest.raises(ProtocolAborted) as caught:
        await coordinator.sign_request(info.key_id, b"all bad")
    # The set that signed last became the key's preferred set.
    assert caught.value.culprits == (1, 3, 4)
    assert "invalid partial signature" in str(caught.value)


async def test_lost_signer_burns_the_presignature_and_is_replaced(
    ecdsa: InProcessCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = ecdsa.coordinator
    info = await coordinator.create_key("secp256k1", 3, 5)
    coordinator.pools.target = 1
    coordinator.refiller.ensure(info.key_id)
    await wait_ready(coordinator, info.key_id, (1, 2, 3), 1)
    coordinator.pools.target = 0
    [pooled] = coordinator.pools.pools(info.key_id)[0].ready

    # mpc-2 dies after the probe said it was alive: PartialSign reaches only mpc-0, mpc-1.
    real_probe = coordinator.probe
    probes = []

    async def stale_probe(parties: Sequence[int]) -> list[int]:
        probes.append(list(parties))
        if len(probes) == 1:
            return sorted(parties)
        return await real_probe(parties)

    monkeypatch.setattr(coordinator, "probe", stale_probe)
    ecdsa.stop_node(3)
    outcome = await coordinator.sign_request(info.key_id, b"a node died")
    assert outcome.signers == [1, 2, 4]
    assert outcome.ecdsa is not None
    check_ecdsa(
        bytes(info.public_key),
        outcome.digest,
        outcome.ecdsa.compact(),
        outcome.ecdsa.der(),
        outcome.ecdsa.recovery_id,
    )
    # The pooled presignature reached mpc-0 and mpc-1, which consumed it: it is burnt, and the
    # coordinator never offers it again.
    for party in (1, 2):
        assert pooled not in listed(ecdsa, party, info.key_id)
    assert pooled in listed(ecdsa, 3, info.key_id)  # the dead node never saw the request
    assert all(pooled not in p.ready for p in coordinator.pools.pools(info.key_id))
    assert coordinator.pools.preferred(info.key_id) == (1, 2, 4)


# --------------------------------------------------------------------------- aux-info operation


class StandInAuxInfo(Session[AuxInfo]):
    """Three broadcast rounds like the real session, then the fixture aux-info of this party.

    It stands in for the minute of CPU a real run costs; the node still takes four primes
    from its pool, relays every round and stores the output, which is what the coordinator's
    operation drives. `fault` makes this party accuse party 2 in round 2.
    """

    protocol = "cggmp-aux-info"

    def __init__(self, party: int, parties: Sequence[int], fault: bool = False) -> None:
        super().__init__()
        self.party = party
        self.parties = tuple(parties)
        self.fault = fault

    def _start(self) -> list[Outgoing]:
        return [Outgoing(1, BROADCAST, b"round 1")]

    def _receive(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        assert sorted(m.sender for m in messages) == [p for p in self.parties if p != self.party]
        if self.round == 2 and self.fault:
            raise ProtocolAborted("invalid Π-mod proof", [2])
        if self.round < 3:
            return [Outgoing(self.round + 1, BROADCAST, b"round %d" % (self.round + 1))]
        blob = load_test_aux_info_blobs()[self.party]
        self._finish(AuxInfo.decode(blob))
        return []


@pytest.fixture
async def aux_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[InProcessCluster]:
    monkeypatch.setattr(node_server, "OFFLOADED_PROTOCOLS", frozenset())
    async with open_cluster(tmp_path, allow_test_primes=True) as cluster:
        cluster.coordinator.pools.target = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(cluster.coordinator.run_background)
            yield cluster
            nursery.cancel_scope.cancel()


def stand_in_factory(faulty_party: int | None = None) -> Any:
    def factory(party: int, parties: Sequence[int], **_: Any) -> StandInAuxInfo:
        return StandInAuxInfo(party, parties, fault=party == faulty_party)

    return factory


def add_primes(cluster: InProcessCluster, per_node: int) -> None:
    primes = load_test_primes(1536)
    for party, service in cluster.services.items():
        start = (party - 1) * 4
        for prime in primes[start : start + per_node]:
            service.pool.add(prime)


async def aux_status(cluster: InProcessCluster) -> list[bool]:
    request = node_pb2.AuxInfoStatusRequest(parties=list(TEST_COMMITTEE))
    return [(await s.aux_info_status(request, None)).ready for s in cluster.services.values()]


async def follow(coordinator: Coordinator, operation_id: str) -> list[tuple[str, str]]:
    """Every distinct (state, stage) the operation goes through, until it ends."""
    seen: list[tuple[str, str]] = []
    with trio.fail_after(60):
        while True:
            op = coordinator.operation(operation_id)
            if not seen or seen[-1] != (op.state, op.stage):
                seen.append((op.state, op.stage))
            if not op.running:
                return seen
            await trio.sleep(0.005)


async def test_aux_info_operation_waits_for_primes_then_runs(aux_cluster: InProcessCluster) -> None:
    coordinator = aux_cluster.coordinator
    api = local_api(coordinator)
    for service in aux_cluster.services.values():
        service.aux_info_factory = stand_in_factory()
    add_primes(aux_cluster, 2)  # half of what one run takes
    op = await api.start_aux_info(coordinator_pb2.StartAuxInfoRequest(), CLIENT_CTX)
    assert (op.kind, op.state) == ("aux-info", "waiting-for-primes")
    await trio.sleep(0.5)
    op = await api.get_operation(
        coordinator_pb2.GetOperationRequest(operation_id=op.operation_id),
        CLIENT_CTX,
    )
    assert op.state == "waiting-for-primes"
    assert dict(op.primes_ready) == {f"mpc-{k}": 2 for k in range(5)}
    assert "mpc-0 2/4" in op.stage
    # Only one at a time: a second start returns the running operation.
    again = await api.start_aux_info(coordinator_pb2.StartAuxInfoRequest(), CLIENT_CTX)
    assert again.operation_id == op.operation_id
    assert await aux_status(aux_cluster) == [False] * 5

    for service in aux_cluster.services.values():  # the prime pools catch up
        for prime in load_test_primes(1536)[(service.party - 1) * 4 + 2 : service.party * 4]:
            service.pool.add(prime)
    seen = await follow(coordinator, op.operation_id)
    final = coordinator.operation(op.operation_id).to_proto()
    assert (final.state, final.error, list(final.culprits)) == ("done", "", [])
    assert (final.round, final.rounds) == (4, 4)
    stages = [stage for state, stage in seen if state == "running"]
    assert stages[-1] == "round 4 of 4"
    assert await aux_status(aux_cluster) == [True] * 5
    assert all(s.pool.count() == 0 for s in aux_cluster.services.values())
    with pytest.raises(Exception, match="no operation"):
        coordinator.operation("nope")


async def test_aux_info_operation_names_culprits(aux_cluster: InProcessCluster) -> None:
    coordinator = aux_cluster.coordinator
    for service in aux_cluster.services.values():
        service.aux_info_factory = stand_in_factory(faulty_party=4)
    add_primes(aux_cluster, 4)
    op = coordinator.start_aux_info()
    await follow(coordinator, op.operation_id)
    final = op.to_proto()
    assert final.state == "failed"
    assert list(final.culprits) == ["mpc-1"]
    assert "Π-mod" in final.error
    assert await aux_status(aux_cluster) == [False] * 5
    # A new start makes a new operation.
    assert coordinator.start_aux_info().operation_id != op.operation_id


async def test_secp256k1_keygen_makes_missing_aux_info_first(
    aux_cluster: InProcessCluster,
) -> None:
    coordinator = aux_cluster.coordinator
    for service in aux_cluster.services.values():
        service.aux_info_factory = stand_in_factory()
    add_primes(aux_cluster, 4)
    info = await coordinator.create_key("secp256k1", 3, 5)
    assert await aux_status(aux_cluster) == [True] * 5
    [op] = coordinator.operations.values()
    assert op.state == "done"
    # With aux-info in place a second key starts no operation.
    await coordinator.create_key("secp256k1", 2, 5)
    assert len(coordinator.operations) == 1
    # ... and the first key signs (its presignature made on demand).
    outcome = await coordinator.sign_request(info.key_id, os.urandom(20))
    assert outcome.ecdsa is not None
    check_ecdsa(
        bytes(info.public_key),
        outcome.digest,
        outcome.ecdsa.compact(),
        outcome.ecdsa.der(),
        outcome.ecdsa.recovery_id,
    )


async def test_aux_info_operation_waits_briefly_for_a_silent_node(
    aux_cluster: InProcessCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("coordinator.server.AUX_INFO_UNREACHABLE_GRACE", 1.0)
    monkeypatch.setattr("coordinator.server.AUX_INFO_POLL_SECONDS", 0.2)
    coordinator = aux_cluster.coordinator
    aux_cluster.stop_node(5)
    op = coordinator.start_aux_info()
    seen = await follow(coordinator, op.operation_id)
    assert ("waiting-for-primes", "waiting for mpc-4 to answer") in seen
    final = op.to_proto()
    assert final.state == "failed"
    assert "mpc-4" in final.error and list(final.culprits) == []
