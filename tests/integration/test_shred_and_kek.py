"""Crypto-shredding (DeleteKey, DeleteTenant) and KEK rotation on real node services over gRPC.

Issue 9: deleting a key or a tenant destroys its wrapped data keys on every node, so the
node's files left on disk cannot be decrypted afterwards, even with the node's KEK; a node's
KEK is rotated without downtime while the cluster keeps signing.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coordinator.auth import KeyOwner
from coordinator.server import NodeCallFailed
from mpcnode.crypto.encoding import encode_fields, encode_uint
from mpcnode.errors import InvalidInput, KeyNotFound, QuorumUnavailable
from mpcnode.server import NodeService
from mpcnode.storage import DB_NAME, KeyStore, store_tenant_of_owner, write_file_atomic
from protos.mpc.v1 import node_pb2
from tests.integration.conftest import InProcessCluster, _serve, open_cluster
from tests.integration.test_ecdsa_cluster import seed_aux_info

ACME = KeyOwner("org", "acme")
BETA = KeyOwner("org", "beta")
WRAPPED_SIZE = 12 + 32 + 16  # nonce || AES-256-GCM(32-byte data key) || tag


def _db_files(data_dir: Path) -> list[Path]:
    return [data_dir / (DB_NAME + suffix) for suffix in ("", "-wal", "-shm")]


def _files_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in _db_files(data_dir) if p.exists())


def _backup(data_dir: Path, to: Path) -> None:
    """An attacker's copy of the node's files (db, -wal, -shm), taken while it runs."""
    to.mkdir(parents=True)
    for path in _db_files(data_dir):
        if path.exists():
            shutil.copy2(path, to / path.name)


def _sealed_blobs(data_dir: Path, key_ids: list[str]) -> list[bytes]:
    """Every sealed or wrapped value stored for `key_ids` (shares, presignatures, data keys)."""
    out: list[bytes] = []
    conn = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)
    try:
        for key_id in key_ids:
            for query in (
                "SELECT sealed_secret FROM keys WHERE key_id = ?",
                "SELECT sealed_secret FROM presignatures WHERE key_id = ?",
                "SELECT sealed_sigma FROM presignatures WHERE key_id = ?",
                "SELECT wrapped_key FROM key_data_keys WHERE key_id = ?",
            ):
                try:
                    rows = conn.execute(query, (key_id,)).fetchall()
                except sqlite3.OperationalError:  # no presignatures table on this node
                    continue
                out += [bytes(r[0]) for r in rows if r[0] is not None]
    finally:
        conn.close()
    return out


def _key_aad(node: str, key_id: str) -> bytes:
    return encode_fields([b"mpc.v1.key-data-key", node.encode(), key_id.encode()])


def _tenant_aad(node: str, tenant: str) -> bytes:
    return encode_fields([b"mpc.v1.tenant-key", node.encode(), tenant.encode()])


def _share_aad(node: str, key_id: str, generation: int) -> bytes:
    return encode_fields([b"mpc.v1.share", node.encode(), key_id.encode(), encode_uint(generation)])


def _unwrap_anywhere(kek: bytes, data: bytes, aads: list[bytes]) -> list[bytes]:
    """Try every WRAPPED_SIZE window of `data` as a KEK-wrapped key under every AAD."""
    aead = AESGCM(kek)
    found = []
    for start in range(len(data) - WRAPPED_SIZE + 1):
        window = data[start : start + WRAPPED_SIZE]
        if window.count(0) > 8:  # zeroed pages: nothing sealed there
            continue
        for aad in aads:
            try:
                found.append(aead.decrypt(window[:12], window[12:], aad))
            except InvalidTag:
                pass
    return found


def _rows_bytes(data_dir: Path) -> list[bytes]:
    """Every BLOB or TEXT value of every row of every table of the node's database."""
    conn = sqlite3.connect(f"file:{data_dir / DB_NAME}?mode=ro", uri=True)
    values: list[bytes] = []
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f"SELECT * FROM {table}"):  # noqa: S608 (table names)
                values += [
                    bytes(v) if isinstance(v, bytes) else str(v).encode()
                    for v in row
                    if isinstance(v, bytes | str)
                ]
    finally:
        conn.close()
    return values


async def _sign_ed25519(cluster: InProcessCluster, key_id: str, public_key: bytes) -> None:
    message = b"still signs " + key_id.encode()
    signature, _, _ = await cluster.coordinator.sign(key_id, message)
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)


