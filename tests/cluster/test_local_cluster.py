"""Real processes: 5 nodes and a coordinator from scripts/cluster, driven like a user would."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc
from tests.cluster.harness import LocalCluster

BASE_PORT = 53050
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"), BASE_PORT)
    cluster.run("up", "--prime-pool", "0")  # no aux-info here: spare the 2 CPUs
    try:
        yield cluster
    finally:
        cluster.run("down", "--purge")


def _verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    VerifyKey(public_key).verify(message, signature)
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)


def test_keygen_sign_kill_restart(local_cluster: LocalCluster) -> None:
    proc = local_cluster.mpcctl(
        "keygen", "--scheme", "ed25519", "--threshold", "3", "--parties", "5"
    )
    assert proc.returncode == 0, proc.stderr
    key = json.loads(proc.stdout)
    assert (
        key["threshold"] == 3
        and key["parties"] == [0, 1, 2, 3, 4]
        and len(bytes.fromhex(key["public_key"])) == 32
    )
    assert len(bytes.fromhex(key["chain_code"])) == 32
    public = bytes.fromhex(key["public_key"])

    channel, stub = local_cluster.stub()
    try:
        for _ in range(100):
            message = os.urandom(64)
            response = stub.Sign(
                coordinator_pb2.SignRequest(key_id=key["key_id"], message=message), timeout=60
            )
            VerifyKey(public).verify(message, bytes(response.signature))
    finally:
        channel.close()

    # Any two nodes down: still signs.
    local_cluster.run("kill-node", "1")
    local_cluster.run("kill-node", "3")
    message = b"two nodes are down"
    proc = local_cluster.mpcctl("sign", "--key-id", key["key_id"], "--message-hex", message.hex())
    assert proc.returncode == 0, proc.stderr
    signed = json.loads(proc.stdout)
    assert not {"mpc-1", "mpc-3"} & set(signed["signers"])
    _verify(public, message, bytes.fromhex(signed["signature"]))

    # A third one down: a clean UNAVAILABLE naming the missing nodes, no traceback.
    local_cluster.run("kill-node", "4")
    proc = local_cluster.mpcctl("sign", "--key-id", key["key_id"], "--message-hex", "00")
    assert proc.returncode != 0
    error = json.loads(proc.stderr)
    assert error["error"] == "UNAVAILABLE"
    for name in ("mpc-1", "mpc-3", "mpc-4"):
        assert name in error["message"]
    assert "Traceback" not in proc.stderr

    # Keygen needs every node: fails cleanly and creates nothing.
    proc = local_cluster.mpcctl("keygen", "--scheme", "ed25519")
    assert proc.returncode != 0 and json.loads(proc.stderr)["error"] == "UNAVAILABLE"

    # Restarted nodes sign with the same key.
    for index in ("1", "3", "4"):
        local_cluster.run("start-node", index)
    message = b"everyone is back"
    proc = local_cluster.mpcctl("sign", "--key-id", key["key_id"], "--message-hex", message.hex())
    assert proc.returncode == 0, proc.stderr
    signed = json.loads(proc.stdout)
    assert signed["public_key"] == key["public_key"]
    _verify(public, message, bytes.fromhex(signed["signature"]))

    proc = local_cluster.mpcctl("keys")
    assert [k["key_id"] for k in json.loads(proc.stdout)] == [key["key_id"]]


def test_errors_are_clean(local_cluster: LocalCluster) -> None:
    proc = local_cluster.mpcctl("pubkey", "--key-id", "no-such-key")
    assert proc.returncode != 0
    assert json.loads(proc.stderr)["error"] == "NOT_FOUND"
    proc = local_cluster.mpcctl("keygen", "--scheme", "ed25519", "--threshold", "9")
    assert json.loads(proc.stderr)["error"] == "INVALID_ARGUMENT"
    proc = local_cluster.mpcctl("sign", "--key-id", "x", "--message-hex", "zz")
    assert json.loads(proc.stderr)["error"] == "INVALID_ARGUMENT"


def test_node_refuses_clients_other_than_the_coordinator(local_cluster: LocalCluster) -> None:
    from protos.mpc.v1 import node_pb2, node_pb2_grpc

    info = json.loads((local_cluster.dir / "cluster.json").read_text())
    t = info["tls"]
    ca = Path(t["ca"]).read_bytes()
    # A valid client certificate, but not the coordinator's: PERMISSION_DENIED.
    creds = grpc.ssl_channel_credentials(
        ca, Path(t["client_key"]).read_bytes(), Path(t["client_cert"]).read_bytes()
    )
    with grpc.secure_channel(info["nodes"][0]["address"], creds) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            node_pb2_grpc.NodeStub(channel).Identity(node_pb2.IdentityRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # No client certificate at all: the TLS handshake fails.
    with grpc.secure_channel(
        info["coordinator"]["address"], grpc.ssl_channel_credentials(ca)
    ) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            coordinator_pb2_grpc.CoordinatorStub(channel).ListKeys(
                coordinator_pb2.ListKeysRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_ed25519_child_keys_sign_under_random_paths(local_cluster: LocalCluster) -> None:
    """50 signatures under random non-hardened paths and a tenant, each verified (PyNaCl and
    cryptography) under the child key `mpcctl pubkey --path` reports, never under the root."""
    import random

    proc = local_cluster.mpcctl("keygen", "--scheme", "ed25519")
    assert proc.returncode == 0, proc.stderr
    key = json.loads(proc.stdout)
    root = bytes.fromhex(key["public_key"])
    rng = random.Random(11)
    channel, stub = local_cluster.stub()
    try:
        for n in range(50):
            depth = rng.randrange(1, 5)
            path = "m/" + "/".join(str(rng.randrange(2**31)) for _ in range(depth))
            message = os.urandom(40)
            response = stub.Sign(
                coordinator_pb2.SignRequest(key_id=key["key_id"], message=message, path=path),
                timeout=60,
            )
            child = bytes(response.public_key)
            assert response.path == path and child != root
            _verify(child, message, bytes(response.signature))
            if n < 3:  # the key the CLI reports for the path is the one that signed
                shown = json.loads(
                    local_cluster.mpcctl("pubkey", "--key-id", key["key_id"], "--path", path).stdout
                )
                assert bytes.fromhex(shown["public_key"]) == child
                with pytest.raises(BadSignatureError):
                    VerifyKey(root).verify(message, bytes(response.signature))
    finally:
        channel.close()

    proc = local_cluster.mpcctl(
        "sign", "--key-id", key["key_id"], "--message-hex", "00", "--tenant", "acme-corp"
    )
    assert proc.returncode == 0, proc.stderr
    signed = json.loads(proc.stdout)
    shown = json.loads(
        local_cluster.mpcctl("pubkey", "--key-id", key["key_id"], "--tenant", "acme-corp").stdout
    )
    assert signed["public_key"] == shown["public_key"] != key["public_key"]
    _verify(bytes.fromhex(shown["public_key"]), b"\x00", bytes.fromhex(signed["signature"]))

    proc = local_cluster.mpcctl(
        "sign", "--key-id", key["key_id"], "--message-hex", "00", "--path", "m/1/2147483648"
    )
    assert proc.returncode != 0
    error = json.loads(proc.stderr)
    assert error["error"] == "INVALID_ARGUMENT" and "harden" in error["message"].lower()
