"""Signing under non-hardened child keys (issue 5) over the in-process cluster.

Every child signature is checked by verifiers that did not make it (PyNaCl and `cryptography`
for Ed25519; coincurve and `cryptography` via tests/ecdsa_checks.py for ECDSA), under the child
key `hd.derive` gives and never under the root key. Nodes receive only a path and derive the
tweak from their own stored key; hardened paths are refused before any node is contacted.
ECDSA presignatures cost seconds of CPU each, so the secp256k1 tests make only a handful.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import coincurve
import pytest
import trio
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from coordinator.server import NodeCallFailed, package_of
from mpcnode.crypto import hd
from mpcnode.crypto.group import SECP256K1
from mpcnode.errors import InvalidInput
from mpcnode.protocols.base import session_message
from mpcnode.protocols.cggmp import sign as cggmp_sign
from mpcnode.protocols.cggmp.presign import PresignaturePublic
from protos.mpc.v1 import coordinator_pb2, node_pb2
from tests.ecdsa_checks import check_ecdsa
from tests.fixtures.aux_info import TEST_COMMITTEE, load_test_aux_info_blobs
from tests.integration.conftest import CLIENT_CTX, InProcessCluster, local_api, open_cluster

TENANT = "acme-corp/payments"
HARDENED = ["m/0'", "m/1/2h", f"m/{2**31}", f"m/0/{2**32 - 1}", "m/44H/0"]
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def random_paths(count: int) -> list[tuple[int, ...]]:
    """Random non-hardened paths of depth 1-5 (fresh seed per run, shown on failure)."""
    rng = random.Random(os.urandom(16))
    return [
        tuple(rng.randrange(hd.HARDENED_OFFSET) for _ in range(rng.randint(1, 5)))
        for _ in range(count)
    ]


class CallCounter:
    """Wraps a node stub and records every method the coordinator calls on it."""

    def __init__(self, stub: Any, calls: list[str]) -> None:
        self._stub = stub
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        self._calls.append(name)
        return getattr(self._stub, name)


def count_node_calls(cluster: InProcessCluster) -> list[str]:
    calls: list[str] = []
    stubs = cluster.coordinator.stubs
    for party in list(stubs):
        stubs[party] = CallCounter(stubs[party], calls)  # type: ignore[assignment]
    return calls


async def root_package(cluster: InProcessCluster, key_id: str) -> Any:
    return package_of(await cluster.coordinator.get_record(key_id))


def b58check_decode(text: str) -> bytes:
    """Base58Check decoding, written here so the xpub is checked independently of hd.xpub."""
    number = 0
    for char in text:
        number = number * 58 + BASE58.index(char)
    raw = number.to_bytes((number.bit_length() + 7) // 8, "big")
    raw = b"\0" * (len(text) - len(text.lstrip("1"))) + raw
    payload, checksum = raw[:-4], raw[-4:]
    assert hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == checksum
    return payload


def check_xpub(info: Any, path: tuple[int, ...]) -> None:
    """The KeyInfo's xpub is BIP-32 serialisation of its own key and chain code at `path`."""
    raw = b58check_decode(info.xpub)
    assert len(raw) == 78
    assert raw[:4] == bytes.fromhex("0488B21E")  # mainnet public
    assert raw[4] == len(path)
    assert int.from_bytes(raw[9:13], "big") == (path[-1] if path else 0)
    if not path:
        assert raw[5:9] == b"\0\0\0\0"
    assert raw[13:45] == bytes(info.chain_code)
    assert raw[45:] == bytes(info.public_key)


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> None:
    VerifyKey(public_key).verify(message, signature)
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)


def rejects_ed25519(public_key: bytes, message: bytes, signature: bytes) -> None:
    with pytest.raises(BadSignatureError):
        VerifyKey(public_key).verify(message, signature)
    with pytest.raises(CryptoInvalidSignature):
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)


def rejects_ecdsa(public_key: bytes, digest: bytes, der: bytes) -> None:
    assert not coincurve.PublicKey(public_key).verify(der, digest, hasher=None)