async def test_delete_key_and_tenant_leave_nothing_the_kek_opens(tmp_path: Path) -> None:
    async with open_cluster(tmp_path) as cluster:
        seed_aux_info(cluster)
        c = cluster.coordinator
        c.pools.target = 0
        doomed = await c.create_key("ed25519", 3, 5, ACME)
        ecdsa = await c.create_key("secp256k1", 3, 5, ACME)
        kept = await c.create_key("ed25519", 3, 5, BETA)
        await c._presign(ecdsa.key_id, [1, 2, 3])  # a presignature on mpc-0..2
        for info in (doomed, kept):
            await _sign_ed25519(cluster, info.key_id, bytes(info.public_key))
        await c.sign(ecdsa.key_id, b"an ecdsa message")  # consumes/makes presignatures
        await c._presign(ecdsa.key_id, [1, 2, 3])  # one left available for the backup

        gone = [doomed.key_id, ecdsa.key_id]
        before: dict[int, list[bytes]] = {}
        shares: dict[int, bytes] = {}
        handles: dict[int, Any] = {}
        for party, data_dir in cluster.data_dirs.items():
            before[party] = _sealed_blobs(data_dir, gone)
            stored = cluster.services[party].store.get_active(doomed.key_id)
            assert stored is not None
            shares[party] = stored.secret()
            handles[party] = stored
            _backup(data_dir, tmp_path / "backup" / str(party))
        assert all(len(blobs) >= 4 for blobs in before.values())  # share + data key, 2 keys

        # Delete one key, then the rest of its tenant (the ECDSA key and its presignatures).
        reply = await c.delete_key(doomed.key_id)
        assert list(reply.key_ids) == [doomed.key_id]
        assert {(n.node, n.outcome) for n in reply.nodes} == {
            (f"mpc-{k}", "deleted") for k in range(5)
        }
        reply = await c.delete_tenant(store_tenant_of_owner(ACME.org, ACME.tenant))
        assert list(reply.key_ids) == [ecdsa.key_id]

        for party, data_dir in cluster.data_dirs.items():
            name = f"mpc-{party - 1}"
            kek = cluster.keks[party]
            store = cluster.services[party].store
            assert store.get_active(doomed.key_id) is None and store.is_deleted(doomed.key_id)
            assert store.get_active(ecdsa.key_id) is None and store.is_deleted(ecdsa.key_id)
            files = _files_bytes(data_dir)
            rows = _rows_bytes(data_dir)
            for blob in before[party]:  # not one sealed record or wrapped key is left
                assert blob not in files
                assert not any(blob in value for value in rows)
            assert shares[party] not in files
            # Every 60-byte window of the db, -wal and -shm files, and every row value, tried
            # as a wrapped key under the node's KEK: nothing of the deleted keys or tenant opens.
            aads = [_key_aad(name, k) for k in gone]
            aads.append(_tenant_aad(name, store_tenant_of_owner(ACME.org, ACME.tenant)))
            assert _unwrap_anywhere(kek, files, aads) == []
            for value in rows:
                assert _unwrap_anywhere(kek, value, aads) == []
            # ... so the deleted share cannot be recovered from what is on disk.
            assert store.generations(doomed.key_id) == []
            with pytest.raises(KeyNotFound):
                handles[party].secret()

            # The attacker's backup taken BEFORE the deletion still holds the wrapped data key:
            # with the KEK it opens (crypto-shredding cannot reach copies of the wrapped keys;
            # rotating the KEK and destroying the old one does, see the KEK test below).
            backup = _files_bytes(tmp_path / "backup" / str(party))
            [data_key] = _unwrap_anywhere(kek, backup, [_key_aad(name, doomed.key_id)])[:1]
            sealed = before[party][0]
            share = AESGCM(data_key).decrypt(
                sealed[:12], sealed[12:], _share_aad(name, doomed.key_id, 0)
            )
            assert share == shares[party]

        # The coordinator refuses the deleted keys; the other tenant's key still signs.
        for key_id in gone:
            with pytest.raises(KeyNotFound, match="deleted"):
                await c.sign(key_id, b"no")
        assert [r.key_id for r in await c.list_keys()] == [kept.key_id]
        await _sign_ed25519(cluster, kept.key_id, bytes(kept.public_key))


async def test_delete_key_with_a_node_down_is_finished_by_a_retry(tmp_path: Path) -> None:
    async with open_cluster(tmp_path) as cluster:
        c = cluster.coordinator
        info = await c.create_key("ed25519", 3, 5, ACME)
        record = await c.get_record(info.key_id)
        cluster.stop_node(3)  # mpc-2
        with pytest.raises(QuorumUnavailable, match="INCOMPLETE") as excinfo:
            await c.delete_key(info.key_id)
        assert excinfo.value.missing == ("mpc-2",)
        with pytest.raises(KeyNotFound, match="incomplete on mpc-2"):
            await c.sign(info.key_id, b"refused meanwhile")
        # mpc-2 still holds its share (it was down): the key must not come back through it.
        assert cluster.services[3].store.get_active(info.key_id) is not None

        cluster.restart_node(3)
        reply = await c.delete_key(info.key_id)  # the retry finishes the job
        outcomes = {n.node: n.outcome for n in reply.nodes}
        assert outcomes["mpc-2"] == "deleted"
        assert {outcomes[f"mpc-{k}"] for k in (0, 1, 3, 4)} == {"absent"}
        for service in cluster.services.values():
            assert service.store.get_active(info.key_id) is None
            assert service.store.is_deleted(info.key_id)
        with pytest.raises(KeyNotFound, match="was deleted"):
            await c.get_record(info.key_id)

        # A certified record of the deleted key is refused by every node (no resurrection).
        request = node_pb2.CertifyGenerationRequest(record=record)
        for party in cluster.services:
            with pytest.raises(NodeCallFailed) as refused:
                await c._call(party, "CertifyGeneration", request, 5.0)
            assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert "deleted" in refused.value.details
        # ... and so is a new keygen session under its id.
        with pytest.raises(InvalidInput, match="was deleted"):
            cluster.services[1].store.put_pending(info.key_id, 0, "ed25519", b"p", b"s")


