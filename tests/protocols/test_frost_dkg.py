"""FROST DKG (vectors, simulation, a misbehaving party per round) and the key package encodings."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mpcnode.crypto.encoding import decode_fields, encode_fields, encode_uint
from mpcnode.crypto.group import ED25519
from mpcnode.crypto.sharing import Polynomial, interpolate_at_zero, verify_share
from mpcnode.errors import InvalidInput, InvalidSignature, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, Outgoing, execution_id
from mpcnode.protocols.frost.dkg import (
    FrostDkgSession,
    derive_public_shares,
    pok_challenge,
    prove_pok,
    verify_pok,
)
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage, trusted_dealer_keygen
from mpcnode.protocols.simulation import run_sessions

L = ED25519.order
VECTORS = Path(__file__).resolve().parent.parent / "vectors"
PARTIES = [1, 2, 3, 4, 5]
Tamper = Callable[[int, int, Outgoing], Outgoing]


def scalar(hex_value: str) -> int:
    return int.from_bytes(bytes.fromhex(hex_value), "little")


def eid_for(parties: Sequence[int], threshold: int, sid: bytes = b"sid") -> bytes:
    return execution_id("frost-dkg", sid, "key-1", parties, threshold)


def make_sessions(
    parties: Sequence[int], threshold: int, sid: bytes = b"sid"
) -> dict[int, FrostDkgSession]:
    eid = eid_for(parties, threshold, sid)
    return {p: FrostDkgSession(p, parties, threshold, eid) for p in parties}


def run_dkg(
    parties: Sequence[int] = PARTIES, threshold: int = 3, tamper: Tamper | None = None
) -> dict[int, KeyShare]:
    sessions = make_sessions(parties, threshold)
    run_sessions(sessions, tamper)
    return {p: s.output for p, s in sessions.items()}


@pytest.fixture(scope="module")
def keys() -> dict[int, KeyShare]:
    return run_dkg()


# ---------------------------------------------------------------------------------------------
# ZF frost DKG vector (its `secret` fields are unused by ZF and match nothing: ignored)


def load_dkg_vector() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / "frost-ed25519-dkg.zf-frost.json").read_text())
    return data


def test_zf_dkg_vector() -> None:
    v = load_dkg_vector()["inputs"]
    ids = [1, 2, 3]
    vss = {
        i: [ED25519.decode_point(bytes.fromhex(c)) for c in v[str(i)]["vss_commitments"]]
        for i in ids
    }
    polys = {
        i: Polynomial(ED25519, (scalar(v[str(i)]["signing_key"]), scalar(v[str(i)]["coefficient"])))
        for i in ids
    }
    for i in ids:
        p = v[str(i)]
        assert list(polys[i].commit()) == vss[i]
        pok = bytes.fromhex(p["proof_of_knowledge"])
        r, mu = ED25519.decode_point(pok[:32]), ED25519.decode_scalar(pok[32:])
        verify_pok(b"", i, vss[i][0], r, mu)  # empty context == ZF's challenge
        with pytest.raises(InvalidSignature):
            verify_pok(b"some eid", i, vss[i][0], r, mu)
        with pytest.raises(InvalidSignature):
            verify_pok(b"", i % 3 + 1, vss[i][0], r, mu)
        with pytest.raises(InvalidSignature):
            verify_pok(b"", i, vss[i][0], r, (mu + 1) % L)
        received = {int(sender): scalar(s) for sender, s in p["signing_shares"].items()}
        for sender, share in received.items():
            assert verify_share(vss[sender], i, share)  # f_l(i) received from l
            assert share == polys[sender](i)
            assert not verify_share(vss[sender], i, (share + 1) % L)
        signing_share = (polys[i](i) + sum(received.values())) % L
        assert signing_share == scalar(p["signing_share"])
        assert ED25519.base_mul(signing_share).encode().hex() == p["verifying_share"]
    public_key, verifying = derive_public_shares(vss, ids)
    assert public_key.encode().hex() == v["verifying_key"]
    for i in ids:
        assert verifying[i].encode().hex() == v[str(i)]["verifying_share"]
    package = PublicKeyPackage(
        "ed25519", 2, tuple(ids), public_key, tuple(verifying[i] for i in ids), bytes(32)
    )
    assert PublicKeyPackage.decode(package.encode()) == package


def test_pok_roundtrip_and_binding() -> None:
    secret = ED25519.random_scalar()
    c0 = ED25519.base_mul(secret)
    r, mu = prove_pok(b"eid-1", 4, secret)
    verify_pok(b"eid-1", 4, c0, r, mu)
    with pytest.raises(InvalidSignature):
        verify_pok(b"eid-2", 4, c0, r, mu)  # bound to the execution
    with pytest.raises(InvalidSignature):
        verify_pok(b"eid-1", 5, c0, r, mu)  # bound to the prover
    with pytest.raises(InvalidSignature):
        verify_pok(b"eid-1", 4, c0, r, mu + L)
    assert pok_challenge(b"a", 1, c0, r) != pok_challenge(b"b", 1, c0, r)


# ---------------------------------------------------------------------------------------------
# Honest runs


def test_dkg_3of5(keys: dict[int, KeyShare]) -> None:
    public = keys[1].public
    assert all(k.public == public for k in keys.values())
    assert public.threshold == 3 and public.parties == tuple(PARTIES)
    assert len(public.chain_code) == 32
    for p, k in keys.items():
        assert k.party == p
        assert ED25519.base_mul(k.secret_share) == public.verifying_share(p)
    for subset in ([1, 2, 3], [2, 4, 5], [1, 3, 4, 5]):
        s = interpolate_at_zero(L, {p: keys[p].secret_share for p in subset})
        assert ED25519.base_mul(s) == public.public_key
    # Two parties cannot recover it.
    s2 = interpolate_at_zero(L, {p: keys[p].secret_share for p in [1, 2]})
    assert ED25519.base_mul(s2) != public.public_key
    assert PublicKeyPackage.decode(public.encode()) == public


def test_dkg_2of3_and_fresh_keys() -> None:
    a = run_dkg([1, 2, 3], 2)
    b = run_dkg([1, 2, 3], 2)
    assert a[1].public.public_key != b[1].public.public_key
    assert a[1].public.chain_code != b[1].public.chain_code
    assert ED25519.base_mul(
        interpolate_at_zero(L, {1: a[1].secret_share, 3: a[3].secret_share})
    ) == (a[1].public.public_key)


def test_pending_share_available_before_confirmation_round() -> None:
    sessions = make_sessions(PARTIES, 3)
    seen: dict[int, list[bool]] = {p: [] for p in PARTIES}

    def observe(sender: int, round_: int, m: Outgoing) -> Outgoing:
        if m.recipient == BROADCAST:
            seen[sender].append(sessions[sender].pending_share is not None)
            if round_ == 4:
                assert not sessions[sender].done
        return m

    run_sessions(sessions, observe)
    for p, s in sessions.items():
        assert seen[p] == [False, False, False, True]  # rounds 1..4
        assert s.pending_share == s.output


def test_secrets_dropped_and_reprs_clean() -> None:
    sessions = make_sessions([1, 2, 3], 2)
    first = sessions[1]
    first.start()
    poly = first._poly
    assert poly is not None
    texts = [repr(first), repr(poly), str(poly)]
    for coefficient in poly.coefficients:
        for form in (
            str(coefficient),
            format(coefficient, "x"),
            ED25519.encode_scalar(coefficient).hex(),
        ):
            assert all(form not in t for t in texts)
    # Finish a run and check the secrets are gone from the session.
    sessions = make_sessions([1, 2, 3], 2, sid=b"other")
    run_sessions(sessions)
    for s in sessions.values():
        assert s._poly is None
        assert s._own_share is None
        assert s._chain_contribution is None
        assert s._secret_share is None
        share = s.output.secret_share
        for form in (str(share), format(share, "x"), ED25519.encode_scalar(share).hex()):
            assert form not in repr(s) and form not in repr(s.output)


@pytest.mark.parametrize(
    ("party", "parties", "threshold", "eid", "scheme"),
    [
        (6, PARTIES, 3, b"e", "ed25519"),  # not a party
        (1, PARTIES, 0, b"e", "ed25519"),
        (1, PARTIES, 6, b"e", "ed25519"),
        (1, [1, 2, 2, 3], 2, b"e", "ed25519"),
        (1, [0, 1, 2], 2, b"e", "ed25519"),
        (1, PARTIES, 3, b"", "ed25519"),
        (1, PARTIES, 3, b"e", "rsa"),
    ],
)
def test_session_argument_checks(
    party: int, parties: list[int], threshold: int, eid: bytes, scheme: str
) -> None:
    with pytest.raises(InvalidInput):
        FrostDkgSession(party, parties, threshold, eid, scheme)


# ---------------------------------------------------------------------------------------------
# A misbehaving party in each round is named (or the run aborts without a culprit)


def tamper_round(sender: int, round_: int, change: Callable[[Outgoing], Outgoing]) -> Tamper:
    def tamper(s: int, r: int, m: Outgoing) -> Outgoing:
        return change(m) if (s, r) == (sender, round_) else m

    return tamper


def rewrite_round1(
    rewrite: Callable[[list[bytes], bytes, bytes], bytes],
) -> Callable[[Outgoing], Outgoing]:
    def change(m: Outgoing) -> Outgoing:
        vss_raw, pok, h = decode_fields(m.payload, count=3)
        return replace(m, payload=rewrite(decode_fields(vss_raw), pok, h))

    return change


def aborted(
    tamper: Tamper, parties: Sequence[int] = PARTIES, threshold: int = 3
) -> ProtocolAborted:
    with pytest.raises(ProtocolAborted) as err:
        run_dkg(parties, threshold, tamper)
    return err.value


def test_extra_commitment_named() -> None:
    """Threshold raising: t+1 commitments with a valid PoK must be rejected, naming the sender."""
    extra = ED25519.base_mul(ED25519.random_scalar()).encode()
    err = aborted(
        tamper_round(
            2,
            1,
            rewrite_round1(lambda c, pok, h: encode_fields([encode_fields([*c, extra]), pok, h])),
        )
    )
    assert err.culprits == (2,)
    assert "4 commitments instead of 3" in err.reason


def test_missing_commitment_named() -> None:
    err = aborted(
        tamper_round(
            4, 1, rewrite_round1(lambda c, pok, h: encode_fields([encode_fields(c[:-1]), pok, h]))
        )
    )
    assert err.culprits == (4,)


def test_bad_pok_named() -> None:
    def bump(c: list[bytes], pok: bytes, h: bytes) -> bytes:
        mu = (ED25519.decode_scalar(pok[32:]) + 1) % L
        return encode_fields([encode_fields(c), pok[:32] + ED25519.encode_scalar(mu), h])

    err = aborted(tamper_round(3, 1, rewrite_round1(bump)))
    assert err.culprits == (3,)
    assert "proof of knowledge" in err.reason


def test_replaced_constant_commitment_named() -> None:
    """Swapping C_0 for another point breaks the PoK (rogue-key protection)."""

    def swap(c: list[bytes], pok: bytes, h: bytes) -> bytes:
        return encode_fields([encode_fields([ED25519.base_mul(7).encode(), *c[1:]]), pok, h])

    assert aborted(tamper_round(5, 1, rewrite_round1(swap))).culprits == (5,)


def test_invalid_point_and_garbage_named() -> None:
    identity = b"\x01" + b"\x00" * 31

    def bad_point(c: list[bytes], pok: bytes, h: bytes) -> bytes:
        return encode_fields([encode_fields([c[0], identity, c[2]]), pok, h])

    assert aborted(tamper_round(1, 1, rewrite_round1(bad_point))).culprits == (1,)
    garbage = tamper_round(2, 1, lambda m: replace(m, payload=b"\x00\x00\x00\x05abc"))
    assert aborted(garbage).culprits == (2,)


def test_bad_p2p_share_named() -> None:
    def change(m: Outgoing) -> Outgoing:
        if m.recipient != 1:
            return m
        return replace(m, payload=ED25519.encode_scalar(ED25519.decode_scalar(m.payload) + 1))

    err = aborted(tamper_round(3, 2, change))
    assert err.culprits == (3,)
    assert "secret share" in err.reason
    out_of_range = tamper_round(
        4, 2, lambda m: replace(m, payload=b"\xff" * 32) if m.recipient == 2 else m
    )
    assert aborted(out_of_range).culprits == (4,)


def test_echo_mismatch_aborts_without_culprit() -> None:
    def change(m: Outgoing) -> Outgoing:
        if m.recipient != BROADCAST:
            return m
        return replace(m, payload=bytes([m.payload[0] ^ 1]) + m.payload[1:])

    err = aborted(tamper_round(4, 2, change))
    assert err.culprits == ()
    assert err.reason == "round-1 broadcasts differ between parties"
    short = tamper_round(
        4, 2, lambda m: replace(m, payload=b"x") if m.recipient == BROADCAST else m
    )
    assert aborted(short).culprits == (4,)


def test_bad_chain_code_reveal_named() -> None:
    err = aborted(tamper_round(5, 3, lambda m: replace(m, payload=bytes(32))))
    assert err.culprits == (5,)
    assert "chain-code" in err.reason
    assert aborted(tamper_round(2, 3, lambda m: replace(m, payload=m.payload[:16]))).culprits == (
        2,
    )


def test_confirmation_mismatch_aborts() -> None:
    err = aborted(tamper_round(2, 4, lambda m: replace(m, payload=bytes(32))))
    assert err.culprits == (2,)
    assert "confirmation" in err.reason


def test_2of3_blame() -> None:
    err = aborted(
        tamper_round(
            3,
            1,
            rewrite_round1(lambda c, pok, h: encode_fields([encode_fields([*c, c[0]]), pok, h])),
        ),
        [1, 2, 3],
        2,
    )
    assert err.culprits == (3,)


# ---------------------------------------------------------------------------------------------
# PublicKeyPackage / KeyShare encodings


def retamper(data: bytes, index: int, value: bytes) -> bytes:
    fields = decode_fields(data)
    fields[index] = value
    return encode_fields(fields)


def test_package_and_share_roundtrip(keys: dict[int, KeyShare]) -> None:
    public = keys[1].public
    assert PublicKeyPackage.decode(public.encode()) == public
    for k in keys.values():
        decoded = KeyShare.decode(k.encode())
        assert decoded == k and decoded.secret_share == k.secret_share
    with_gen = replace(public, generation=7)
    assert PublicKeyPackage.decode(with_gen.encode()).generation == 7


def test_package_decode_rejects_tampering(keys: dict[int, KeyShare]) -> None:
    public = keys[1].public
    data = public.encode()
    ys = [y.encode() for y in public.verifying_shares]
    other_point = ED25519.base_mul(99).encode()

    def parties(ps: list[int]) -> bytes:
        return b"".join(encode_uint(p) for p in ps)

    tampered = [
        retamper(data, 0, b"mpc.v1.something-else"),
        retamper(data, 1, b"secp256k1"),
        retamper(data, 1, b"nope"),
        retamper(data, 1, b"\xff"),
        retamper(data, 2, encode_uint(0)),
        retamper(data, 2, encode_uint(2)),  # shares do not interpolate to PK
        retamper(data, 2, encode_uint(4)),  # degree 2 < 4-1: threshold raised
        retamper(data, 2, encode_uint(6)),
        retamper(data, 2, b"\x00\x03"),
        retamper(data, 3, parties([2, 1, 3, 4, 5])),  # unsorted
        retamper(data, 3, parties([1, 2, 3, 4, 4])),  # duplicate
        retamper(data, 3, parties([0, 1, 2, 3, 4])),  # zero
        retamper(data, 3, parties([1, 2, 3, 4, 6])),  # Y_6 inconsistent
        retamper(data, 3, parties([1, 2, 3, 4])),  # count mismatch
        retamper(data, 3, parties([1, 2, 3, 4, 5])[:-1]),
        retamper(data, 4, other_point),
        retamper(data, 4, b"\x01" + bytes(31)),  # identity
        retamper(data, 4, other_point[:31]),
        retamper(data, 5, b"".join([other_point, *ys[1:]])),  # one of the first t
        retamper(data, 5, b"".join([*ys[:4], other_point])),  # one beyond the first t
        retamper(data, 5, b"".join(ys[:4])),
        retamper(data, 5, b"".join([*ys[:4], b"\xff" * 32])),  # not a point
        retamper(data, 6, bytes(31)),
        retamper(data, 6, bytes(33)),
        retamper(data, 7, encode_uint(0)),  # 8-byte generation expected
        data + b"\x00",
        data + encode_fields([b"extra"]),
        data[:-1],
    ]
    for bad in tampered:
        with pytest.raises(InvalidInput):
            PublicKeyPackage.decode(bad)
    # Unchanged re-encoding still decodes (the tampering helper itself is sound).
    assert PublicKeyPackage.decode(retamper(data, 7, encode_uint(0, 8))) == public


def test_share_decode_rejects_tampering(keys: dict[int, KeyShare]) -> None:
    share = keys[2]
    data = share.encode()
    s = share.secret_share
    tampered = [
        retamper(data, 0, b"mpc.v1.not-a-share"),
        retamper(data, 1, retamper(share.public.encode(), 4, ED25519.base_mul(5).encode())),
        retamper(data, 2, encode_uint(3)),  # another party's index
        retamper(data, 2, encode_uint(9)),  # not a party
        retamper(data, 3, ED25519.encode_scalar(s + 1)),
        retamper(data, 3, (s + L).to_bytes(32, "little")),  # non-canonical
        retamper(data, 3, bytes(32)),
        retamper(data, 3, ED25519.encode_scalar(s)[:31]),
        data + b"\x00",
    ]
    for bad in tampered:
        with pytest.raises(InvalidInput):
            KeyShare.decode(bad)
    with pytest.raises(InvalidInput):
        KeyShare(share.public, 2, (s + 1) % L)
    with pytest.raises(InvalidInput):
        KeyShare(share.public, 3, s)


def test_package_constructor_checks(keys: dict[int, KeyShare]) -> None:
    public = keys[1].public
    with pytest.raises(InvalidInput):
        replace(public, parties=(1, 2, 3, 5, 4))
    with pytest.raises(InvalidInput):
        replace(public, verifying_shares=public.verifying_shares[:4])
    with pytest.raises(InvalidInput):
        replace(public, threshold=0)
    with pytest.raises(InvalidInput):
        replace(public, chain_code=b"short")
    with pytest.raises(InvalidInput):
        replace(public, scheme="secp256k1")  # ed25519 points in a secp256k1 package
    with pytest.raises(InvalidInput):
        public.verifying_share(6)
    bad = replace(public, verifying_shares=(*public.verifying_shares[:4], ED25519.base_mul(3)))
    with pytest.raises(InvalidInput):
        bad.check_consistency()


def test_confirmation_digest(keys: dict[int, KeyShare]) -> None:
    public = keys[1].public
    d = public.confirmation_digest(b"eid-1")
    assert len(d) == 32
    assert d == public.confirmation_digest(b"eid-1")
    assert d != public.confirmation_digest(b"eid-2")
    assert d != replace(public, generation=1).confirmation_digest(b"eid-1")
    assert d != replace(public, chain_code=bytes(32)).confirmation_digest(b"eid-1")


def test_trusted_dealer_keygen() -> None:
    keys = trusted_dealer_keygen("ed25519", 2, [3, 1, 2], secret=42, chain_code=b"c" * 32)
    public = keys[1].public
    assert public.parties == (1, 2, 3)
    assert public.public_key == ED25519.base_mul(42)
    assert interpolate_at_zero(L, {1: keys[1].secret_share, 3: keys[3].secret_share}) == 42
    assert PublicKeyPackage.decode(public.encode()) == public
    secp = trusted_dealer_keygen("secp256k1", 3, PARTIES)
    assert KeyShare.decode(secp[4].encode()) == secp[4]
    bad_args: list[tuple[str, int, list[int], int | None]] = [
        ("ed25519", 0, [1, 2], None),
        ("ed25519", 3, [1, 2], None),
        ("ed25519", 2, [1, 1, 2], None),
        ("ed25519", 2, [1, 2], L),
        ("x25519", 2, [1, 2], None),
    ]
    for scheme, threshold, parties, secret in bad_args:
        with pytest.raises(InvalidInput):
            trusted_dealer_keygen(scheme, threshold, parties, secret)


def _seeded_run(seed: int) -> tuple[list[tuple[int, Outgoing]], dict[int, KeyShare], bytes]:
    """DKG then one signature, every party's randomness drawn from a seeded source."""
    import random

    from mpcnode.protocols.frost.sign import FrostAggregator, FrostSignSession

    rng = random.Random(seed)
    eid = eid_for(PARTIES, 3)
    dkg = {p: FrostDkgSession(p, PARTIES, 3, eid, randomness=rng.randbytes) for p in PARTIES}
    transcript: list[tuple[int, Outgoing]] = []
    run_sessions(dkg, transcript=transcript)
    shares = {p: s.output for p, s in dkg.items()}
    signers, message = [1, 3, 5], b"replayable"
    sign_eid = execution_id("frost-sign", b"s", "key-1", signers, 3, message)
    sessions = {
        p: FrostSignSession(shares[p], signers, message, sign_eid, randomness=rng.randbytes)
        for p in signers
    }
    sign_transcript: list[tuple[int, Outgoing]] = []
    collected = run_sessions(sessions, transcript=sign_transcript)
    aggregator = FrostAggregator(shares[1].public, signers, message)
    for sender, out in sign_transcript:
        if out.round == 1:
            aggregator.add_commitment(sender, out.payload)
    for sender, outs in collected.items():
        aggregator.add_share(sender, outs[0].payload)
    return transcript + sign_transcript, shares, aggregator.signature()


def test_sessions_take_all_randomness_from_the_injected_source() -> None:
    """Same seed, same transcript and signature (replay); another seed, a different key."""
    from nacl.signing import VerifyKey

    first, shares, signature = _seeded_run(7)
    again, shares_again, signature_again = _seeded_run(7)
    assert first == again and signature == signature_again
    assert {p: s.secret_share for p, s in shares.items()} == {
        p: s.secret_share for p, s in shares_again.items()
    }
    other, other_shares, _ = _seeded_run(8)
    assert other != first
    assert other_shares[1].public.public_key != shares[1].public.public_key
    VerifyKey(shares[1].public.public_key.encode()).verify(b"replayable", signature)
