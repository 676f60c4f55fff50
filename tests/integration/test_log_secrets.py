"""No secret in the logs: a full protocol run with every nonce recorded as it is drawn.

Nodes and coordinator run in this process over real gRPC (`open_cluster`), with the JSON log
formatter at DEBUG on the root logger. Every random value the protocols draw (FROST nonces,
DKG and reshare polynomials and their evaluations, CGGMP presigning's k, γ and Paillier
randomness, raw CSPRNG bytes) is recorded by wrapping the functions that make them, and
every secret the nodes store (key shares of each generation, presignatures, aux-info) by
wrapping the store's writes; the KEKs, identity keys and fixture Paillier keys are added too.
The log of ed25519 keygen, signing (root and tenant child key), secp256k1 keygen, pooled and
digest signing (each with a presignature), and a reshare of both keys must contain none of
them in any encoding (tests/log_secrets.py), and its lines must carry their session context.
The real-process version is tests/cluster/test_log_secrets_cluster.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from mpcnode import logs
from mpcnode import server as node_server
from mpcnode.crypto.group import Group
from mpcnode.crypto.hd import tenant_path
from mpcnode.crypto.sharing import Polynomial
from mpcnode.protocols.cggmp.aux_info import AuxInfo
from mpcnode.protocols.cggmp.presign import Presignature
from mpcnode.protocols.frost.ciphersuite import Ciphersuite
from mpcnode.protocols.keys import KeyShare
from tests.fixtures.aux_info import TEST_COMMITTEE, load_test_aux_info_blobs
from tests.integration.conftest import InProcessCluster, open_cluster
from tests.log_secrets import Secrets, parse_lines

TENANT = "acme-corp"


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_log() -> Iterator[ListHandler]:
    handler = ListHandler()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def record_randomness(monkeypatch: pytest.MonkeyPatch, found: Secrets) -> None:
    """Wrap every source of secret randomness the protocols use so each value is recorded."""

    def wrap(fn: Callable[..., Any], what: str) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            value = fn(*args, **kwargs)
            found.add(value, what)
            return value

        return recorded

    monkeypatch.setattr(secrets, "token_bytes", wrap(secrets.token_bytes, "CSPRNG bytes"))
    monkeypatch.setattr(Group, "random_scalar", wrap(Group.random_scalar, "random scalar"))
    monkeypatch.setattr(
        Ciphersuite, "nonce_generate", wrap(Ciphersuite.nonce_generate, "FROST nonce")
    )
    monkeypatch.setattr(Polynomial, "__call__", wrap(Polynomial.__call__, "polynomial value"))
    original_random = Polynomial.random.__func__  # type: ignore[attr-defined]

    def random_polynomial(cls: type[Polynomial], *args: Any, **kwargs: Any) -> Polynomial:
        poly: Polynomial = original_random(cls, *args, **kwargs)
        for a in poly.coefficients:
            found.add(a, "polynomial coefficient")
        return poly

    monkeypatch.setattr(Polynomial, "random", classmethod(random_polynomial))
    # Paillier / proof randomness, wherever a module imported the helpers by name.
    for name, module in list(sys.modules.items()):
        if not name.startswith("mpcnode"):
            continue
        for helper in ("random_below", "random_unit", "random_signed"):
            fn = getattr(module, helper, None)
            if callable(fn):
                monkeypatch.setattr(module, helper, wrap(fn, helper))


def record_stored_secrets(
    monkeypatch: pytest.MonkeyPatch, cluster: InProcessCluster, found: Secrets
) -> None:
    """Every share (of every generation) and presignature a node stores; KEKs, identities."""
    for party, service in cluster.services.items():
        store = service.store
        put_pending, put_presignature = store.put_pending, store.put_presignature

        def pending(*args: Any, _put: Any = put_pending, **kwargs: Any) -> Any:
            secret = kwargs["secret"] if "secret" in kwargs else args[4]
            found.add(KeyShare.decode(secret).secret_share, "key share")
            found.add(secret, "sealed key share plaintext")
            return _put(*args, **kwargs)

        def presignature(*args: Any, _put: Any = put_presignature, **kwargs: Any) -> Any:
            secret = kwargs["secret"] if "secret" in kwargs else args[5]
            presig = Presignature.decode(secret)
            found.add(presig.k, "presignature k")
            found.add(presig.chi, "presignature chi")
            found.add(secret, "presignature plaintext")
            return _put(*args, **kwargs)

        monkeypatch.setattr(store, "put_pending", pending)
        monkeypatch.setattr(store, "put_presignature", presignature)
        found.add(cluster.keks[party], "KEK")
        identity = cluster.identities[party]
        found.add(bytes(identity.signing_private), "identity signing seed")
        found.add(bytes(identity.box_private), "identity box secret")
    for blob in load_test_aux_info_blobs().values():
        aux = AuxInfo.decode(blob)
        sk = aux.secret_key
        for what in ("p", "q", "phi"):
            found.add(getattr(sk, what), f"Paillier {what}")
        found.add(blob, "aux-info plaintext")


def check_sanity(found: Secrets, handler: ListHandler) -> None:
    """The search would have found a secret that was logged (a test that can fail)."""
    value = next(iter(found.folded))  # some recorded needle
    scratch = logging.getLogger("tests.scratch")
    for form in ("%s", "value=%r"):
        before = len(handler.lines)
        scratch.warning(form, value.upper())
        assert found.find(handler.lines[before:]), form
        del handler.lines[before:]
    share = found.values["key share"][0]
    nonce = found.values["FROST nonce"][0]
    for form, value in (
        ("share %d", share),
        ("share %s", share.to_bytes(32, "big")),
        ("nonce %s", nonce.to_bytes(32, "little").hex()[:16]),
        ("nonce %s", base64.b64encode(nonce.to_bytes(32, "little")).decode()),
    ):
        before = len(handler.lines)
        scratch.info(form, value)
        assert found.find(handler.lines[before:]), form
        del handler.lines[before:]


async def test_full_run_logs_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, json_log: ListHandler
) -> None:
    monkeypatch.setattr(node_server, "OFFLOADED_PROTOCOLS", frozenset())  # nonces drawn here
    found = Secrets()
    record_randomness(monkeypatch, found)
    async with open_cluster(tmp_path) as cluster:
        record_stored_secrets(monkeypatch, cluster, found)
        for party, service in cluster.services.items():
            service.store.put_aux_info(TEST_COMMITTEE, load_test_aux_info_blobs()[party])
        coordinator = cluster.coordinator
        coordinator.pools.target = 1
        async with trio.open_nursery() as nursery:
            await nursery.start(coordinator.run_background)
            ed = await coordinator.create_key("ed25519", 3, 5)
            await coordinator.sign_request(ed.key_id, message=b"root message")
            await coordinator.sign_request(ed.key_id, message=b"tenant message", tenant=TENANT)
            secp = await coordinator.create_key("secp256k1", 3, 5)
            await coordinator.sign_request(secp.key_id, message=b"pooled or on demand")
            digest = hashlib.sha256(b"a caller's digest").digest()
            await coordinator.sign_request(secp.key_id, digest=digest, tenant=TENANT)
            await coordinator.reshare(ed.key_id)
            await coordinator.sign_request(ed.key_id, message=b"after reshare", tenant=TENANT)
            await coordinator.reshare(secp.key_id, threshold=2)
            await coordinator.sign_request(secp.key_id, message=b"after reshare too")
            nursery.cancel_scope.cancel()
    lines = list(json_log.lines)

    # Non-trivial, well-formed, labelled.
    assert len(found) > 1000
    assert len(lines) > 100
    docs = parse_lines(lines)
    protocols = {d["protocol"] for d in docs}
    assert {"frost-dkg", "frost-sign", "cggmp-presign", "cggmp-sign", "reshare"} <= protocols
    assert "cggmp-sign-digest" in protocols
    assert any(d["level"] == "DEBUG" for d in docs)
    tenant_sessions = {
        d["session_id"]
        for d in docs
        if d["tenant"] == TENANT and d["protocol"] == "frost-sign" and d["session_id"]
    }
    assert len(tenant_sessions) == 2  # before and after the reshare
    for sid in tenant_sessions:
        session_lines = [d for d in docs if d["session_id"] == sid]
        assert len(session_lines) >= 6
        for d in session_lines:
            assert (d["key_id"], d["protocol"], d["tenant"]) == (ed.key_id, "frost-sign", TENANT), d
        assert {d["process"] for d in session_lines} >= {"mpc-0", "mpc-1", "mpc-2"}
        assert {d["rpc"] for d in session_lines} >= {"Start", "Step"}
    digest_lines = [d for d in docs if d["protocol"] == "cggmp-sign-digest"]
    assert digest_lines and all(d["tenant"] == TENANT for d in digest_lines)
    assert all(d["key_id"] == secp.key_id for d in digest_lines)
    requested = [d for d in docs if d["msg"].startswith("sign requested")]
    assert len(requested) == 6
    assert any(digest.hex() in d["msg"] for d in requested)
    assert all(d["key_id"] for d in requested)
    # The tenant's path is the one the nodes saw.
    assert tenant_path(TENANT)

    # Nothing secret, in any encoding.
    hits = found.find(lines)
    assert not hits, json.dumps(hits[:20], indent=1)
    check_sanity(found, json_log)
