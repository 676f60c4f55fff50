"""Real processes: CGGMP ECDSA 3-of-5 on a local cluster, driven like a user would.

aux-info runs for real (seeded with the public TEST fixture primes so that no node spends
minutes making safe primes), then a secp256k1 key signs 200 messages; every signature is
checked by coincurve and by `cryptography`, its recovery id recovers the key, and no r repeats.
Production-size Paillier makes this the slowest test (a presignature costs seconds of CPU).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from protos.mpc.v1 import coordinator_pb2, node_pb2, node_pb2_grpc
from tests.cluster.harness import ROOT, LocalCluster
from tests.ecdsa_checks import check_ecdsa

BASE_PORT = 53150
SIGNATURES = int(os.environ.get("MPC_CLUSTER_SIGNATURES", "200"))
CHILD_SIGNATURES = int(os.environ.get("MPC_CLUSTER_CHILD_SIGNATURES", "50"))
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def ecdsa_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("ecdsa-cluster"), BASE_PORT)
    primes = ROOT / "tests" / "fixtures" / "safe_primes.json"
    cluster.run("up", "--prime-pool", "0", "--test-primes", str(primes))
    try:
        yield cluster
    finally:
        cluster.run("down", "--purge")


@pytest.fixture(scope="module")
def secp_key(ecdsa_cluster: LocalCluster) -> dict[str, Any]:
    proc = ecdsa_cluster.mpcctl("aux-info", timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "round" in proc.stderr  # progress was shown
    proc = ecdsa_cluster.mpcctl("keygen", "--scheme", "secp256k1", "--threshold", "3")
    assert proc.returncode == 0, proc.stderr
    key: dict[str, Any] = json.loads(proc.stdout)
    assert key["scheme"] == "secp256k1" and key["threshold"] == 3
    assert key["parties"] == [0, 1, 2, 3, 4] and key["generation"] == 0
    assert len(bytes.fromhex(key["public_key"])) == 33
    return key


def check_cli_output(public_key: bytes, digest: bytes, signed: dict[str, Any]) -> None:
    """An `mpcctl sign` result: the digest it reports, and the signature checked independently."""
    assert bytes.fromhex(signed["digest"]) == digest
    check_ecdsa(
        public_key,
        digest,
        bytes.fromhex(signed["signature"]),
        bytes.fromhex(signed["signature_der"]),
        signed["recovery_id"],
    )


def test_200_signatures_then_two_nodes_down(
    ecdsa_cluster: LocalCluster, secp_key: dict[str, Any]
) -> None:
    public = bytes.fromhex(secp_key["public_key"])
    channel, stub = ecdsa_cluster.stub()

    def one(_: int) -> int:
        message = os.urandom(48)
        response = stub.Sign(
            coordinator_pb2.SignRequest(key_id=secp_key["key_id"], message=message), timeout=600
        )
        digest = hashlib.sha256(message).digest()
        assert bytes(response.digest) == digest
        assert bytes(response.public_key) == public
        return check_ecdsa(
            public,
            digest,
            bytes(response.signature),
            bytes(response.signature_der),
            response.recovery_id,
        )

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            rs = list(pool.map(one, range(SIGNATURES)))
    finally:
        channel.close()
    assert len(set(rs)) == SIGNATURES

    status = ecdsa_cluster.mpcctl("presign-status", "--key-id", secp_key["key_id"])
    assert status.returncode == 0, status.stderr
    pools = json.loads(status.stdout)["pools"]
    assert sum(int(p["used"]) for p in pools) >= 1

    # A caller's digest: signed interactively, never from the pool.
    digest = hashlib.sha256(b"a digest the caller computed").digest()
    proc = ecdsa_cluster.mpcctl(
        "sign", "--key-id", secp_key["key_id"], "--digest-hex", digest.hex()
    )
    assert proc.returncode == 0, proc.stderr
    signed = json.loads(proc.stdout)
    check_cli_output(public, digest, signed)

    # Any two nodes down: still signs, without them.
    ecdsa_cluster.run("kill-node", "0")
    ecdsa_cluster.run("kill-node", "2")
    try:
        for text in (b"two nodes are down", b"still two down"):
            proc = ecdsa_cluster.mpcctl(
                "sign", "--key-id", secp_key["key_id"], "--message-hex", text.hex(), timeout=600
            )
            assert proc.returncode == 0, proc.stderr
            signed = json.loads(proc.stdout)
            assert not {"mpc-0", "mpc-2"} & set(signed["signers"])
            check_cli_output(public, hashlib.sha256(text).digest(), signed)
    finally:
        ecdsa_cluster.run("start-node", "0")
        ecdsa_cluster.run("start-node", "2")


def _node_stub(cluster: LocalCluster, index: int) -> tuple[grpc.Channel, Any]:
    """A Node API client with the coordinator's certificate (the only caller nodes accept)."""
    info = json.loads((cluster.dir / "cluster.json").read_text())
    tls = json.loads(Path(info["coordinator"]["config"]).read_text())["tls"]
    creds = grpc.ssl_channel_credentials(
        Path(tls["ca"]).read_bytes(), Path(tls["key"]).read_bytes(), Path(tls["cert"]).read_bytes()
    )
    channel = grpc.secure_channel(info["nodes"][index]["address"], creds)
    return channel, node_pb2_grpc.NodeStub(channel)