async def test_ed25519_child_keys_sign_and_verify(tmp_path: Path) -> None:
    async with open_cluster(tmp_path) as cluster:
        coordinator = cluster.coordinator
        api = local_api(coordinator)
        info = await coordinator.create_key("ed25519", 3, 5)
        key_id = info.key_id
        package = await root_package(cluster, key_id)
        root = bytes(info.public_key)

        root_info = await api.get_key(coordinator_pb2.GetKeyRequest(key_id=key_id), CLIENT_CTX)
        assert (root_info.path, root_info.xpub, root_info.tenant) == ("m", "", "")
        assert bytes(root_info.public_key) == root

        tenant_path = hd.tenant_path(TENANT)
        cases: list[tuple[str, str, tuple[int, ...]]] = [
            (hd.format_path(p), "", p) for p in random_paths(6)
        ]
        cases.append(("", TENANT, tenant_path))
        seen = set()
        for text, tenant, path in cases:
            expected = hd.derive("ed25519", package.public_key, package.chain_code, path)
            child_pk = expected.public_key.encode()
            got = await api.get_key(
                coordinator_pb2.GetKeyRequest(key_id=key_id, path=text, tenant=tenant), CLIENT_CTX
            )
            assert bytes(got.public_key) == child_pk, text or tenant
            assert bytes(got.chain_code) == expected.chain_code
            assert got.path == hd.format_path(path)
            assert (got.tenant, got.xpub) == (tenant, "")
            assert child_pk != root
            seen.add(child_pk)

            message = f"child {got.path} signs".encode()
            reply = await api.sign(
                coordinator_pb2.SignRequest(
                    key_id=key_id, message=message, path=text, tenant=tenant
                ),
                CLIENT_CTX,
            )
            assert bytes(reply.public_key) == child_pk
            assert reply.path == hd.format_path(path)
            verify_ed25519(child_pk, message, bytes(reply.signature))
            rejects_ed25519(root, message, bytes(reply.signature))
        assert len(seen) == len(cases)

        # "m" and no path both mean the root key.
        reply = await api.sign(
            coordinator_pb2.SignRequest(key_id=key_id, message=b"root", path="m"), CLIENT_CTX
        )
        assert (bytes(reply.public_key), reply.path) == (root, "m")
        verify_ed25519(root, b"root", bytes(reply.signature))


async def test_hardened_and_malformed_paths_are_refused_before_any_node_call(
    cluster: InProcessCluster,
) -> None:
    coordinator = cluster.coordinator
    api = local_api(coordinator)
    info = await coordinator.create_key("ed25519", 3, 5)
    calls = count_node_calls(cluster)
    for text in HARDENED:
        with pytest.raises(hd.HardenedPathError, match="hardened") as caught:
            await api.sign(
                coordinator_pb2.SignRequest(key_id=info.key_id, message=b"x", path=text), CLIENT_CTX
            )
        assert "private key" in str(caught.value)
        with pytest.raises(hd.HardenedPathError, match="hardened"):
            await api.get_key(
                coordinator_pb2.GetKeyRequest(key_id=info.key_id, path=text), CLIENT_CTX
            )
    for text in ("m/x", "0/1/2/", "m//1", "m/-1"):
        with pytest.raises(InvalidInput):
            await coordinator.sign_request(info.key_id, b"x", path=text)
    with pytest.raises(InvalidInput, match="not both"):
        await coordinator.sign_request(info.key_id, b"x", path="m/1", tenant=TENANT)
    with pytest.raises(InvalidInput, match="255"):
        await coordinator.sign_request(info.key_id, b"x", path="m" + "/1" * 256)
    assert calls == []  # no session started, not even a key record fetched

    # A node refuses a hardened index on its own too (INVALID_ARGUMENT over gRPC).
    start = node_pb2.StartRequest(
        session_id=os.urandom(16),
        protocol="frost-sign",
        key_id=info.key_id,
        parties=[1, 2, 3],
        message=b"x",
        path=[1, 2**31],
    )
    with pytest.raises(NodeCallFailed) as failure:
        await coordinator._call(1, "Start", start, 10)
    assert failure.value.code.name == "INVALID_ARGUMENT"
    assert "hardened" in failure.value.details
    assert not cluster.services[1].sessions


@pytest.fixture
async def ecdsa(tmp_path: Path) -> AsyncIterator[InProcessCluster]:
    """The cluster with the TEST-ONLY fixture aux-info; no presignature pool refills."""
    async with open_cluster(tmp_path) as cluster:
        blobs = load_test_aux_info_blobs()
        for party, service in cluster.services.items():
            service.store.put_aux_info(TEST_COMMITTEE, blobs[party])
        cluster.coordinator.pools.target = 0
        async with trio.open_nursery() as nursery:
            await nursery.start(cluster.coordinator.run_background)
            yield cluster
            nursery.cancel_scope.cancel()


