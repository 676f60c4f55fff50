"""Resharing (issue 6) over the in-process cluster: real node services, real gRPC with mTLS.

What a custody operator relies on: after a reshare the public key, chain code and child keys are
unchanged and the new holders sign (checked by verifiers that did not make the signature); the
threshold really changes; a removed node's share (every generation of it) is gone from its
database and WAL files; shares of two generations do not combine to the key; a cheating dealer
is named and the reshare restarts without it; a node that dies in the middle leaves the old
generation signing, and the retry succeeds; a node that dies after every holder stored its
share catches up when it returns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from coordinator.server import Coordinator, package_of
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import ED25519
from mpcnode.crypto.sharing import lagrange_coefficient
from mpcnode.errors import InvalidInput, PreconditionFailed, ProtocolAborted, QuorumUnavailable
from mpcnode.protocols.base import Outgoing
from mpcnode.protocols.keys import KeyShare
from mpcnode.protocols.reshare import ReshareSession
from mpcnode.storage import DB_NAME
from protos.mpc.v1 import envelope_pb2, node_pb2
from tests.ecdsa_checks import check_ecdsa_signature
from tests.integration.conftest import InProcessCluster, open_cluster
from tests.integration.test_ecdsa_cluster import seed_aux_info

CHILD = "m/7/42"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessCluster]:
    async with open_cluster(tmp_path) as opened:
        yield opened


async def sign_ed25519(
    coordinator: Coordinator, key_id: str, message: bytes, path: str = ""
) -> Any:
    """Sign through the coordinator and check the signature with PyNaCl and `cryptography`."""
    outcome = await coordinator.sign_request(key_id, message=message, path=path)
    VerifyKey(outcome.public_key).verify(message, outcome.signature)
    Ed25519PublicKey.from_public_bytes(outcome.public_key).verify(outcome.signature, message)
    return outcome


async def restart(cluster: InProcessCluster, *parties: int) -> None:
    """Restart stopped nodes and wait until the coordinator reaches them again (its channels
    reconnect with a backoff of at most 2 s)."""
    for party in parties:
        cluster.restart_node(party)
        ready = grpc.channel_ready_future(cluster.coordinator._channels[party])
        await trio.to_thread.run_sync(ready.result, 30)
    assert await cluster.coordinator.probe(parties) == sorted(parties)


def sealed_secrets(cluster: InProcessCluster, party: int, key_id: str) -> dict[int, bytes]:
    """generation -> sealed share record, read from the node's database file directly."""
    path = cluster.data_dirs[party] / DB_NAME
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT generation, sealed_secret FROM keys WHERE key_id = ?", (key_id,)
        ).fetchall()
    return {int(g): bytes(sealed) for g, sealed in rows}


def on_disk(cluster: InProcessCluster, party: int, blob: bytes) -> bool:
    """Whether `blob` occurs in any of the node's database files (database, WAL, journal)."""
    return any(blob in f.read_bytes() for f in cluster.data_dirs[party].glob(f"{DB_NAME}*"))


def share_of(cluster: InProcessCluster, party: int, key_id: str) -> KeyShare:
    stored = cluster.services[party].store.get_active(key_id)
    assert stored is not None
    return KeyShare.decode(stored.secret())


def interpolated_key(shares: Sequence[KeyShare]) -> Any:
    """Σ λ_i·s_i·G over the given shares (test-only: production code never adds shares up)."""
    q = ED25519.order
    parties = [s.party for s in shares]
    secret = sum(lagrange_coefficient(q, s.party, parties, 0) * s.secret_share for s in shares)
    return ED25519.base_mul(secret % q)