def test_consumed_presignature_is_refused_after_a_node_restart(
    ecdsa_cluster: LocalCluster, secp_key: dict[str, Any]
) -> None:
    key_id = secp_key["key_id"]
    # Make sure some presignature exists (the pool refills in the background).
    proc = ecdsa_cluster.mpcctl("sign", "--key-id", key_id, "--message-hex", "00", timeout=600)
    assert proc.returncode == 0, proc.stderr
    channel, node = _node_stub(ecdsa_cluster, 1)  # mpc-1, party 2
    try:
        listed = node.ListPresignatures(
            node_pb2.ListPresignaturesRequest(key_id=key_id), timeout=30
        )
        entries = [e for e in listed.presignatures if 2 in e.signers]
        if not entries:
            pytest.fail("mpc-1 holds no presignature of the key to test with")
        entry = entries[0]

        def partial(request_id: bytes, message: bytes) -> Any:
            return node.PartialSign(
                node_pb2.PartialSignRequest(
                    key_id=key_id,
                    presignature_id=entry.presignature_id,
                    request_id=request_id,
                    signers=list(entry.signers),
                    message=message,
                ),
                timeout=30,
            )

        first = partial(b"A" * 16, b"first message")
        assert len(first.sigma) == 32
    finally:
        channel.close()

    ecdsa_cluster.run("kill-node", "1")
    ecdsa_cluster.run("start-node", "1")

    channel, node = _node_stub(ecdsa_cluster, 1)
    try:
        with pytest.raises(grpc.RpcError) as refused:
            partial(b"B" * 16, b"another message")
        assert "already used" in (refused.value.details() or "")
        # The identical request gets the identical σ_i back (a lost reply can be re-fetched).
        assert partial(b"A" * 16, b"first message").sigma == first.sigma
        listed = node.ListPresignatures(
            node_pb2.ListPresignaturesRequest(key_id=key_id), timeout=30
        )
        assert entry.presignature_id not in [e.presignature_id for e in listed.presignatures]
    finally:
        channel.close()

    # The coordinator's pool still held that presignature: signing burns it and goes on.
    for _ in range(3):
        proc = ecdsa_cluster.mpcctl("sign", "--key-id", key_id, "--message-hex", "01", timeout=600)
        assert proc.returncode == 0, proc.stderr


def random_path(rng: random.Random) -> str:
    return "m/" + "/".join(str(rng.randrange(2**31)) for _ in range(rng.randrange(1, 5)))


def test_child_keys_sign_under_random_paths(
    ecdsa_cluster: LocalCluster, secp_key: dict[str, Any]
) -> None:
    """50 signatures under random non-hardened paths, each verified under the child key that an
    independent BIP-32 library derives from the root xpub; a hardened path is refused."""
    from pycoin.symbols.btc import network as btc  # type: ignore[import-untyped]

    key_id = secp_key["key_id"]
    proc = ecdsa_cluster.mpcctl("pubkey", "--key-id", key_id)
    assert proc.returncode == 0, proc.stderr
    root = btc.parse.bip32(json.loads(proc.stdout)["xpub"])
    assert root is not None
    rng = random.Random(5)
    paths = [random_path(rng) for _ in range(CHILD_SIGNATURES)]
    channel, stub = ecdsa_cluster.stub()

    def one(path: str) -> None:
        message = os.urandom(32)
        response = stub.Sign(
            coordinator_pb2.SignRequest(key_id=key_id, message=message, path=path), timeout=600
        )
        child = root.subkey_for_path(path[2:]).sec()
        assert bytes(response.public_key) == child and response.path == path
        check_ecdsa(
            child,
            hashlib.sha256(message).digest(),
            bytes(response.signature),
            bytes(response.signature_der),
            response.recovery_id,
        )

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, paths))
    finally:
        channel.close()

    proc = ecdsa_cluster.mpcctl("pubkey", "--key-id", key_id, "--path", paths[0])
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["path"] == paths[0]
    assert info["xpub"] == root.subkey_for_path(paths[0][2:]).hwif()

    proc = ecdsa_cluster.mpcctl(
        "sign", "--key-id", key_id, "--message-hex", "00", "--path", "m/0'/1"
    )
    assert proc.returncode != 0
    error = json.loads(proc.stderr)
    assert error["error"] == "INVALID_ARGUMENT" and "harden" in error["message"].lower()
    assert "Traceback" not in proc.stderr


