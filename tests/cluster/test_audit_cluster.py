"""The audit trail of a real run: 5 nodes and a coordinator (scripts/cluster), driven with
mpcctl; then `mpcctl audit verify` on every log, and on tampered copies."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from mpcnode.audit import HEAD_NAME, LOG_NAME
from protos.mpc.v1 import node_pb2, node_pb2_grpc
from tests.cluster.harness import LocalCluster

BASE_PORT = 53950
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("audit-cluster"), BASE_PORT)
    local.run("up", "--prime-pool", "0")
    try:
        yield local
    finally:
        local.run("down", "--purge")


def ok(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def entries(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_bytes().splitlines()]


def verify(cluster: LocalCluster, log: Path, *trust: str) -> subprocess.CompletedProcess[str]:
    return cluster.mpcctl("audit", "verify", str(log), *trust)


def tampered(
    cluster: LocalCluster, log: Path, trust: tuple[str, ...], tmp: Path, change: str
) -> dict[str, Any]:
    """Verify a copy of `log` (and its head) after one change; the failure's JSON."""
    copy = tmp / change
    copy.mkdir()
    shutil.copy(log, copy / LOG_NAME)
    shutil.copy(log.parent / HEAD_NAME, copy / HEAD_NAME)
    lines = (copy / LOG_NAME).read_bytes().splitlines()
    assert len(lines) >= 4
    if change == "edit":
        entry = json.loads(lines[2])
        entry["outcome"] = "ok" if entry["outcome"] != "ok" else "PERMISSION_DENIED"
        lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    elif change == "delete":
        del lines[1]
    elif change == "swap":
        lines[1], lines[2] = lines[2], lines[1]
    (copy / LOG_NAME).write_bytes(b"".join(line + b"\n" for line in lines))
    proc = verify(cluster, copy / LOG_NAME, *trust)
    assert proc.returncode == 1 and proc.stdout == "", proc.stdout
    assert "Traceback" not in proc.stderr
    error: dict[str, Any] = json.loads(proc.stderr)
    assert error["error"] == "DATA_LOSS"
    return error


def test_a_real_run_is_audited_and_tampering_is_named(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    info = json.loads((cluster.dir / "cluster.json").read_text())
    coordinator_key = info["coordinator"]["audit_public_key"]
    assert isinstance(coordinator_key, str) and len(coordinator_key) == 64
    roster = info["roster"]

    key = ok(cluster.mpcctl("keygen", "--scheme", "ed25519", "--threshold", "3"))
    key_id = key["key_id"]
    plain = b"audited message, plain"
    signed = ok(cluster.mpcctl("sign", "--key-id", key_id, "--message-hex", plain.hex()))
    tenant_message = b"audited message, tenant"
    signed_tenant = ok(
        cluster.mpcctl(
            "sign", "--key-id", key_id, "--message-hex", tenant_message.hex(), "--tenant", "acme"
        )
    )
    ok(cluster.mpcctl("pubkey", "--key-id", key_id, "--tenant", "acme"))
    reshared = ok(cluster.mpcctl("reshare", "--key-id", key_id, "--threshold", "4"))
    assert reshared["threshold"] == 4
    # Refused calls: an unknown key at the coordinator (and so at the nodes), and a client
    # certificate that is not the coordinator's at a node.
    refused = cluster.mpcctl("pubkey", "--key-id", "no-such-key")
    assert refused.returncode == 1 and json.loads(refused.stderr)["error"] == "NOT_FOUND"
    t = info["tls"]
    creds = grpc.ssl_channel_credentials(
        Path(t["ca"]).read_bytes(),
        Path(t["client_key"]).read_bytes(),
        Path(t["client_cert"]).read_bytes(),
    )
    with grpc.secure_channel(info["nodes"][0]["address"], creds) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            node_pb2_grpc.NodeStub(channel).ListKeyRecords(  # type: ignore[no-untyped-call]
                node_pb2.ListKeyRecordsRequest(), timeout=10
            )
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    cluster.run("down")  # every log at rest (a head is rewritten with every entry)

    # The coordinator's log verifies under the key cluster.json publishes.
    coordinator_log = Path(info["coordinator"]["audit_log"])
    report = ok(verify(cluster, coordinator_log, "--public-key", coordinator_key))
    assert report["ok"] and report["trusted_key"] and report["entries"] >= 5
    logged = entries(coordinator_log)
    by_action: dict[str, list[dict[str, Any]]] = {}
    for entry in logged:
        by_action.setdefault(entry["action"], []).append(entry)
    assert [e["key_id"] for e in by_action["key.create"]] == [key_id]
    sign_digests = [e["details"].get("message_sha256") for e in by_action["key.sign"]]
    assert hashlib.sha256(plain).hexdigest() in sign_digests
    assert hashlib.sha256(tenant_message).hexdigest() in sign_digests
    assert any(e["tenant"] == "acme" for e in by_action["key.sign"])
    assert [e["key_id"] for e in by_action["key.reshare"]] == [key_id]
    assert any(e["key_id"] == key_id for e in by_action.get("key.derive", []))
    assert any(
        e["key_id"] == "no-such-key" and e["outcome"] == "NOT_FOUND"
        for e in by_action["access.denied"]
    )
    assert all(e["actor"].get("peer") == "client" for e in logged)

    # Every node's log verifies under its roster key; every co-signer recorded its share.
    for node in info["nodes"]:
        log = Path(node["audit_log"])
        report = ok(verify(cluster, log, "--roster", roster))
        assert report["ok"] and report["trusted_key"]
        assert report["head"]["signer"] == node["name"]
        node_entries = entries(log)
        actions = [e["action"] for e in node_entries]
        assert actions.count("key.create") == 1, actions
        assert "key.reshare" in actions
        digests = {
            e["details"].get("message_sha256") for e in node_entries if e["action"] == "key.sign"
        }
        for message, reply in ((plain, signed), (tenant_message, signed_tenant)):
            co_signed = node["name"] in reply["signers"]
            assert (hashlib.sha256(message).hexdigest() in digests) == co_signed
        assert all(e["actor"]["peer"] in ("coordinator", "client") for e in node_entries)
    denied = [
        e for e in entries(Path(info["nodes"][0]["audit_log"])) if e["action"] == "access.denied"
    ]
    assert any(
        e["actor"] == {"peer": "client"} and e["outcome"] == "PERMISSION_DENIED" for e in denied
    )

    # One edit, deletion or swap in a copy: exit 1 naming the entry.
    for log, trust in (
        (coordinator_log, ("--public-key", coordinator_key)),
        (Path(info["nodes"][1]["audit_log"]), ("--roster", roster)),
    ):
        where = tmp_path / log.parent.parent.name
        where.mkdir()
        error = tampered(cluster, log, trust, where, "edit")
        assert (error["kind"], error["seq"], error["line"]) == ("edited", 2, 3), error
        assert "entry 2 (line 3)" in error["message"]
        error = tampered(cluster, log, trust, where, "delete")
        assert (error["kind"], error["seq"], error["line"]) == ("removed", 1, 2), error
        assert "entry 1 was removed" in error["message"]
        error = tampered(cluster, log, trust, where, "swap")
        assert (error["kind"], error["seq"], error["line"]) == ("reordered", 2, 2), error
        assert "entry 1 should be here" in error["message"]