async def test_secp256k1_child_keys_sign_and_verify(ecdsa: InProcessCluster) -> None:
    coordinator = ecdsa.coordinator
    api = local_api(coordinator)
    info = await coordinator.create_key("secp256k1", 3, 5)
    key_id = info.key_id
    package = await root_package(ecdsa, key_id)
    root = bytes(info.public_key)

    root_info = await api.get_key(coordinator_pb2.GetKeyRequest(key_id=key_id), CLIENT_CTX)
    assert root_info.path == "m" and root_info.xpub.startswith("xpub")
    check_xpub(root_info, ())

    [p1, p2] = random_paths(2)
    tenant_path = hd.tenant_path(TENANT)
    # Pooled signing (presignatures of the root key, re-randomised for the child at signing).
    for text, tenant, path in [(hd.format_path(p1), "", p1), ("", TENANT, tenant_path)]:
        expected = hd.derive("secp256k1", package.public_key, package.chain_code, path)
        child_pk = expected.public_key.encode()
        got = await api.get_key(
            coordinator_pb2.GetKeyRequest(key_id=key_id, path=text, tenant=tenant), CLIENT_CTX
        )
        assert bytes(got.public_key) == child_pk
        assert got.path == hd.format_path(path) and got.tenant == tenant
        assert got.xpub == hd.xpub(expected)
        check_xpub(got, path)
        message = f"pay from {got.path}".encode()
        reply = await api.sign(
            coordinator_pb2.SignRequest(key_id=key_id, message=message, path=text, tenant=tenant),
            CLIENT_CTX,
        )
        assert bytes(reply.public_key) == child_pk and reply.path == got.path
        assert bytes(reply.digest) == hashlib.sha256(message).digest()
        check_ecdsa(
            child_pk,
            bytes(reply.digest),
            bytes(reply.signature),
            bytes(reply.signature_der),
            reply.recovery_id,
        )
        rejects_ecdsa(root, bytes(reply.digest), bytes(reply.signature_der))

    # A caller's digest: interactive session, the path bound into its execution id.
    expected = hd.derive("secp256k1", package.public_key, package.chain_code, p2)
    child_pk = expected.public_key.encode()
    digest = hashlib.sha256(b"a prehashed document").digest()
    reply = await api.sign(
        coordinator_pb2.SignRequest(key_id=key_id, digest=digest, path=hd.format_path(p2)),
        CLIENT_CTX,
    )
    assert bytes(reply.public_key) == child_pk and reply.path == hd.format_path(p2)
    check_ecdsa(
        child_pk, digest, bytes(reply.signature), bytes(reply.signature_der), reply.recovery_id
    )
    rejects_ecdsa(root, digest, bytes(reply.signature_der))


async def test_presignature_cannot_be_reused_under_another_path(ecdsa: InProcessCluster) -> None:
    """The nodes take a path, never a tweak, and bind the tweak they derive into the request
    hash: a presignature consumed for one path is refused for any other (two signatures from
    one presignature would reveal the key)."""
    coordinator = ecdsa.coordinator
    info = await coordinator.create_key("secp256k1", 3, 5)
    key_id = info.key_id
    package = await root_package(ecdsa, key_id)
    signers = [1, 2, 3]
    presignature_id = await coordinator._presign(key_id, signers)
    request_id = os.urandom(16)
    message = b"one presignature, one signature"
    path_a, path_b = random_paths(2)

    def partial(path: tuple[int, ...]) -> Any:
        return node_pb2.PartialSignRequest(
            key_id=key_id,
            presignature_id=presignature_id,
            request_id=request_id,
            signers=signers,
            message=message,
            path=list(path),
        )

    replies = {p: await coordinator._call(p, "PartialSign", partial(path_a), 30) for p in signers}
    child = hd.derive("secp256k1", package.public_key, package.chain_code, path_a)
    request = cggmp_sign.SignRequest(
        key_id=key_id,
        presignature_id=presignature_id,
        request_id=request_id,
        signers=tuple(signers),
        digest=cggmp_sign.message_digest(message),
        hash_kind=cggmp_sign.SIGN_HASH,
        tweak=child.tweak,
    )
    public = PresignaturePublic.decode(bytes(replies[1].presignature_public))
    partials = {p: SECP256K1.decode_scalar(bytes(r.sigma)) for p, r in replies.items()}
    signature = cggmp_sign.combine(public, request, partials)
    check_ecdsa(
        child.public_key.encode(),
        request.digest,
        signature.compact(),
        signature.der(),
        signature.recovery_id,
    )

    # The same request again is answered with the same σ_i ...
    again = await coordinator._call(1, "PartialSign", partial(path_a), 30)
    assert bytes(again.sigma) == bytes(replies[1].sigma)
    # ... the same presignature under another path (or the root key) is refused.
    for other in (path_b, ()):
        for p in signers:
            with pytest.raises(NodeCallFailed) as failure:
                await coordinator._call(p, "PartialSign", partial(other), 30)
            assert failure.value.code.name == "INVALID_ARGUMENT"
            assert "already used" in failure.value.details
    # A hardened index is refused before the presignature is even looked at.
    with pytest.raises(NodeCallFailed) as failure:
        await coordinator._call(1, "PartialSign", partial((2**31,)), 30)
    assert failure.value.code.name == "INVALID_ARGUMENT" and "hardened" in failure.value.details


def test_session_message_binds_the_path() -> None:
    digest = bytes(32)
    assert session_message(digest, ()) == digest  # the root key: as before child keys
    bound = {session_message(digest, p) for p in [(1,), (1, 2), (2, 1), (0,), (1, 2, 0)]}
    assert len(bound) == 5 and digest not in bound
