"""FROST(secp256k1, SHA-256) (RFC 9591 §6.5): the suite's hashes, the RFC signing vector,
ZF frost's secp256k1 DKG vector, and the DKG session with scheme="secp256k1" in simulation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import coincurve
import pytest
from py_ecc.bls.hash import expand_message_xmd as reference_expand_message_xmd

from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import SECP256K1, Point
from mpcnode.crypto.sharing import Polynomial, interpolate_at_zero, verify_share
from mpcnode.errors import InvalidInput, InvalidSignature, ProtocolAborted
from mpcnode.protocols.base import COORDINATOR, Outgoing, execution_id
from mpcnode.protocols.frost.ciphersuite import (
    ED25519_SHA512,
    SECP256K1_SHA256,
    SUITES,
    expand_message_xmd_sha256,
    hash_to_field_sha256,
    suite_for,
)
from mpcnode.protocols.frost.dkg import FrostDkgSession, derive_public_shares, verify_pok
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
    sign_share,
    verify_signature_share,
)
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage
from mpcnode.protocols.simulation import run_sessions

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
Q = SECP256K1.order
SUITE = SECP256K1_SHA256
Tamper = Callable[[int, int, Outgoing], Outgoing]
RFC_SIGNATURE = (
    "0205b6d04d3774c8929413e3c76024d54149c372d57aae62574ed74319b5ea14d0"
    "c65dde8492a7471437e6c2fe3da49b90d23f642b5c6dbe7e36089f096dd97324"
)


def scalar(hex_value: str) -> int:
    """secp256k1 scalars are big-endian (RFC 9591 §6.5 SerializeScalar)."""
    return int.from_bytes(bytes.fromhex(hex_value), "big")


def point(hex_value: str) -> Point:
    return SECP256K1.decode_point(bytes.fromhex(hex_value))


def reference_xmd(msg: bytes, dst: bytes, length: int) -> bytes:
    """py_ecc's expand_message_xmd (independent code); its annotation wants a hash object but it
    calls the constructor, so pass hashlib.sha256 itself."""
    result: bytes = reference_expand_message_xmd(msg, dst, length, hashlib.sha256)  # type: ignore[arg-type]
    return result


def replay(chunks: list[bytes]) -> Callable[[int], bytes]:
    """A randomness source that hands out the given chunks in order."""
    source = iter(chunks)

    def next_bytes(n: int) -> bytes:
        return next(source)[:n]

    return next_bytes


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


# ---------------------------------------------------------------------------------------------
# The suite


def test_suite_is_registered_under_the_group_name() -> None:
    assert SECP256K1.name == "secp256k1"
    assert SUITES[SECP256K1.name] is SECP256K1_SHA256
    assert suite_for("secp256k1") is SECP256K1_SHA256
    assert suite_for("ed25519") is ED25519_SHA512  # unchanged
    assert SECP256K1_SHA256.group is SECP256K1
    assert SECP256K1_SHA256.context == b"FROST-secp256k1-SHA256-v1"
    assert SECP256K1_SHA256.serialize_scalar(1) == bytes(31) + b"\x01"


def test_expand_message_xmd_rfc9380_vectors() -> None:
    """RFC 9380 Appendix K.1 (expand_message_xmd, SHA-256, len_in_bytes 0x20)."""
    dst = b"QUUX-V01-CS02-with-expander-SHA256-128"
    assert (
        expand_message_xmd_sha256(b"", dst, 0x20).hex()
        == "68a985b87eb6b46952128911f2a4412bbc302a9d759667f87f7a21d803f07235"
    )
    assert (
        expand_message_xmd_sha256(b"abc", dst, 0x20).hex()
        == "d8ccab23b5985ccea865c6c97b6e5b8350e794e603b4b97902f53a8a0d605615"
    )


@pytest.mark.parametrize("length", [1, 31, 32, 33, 48, 64, 100, 255 * 32])
@pytest.mark.parametrize("msg", [b"", b"abc", bytes(range(256)) * 3])
def test_expand_message_xmd_matches_py_ecc(msg: bytes, length: int) -> None:
    dst = SUITE.context + b"rho"
    assert expand_message_xmd_sha256(msg, dst, length) == reference_xmd(msg, dst, length)


def test_expand_message_xmd_limits() -> None:
    for length in (0, 255 * 32 + 1, 65536):
        with pytest.raises(InvalidInput):
            expand_message_xmd_sha256(b"m", b"dst", length)
    for dst in (b"", b"d" * 256):
        with pytest.raises(InvalidInput):
            expand_message_xmd_sha256(b"m", dst, 32)


def test_suite_hashes_follow_rfc9591() -> None:
    m = b"some message"

    def field(tag: bytes) -> int:
        uniform = reference_xmd(m, SUITE.context + tag, 48)
        return int.from_bytes(uniform, "big") % Q

    assert SUITE.H1(m) == field(b"rho")
    assert SUITE.H2(m) == field(b"chal")
    assert SUITE.H3(m) == field(b"nonce")
    assert SUITE.HDKG(m) == field(b"dkg")
    assert SUITE.H4(m) == hashlib.sha256(b"FROST-secp256k1-SHA256-v1msg" + m).digest()
    assert SUITE.H5(m) == hashlib.sha256(b"FROST-secp256k1-SHA256-v1com" + m).digest()
    assert hash_to_field_sha256(m, b"x", 7) < 7
    values = {SUITE.H1(m), SUITE.H2(m), SUITE.H3(m), SUITE.HDKG(m)}
    values |= {int.from_bytes(SUITE.H4(m), "big") % Q, int.from_bytes(SUITE.H5(m), "big") % Q}
    assert len(values) == 6


# ---------------------------------------------------------------------------------------------
# RFC 9591 FROST(secp256k1, SHA-256) signing vector (sign.py is suite-generic)


class SigningVector:
    def __init__(self) -> None:
        v = load("frost-secp256k1-sha256.json")
        inputs = v["inputs"]
        self.threshold = int(v["config"]["MIN_PARTICIPANTS"])
        self.message = bytes.fromhex(inputs["message"])
        self.signers: list[int] = list(inputs["participant_list"])
        self.secret = scalar(inputs["group_secret_key"])
        self.coefficients = [scalar(c) for c in inputs["share_polynomial_coefficients"]]
        self.public_key_bytes = bytes.fromhex(inputs["group_public_key"])
        self.shares = {
            s["identifier"]: scalar(s["participant_share"]) for s in inputs["participant_shares"]
        }
        parties = tuple(sorted(self.shares))
        self.public = PublicKeyPackage(
            scheme="secp256k1",
            threshold=self.threshold,
            parties=parties,
            public_key=SECP256K1.decode_point(self.public_key_bytes),
            verifying_shares=tuple(SECP256K1.base_mul(self.shares[p]) for p in parties),
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
                point(self.round_one[p]["hiding_nonce_commitment"]),
                point(self.round_one[p]["binding_nonce_commitment"]),
            )
            for p in self.signers
        ]


@pytest.fixture(scope="module")
def vector() -> SigningVector:
    return SigningVector()


def test_rfc_vector_is_the_rfc_one(vector: SigningVector) -> None:
    assert vector.signature.hex() == RFC_SIGNATURE
    assert vector.signers == [1, 3]


def test_rfc_key_material(vector: SigningVector) -> None:
    assert SECP256K1.base_mul(vector.secret).encode() == vector.public_key_bytes
    # libsecp256k1 derives the same public key from the secret.
    independent = coincurve.PrivateKey(vector.secret.to_bytes(32, "big")).public_key
    assert independent.format(compressed=True) == vector.public_key_bytes
    for party, share in vector.shares.items():
        f = vector.secret + sum(a * party ** (k + 1) for k, a in enumerate(vector.coefficients))
        assert share == f % Q
    assert PublicKeyPackage.decode(vector.public.encode()) == vector.public


def test_rfc_round_one(vector: SigningVector) -> None:
    for party in vector.signers:
        out = vector.round_one[party]
        hiding_rand = bytes.fromhex(out["hiding_nonce_randomness"])
        binding_rand = bytes.fromhex(out["binding_nonce_randomness"])
        nonces, commitment = commit(
            vector.shares[party], hiding_rand, binding_rand, party=party, suite=SUITE
        )
        assert nonces.hiding == scalar(out["hiding_nonce"])
        assert nonces.binding == scalar(out["binding_nonce"])
        assert commitment.hiding.encode().hex() == out["hiding_nonce_commitment"]
        assert commitment.binding.encode().hex() == out["binding_nonce_commitment"]
        assert SigningCommitment.decode(party, commitment.encode(), SECP256K1) == commitment


def test_rfc_binding_factors(vector: SigningVector) -> None:
    commitments = vector.commitments()
    pk = vector.public.public_key
    inputs = binding_factor_inputs(pk, commitments, vector.message)
    factors = compute_binding_factors(pk, commitments, vector.message)
    for party in vector.signers:
        assert inputs[party].hex() == vector.round_one[party]["binding_factor_input"]
        assert factors[party] == scalar(vector.round_one[party]["binding_factor"])


def test_rfc_round_two_and_aggregate(vector: SigningVector) -> None:
    commitments = vector.commitments()
    pk = vector.public.public_key
    for party in vector.signers:
        out = vector.round_one[party]
        nonces, _ = commit(
            vector.shares[party],
            bytes.fromhex(out["hiding_nonce_randomness"]),
            bytes.fromhex(out["binding_nonce_randomness"]),
            party=party,
            suite=SUITE,
        )
        z = sign_share(vector.key_share(party), nonces, commitments, vector.message)
        assert z == vector.sig_shares[party]
        verify_signature_share(
            party, vector.public.verifying_share(party), z, commitments, pk, vector.message
        )
        with pytest.raises(InvalidSignature):
            verify_signature_share(
                party,
                vector.public.verifying_share(party),
                (z + 1) % Q,
                commitments,
                pk,
                vector.message,
            )
    factors = compute_binding_factors(pk, commitments, vector.message)
    r = compute_group_commitment(commitments, factors)
    assert r.encode() == vector.signature[:33]
    c = compute_challenge(r, pk, vector.message)
    assert c == SUITE.H2(vector.signature[:33] + vector.public_key_bytes + vector.message)
    sig = aggregate(vector.public, commitments, vector.sig_shares, vector.message)
    assert sig == vector.signature
    # The RFC 9591 verification equation, z·G == R + c·PK, with the vector's own bytes.
    z = SECP256K1.decode_scalar(sig[33:])
    assert SECP256K1.base_mul(z) == point(sig[:33].hex()) + pk * c


def test_rfc_sessions_reproduce_vector(vector: SigningVector) -> None:
    eid = execution_id("frost-sign", b"sid", "key", vector.signers, vector.threshold)
    sessions = {}
    for party in vector.signers:
        out = vector.round_one[party]
        randomness = replay(
            [
                bytes.fromhex(out["hiding_nonce_randomness"]),
                bytes.fromhex(out["binding_nonce_randomness"]),
            ]
        )
        sessions[party] = FrostSignSession(
            vector.key_share(party), vector.signers, vector.message, eid, randomness
        )
    transcript: list[tuple[int, Any]] = []
    collected = run_sessions(sessions, transcript=transcript)
    aggregator = FrostAggregator(vector.public, vector.signers, vector.message)
    for sender, message in transcript:
        if message.round == 1:
            assert len(message.payload) == 66
            aggregator.add_commitment(sender, message.payload)
    for party, messages in collected.items():
        assert [m.recipient for m in messages] == [COORDINATOR]
        assert scalar(messages[0].payload.hex()) == vector.sig_shares[party]
        aggregator.add_share(party, messages[0].payload)
    assert aggregator.signature() == vector.signature


# ---------------------------------------------------------------------------------------------
# ZF frost secp256k1 DKG vector (its `secret` fields are unused by ZF and match nothing)


def test_zf_dkg_vector() -> None:
    v = load("frost-secp256k1-dkg.zf-frost.json")["inputs"]
    ids = [1, 2, 3]
    vss = {i: [point(c) for c in v[str(i)]["vss_commitments"]] for i in ids}
    polys = {
        i: Polynomial(
            SECP256K1, (scalar(v[str(i)]["signing_key"]), scalar(v[str(i)]["coefficient"]))
        )
        for i in ids
    }
    for i in ids:
        p = v[str(i)]
        assert list(polys[i].commit()) == vss[i]
        pok = bytes.fromhex(p["proof_of_knowledge"])
        assert len(pok) == 33 + 32
        r, mu = SECP256K1.decode_point(pok[:33]), SECP256K1.decode_scalar(pok[33:])
        verify_pok(b"", i, vss[i][0], r, mu, SUITE)  # empty context == ZF's challenge
        # The challenge is the ZF one: mu·G - c·C_0 == R with c = HDKG(i ‖ C_0 ‖ R).
        c = SUITE.HDKG(SECP256K1.encode_scalar(i) + vss[i][0].encode() + r.encode())
        assert SECP256K1.base_mul(mu) - vss[i][0] * c == r
        with pytest.raises(InvalidSignature):
            verify_pok(b"some eid", i, vss[i][0], r, mu, SUITE)
        with pytest.raises(InvalidSignature):
            verify_pok(b"", i % 3 + 1, vss[i][0], r, mu, SUITE)
        with pytest.raises(InvalidSignature):
            verify_pok(b"", i, vss[i][0], r, (mu + 1) % Q, SUITE)
        received = {int(sender): scalar(s) for sender, s in p["signing_shares"].items()}
        for sender, share in received.items():
            assert verify_share(vss[sender], i, share)  # f_l(i) received from l
            assert share == polys[sender](i)
            assert not verify_share(vss[sender], i, (share + 1) % Q)
        signing_share = (polys[i](i) + sum(received.values())) % Q
        assert signing_share == scalar(p["signing_share"])
        assert SECP256K1.base_mul(signing_share).encode().hex() == p["verifying_share"]
    public_key, verifying = derive_public_shares(vss, ids)
    assert public_key.encode().hex() == v["verifying_key"]
    for i in ids:
        assert verifying[i].encode().hex() == v[str(i)]["verifying_share"]
    package = PublicKeyPackage(
        "secp256k1", 2, tuple(ids), public_key, tuple(verifying[i] for i in ids), bytes(32)
    )
    assert PublicKeyPackage.decode(package.encode()) == package


# ---------------------------------------------------------------------------------------------
# FrostDkgSession(scheme="secp256k1") in simulation


def run_dkg(
    parties: Sequence[int], threshold: int, tamper: Tamper | None = None
) -> dict[int, FrostDkgSession]:
    eid = execution_id("frost-dkg", b"sid", "k1-key", parties, threshold)
    sessions = {p: FrostDkgSession(p, parties, threshold, eid, scheme="secp256k1") for p in parties}
    run_sessions(sessions, tamper)
    return sessions


@pytest.mark.parametrize(("parties", "threshold"), [([1, 2, 3], 2), ([1, 2, 3, 4, 5], 3)])
def test_dkg_secp256k1(parties: list[int], threshold: int) -> None:
    sessions = run_dkg(parties, threshold)
    keys = {p: s.output for p, s in sessions.items()}
    public = keys[parties[0]].public
    assert public.scheme == "secp256k1" and public.threshold == threshold
    assert all(k.public == public for k in keys.values())
    # Everyone agrees on the chain code (it is part of the package compared above, but be explicit).
    assert len({k.public.chain_code for k in keys.values()}) == 1
    assert len(public.chain_code) == 32
    pk_bytes = public.public_key.encode()
    assert len(pk_bytes) == 33 and pk_bytes[0] in (2, 3)
    for p, k in keys.items():
        assert SECP256K1.base_mul(k.secret_share) == public.verifying_share(p)
    subsets = [parties[:threshold], parties[-threshold:], parties]
    for subset in subsets:
        secret = interpolate_at_zero(Q, {p: keys[p].secret_share for p in subset})
        assert SECP256K1.base_mul(secret) == public.public_key
        # libsecp256k1 agrees that this secret belongs to the public key.
        independent = coincurve.PrivateKey(secret.to_bytes(32, "big")).public_key
        assert independent.format(compressed=True) == pk_bytes
    too_few = interpolate_at_zero(Q, {p: keys[p].secret_share for p in parties[: threshold - 1]})
    assert SECP256K1.base_mul(too_few) != public.public_key
    assert PublicKeyPackage.decode(public.encode()) == public
    for k in keys.values():
        assert KeyShare.decode(k.encode()) == k


def test_dkg_secp256k1_keys_sign_with_frost() -> None:
    """The DKG output is a working FROST(secp256k1) key: 2 of 3 sign, the equation holds."""
    keys = {p: s.output for p, s in run_dkg([1, 2, 3], 2).items()}
    public = keys[1].public
    signers, message = [1, 3], b"secp256k1 frost"
    eid = execution_id("frost-sign", b"s", "k1-key", signers, 2, message)
    sessions = {p: FrostSignSession(keys[p], signers, message, eid) for p in signers}
    transcript: list[tuple[int, Outgoing]] = []
    collected = run_sessions(sessions, transcript=transcript)
    aggregator = FrostAggregator(public, signers, message)
    for sender, out in transcript:
        if out.round == 1:
            aggregator.add_commitment(sender, out.payload)
    for sender, outs in collected.items():
        aggregator.add_share(sender, outs[0].payload)
    sig = aggregator.signature()
    assert len(sig) == 65
    R, z = point(sig[:33].hex()), SECP256K1.decode_scalar(sig[33:])
    c = SUITE.H2(sig[:33] + public.public_key.encode() + message)
    assert SECP256K1.base_mul(z) == R + public.public_key * c


def test_dkg_secp256k1_tampered_pok_names_culprit() -> None:
    def bump_mu(sender: int, round_: int, m: Outgoing) -> Outgoing:
        if (sender, round_) != (2, 1):
            return m
        vss_raw, pok, h = decode_fields(m.payload, count=3)
        mu = (SECP256K1.decode_scalar(pok[33:]) + 1) % Q
        return replace(
            m, payload=encode_fields([vss_raw, pok[:33] + SECP256K1.encode_scalar(mu), h])
        )

    for parties, threshold in (([1, 2, 3], 2), ([1, 2, 3, 4, 5], 3)):
        with pytest.raises(ProtocolAborted) as err:
            run_dkg(parties, threshold, bump_mu)
        assert err.value.culprits == (2,)
        assert "proof of knowledge" in err.value.reason


def test_dkg_secp256k1_rejects_ed25519_sized_package() -> None:
    """A round-1 package with 32-byte (Ed25519-sized) points is malformed for secp256k1."""

    def shrink(sender: int, round_: int, m: Outgoing) -> Outgoing:
        if (sender, round_) != (3, 1):
            return m
        vss_raw, pok, h = decode_fields(m.payload, count=3)
        return replace(m, payload=encode_fields([vss_raw, pok[1:], h]))

    with pytest.raises(ProtocolAborted) as err:
        run_dkg([1, 2, 3], 2, shrink)
    assert err.value.culprits == (3,)
