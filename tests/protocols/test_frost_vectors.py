"""FROST(Ed25519, SHA-512) against the RFC 9591 vector and ZF frost's vectors (tests/vectors/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from mpcnode.crypto.group import ED25519
from mpcnode.errors import InvalidSignature, ProtocolAborted
from mpcnode.protocols.base import COORDINATOR, execution_id
from mpcnode.protocols.frost.ciphersuite import CONTEXT, ED25519_SHA512, H2, nonce_generate
from mpcnode.protocols.frost.sign import (
    FrostAggregator,
    FrostSignSession,
    SigningCommitment,
    aggregate,
    binding_factor_inputs,
    commit,
    compute_binding_factors,
    compute_challenge,
    compute_group_commitment,
    encode_group_commitment_list,
    sign_share,
    verify_signature,
    verify_signature_share,
)
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage
from mpcnode.protocols.simulation import run_sessions

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
SIGNING_VECTORS = [
    "frost-ed25519-sha512.json",
    "frost-ed25519-sha512.zf-frost.json",
    "frost-ed25519-sha512-big-identifier.zf-frost.json",
]
RFC_SIGNATURE = (
    "36282629c383bb820a88b71cae937d41f2f2adfcc3d02e55507e2fb9e2dd3cbe"
    "bd9d2b0844e49ae0f3fa935161e1419aab7b47d21a37ebeae1f17d4987b3160b"
)
L = ED25519.order


def scalar(hex_value: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_value), "little")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


class Vector:
    """One signing vector with its key material turned into project objects."""

    def __init__(self, name: str) -> None:
        v = load(name)
        inputs = v["inputs"]
        self.threshold = int(v["config"]["MIN_PARTICIPANTS"])
        self.message = bytes.fromhex(inputs["message"])
        self.signers: list[int] = list(inputs["participant_list"])
        self.secret = scalar(inputs["group_secret_key"])
        self.coefficients = [scalar(c) for c in inputs["share_polynomial_coefficients"]]
        pk_hex = inputs.get("group_public_key") or inputs["verifying_key_key"]
        self.public_key_bytes = bytes.fromhex(pk_hex)
        self.shares = {
            s["identifier"]: scalar(s["participant_share"]) for s in inputs["participant_shares"]
        }
        parties = tuple(sorted(self.shares))
        self.public = PublicKeyPackage(
            scheme="ed25519",
            threshold=self.threshold,
            parties=parties,
            public_key=ED25519.decode_point(self.public_key_bytes),
            verifying_shares=tuple(ED25519.base_mul(self.shares[p]) for p in parties),
            chain_code=bytes(32),
        )
        self.round_one = {o["identifier"]: o for o in v["round_one_outputs"]["outputs"]}
        self.sig_shares = {
            o["identifier"]: scalar(o["sig_share"]) for o in v["round_two_outputs"]["outputs"]
        }
        self.signature = bytes.fromhex(v["final_output"]["sig"])

    def key_share(self, party: int) -> KeyShare:
        return KeyShare(self.public, party, self.shares[party])

    def commitments(self) -> list[SigningCommitment]:
        return [
            SigningCommitment(
                p,
                ED25519.decode_point(bytes.fromhex(self.round_one[p]["hiding_nonce_commitment"])),
                ED25519.decode_point(bytes.fromhex(self.round_one[p]["binding_nonce_commitment"])),
            )
            for p in self.signers
        ]


@pytest.fixture(params=SIGNING_VECTORS, scope="module")
def vector(request: pytest.FixtureRequest) -> Vector:
    return Vector(request.param)


def test_rfc_vector_is_the_rfc_one() -> None:
    assert load("frost-ed25519-sha512.json")["final_output"]["sig"] == RFC_SIGNATURE
    assert CONTEXT == b"FROST-ED25519-SHA512-v1"


def test_big_identifier_vector_uses_big_identifiers() -> None:
    assert Vector(SIGNING_VECTORS[2]).signers == [129, 256, 257]


def test_key_material(vector: Vector) -> None:
    assert ED25519.base_mul(vector.secret).encode() == vector.public_key_bytes
    for party, share in vector.shares.items():
        f = vector.secret + sum(a * party ** (k + 1) for k, a in enumerate(vector.coefficients))
        assert share == f % L
    # The decoded package passes the full consistency check (degree t-1, interpolates to PK).
    assert PublicKeyPackage.decode(vector.public.encode()) == vector.public


def test_round_one(vector: Vector) -> None:
    for party in vector.signers:
        out = vector.round_one[party]
        share = vector.shares[party]
        hiding_rand = bytes.fromhex(out["hiding_nonce_randomness"])
        binding_rand = bytes.fromhex(out["binding_nonce_randomness"])
        assert nonce_generate(share, hiding_rand) == scalar(out["hiding_nonce"])
        assert nonce_generate(share, binding_rand) == scalar(out["binding_nonce"])
        nonces, commitment = commit(share, hiding_rand, binding_rand, party=party)
        assert nonces.hiding == scalar(out["hiding_nonce"])
        assert nonces.binding == scalar(out["binding_nonce"])
        assert commitment.party == party
        assert commitment.hiding.encode().hex() == out["hiding_nonce_commitment"]
        assert commitment.binding.encode().hex() == out["binding_nonce_commitment"]
        assert commitment.encode() == bytes.fromhex(
            out["hiding_nonce_commitment"] + out["binding_nonce_commitment"]
        )


def test_binding_factors(vector: Vector) -> None:
    commitments = vector.commitments()
    pk = vector.public.public_key
    inputs = binding_factor_inputs(pk, commitments, vector.message)
    factors = compute_binding_factors(pk, commitments, vector.message)
    # Commitment order given to the functions does not matter: the RFC sorts by identifier.
    assert compute_binding_factors(pk, commitments[::-1], vector.message) == factors
    for party in vector.signers:
        assert inputs[party].hex() == vector.round_one[party]["binding_factor_input"]
        assert len(inputs[party]) == 192
        assert factors[party] == scalar(vector.round_one[party]["binding_factor"])
    encoded = encode_group_commitment_list(commitments)
    assert len(encoded) == 96 * len(vector.signers)
    assert encoded[:32] == vector.signers[0].to_bytes(32, "little")


def test_round_two_and_aggregate(vector: Vector) -> None:
    commitments = vector.commitments()
    pk = vector.public.public_key
    for party in vector.signers:
        out = vector.round_one[party]
        nonces, _ = commit(
            vector.shares[party],
            bytes.fromhex(out["hiding_nonce_randomness"]),
            bytes.fromhex(out["binding_nonce_randomness"]),
            party=party,
        )
        z = sign_share(vector.key_share(party), nonces, commitments, vector.message)
        assert z == vector.sig_shares[party]
        verify_signature_share(
            party, vector.public.verifying_share(party), z, commitments, pk, vector.message
        )
    factors = compute_binding_factors(pk, commitments, vector.message)
    r = compute_group_commitment(commitments, factors)
    assert r.encode() == vector.signature[:32]
    c = compute_challenge(r, pk, vector.message)
    assert c == H2(vector.signature[:32] + vector.public_key_bytes + vector.message)
    sig = aggregate(vector.public, commitments, vector.sig_shares, vector.message)
    assert sig == vector.signature
    # Independent verifiers (libsodium, OpenSSL) and our own.
    VerifyKey(vector.public_key_bytes).verify(vector.message, sig)
    Ed25519PublicKey.from_public_bytes(vector.public_key_bytes).verify(sig, vector.message)
    verify_signature(vector.public_key_bytes, vector.message, sig)


def test_tampered_vector_share_is_blamed(vector: Vector) -> None:
    commitments = vector.commitments()
    victim = vector.signers[-1]
    shares = dict(vector.sig_shares)
    shares[victim] = (shares[victim] + 1) % L
    with pytest.raises(InvalidSignature):
        verify_signature_share(
            victim,
            vector.public.verifying_share(victim),
            shares[victim],
            commitments,
            vector.public.public_key,
            vector.message,
        )
    with pytest.raises(ProtocolAborted) as err:
        aggregate(vector.public, commitments, shares, vector.message)
    assert err.value.culprits == (victim,)


def test_sessions_reproduce_vector(vector: Vector) -> None:
    """The sans-I/O sessions, fed the vector's randomness, produce the vector's shares and sig."""
    eid = execution_id("frost-sign", b"sid", "key", vector.signers, vector.threshold)
    sessions = {}
    for party in vector.signers:
        out = vector.round_one[party]
        randomness = iter(
            [
                bytes.fromhex(out["hiding_nonce_randomness"]),
                bytes.fromhex(out["binding_nonce_randomness"]),
            ]
        )
        sessions[party] = FrostSignSession(
            vector.key_share(party),
            vector.signers,
            vector.message,
            eid,
            lambda n, source=randomness: next(source)[:n],
        )
    transcript: list[tuple[int, Any]] = []
    collected = run_sessions(sessions, transcript=transcript)
    aggregator = FrostAggregator(vector.public, vector.signers, vector.message)
    for sender, message in transcript:
        if message.round == 1:
            aggregator.add_commitment(sender, message.payload)
    for party, messages in collected.items():
        assert [m.recipient for m in messages] == [COORDINATOR]
        assert scalar(messages[0].payload.hex()) == vector.sig_shares[party]
        assert sessions[party].output == messages[0].payload
        aggregator.add_share(party, messages[0].payload)
    assert aggregator.signature() == vector.signature


def test_suite_hashes_are_domain_separated() -> None:
    m = b"x"
    values = {
        ED25519_SHA512.H1(m),
        ED25519_SHA512.H2(m),
        ED25519_SHA512.H3(m),
        ED25519_SHA512.HDKG(m),
        int.from_bytes(ED25519_SHA512.H4(m), "little") % L,
        int.from_bytes(ED25519_SHA512.H5(m), "little") % L,
    }
    assert len(values) == 6