async def test_refresh_threshold_change_and_removal(cluster: InProcessCluster) -> None:
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    key_id, root = info.key_id, bytes(info.public_key)
    child = bytes((await coordinator.child_key(key_id, CHILD)).public_key)
    await sign_ed25519(coordinator, key_id, b"generation 0")
    old_sealed = {p: sealed_secrets(cluster, p, key_id)[0] for p in range(1, 6)}
    old_shares = {p: share_of(cluster, p, key_id) for p in range(1, 6)}

    # A plain refresh: same holders and threshold, new shares.
    refreshed = await coordinator.reshare(key_id)
    assert (refreshed.generation, refreshed.threshold, list(refreshed.holder_parties)) == (
        1,
        3,
        [1, 2, 3, 4, 5],
    )
    assert list(refreshed.holders) == [f"mpc-{k}" for k in range(5)]
    assert bytes(refreshed.public_key) == root
    assert bytes(refreshed.chain_code) == bytes(info.chain_code)
    for p in range(1, 6):
        assert cluster.services[p].store.generations(key_id) == [(1, "active")]
        assert not on_disk(cluster, p, old_sealed[p])  # the old share is gone, WAL included
        assert share_of(cluster, p, key_id).secret_share != old_shares[p].secret_share
    outcome = await sign_ed25519(coordinator, key_id, b"generation 1")
    assert outcome.public_key == root
    child_outcome = await sign_ed25519(coordinator, key_id, b"child, generation 1", CHILD)
    assert child_outcome.public_key == child
    assert bytes((await coordinator.child_key(key_id, CHILD)).public_key) == child

    # Old and new shares do not mix: any 3 of one generation give the key, a mixture does not.
    new_shares = {p: share_of(cluster, p, key_id) for p in range(1, 6)}
    pk = ED25519.decode_point(root)
    assert interpolated_key([new_shares[p] for p in (1, 2, 3)]) == pk
    assert interpolated_key([old_shares[p] for p in (3, 4, 5)]) == pk
    for mixed in (
        [old_shares[1], new_shares[2], new_shares[3]],
        [old_shares[1], old_shares[2], new_shares[3]],
    ):
        assert interpolated_key(mixed) != pk

    # 3-of-5 to 4-of-5: four nodes sign, three cannot.
    raised = await coordinator.reshare(key_id, threshold=4)
    assert (raised.generation, raised.threshold) == (2, 4)
    outcome = await sign_ed25519(coordinator, key_id, b"four of five")
    assert len(outcome.signers) == 4
    cluster.stop_node(4)
    cluster.stop_node(5)
    with pytest.raises(QuorumUnavailable, match="needs 4 of 5"):
        await coordinator.sign_request(key_id, message=b"only three")
    await restart(cluster, 4, 5)
    await sign_ed25519(coordinator, key_id, b"four again")

    # Remove mpc-4 (party 5), back to 3 of the remaining 4.
    before_removal = sealed_secrets(cluster, 5, key_id)
    assert list(before_removal) == [2]
    removed = await coordinator.reshare(key_id, parties=[1, 2, 3, 4], threshold=3)
    assert (removed.generation, removed.threshold, list(removed.holder_parties)) == (
        3,
        3,
        [1, 2, 3, 4],
    )
    assert bytes(removed.public_key) == root
    store5 = cluster.services[5].store
    assert store5.generations(key_id) == [] and store5.get_active(key_id) is None
    assert sealed_secrets(cluster, 5, key_id) == {}
    assert not on_disk(cluster, 5, before_removal[2])
    for p in (1, 2, 3, 4):
        assert cluster.services[p].store.generations(key_id) == [(3, "active")]
    outcome = await sign_ed25519(coordinator, key_id, b"without mpc-4")
    assert 5 not in outcome.signers and outcome.public_key == root
    assert (await sign_ed25519(coordinator, key_id, b"child", CHILD)).public_key == child


async def test_bad_requests_are_refused(cluster: InProcessCluster) -> None:
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    with pytest.raises(InvalidInput, match="threshold"):
        await coordinator.reshare(info.key_id, threshold=6)
    with pytest.raises(InvalidInput, match="threshold"):
        await coordinator.reshare(info.key_id, parties=[1, 2], threshold=3)
    with pytest.raises(InvalidInput, match="not nodes"):
        await coordinator.reshare(info.key_id, parties=[1, 2, 3, 9])
    cluster.stop_node(2)
    with pytest.raises(QuorumUnavailable, match="every new holder"):
        await coordinator.reshare(info.key_id)
    # A removal that leaves mpc-1 out needs no mpc-1: the others deal and hold.
    reshared = await coordinator.reshare(info.key_id, parties=[1, 3, 4, 5])
    assert list(reshared.holder_parties) == [1, 3, 4, 5]
    # mpc-1 was down: it gets the certified generation when it is back, and erases its share.
    assert cluster.services[2].store.generations(info.key_id) == [(0, "active")]
    await restart(cluster, 2)
    await coordinator.get_record(info.key_id)
    assert cluster.services[2].store.generations(info.key_id) == []


