"""CGGMP24 presigning and re-randomised signing, in memory at production size (SECURITY_128).

Aux info comes from the committed fixture (a real aux-info run over the fixture primes), so a
presigning run costs only its own arithmetic. Every signature is checked by coincurve
and by `cryptography`, which did not make it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache

import coincurve
import pytest

from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import SECP256K1
from mpcnode.errors import InvalidInput, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, COORDINATOR, Outgoing, execution_id
from mpcnode.protocols.cggmp import sign
from mpcnode.protocols.cggmp.aux_info import AuxInfo
from mpcnode.protocols.cggmp.presign import (
    CggmpPresignSession,
    Presignature,
    PresignaturePublic,
    _Round3,
    _Round4,
)
from mpcnode.protocols.keys import KeyShare, trusted_dealer_keygen
from mpcnode.protocols.simulation import run_sessions
from tests.ecdsa_checks import check_ecdsa_signature
from tests.fixtures.aux_info import load_test_aux_info

Q = SECP256K1.order
PARTIES = (1, 2, 3, 4, 5)
Tamper = Callable[[int, int, Outgoing], Outgoing]


def aux_infos() -> dict[int, AuxInfo]:
    return load_test_aux_info()


@lru_cache(maxsize=4)
def key_shares(threshold: int, n: int) -> dict[int, KeyShare]:
    return trusted_dealer_keygen("secp256k1", threshold, PARTIES[:n])


def presign(
    threshold: int, n: int, signers: tuple[int, ...], tamper: Tamper | None = None
) -> dict[int, Presignature]:
    shares = key_shares(threshold, n)
    eid = execution_id("cggmp-presign", b"s" * 16, "k", signers, threshold)
    sessions = {p: CggmpPresignSession(shares[p], aux_infos()[p], signers, eid) for p in signers}
    run_sessions(sessions, tamper)
    return {p: s.output for p, s in sessions.items()}


def request(signers: tuple[int, ...], message: bytes, tweak: int = 0) -> sign.SignRequest:
    return sign.SignRequest(
        "k",
        b"p" * 16,
        b"r" * 16,
        signers,
        sign.message_digest(message),
        sign.SIGN_HASH,
        tweak,
    )


@pytest.fixture(scope="module")
def presig_3_of_5() -> dict[int, Presignature]:
    return presign(3, 5, (1, 3, 4))


# --------------------------------------------------------------------------------------------
# Honest runs


@pytest.mark.parametrize(
    ("threshold", "n", "signers"), [(2, 3, (2, 3)), (3, 5, (1, 3, 4)), (2, 5, (1, 5))]
)
def test_presign_then_sign_verifies(threshold: int, n: int, signers: tuple[int, ...]) -> None:
    presigs = presign(threshold, n, signers)
    public = presigs[signers[0]].public
    assert all(p.public == public for p in presigs.values())
    assert public.public_key == key_shares(threshold, n)[signers[0]].public.public_key
    req = request(signers, b"pay 1 BTC to Alice")
    sig = sign.combine(public, req, {p: sign.partial_sign(presigs[p], req) for p in signers})
    check_ecdsa_signature(public.public_key.encode(), req.digest, sig)


def test_tweaked_key_signature_verifies_under_tweaked_key(
    presig_3_of_5: dict[int, Presignature],
) -> None:
    public = presig_3_of_5[1].public
    tweak = int.from_bytes(hashlib.sha256(b"child").digest(), "big") % Q
    req = request((1, 3, 4), b"msg", tweak)
    sig = sign.combine(
        public, req, {p: sign.partial_sign(presig_3_of_5[p], req) for p in (1, 3, 4)}
    )
    child = (public.public_key + SECP256K1.base_mul(tweak)).encode()
    check_ecdsa_signature(child, req.digest, sig)
    assert not coincurve.PublicKey(public.public_key.encode()).verify(
        sig.der(), req.digest, hasher=None
    )


def test_nonce_point_depends_on_the_request(presig_3_of_5: dict[int, Presignature]) -> None:
    """Re-randomisation: one presignature gives a different r for each message (R is not
    known before the message), and for each request id."""
    public = presig_3_of_5[1].public

    def r_of(req: sign.SignRequest) -> int:
        partials = {p: sign.partial_sign(presig_3_of_5[p], req) for p in (1, 3, 4)}
        return sign.combine(public, req, partials).r

    base = request((1, 3, 4), b"a")
    rs = {r_of(base), r_of(request((1, 3, 4), b"b")), r_of(replace(base, request_id=b"x" * 16))}
    assert len(rs) == 3


def test_presignature_encoding_round_trip_and_validation(
    presig_3_of_5: dict[int, Presignature],
) -> None:
    presig = presig_3_of_5[3]
    again = Presignature.decode(presig.encode())
    assert again == presig
    assert "k=" not in repr(presig) and str(presig.k) not in repr(presig)
    assert PresignaturePublic.decode(presig.public.encode()) == presig.public
    with pytest.raises(InvalidInput):
        Presignature.decode(replace(presig, k=(presig.k + 1) % Q).encode())
    with pytest.raises(InvalidInput):
        Presignature.decode(replace(presig, chi=(presig.chi + 1) % Q).encode())
    bad_public = replace(
        presig.public, S=(presig.public.S[1], presig.public.S[0], presig.public.S[2])
    )
    with pytest.raises(InvalidInput):
        Presignature.decode(replace(presig, public=bad_public).encode())
    shifted = replace(
        presig.public,
        Delta=(presig.public.Delta[0] + SECP256K1.generator(), *presig.public.Delta[1:]),
    )
    with pytest.raises(InvalidInput):
        PresignaturePublic.decode(shifted.encode())


def test_combine_rejects_wrong_signer_set(presig_3_of_5: dict[int, Presignature]) -> None:
    public = presig_3_of_5[1].public
    req = request((1, 3, 4), b"m")
    partials = {p: sign.partial_sign(presig_3_of_5[p], req) for p in (1, 3, 4)}
    with pytest.raises(InvalidInput):
        sign.combine(public, req, {1: partials[1], 3: partials[3]})
    with pytest.raises(InvalidInput):
        sign.partial_sign(presig_3_of_5[1], request((1, 2, 4), b"m"))


@pytest.mark.parametrize("culprit", [1, 4])
def test_bad_partial_signature_is_named(
    presig_3_of_5: dict[int, Presignature], culprit: int
) -> None:
    public = presig_3_of_5[1].public
    req = request((1, 3, 4), b"m")
    partials = {p: sign.partial_sign(presig_3_of_5[p], req) for p in (1, 3, 4)}
    # A partial signature made for another message is a valid-looking scalar, but wrong.
    other = request((1, 3, 4), b"other")
    partials[culprit] = sign.partial_sign(presig_3_of_5[culprit], other)
    with pytest.raises(ProtocolAborted) as info:
        sign.combine(public, req, partials)
    assert info.value.culprits == (culprit,)


def test_digest_session_signs_the_digest() -> None:
    shares = key_shares(2, 3)
    digest = hashlib.sha256(b"caller hashed this").digest()
    signers = (1, 3)
    eid = execution_id("cggmp-sign-digest", b"d" * 16, "k", signers, 2, digest)
    sessions = {
        p: sign.CggmpDigestSignSession(shares[p], aux_infos()[p], signers, eid, digest, "k")
        for p in signers
    }
    collected = run_sessions(sessions)
    partials = {}
    publics = set()
    for p in signers:
        (out,) = collected[p]
        assert out.recipient == COORDINATOR and out.round == 5
        sigma, public = sign.decode_partial(out.payload)
        partials[p] = sigma
        publics.add(public)
    (public,) = publics
    req = sign.digest_request("k", eid, signers, digest)
    sig = sign.combine(public, req, partials)
    check_ecdsa_signature(shares[1].public.public_key.encode(), digest, sig)


# --------------------------------------------------------------------------------------------
# Malicious signers are named


def _aborts(tamper: Tamper) -> ProtocolAborted:
    with pytest.raises(ProtocolAborted) as info:
        presign(2, 3, (1, 2), tamper)
    return info.value


def test_bad_enc_elg_proof_is_named() -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 1 and m.recipient != BROADCAST:
            psi0, psi1 = decode_fields(m.payload, count=2)
            from mpcnode.crypto.zk.pi_enc_elg import EncElgProof

            proof = EncElgProof.decode(psi0)
            bad = replace(proof, z1=proof.z1 + 1)
            return replace(m, payload=encode_fields([bad.encode(), psi1]))
        return m

    err = _aborts(tamper)
    assert err.culprits == (2,)
    assert "Π-enc-elg" in err.reason


def test_k_ciphertext_not_matching_its_proof_is_named() -> None:
    """A K_2 other than the one proven (encrypting another k) fails Π-enc-elg."""

    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 1 and m.recipient == BROADCAST:
            fields = decode_fields(m.payload)
            from mpcnode.crypto.zk._common import decode_ints, encode_ints

            K, G = decode_ints(fields[1], 2)
            n2 = aux_infos()[2].secret_key.public.n_squared
            n = aux_infos()[2].secret_key.n
            fields[1] = encode_ints([K * (1 + n) % n2, G])  # K ⊕ enc(1; 1)
            return replace(m, payload=encode_fields(fields))
        return m

    err = _aborts(tamper)
    assert err.culprits == (2,)


@pytest.mark.parametrize("which", ["psi", "psi_hat", "D", "psi_tilde"])
def test_bad_round3_message_is_named(which: str) -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 1 and rnd == 3:
            msg = _Round3.decode(m.payload)
            n2 = aux_infos()[2].secret_key.public.n_squared
            n = aux_infos()[2].secret_key.n
            if which == "psi":
                msg = replace(msg, psi=replace(msg.psi, z2=msg.psi.z2 + 1))
            elif which == "psi_hat":
                msg = replace(msg, psi_hat=replace(msg.psi_hat, z1=msg.psi_hat.z1 - 1))
            elif which == "D":  # the MtA ciphertext shifted by enc(1): no longer what was proven
                msg = replace(msg, D=msg.D * (1 + n) % n2)
            else:
                msg = replace(msg, psi_tilde=replace(msg.psi_tilde, z=(msg.psi_tilde.z + 1) % Q))
            return replace(m, payload=msg.encode())
        return m

    err = _aborts(tamper)
    assert err.culprits == (1,)
    expected = "Π-elog" if which == "psi_tilde" else "Π-aff-g"
    assert expected in err.reason


def test_bad_elog_for_delta_is_named() -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 4:
            msg = _Round4.decode(m.payload)
            msg = replace(msg, Delta=msg.Delta + SECP256K1.generator())
            return replace(m, payload=msg.encode())
        return m

    err = _aborts(tamper)
    assert err.culprits == (2,)
    assert "Π-elog" in err.reason


def test_wrong_delta_share_aborts_the_presignature() -> None:
    """δ_j is not proven on its own; a wrong one breaks δ·G = Δ and nothing is output."""

    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 4:
            msg = _Round4.decode(m.payload)
            return replace(m, payload=replace(msg, delta=(msg.delta + 1) % Q).encode())
        return m

    err = _aborts(tamper)
    assert "consistency" in err.reason


def test_echo_mismatch_aborts_without_culprit() -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 2:
            return replace(m, payload=bytes(32))
        return m

    err = _aborts(tamper)
    assert err.culprits == ()
    assert "differ" in err.reason


def test_session_rejects_bad_setup() -> None:
    shares = key_shares(3, 5)
    aux = aux_infos()
    with pytest.raises(InvalidInput):
        CggmpPresignSession(shares[1], aux[1], (1, 2), b"e")  # fewer than t signers
    with pytest.raises(InvalidInput):
        CggmpPresignSession(shares[1], aux[1], (2, 3, 4), b"e")  # not a signer
    with pytest.raises(InvalidInput):
        CggmpPresignSession(shares[1], aux[2], (1, 2, 3), b"e")  # someone else's aux
    ed = trusted_dealer_keygen("ed25519", 2, (1, 2))
    with pytest.raises(InvalidInput):
        CggmpPresignSession(ed[1], aux[1], (1, 2), b"e")


def test_signers_with_different_aux_info_abort_without_blame() -> None:
    """A signer holding stale aux info (another run's) is not mistaken for a cheater."""
    from mpcnode.protocols.cggmp.aux_info import AuxInfoPublic

    shares = key_shares(2, 3)
    aux = aux_infos()
    public = aux[2].public
    # Party 2 believes party 1's ring-Pedersen parameters are party 3's (a different run).
    stale_public = AuxInfoPublic(
        public.parties,
        public.paillier,
        (public.ring_pedersen[2], *public.ring_pedersen[1:]),
    )
    stale = AuxInfo(2, aux[2].secret_key, stale_public)
    eid = execution_id("cggmp-presign", b"s" * 16, "k", (1, 2), 2)
    sessions = {
        1: CggmpPresignSession(shares[1], aux[1], (1, 2), eid),
        2: CggmpPresignSession(shares[2], stale, (1, 2), eid),
    }
    with pytest.raises(ProtocolAborted) as info:
        run_sessions(sessions)
    assert info.value.culprits == ()
    assert "aux info" in info.value.reason