def _restart_with_kek(
    cluster: InProcessCluster, party: int, kek: bytes, next_kek: bytes | None = None
) -> None:
    """Stop a node and start it again as a new process would: its store opened from disk with
    the given KEK file(s)."""
    assert cluster.pki is not None
    old = cluster.services[party]
    cluster.stop_node(party)
    old.store.close()
    store = KeyStore(cluster.data_dirs[party], old.identity.name, kek, next_kek=next_kek)
    service = NodeService(old.identity, old.roster, store)
    port = int(cluster.coordinator.nodes[party].address.rsplit(":", 1)[1])
    cluster.servers[party], _ = _serve(service, cluster.pki, old.identity.name, f"127.0.0.1:{port}")
    cluster.services[party] = service


async def test_kek_rotation_on_running_nodes(tmp_path: Path) -> None:
    async with open_cluster(tmp_path) as cluster:
        c = cluster.coordinator
        info = await c.create_key("ed25519", 3, 5, BETA)
        await _sign_ed25519(cluster, info.key_id, bytes(info.public_key))  # before

        # Without kek_next_file a node refuses to rotate.
        with pytest.raises(Exception, match="no kek_next_file"):
            await c.rotate_keks(["mpc-0"])

        new_keks: dict[int, bytes] = {}
        for party, service in cluster.services.items():
            new_keks[party] = bytes(reversed(cluster.keks[party]))
            path = tmp_path / f"mpc-{party - 1}.kek-next"
            write_file_atomic(path, new_keks[party], 0o600)
            service.kek_next_file = path

        signatures: list[bytes] = []

        async def keep_signing(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
            task_status.started()
            while True:
                signature, _, _ = await c.sign(info.key_id, b"during rotation")
                signatures.append(signature)
                await trio.lowlevel.checkpoint()

        old_fingerprints = {p: s.store.kek_fingerprint for p, s in cluster.services.items()}
        async with trio.open_nursery() as nursery:
            await nursery.start(keep_signing)
            await trio.sleep(0.2)
            reply = await c.rotate_keks()  # during
            await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
        assert signatures
        public = Ed25519PublicKey.from_public_bytes(bytes(info.public_key))
        for signature in signatures:
            public.verify(signature, b"during rotation")
        assert [(n.node, n.outcome) for n in reply.nodes] == [
            (f"mpc-{k}", "rotated") for k in range(5)
        ]
        for n in reply.nodes:
            party = int(n.node.rsplit("-", 1)[1]) + 1
            assert n.kek_fingerprint == cluster.services[party].store.kek_fingerprint
            assert n.kek_fingerprint != old_fingerprints[party]
            assert cluster.services[party].store.uses_kek(new_keks[party])
        again = await c.rotate_keks(["mpc-1"])
        assert [(n.node, n.outcome) for n in again.nodes] == [("mpc-1", "current")]
        await _sign_ed25519(cluster, info.key_id, bytes(info.public_key))  # after

        # The old KEK opens nothing on disk any more.
        for party, data_dir in cluster.data_dirs.items():
            name = f"mpc-{party - 1}"
            aads = [_key_aad(name, info.key_id), _tenant_aad(name, "owner:org/beta")]
            assert _unwrap_anywhere(cluster.keks[party], _files_bytes(data_dir), aads) == []

        # Restarts: with the new KEK file only, with both files, never with the old one only.
        _restart_with_kek(cluster, 1, new_keks[1])
        _restart_with_kek(cluster, 2, cluster.keks[2], next_kek=new_keks[2])
        with pytest.raises(InvalidInput, match="neither kek_file nor kek_next_file"):
            KeyStore(cluster.data_dirs[3], "mpc-2", cluster.keks[3])
        for party in (4, 5):
            cluster.stop_node(party)
        await _sign_ed25519(cluster, info.key_id, bytes(info.public_key))  # mpc-0, 1 with mpc-2
