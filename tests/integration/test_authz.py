"""Who may use which key: the coordinator's public API over real gRPC with mTLS, real JWTs
signed by a test JWKS (`tests.jwt_issuer`), and keys whose owner the nodes certify.

Keys of org "org1": R (org root), KA (tenant A), KB (tenant B), all made through CreateKey by
an org-wide admin. Checked here: every RPC refuses a call without credentials (and a missing,
expired, wrong-issuer, wrong-audience or unknown-key token) with UNAUTHENTICATED; roles give
PERMISSION_DENIED; a tenant cannot sign with, derive from, read or even list another tenant's
key (NOT_FOUND, with the message of a key that does not exist), nor another tenant's child of
the org root; another org sees nothing; a tenant signs with its own key and with its child of
the org root (verified with PyNaCl); the owner comes from the holders' certified records (a
new coordinator sees it, a tampered record is refused, a forged owner in a reshare too).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from google.protobuf import message_factory
from nacl.signing import VerifyKey

from coordinator.auth import AuthConfig, Authenticator
from coordinator.devcluster import DEV_CLIENT_PRINCIPAL
from coordinator.server import Coordinator, CoordinatorApi, serve, tls_channel_factory
from mpcnode import tls
from mpcnode.crypto import hd
from mpcnode.envelope import package_of, verify_key_record
from mpcnode.errors import InvalidInput, MpcError
from mpcnode.rpc import SERVER_OPTIONS
from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc, envelope_pb2, node_pb2
from tests.integration.conftest import CallContext, InProcessCluster, local_api, open_cluster
from tests.jwt_issuer import JwtIssuer, make_test_issuer

ALL_ROLES = ["org:admin", "tenant:signer", "auditor"]
SERVICE = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"]
CALL_TIMEOUT = 60.0


@dataclass
class Env:
    cluster: InProcessCluster
    issuer: JwtIssuer
    channel: grpc.Channel
    """mTLS with the `coordinator` certificate: a CA-signed client no principal is mapped to."""
    client_channel: grpc.Channel
    """mTLS with the `client` certificate, mapped to an org-wide principal of org "default"."""
    stub: Any
    keys: dict[str, str]
    """"R", "KA", "KB" -> key id."""

    def token(self, **kwargs: Any) -> tuple[tuple[str, str], ...]:
        kwargs.setdefault("org", "org1")
        return (self.issuer.bearer(self.issuer.token(**kwargs)),)

    async def call(self, method: str, request: Any, metadata: Any = (), stub: Any = None) -> Any:
        fn = getattr(stub or self.stub, method)
        return await trio.to_thread.run_sync(
            lambda: fn(request, metadata=metadata, timeout=CALL_TIMEOUT)
        )

    async def fails(self, code: grpc.StatusCode, method: str, request: Any, metadata: Any) -> str:
        """Call, expect `code`; the status details."""
        with pytest.raises(grpc.RpcError) as caught:
            await self.call(method, request, metadata)
        err: Any = caught.value
        assert err.code() == code, (method, err.code(), err.details())
        return str(err.details())


def _serve_api(api: CoordinatorApi, pki: Path) -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((api.handlers(trio.lowlevel.current_trio_token()),))
    creds = tls.server_credentials(
        str(pki / "ca.pem"), str(pki / "coordinator.pem"), str(pki / "coordinator.key")
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    return server, port


def _channel(pki: Path, name: str, port: int) -> grpc.Channel:
    creds = tls.channel_credentials(
        str(pki / "ca.pem"), str(pki / f"{name}.pem"), str(pki / f"{name}.key")
    )
    return grpc.secure_channel(f"localhost:{port}", creds)


@contextlib.asynccontextmanager
async def open_env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_cluster(tmp_path) as cluster:
        pki = cluster.pki
        assert pki is not None
        cert, key = tls.issue_cert(
            (pki / "ca.pem").read_bytes(), (pki / "ca.key").read_bytes(), "client", ["client"], []
        )
        tls.write_pem(pki / "client.key", key, private=True)
        tls.write_pem(pki / "client.pem", cert, private=False)
        issuer = make_test_issuer(tmp_path)
        auth = issuer.auth_config(mtls_principals={"client": DEV_CLIENT_PRINCIPAL})
        api = CoordinatorApi(cluster.coordinator, Authenticator(AuthConfig.from_dict(auth)))
        server, port = _serve_api(api, pki)
        channel = _channel(pki, "coordinator", port)
        client_channel = _channel(pki, "client", port)
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)  # type: ignore[no-untyped-call]
        env = Env(cluster, issuer, channel, client_channel, stub, {})
        try:
            admin = env.token(roles=["org:admin"])
            for name, tenant in (("R", ""), ("KA", "A"), ("KB", "B")):
                request = coordinator_pb2.CreateKeyRequest(
                    scheme="ed25519", threshold=3, parties=5, owner_tenant=tenant
                )
                info = await env.call("CreateKey", request, admin)
                assert (info.org, info.owner_tenant) == ("org1", tenant)
                env.keys[name] = info.key_id
            yield env
        finally:
            channel.close()
            client_channel.close()
            server.stop(grace=None)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with open_env(tmp_path) as opened:
        yield opened


def _empty_request(method: Any) -> Any:
    return message_factory.GetMessageClass(method.input_type)()


# -- authentication -----------------------------------------------------------------------------


async def test_every_rpc_refuses_a_call_without_credentials(env: Env) -> None:
    """Every method of the service (whoever added it): an unmapped client certificate and no
    token is UNAUTHENTICATED, before the request is even looked at."""
    assert len(SERVICE.methods) >= 8
    for method in SERVICE.methods:
        call = env.channel.unary_unary(
            f"/{SERVICE.full_name}/{method.name}",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=message_factory.GetMessageClass(method.output_type).FromString,
        )
        request = _empty_request(method)
        with pytest.raises(grpc.RpcError) as caught:
            await trio.to_thread.run_sync(
                lambda c=call, r=request: c(r, timeout=CALL_TIMEOUT)  # type: ignore[misc]
            )
        err: Any = caught.value
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, (method.name, err.details())


async def test_bad_tokens_are_unauthenticated(env: Env) -> None:
    sign = coordinator_pb2.SignRequest(key_id=env.keys["KA"], message=b"m", tenant="")
    signer = {"tenant": "A", "roles": ["tenant:signer"]}
    hidden = env.issuer.add_key("ES256", "unpublished", published=False)
    bad: dict[str, Any] = {
        "expired": env.token(**signer, ttl=-3600),
        "wrong issuer": env.token(**signer, claims={"iss": "https://evil.example"}),
        "wrong audience": env.token(**signer, claims={"aud": "someone-else"}),
        "unknown key": env.token(**signer, kid=hidden),
        "no org": env.token(**signer, omit=["org"]),
        "not a jwt": (("authorization", "Bearer not.a.jwt"),),
        "not bearer": (("authorization", "Basic dXNlcjpwYXNz"),),
    }
    for what, metadata in bad.items():
        details = await env.fails(grpc.StatusCode.UNAUTHENTICATED, "Sign", sign, metadata)
        assert "Bearer" not in details or what == "not bearer", what
        assert metadata[0][1].split()[-1] not in details  # the token is never echoed
    # The same token, valid: signs.
    reply = await env.call("Sign", sign, env.token(**signer))
    VerifyKey(bytes(reply.public_key)).verify(b"m", bytes(reply.signature))


async def test_a_mapped_client_certificate_is_a_principal(env: Env) -> None:
    """The dev-cluster path: the `client` certificate alone is org "default" with every role
    (it sees none of org1's keys), and a token on the same channel decides instead."""
    stub = coordinator_pb2_grpc.CoordinatorStub(env.client_channel)  # type: ignore[no-untyped-call]
    listed = await env.call("ListKeys", coordinator_pb2.ListKeysRequest(), stub=stub)
    assert list(listed.keys) == []
    info = await env.call("CreateKey", coordinator_pb2.CreateKeyRequest(), stub=stub)
    assert (info.org, info.owner_tenant) == ("default", "")
    with_token = await env.call(
        "ListKeys", coordinator_pb2.ListKeysRequest(), env.token(roles=ALL_ROLES), stub
    )
    assert {k.key_id for k in with_token.keys} == set(env.keys.values())


def test_the_coordinator_refuses_to_start_without_auth(tmp_path: Path) -> None:
    config = {
        "listen": "127.0.0.1:0",
        "health_listen": "127.0.0.1:0",
        "roster_file": str(tmp_path / "roster.json"),
        "tls": {"ca": "ca.pem", "cert": "c.pem", "key": "c.key"},
        "nodes": [],
    }
    path = tmp_path / "coordinator.json"
    path.write_text(json.dumps(config))
    with pytest.raises(InvalidInput, match="auth"):
        trio.run(serve, str(path))
    path.write_text(json.dumps({**config, "auth": {"mtls_principals": {"x": {"roles": []}}}}))
    with pytest.raises(InvalidInput, match="org"):
        trio.run(serve, str(path))


# -- roles --------------------------------------------------------------------------------------


async def test_roles(env: Env) -> None:
    ka, r = env.keys["KA"], env.keys["R"]
    denied = grpc.StatusCode.PERMISSION_DENIED
    signer_a = env.token(tenant="A", roles=["tenant:signer"])
    admin = env.token(roles=["org:admin"])
    auditor = env.token(roles=["auditor"])
    # A signer without admin: no keygen, no reshare, no presignature status, no operations.
    await env.fails(denied, "CreateKey", coordinator_pb2.CreateKeyRequest(), signer_a)
    await env.fails(denied, "Reshare", coordinator_pb2.ReshareRequest(key_id=ka), signer_a)
    await env.fails(
        denied, "PresignStatus", coordinator_pb2.PresignStatusRequest(key_id=ka), signer_a
    )
    await env.fails(denied, "StartAuxInfo", coordinator_pb2.StartAuxInfoRequest(), signer_a)
    await env.fails(
        denied, "GetOperation", coordinator_pb2.GetOperationRequest(operation_id="x"), signer_a
    )
    # An admin without signer (least privilege) and an auditor may read, not sign.
    for who in (admin, auditor):
        await env.fails(denied, "Sign", coordinator_pb2.SignRequest(key_id=r, message=b"m"), who)
        await env.fails(
            denied, "Sign", coordinator_pb2.SignRequest(key_id=r, message=b"m", tenant="A"), who
        )
        info = await env.call("GetKey", coordinator_pb2.GetKeyRequest(key_id=r), who)
        assert info.key_id == r
    # A tenant-scoped admin creates only its own tenant's keys.
    admin_a = env.token(tenant="A", roles=["org:admin"])
    await env.fails(
        denied, "CreateKey", coordinator_pb2.CreateKeyRequest(owner_tenant="B"), admin_a
    )
    # The org admin reshares the tenant's key; the owner stays (certified again by the holders).
    before = await env.call("GetKey", coordinator_pb2.GetKeyRequest(key_id=ka), admin)
    reshared = await env.call(
        "Reshare", coordinator_pb2.ReshareRequest(key_id=ka, parties=[1, 2, 3, 4]), admin
    )
    assert reshared.generation == before.generation + 1
    assert (reshared.org, reshared.owner_tenant) == ("org1", "A")
    assert bytes(reshared.public_key) == bytes(before.public_key)
    reply = await env.call("Sign", coordinator_pb2.SignRequest(key_id=ka, message=b"x"), signer_a)
    VerifyKey(bytes(before.public_key)).verify(b"x", bytes(reply.signature))


# -- tenant isolation ---------------------------------------------------------------------------


async def test_a_tenant_cannot_use_or_see_another_tenants_key(env: Env) -> None:
    kb, r = env.keys["KB"], env.keys["R"]
    nf = grpc.StatusCode.NOT_FOUND
    everything_a = env.token(tenant="A", roles=ALL_ROLES)
    missing = str(uuid.uuid4())

    async def not_found(method: str, request: Any, key_id: str, metadata: Any) -> None:
        details = await env.fails(nf, method, request, metadata)
        # exactly what a key that does not exist gives: no existence leak
        request.key_id = missing
        absent = await env.fails(nf, method, request, metadata)
        assert details == absent.replace(missing, key_id) == f"no key {key_id!r}"

    sign, get = coordinator_pb2.SignRequest, coordinator_pb2.GetKeyRequest
    # B's own key: no sign, no derive (path/tenant child), no read.
    await not_found("Sign", sign(key_id=kb, message=b"m"), kb, everything_a)
    await not_found("Sign", sign(key_id=kb, message=b"m", tenant="A"), kb, everything_a)
    await not_found("GetKey", get(key_id=kb), kb, everything_a)
    await not_found("GetKey", get(key_id=kb, path="m/1/2"), kb, everything_a)
    await not_found("GetKey", get(key_id=kb, tenant="A"), kb, everything_a)
    await not_found(
        "PresignStatus", coordinator_pb2.PresignStatusRequest(key_id=kb), kb, everything_a
    )
    await not_found("Reshare", coordinator_pb2.ReshareRequest(key_id=kb), kb, everything_a)
    # The org root: only as A's own child, never itself, a path under it, or B's child.
    await not_found("Sign", sign(key_id=r, message=b"m", tenant="B"), r, everything_a)
    await not_found("Sign", sign(key_id=r, message=b"m"), r, everything_a)
    await not_found("GetKey", get(key_id=r), r, everything_a)
    await not_found("GetKey", get(key_id=r, tenant="B"), r, everything_a)
    await not_found("GetKey", get(key_id=r, path="m/7"), r, everything_a)
    await not_found("Reshare", coordinator_pb2.ReshareRequest(key_id=r), r, everything_a)
    # Listing: A's own key as itself, the root only as A's child, no trace of KB.
    listed = await env.call("ListKeys", coordinator_pb2.ListKeysRequest(), everything_a)
    by_id = {k.key_id: k for k in listed.keys}
    assert set(by_id) == {env.keys["KA"], r}
    root_admin = await env.call("GetKey", get(key_id=r), env.token(roles=["auditor"]))
    child_a = await env.call("GetKey", get(key_id=r, tenant="A"), everything_a)
    shown = by_id[r]
    assert (shown.tenant, shown.path) == ("A", hd.format_path(hd.tenant_path("A")))
    assert bytes(shown.public_key) == bytes(child_a.public_key) != bytes(root_admin.public_key)
    assert bytes(shown.chain_code) != bytes(root_admin.chain_code)
    # Another org: nothing at all.
    other = env.token(org="org2", roles=ALL_ROLES)
    for key_id in env.keys.values():
        await not_found("GetKey", get(key_id=key_id), key_id, other)
        await not_found("Sign", sign(key_id=key_id, message=b"m", tenant="A"), key_id, other)
    assert list((await env.call("ListKeys", coordinator_pb2.ListKeysRequest(), other)).keys) == []


async def test_a_tenant_signs_with_its_key_and_its_child_of_the_org_root(env: Env) -> None:
    ka, r = env.keys["KA"], env.keys["R"]
    signer_a = env.token(tenant="A", roles=["tenant:signer"], alg="EdDSA")
    own = await env.call("GetKey", coordinator_pb2.GetKeyRequest(key_id=ka), signer_a)
    assert (own.org, own.owner_tenant, own.path) == ("org1", "A", "m")
    reply = await env.call("Sign", coordinator_pb2.SignRequest(key_id=ka, message=b"a"), signer_a)
    assert bytes(reply.public_key) == bytes(own.public_key)
    VerifyKey(bytes(own.public_key)).verify(b"a", bytes(reply.signature))
    # the org root, through A's child (an RS256 token this time)
    signer_a = env.token(tenant="A", roles=["tenant:signer"], alg="RS256")
    child = await env.call("GetKey", coordinator_pb2.GetKeyRequest(key_id=r, tenant="A"), signer_a)
    org_view = await env.call(
        "GetKey", coordinator_pb2.GetKeyRequest(key_id=r, tenant="A"), env.token(roles=ALL_ROLES)
    )
    assert bytes(child.public_key) == bytes(org_view.public_key)
    reply = await env.call(
        "Sign", coordinator_pb2.SignRequest(key_id=r, message=b"b", tenant="A"), signer_a
    )
    assert bytes(reply.public_key) == bytes(child.public_key)
    VerifyKey(bytes(child.public_key)).verify(b"b", bytes(reply.signature))


# -- the owner is the nodes' certified record ---------------------------------------------------


async def test_the_owner_survives_a_coordinator_restart(env: Env) -> None:
    cluster = env.cluster
    pki = cluster.pki
    assert pki is not None
    fresh = Coordinator(
        cluster.roster,
        list(cluster.coordinator.nodes.values()),
        tls_channel_factory(pki / "ca.pem", pki / "coordinator.pem", pki / "coordinator.key"),
    )
    try:
        api = local_api(fresh, env.issuer.auth_config())
        ctx_a = CallContext(env.token(tenant="A", roles=["tenant:signer"]))
        ctx_b = CallContext(env.token(tenant="B", roles=["tenant:signer"]))
        info = await api.get_key(coordinator_pb2.GetKeyRequest(key_id=env.keys["KA"]), ctx_a)
        assert (info.org, info.owner_tenant) == ("org1", "A")
        with pytest.raises(MpcError, match="no key"):
            await api.get_key(coordinator_pb2.GetKeyRequest(key_id=env.keys["KA"]), ctx_b)
        listed = await api.list_keys(coordinator_pb2.ListKeysRequest(), ctx_b)
        assert {k.key_id for k in listed.keys} == {env.keys["KB"], env.keys["R"]}
    finally:
        fresh.close()
    for service in cluster.services.values():  # every holder stored the owner
        record = await service.get_key_record(
            node_pb2.GetKeyRecordRequest(key_id=env.keys["KB"]), None
        )
        assert (record.org, record.tenant) == ("org1", "B")


async def test_a_record_with_another_owner_is_refused(env: Env) -> None:
    cluster = env.cluster
    service = cluster.services[1]
    record = await service.get_key_record(node_pb2.GetKeyRecordRequest(key_id=env.keys["KA"]), None)
    verify_key_record(cluster.roster, record)
    for org, tenant in (("org1", "B"), ("org1", ""), ("org2", "A"), ("", "")):
        forged = envelope_pb2.KeyRecord()
        forged.CopyFrom(record)
        forged.org, forged.tenant = org, tenant
        with pytest.raises(MpcError, match="confirmation does not match"):
            verify_key_record(cluster.roster, forged)
        # a node refuses to certify it
        with pytest.raises(InvalidInput, match="not certified"):
            await service.certify_generation(node_pb2.CertifyGenerationRequest(record=forged), None)


async def test_a_reshare_with_a_forged_owner_is_refused(env: Env) -> None:
    """A relay that names another owner in a reshare: the holders refuse it (each checks the
    owner against its own record), and the key keeps its generation and owner."""
    coordinator = env.cluster.coordinator
    key_id = env.keys["KA"]
    record = await coordinator.get_record(key_id)
    package = package_of(record)
    for org, tenant in (("org1", "B"), ("org2", "A"), ("", "")):
        start = node_pb2.StartRequest(
            session_id=uuid.uuid4().bytes,
            protocol="reshare",
            key_id=key_id,
            threshold=3,
            parties=[1, 2, 3, 4, 5],
            dealers=[1, 2, 3],
            new_parties=[1, 2, 3, 4, 5],
            old_public=package.encode(),
            owner_org=org,
            owner_tenant=tenant,
        )
        with pytest.raises(MpcError):
            await coordinator.run_session(start, [1, 2, 3, 4, 5])
    coordinator.registry.clear()
    after = await coordinator.get_record(key_id)
    assert after.generation == record.generation
    assert (after.org, after.tenant) == ("org1", "A")


# -- auditors read the coordinator's audit trail -------------------------------------------------


async def test_an_auditor_reads_its_orgs_audit_entries_and_the_log_verifies(
    env: Env, tmp_path: Path
) -> None:
    """GetAuditLog needs `auditor`; another org's entries come redacted, and what the auditor
    receives still verifies end to end under the coordinator's audit key (`mpcctl audit
    fetch` + `audit verify`); an edit of a redacted line is still caught."""
    from coordinator import cli
    from mpcnode import audit

    signer = audit.AuditSigner.generate()
    env.cluster.coordinator.audit = audit.AuditLog(
        tmp_path / "coordinator-audit", "coordinator", signer
    )
    ka = env.keys["KA"]
    signer_a = env.token(tenant="A", roles=["tenant:signer"])
    await env.call("Sign", coordinator_pb2.SignRequest(key_id=ka, message=b"audited"), signer_a)
    other_admin = env.token(org="org2", roles=["org:admin"])
    created = await env.call(
        "CreateKey", coordinator_pb2.CreateKeyRequest(scheme="ed25519"), other_admin
    )
    await env.fails(  # org2 probing org1's key: NOT_FOUND, recorded as denied
        grpc.StatusCode.NOT_FOUND,
        "Sign",
        coordinator_pb2.SignRequest(key_id=ka, message=b"x"),
        env.token(org="org2", roles=["tenant:signer"]),
    )
    await env.fails(
        grpc.StatusCode.PERMISSION_DENIED,
        "GetAuditLog",
        coordinator_pb2.GetAuditLogRequest(),
        signer_a,
    )

    auditor1 = env.token(roles=["auditor"])
    page = await env.call("GetAuditLog", coordinator_pb2.GetAuditLogRequest(), auditor1)
    entries = [json.loads(line) for line in page.lines]
    assert len(entries) == page.count >= 3
    shown = [e for e in entries if not e.get("redacted")]
    assert any(
        e["action"] == "key.sign" and e["key_id"] == ka and e["outcome"] == "ok" for e in shown
    )
    assert all(e["org"] == "org1" for e in shown)
    assert created.key_id not in "".join(page.lines)  # org2's key creation: redacted
    assert any(e.get("redacted") for e in entries)
    assert bytes(page.public_key) == signer.public_key

    # the same through mpcctl, paged, then verified offline under the trusted key
    out = tmp_path / "fetched"
    pki = env.cluster.pki
    assert pki is not None
    port = env.channel._channel.target().decode().rsplit(":", 1)[1]  # type: ignore[attr-defined]
    argv = [
        "--coordinator",
        f"localhost:{port}",
        "--ca",
        str(pki / "ca.pem"),
        "--cert",
        str(pki / "client.pem"),
        "--key",
        str(pki / "client.key"),
        "--token",
        auditor1[0][1].removeprefix("Bearer "),
        "audit",
        "fetch",
        "--out",
        str(out),
    ]
    assert await trio.to_thread.run_sync(cli.main, argv) == 0
    report = audit.verify_log(out / "audit.log", trusted=signer.public_key)
    assert report.ok and report.entries == len(entries), report.to_json()
    lines = (out / "audit.log").read_bytes().splitlines()
    redacted_at = next(i for i, line in enumerate(lines) if b'"redacted":true' in line)
    altered = json.loads(lines[redacted_at])
    altered["prev"] = "11" * 32
    lines[redacted_at] = audit.canonical_json(altered)
    (out / "audit.log").write_bytes(b"".join(line + b"\n" for line in lines))
    assert not audit.verify_log(out / "audit.log", trusted=signer.public_key).ok

    auditor2 = env.token(org="org2", roles=["auditor"])
    page2 = await env.call("GetAuditLog", coordinator_pb2.GetAuditLogRequest(), auditor2)
    seen2 = [json.loads(line) for line in page2.lines]
    assert all(e["org"] == "org2" for e in seen2 if not e.get("redacted"))
    assert created.key_id in "".join(page2.lines)
    # org1's own sign entry is hidden from org2 (org2's denied probe of that key id is its own)
    assert not any(e.get("action") == "key.sign" and e.get("outcome") == "ok" for e in seen2)