def sign_retrying(cluster: LocalCluster, key_id: str, message: bytes) -> Any:
    """`mpcctl sign`; right after a node restart the coordinator's channel to it may still be in
    its (at most 2 s) reconnect backoff, so UNAVAILABLE is retried a bounded number of times."""
    for _ in range(20):
        proc = cluster.mpcctl(
            "sign", "--key-id", key_id, "--message-hex", message.hex(), timeout=600
        )
        if proc.returncode == 0 or json.loads(proc.stderr).get("error") != "UNAVAILABLE":
            break
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_reshare_to_4_of_5_and_back(ecdsa_cluster: LocalCluster, secp_key: dict[str, Any]) -> None:
    """Issue 6 on secp256k1: same key, presignatures of the old generation dropped, four signers
    needed after 3-of-5 -> 4-of-5 (three live nodes fail cleanly), and back to 3-of-5."""
    key_id, public = secp_key["key_id"], bytes.fromhex(secp_key["public_key"])
    child = ecdsa_cluster.mpcctl("pubkey", "--key-id", key_id, "--path", "m/1/2")
    assert child.returncode == 0, child.stderr
    proc = ecdsa_cluster.mpcctl("reshare", "--key-id", key_id, "--threshold", "4", timeout=600)
    assert proc.returncode == 0, proc.stderr
    reshared = json.loads(proc.stdout)
    assert bytes.fromhex(reshared["public_key"]) == public
    assert reshared["threshold"] == 4 and reshared["parties"] == [0, 1, 2, 3, 4]
    generation = reshared["generation"]
    assert generation >= 1
    proc = ecdsa_cluster.mpcctl("pubkey", "--key-id", key_id, "--path", "m/1/2")
    assert json.loads(proc.stdout)["xpub"] == json.loads(child.stdout)["xpub"]

    text = b"four ECDSA signers"
    signed = sign_retrying(ecdsa_cluster, key_id, text)
    assert len(signed["signers"]) == 4
    check_cli_output(public, hashlib.sha256(text).digest(), signed)

    ecdsa_cluster.run("kill-node", "1")
    ecdsa_cluster.run("kill-node", "3")
    try:
        proc = ecdsa_cluster.mpcctl("sign", "--key-id", key_id, "--message-hex", "00")
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        error = json.loads(proc.stderr)
        assert error["error"] == "UNAVAILABLE" and "needs 4 of 5" in error["message"]
    finally:
        ecdsa_cluster.run("start-node", "1")
        ecdsa_cluster.run("start-node", "3")

    proc = ecdsa_cluster.mpcctl("reshare", "--key-id", key_id, "--threshold", "3", timeout=600)
    assert proc.returncode == 0, proc.stderr
    back = json.loads(proc.stdout)
    assert (back["threshold"], back["generation"]) == (3, generation + 1)
    text = b"three again"
    signed = sign_retrying(ecdsa_cluster, key_id, text)
    assert len(signed["signers"]) == 3
    check_cli_output(public, hashlib.sha256(text).digest(), signed)


def test_a_sixth_node_replaces_one(ecdsa_cluster: LocalCluster, secp_key: dict[str, Any]) -> None:
    """Issue 6, membership change on secp256k1: `add-node` starts mpc-5; the reshare to
    mpc-0..3 + mpc-5 first makes aux-info for the six-node committee (new Paillier keys for
    everyone, from fresh fixture primes), then moves the key; mpc-5 signs, mpc-4 holds nothing."""
    key_id, public = secp_key["key_id"], bytes.fromhex(secp_key["public_key"])
    added = ecdsa_cluster.run("add-node")
    assert added["added"] == {"name": "mpc-5", "party": 6}
    proc = ecdsa_cluster.mpcctl(
        "reshare", "--key-id", key_id, "--parties", "0,1,2,3,5", "--threshold", "3", timeout=1200
    )
    assert proc.returncode == 0, proc.stderr
    moved = json.loads(proc.stdout)
    assert bytes.fromhex(moved["public_key"]) == public
    assert (moved["threshold"], moved["parties"]) == (3, [0, 1, 2, 3, 5])

    ecdsa_cluster.run("kill-node", "0")
    ecdsa_cluster.run("kill-node", "1")
    text = b"mpc-5 co-signs"
    signed = sign_retrying(ecdsa_cluster, key_id, text)
    assert set(signed["signers"]) == {"mpc-2", "mpc-3", "mpc-5"}
    check_cli_output(public, hashlib.sha256(text).digest(), signed)