# ---------------------------------------------------------------------------------------------
# A cheating dealer


class WrongConstantTerm(ReshareSession):
    """Deals a polynomial whose committed constant term is not λ_i·Y_i."""

    def _start(self) -> list[Outgoing]:
        out = super()._start()
        group = self.old_public.group
        tampered = []
        for m in out:
            if m.recipient == 0:
                fields = list(decode_fields(m.payload))
                fields[0] = (group.decode_point(fields[0]) + group.generator()).encode()
                m = Outgoing(m.round, m.recipient, encode_fields(fields))
            tampered.append(m)
        return tampered


class InconsistentShare(ReshareSession):
    """Sends party 4 a share that does not lie on its committed polynomial."""

    def _start(self) -> list[Outgoing]:
        group = self.old_public.group
        out = []
        for m in super()._start():
            if m.recipient == 4:
                bad = (group.decode_scalar(m.payload) + 1) % group.order
                m = Outgoing(m.round, m.recipient, group.encode_scalar(bad))
            out.append(m)
        return out


@pytest.mark.parametrize("faulty", [WrongConstantTerm, InconsistentShare])
async def test_cheating_dealer_is_named_and_left_out(
    cluster: InProcessCluster, faulty: type[ReshareSession]
) -> None:
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    cluster.services[2].reshare_factory = faulty  # a dealer of the first attempt (1, 2, 3)
    reshared = await coordinator.reshare(info.key_id)
    assert ("reshare", 2) in coordinator.blamed
    assert [c for _, c in coordinator.blamed] == [2]  # nobody else is blamed
    assert reshared.generation == 1 and bytes(reshared.public_key) == bytes(info.public_key)
    await sign_ed25519(coordinator, info.key_id, b"after a cheating dealer")


async def test_every_dealer_cheating_fails_with_culprits(cluster: InProcessCluster) -> None:
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    for party in range(1, 6):
        cluster.services[party].reshare_factory = WrongConstantTerm
    with pytest.raises(ProtocolAborted) as err:
        await coordinator.reshare(info.key_id)
    assert err.value.culprits
    for p in range(1, 6):  # nothing changed
        assert cluster.services[p].store.generations(info.key_id) == [(0, "active")]
    for party in range(1, 6):
        cluster.services[party].reshare_factory = ReshareSession
    await sign_ed25519(coordinator, info.key_id, b"still generation 0")


# ---------------------------------------------------------------------------------------------
# A node dies in the middle


