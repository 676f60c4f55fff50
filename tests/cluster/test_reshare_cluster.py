"""Resharing on real processes (issue 6), driven like an operator would: scripts/cluster and
mpcctl. An Ed25519 key goes 3-of-5 -> 4-of-5 (three live nodes cannot sign, four can), then
to 3-of-5 over a new sixth node that replaces mpc-4, whose share is then gone from its
database. Public key and child keys never change; every signature is checked by PyNaCl and
`cryptography`. (The secp256k1 threshold change runs in tests/cluster/test_ecdsa_cluster.py.)
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from tests.cluster.harness import LocalCluster

BASE_PORT = 53250
CHILD = "m/7/42"
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("reshare-cluster"), BASE_PORT)
    local.run("up", "--prime-pool", "0")
    try:
        yield local
    finally:
        local.run("down", "--purge")


def ok(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def sign(cluster: LocalCluster, key_id: str, message: bytes, *extra: str) -> dict[str, Any]:
    """Sign and verify under the key mpcctl reports. Right after a node restart the
    coordinator's channel to it may still be in its (at most 2 s) reconnect backoff, so an
    UNAVAILABLE answer is retried a bounded number of times."""
    for _ in range(20):
        proc = cluster.mpcctl("sign", "--key-id", key_id, "--message-hex", message.hex(), *extra)
        if proc.returncode == 0 or json.loads(proc.stderr).get("error") != "UNAVAILABLE":
            break
    signed: dict[str, Any] = ok(proc)
    public = bytes.fromhex(signed["public_key"])
    signature = bytes.fromhex(signed["signature"])
    VerifyKey(public).verify(message, signature)
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    return signed


def stored_generations(cluster: LocalCluster, index: int, key_id: str) -> list[int]:
    """Generations of the key in node mpc-`index`'s database file, read directly."""
    path = Path(cluster.dir) / "nodes" / f"mpc-{index}" / "keys.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT generation FROM keys WHERE key_id = ?", (key_id,)).fetchall()
    return sorted(int(g) for (g,) in rows)


def test_threshold_change_and_node_replacement(cluster: LocalCluster) -> None:
    key = ok(cluster.mpcctl("keygen", "--scheme", "ed25519", "--threshold", "3"))
    key_id, root = key["key_id"], key["public_key"]
    child = ok(cluster.mpcctl("pubkey", "--key-id", key_id, "--path", CHILD))["public_key"]
    assert sign(cluster, key_id, b"generation 0")["public_key"] == root

    # 3-of-5 -> 4-of-5
    reshared = ok(cluster.mpcctl("reshare", "--key-id", key_id, "--threshold", "4"))
    assert (reshared["generation"], reshared["threshold"], reshared["parties"]) == (
        1,
        4,
        [0, 1, 2, 3, 4],
    )
    assert reshared["holders"] == [f"mpc-{k}" for k in range(5)]
    shown = ok(cluster.mpcctl("pubkey", "--key-id", key_id))
    assert (shown["public_key"], shown["generation"], shown["threshold"]) == (root, 1, 4)
    assert shown["chain_code"] == key["chain_code"]
    assert ok(cluster.mpcctl("pubkey", "--key-id", key_id, "--path", CHILD))["public_key"] == child
    assert len(sign(cluster, key_id, b"four of five")["signers"]) == 4

    cluster.run("kill-node", "3")
    cluster.run("kill-node", "4")
    proc = cluster.mpcctl("sign", "--key-id", key_id, "--message-hex", "00")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    error = json.loads(proc.stderr)
    assert error["error"] == "UNAVAILABLE"
    assert "needs 4 of 5" in error["message"]
    assert "mpc-3" in error["message"] and "mpc-4" in error["message"]
    # a reshare needs every new holder: refused cleanly, nothing changes
    proc = cluster.mpcctl("reshare", "--key-id", key_id, "--threshold", "3")
    assert proc.returncode != 0 and json.loads(proc.stderr)["error"] == "UNAVAILABLE"
    cluster.run("start-node", "3")
    cluster.run("start-node", "4")
    assert len(sign(cluster, key_id, b"four again")["signers"]) == 4

    # A sixth node replaces mpc-4, back to 3 holders of 5.
    added = cluster.run("add-node")
    assert added["added"] == {"name": "mpc-5", "party": 6}
    assert stored_generations(cluster, 4, key_id) == [1]
    moved = ok(
        cluster.mpcctl("reshare", "--key-id", key_id, "--parties", "0,1,2,3,5", "--threshold", "3")
    )
    assert (moved["generation"], moved["threshold"], moved["parties"]) == (2, 3, [0, 1, 2, 3, 5])
    assert moved["public_key"] == root
    assert stored_generations(cluster, 4, key_id) == []  # mpc-4's share is gone
    for index in (0, 1, 2, 3, 5):
        assert stored_generations(cluster, index, key_id) == [2]
    signed = sign(cluster, key_id, b"with mpc-5")
    assert "mpc-4" not in signed["signers"] and signed["public_key"] == root
    child_signed = sign(cluster, key_id, b"child key", "--path", CHILD)
    assert child_signed["public_key"] == child

    # mpc-5 is a full holder: with two of the old ones down it signs.
    cluster.run("kill-node", "0")
    cluster.run("kill-node", "1")
    signed = sign(cluster, key_id, b"mpc-5 signs")
    assert "mpc-5" in signed["signers"]
