"""The nodes' audit trail in an in-process cluster: key operations, signature shares and
refused calls are recorded, every log verifies under the node's roster key, and no entry
holds a secret."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio

from mpcnode.audit import LOG_NAME, AuditLog, AuditSigner, verify_log
from mpcnode.errors import KeyNotFound, Unauthenticated
from mpcnode.protocols.keys import KeyShare
from protos.mpc.v1 import node_pb2, node_pb2_grpc
from tests.integration.conftest import InProcessCluster
from tests.log_secrets import Secrets


def _attach_audit(cluster: InProcessCluster) -> None:
    """What build_service does: each node's trail in data_dir/audit, signed by its identity."""
    for party, service in cluster.services.items():
        service.audit = AuditLog(
            cluster.data_dirs[party] / "audit", service.identity.name, cluster.identities[party]
        )


def _entries(cluster: InProcessCluster, party: int) -> list[dict[str, Any]]:
    path = cluster.data_dirs[party] / "audit" / LOG_NAME
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def _audit_texts(cluster: InProcessCluster) -> list[str]:
    return [
        line
        for party in cluster.services
        for line in (cluster.data_dirs[party] / "audit" / LOG_NAME).read_text().splitlines()
    ]


async def test_node_audit_trail_records_key_operations_and_refusals(
    cluster: InProcessCluster, tmp_path: Path
) -> None:
    _attach_audit(cluster)
    coordinator = cluster.coordinator
    info = await coordinator.create_key("ed25519", 3, 5)
    key_id = str(info.key_id)
    message = b"audit me, never log me: " + bytes(range(40))
    signature, _, signers = await coordinator.sign(key_id, message)
    assert signature
    digest = hashlib.sha256(message).hexdigest()

    # A refused request: NOT_FOUND from a handler.
    with pytest.raises(grpc.RpcError) as refused:
        await trio.to_thread.run_sync(
            lambda: coordinator.stubs[1].GetKeyRecord(
                node_pb2.GetKeyRecordRequest(key_id="no-such-key"), timeout=10
            )
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    for party in cluster.services:
        entries = _entries(cluster, party)
        actions = [e["action"] for e in entries]
        create = [e for e in entries if e["action"] == "key.create"]
        assert len(create) == 1, actions
        assert create[0]["key_id"] == key_id and create[0]["outcome"] == "ok"
        assert create[0]["actor"] == {"peer": "coordinator"}
        assert create[0]["details"]["threshold"] == 3
        assert create[0]["details"]["parties"] == [1, 2, 3, 4, 5]
        signs = [e for e in entries if e["action"] == "key.sign"]
        if party in signers:
            assert len(signs) == 1, actions
            assert signs[0]["key_id"] == key_id
            assert signs[0]["details"]["message_sha256"] == digest
            assert signs[0]["details"]["signers"] == sorted(signers)
        else:
            assert signs == []
        report = verify_log(cluster.data_dirs[party] / "audit" / LOG_NAME, trusted=cluster.roster)
        assert report.ok and report.trusted_key, report.error
    denied = [e for e in _entries(cluster, 1) if e["action"] == "access.denied"]
    assert any(
        e["outcome"] == "NOT_FOUND"
        and e["key_id"] == "no-such-key"
        and e["details"] == {"rpc": "GetKeyRecord", "code": "NOT_FOUND"}
        and e["actor"] == {"peer": "coordinator"}
        for e in denied
    ), denied

    # No secret in any entry: shares, identity keys, KEKs, and the message itself.
    found = Secrets()
    for party, service in cluster.services.items():
        found.add(cluster.keks[party], "KEK")
        found.add(bytes(cluster.identities[party].signing_private), "identity signing seed")
        found.add(bytes(cluster.identities[party].box_private), "identity box secret")
        stored = service.store.get_active(key_id)
        assert stored is not None
        found.add(stored.secret(), "key share plaintext")
        found.add(KeyShare.decode(stored.secret()).secret_share, "key share")
    found.add(message, "the signed message")
    assert len(found) > 0
    assert found.find(_audit_texts(cluster)) == []


async def test_a_foreign_caller_is_recorded_as_denied(
    cluster: InProcessCluster, tmp_path: Path
) -> None:
    """A client certificate of the cluster's CA that is not the coordinator's: the peer check
    refuses it (PERMISSION_DENIED) and the node records who tried what."""
    _attach_audit(cluster)
    pki = cluster.pki
    assert pki is not None
    cert = pki / "mpc-0.pem"  # a node's certificate: valid, but not the coordinator's
    key = pki / "mpc-0.key"
    creds = grpc.ssl_channel_credentials(
        (pki / "ca.pem").read_bytes(), key.read_bytes(), cert.read_bytes()
    )
    address = cluster.coordinator.nodes[2].address

    def intrude() -> grpc.StatusCode:
        with grpc.secure_channel(address, creds) as channel:
            try:
                node_pb2_grpc.NodeStub(channel).ListKeyRecords(  # type: ignore[no-untyped-call]
                    node_pb2.ListKeyRecordsRequest(), timeout=10
                )
            except grpc.RpcError as exc:
                return exc.code()  # type: ignore[no-any-return]
        return grpc.StatusCode.OK

    assert await trio.to_thread.run_sync(intrude) == grpc.StatusCode.PERMISSION_DENIED
    (entry,) = [e for e in _entries(cluster, 2) if e["action"] == "access.denied"]
    assert entry["actor"] == {"peer": "mpc-0"}
    assert entry["outcome"] == "PERMISSION_DENIED"
    assert entry["details"] == {"rpc": "ListKeyRecords", "code": "PERMISSION_DENIED"}
    assert verify_log(cluster.data_dirs[2] / "audit" / LOG_NAME, trusted=cluster.roster).ok


async def test_coordinator_record(cluster: InProcessCluster, tmp_path: Path) -> None:
    coordinator = cluster.coordinator
    await coordinator.record("key.sign", actor={"peer": "x"}, outcome="ok")  # no log: no-op
    signer = AuditSigner.generate("coordinator")
    coordinator.audit = AuditLog(tmp_path / "coordinator-audit", "coordinator", signer)
    await coordinator.record(
        "key.sign",
        actor={"peer": "client", "subject": "alice"},
        outcome="ok",
        key_id="k",
        details={"message_sha256": "00" * 32},
    )
    await coordinator.record("access.denied", actor={"peer": "x"}, outcome="PERMISSION_DENIED")
    assert coordinator.audit.count == 2
    report = verify_log(tmp_path / "coordinator-audit" / LOG_NAME, trusted=signer.public_key)
    assert report.ok and report.entries == 2


async def test_coordinator_api_calls_are_audited(cluster: InProcessCluster, tmp_path: Path) -> None:
    """Through `CoordinatorApi.authenticated` (what `handlers` wraps every method in): key
    operations with the principal as actor and the message's SHA-256, refusals as
    access.denied."""
    from protos.mpc.v1 import coordinator_pb2
    from tests.integration.conftest import CLIENT_CTX, CallContext, local_api

    coordinator = cluster.coordinator
    signer = AuditSigner.generate("coordinator")
    coordinator.audit = AuditLog(tmp_path / "coordinator-audit", "coordinator", signer)
    api = local_api(coordinator)

    def call(name: str, method: Any) -> Any:
        return api.authenticated(method, name)

    info = await call("CreateKey", api.create_key)(
        coordinator_pb2.CreateKeyRequest(scheme="ed25519", threshold=3, parties=5), CLIENT_CTX
    )
    message = b"hash me"
    await call("Sign", api.sign)(
        coordinator_pb2.SignRequest(key_id=info.key_id, message=message, tenant="acme"),
        CLIENT_CTX,
    )
    await call("GetKey", api.get_key)(coordinator_pb2.GetKeyRequest(key_id=info.key_id), CLIENT_CTX)
    await call("GetKey", api.get_key)(
        coordinator_pb2.GetKeyRequest(key_id=info.key_id, tenant="acme"), CLIENT_CTX
    )
    with pytest.raises(KeyNotFound):
        await call("GetKey", api.get_key)(
            coordinator_pb2.GetKeyRequest(key_id="no-such-key"), CLIENT_CTX
        )
    with pytest.raises(Unauthenticated):
        await call("Sign", api.sign)(
            coordinator_pb2.SignRequest(key_id=info.key_id, message=message), CallContext()
        )
    log = tmp_path / "coordinator-audit" / LOG_NAME
    logged = [json.loads(line) for line in log.read_bytes().splitlines()]
    assert [(e["action"], e["outcome"]) for e in logged] == [
        ("key.create", "ok"),
        ("key.sign", "ok"),
        ("key.derive", "ok"),  # the plain GetKey is a read: not recorded
        ("access.denied", "NOT_FOUND"),
        ("access.denied", "UNAUTHENTICATED"),
    ]
    create, sign, derive, missing, anonymous = logged
    assert create["key_id"] == info.key_id and create["actor"]["peer"] == "client"
    assert create["actor"]["subject"] and create["actor"]["org"] == create["org"]
    assert sign["details"]["message_sha256"] == hashlib.sha256(message).hexdigest()
    assert sign["tenant"] == "acme" and len(sign["details"]["signers"]) == 3
    assert derive["tenant"] == "acme" and derive["details"]["public_key"]
    assert missing["key_id"] == "no-such-key"
    assert missing["details"]["rpc"] == "GetKey" and missing["outcome"] == "NOT_FOUND"
    assert anonymous["actor"] == {"peer": None}
    assert anonymous["details"]["attempted"] == "key.sign"
    assert message.hex() not in log.read_text()
    report = verify_log(log, trusted=signer.public_key)
    assert report.ok and report.entries == 5