def kill_on_round(cluster: InProcessCluster, party: int, round_number: int) -> list[bool]:
    """Stop `party` when the coordinator relays the first reshare envelope of `round_number`."""
    killed = [False]

    def tap(env: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        if env.protocol == "reshare" and env.round == round_number and not killed[0]:
            killed[0] = True
            cluster.stop_node(party)
        return env

    cluster.coordinator.tap = tap
    return killed


async def test_node_killed_before_confirming_leaves_old_generation(
    cluster: InProcessCluster,
) -> None:
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    killed = kill_on_round(cluster, 4, 2)
    with pytest.raises(QuorumUnavailable):
        await coordinator.reshare(info.key_id)
    assert killed[0]
    coordinator.tap = None
    for p in range(1, 6):  # nothing pending anywhere, generation 0 active everywhere
        assert cluster.services[p].store.generations(info.key_id) == [(0, "active")]
    outcome = await sign_ed25519(coordinator, info.key_id, b"old generation signs")
    assert 4 not in outcome.signers
    await restart(cluster, 4)
    reshared = await coordinator.reshare(info.key_id)
    assert reshared.generation == 1
    for p in range(1, 6):
        assert cluster.services[p].store.generations(info.key_id) == [(1, "active")]
    await sign_ed25519(coordinator, info.key_id, b"new generation signs")


async def test_node_killed_after_confirming_catches_up(cluster: InProcessCluster) -> None:
    """Every holder stored its share before round 3, so the generation is certified; the dead
    node activates its pending share when it returns."""
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    killed = kill_on_round(cluster, 4, 3)
    reshared = await coordinator.reshare(info.key_id)
    assert killed[0] and reshared.generation == 1
    coordinator.tap = None
    assert cluster.services[4].store.generations(info.key_id) == [(0, "active"), (1, "pending")]
    for p in (1, 2, 3, 5):
        assert cluster.services[p].store.generations(info.key_id) == [(1, "active")]
    outcome = await sign_ed25519(coordinator, info.key_id, b"four holders are enough")
    assert 4 not in outcome.signers
    await restart(cluster, 4)
    await coordinator.get_record(info.key_id)  # hands the certified generation over
    assert cluster.services[4].store.generations(info.key_id) == [(1, "active")]
    cluster.stop_node(1)
    cluster.stop_node(2)
    outcome = await sign_ed25519(coordinator, info.key_id, b"mpc-3 signs on generation 1")
    assert 4 in outcome.signers


# ---------------------------------------------------------------------------------------------
# CertifyGeneration checks what it is given


async def test_certify_refuses_records_not_confirmed_by_every_holder(
    cluster: InProcessCluster,
) -> None:
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    first = envelope_pb2.KeyRecord()
    first.CopyFrom(await coordinator.get_record(info.key_id))
    await coordinator.reshare(info.key_id, parties=[1, 2, 3, 4])
    record = envelope_pb2.KeyRecord()
    record.CopyFrom(await coordinator.get_record(info.key_id))
    assert record.generation == 1

    def request(edit: Any = None) -> Any:
        forged = envelope_pb2.KeyRecord()
        forged.CopyFrom(record)
        if edit is not None:
            edit(forged)
        return node_pb2.CertifyGenerationRequest(record=forged)

    def drop_one(r: Any) -> None:
        del r.confirmations[0]

    def flip_payload(r: Any) -> None:
        r.confirmations[1].payload = bytes(32)

    def other_generation(r: Any) -> None:
        r.generation += 1

    def other_key(r: Any) -> None:
        r.key_id = "another-key"

    holder, removed = cluster.services[1], cluster.services[5]
    for edit in (drop_one, flip_payload, other_generation, other_key):
        for service in (holder, removed):
            with pytest.raises(InvalidInput, match="not certified"):
                await service.certify_generation(request(edit), None)
    assert (await removed.certify_generation(request(), None)).outcome == "absent"
    assert (await holder.certify_generation(request(), None)).outcome == "current"
    with pytest.raises(PreconditionFailed, match="older"):  # no going back to generation 0
        await holder.certify_generation(node_pb2.CertifyGenerationRequest(record=first), None)
    assert holder.store.generations(info.key_id) == [(1, "active")]


# ---------------------------------------------------------------------------------------------
# secp256k1: presignatures of the old generation go with it


async def test_ecdsa_threshold_change(tmp_path: Path) -> None:
    async with open_cluster(tmp_path) as cluster:
        seed_aux_info(cluster)
        coordinator = cluster.coordinator
        coordinator.pools.target = 0
        info = await coordinator.create_key("secp256k1", 3, 5)
        key_id = info.key_id
        await coordinator._presign(key_id, [1, 2, 3])  # an unused presignature of generation 0
        assert all(cluster.services[p].store.list_presignatures(key_id) for p in (1, 2, 3))

        reshared = await coordinator.reshare(key_id, threshold=4)
        assert (reshared.generation, reshared.threshold) == (1, 4)
        assert bytes(reshared.public_key) == bytes(info.public_key)
        for p in range(1, 6):
            assert cluster.services[p].store.list_presignatures(key_id) == []

        outcome = await coordinator.sign_request(key_id, message=b"four ECDSA signers")
        assert len(outcome.signers) == 4 and outcome.public_key == bytes(info.public_key)
        assert outcome.ecdsa is not None
        check_ecdsa_signature(outcome.public_key, outcome.digest, outcome.ecdsa)
        package = package_of(await coordinator.get_record(key_id))
        assert package.generation == 1 and package.threshold == 4

        cluster.stop_node(1)
        cluster.stop_node(2)
        with trio.fail_after(60), pytest.raises(QuorumUnavailable, match="needs 4 of 5"):
            await coordinator.sign_request(key_id, message=b"three are not enough")
        await restart(cluster, 1, 2)

        # mpc-0 leaves the key: 3-of-4 among the others, mpc-0's share and presignatures gone.
        moved = await coordinator.reshare(key_id, parties=[2, 3, 4, 5], threshold=3)
        assert (moved.generation, list(moved.holder_parties)) == (2, [2, 3, 4, 5])
        assert cluster.services[1].store.generations(key_id) == []
        outcome = await coordinator.sign_request(key_id, message=b"without mpc-0")
        assert 1 not in outcome.signers and outcome.ecdsa is not None
        check_ecdsa_signature(outcome.public_key, outcome.digest, outcome.ecdsa)


async def test_unfinished_reshare_is_superseded_and_concurrent_ones_queue(
    cluster: InProcessCluster,
) -> None:
    """A coordinator that dies mid-reshare leaves sessions on the nodes (they expire only after
    minutes): the next reshare supersedes them. Two reshares of one key run one after the other."""
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    old = package_of(await coordinator.get_record(info.key_id))
    abandoned = node_pb2.StartRequest(
        session_id=bytes(16),
        protocol="reshare",
        key_id=info.key_id,
        threshold=3,
        parties=[1, 2, 3, 4, 5],
        dealers=[1, 2, 3],
        new_parties=[1, 2, 3, 4, 5],
        old_public=old.encode(),
        owner_org="default",  # the key's owner (coordinator DEFAULT_OWNER): a valid request
    )
    for party in range(1, 6):
        await coordinator._call(party, "Start", abandoned, 10)
    assert all(bytes(16) in cluster.services[p].sessions for p in range(1, 6))

    results: list[Any] = []

    async def one(threshold: int) -> None:
        results.append(await coordinator.reshare(info.key_id, threshold=threshold))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(one, 4)
        nursery.start_soon(one, 3)
    assert sorted(r.generation for r in results) == [1, 2]
    assert all(bytes(16) not in cluster.services[p].sessions for p in range(1, 6))
    final = package_of(await coordinator.get_record(info.key_id))
    assert final.generation == 2 and final.public_key == old.public_key
    await sign_ed25519(coordinator, info.key_id, b"after two queued reshares")


async def test_keygen_node_lost_in_the_last_round_catches_up(cluster: InProcessCluster) -> None:
    """The same rule for key generation: mpc-3 dies after confirming, the others activate; the
    key is acknowledged (it is certified) and mpc-3 activates its pending share when back."""
    coordinator = cluster.coordinator
    killed = [False]

    def tap(env: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
        if env.protocol == "frost-dkg" and env.round == 4 and not killed[0]:
            killed[0] = True
            cluster.stop_node(4)
        return env

    coordinator.tap = tap
    info = await coordinator.create_key("ed25519", 3, 5)
    coordinator.tap = None
    assert killed[0]
    key_id = info.key_id
    assert cluster.services[4].store.generations(key_id) == [(0, "pending")]
    for p in (1, 2, 3, 5):
        assert cluster.services[p].store.generations(key_id) == [(0, "active")]
    await restart(cluster, 4)
    await coordinator.get_record(key_id)
    assert cluster.services[4].store.generations(key_id) == [(0, "active")]
    cluster.stop_node(1)
    cluster.stop_node(2)
    outcome = await sign_ed25519(coordinator, key_id, b"mpc-3 holds its share")
    assert 4 in outcome.signers
