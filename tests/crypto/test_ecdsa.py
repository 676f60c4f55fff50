"""mpcnode.crypto.ecdsa against libsecp256k1 (coincurve) and OpenSSL (cryptography).

Signatures are made here by plain single-key ECDSA (s = k^-1·(h + r·x)) through
`signature_from_nonce`, then checked by verifiers that did not make them.
"""

from __future__ import annotations

import hashlib
import secrets

import coincurve
import pytest
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.hashes import SHA256
from hypothesis import given, settings
from hypothesis import strategies as st

from mpcnode.crypto.ecdsa import (
    EcdsaSignature,
    affine_coordinates,
    digest_scalar,
    recovery_id,
    signature_from_nonce,
    verify,
)
from mpcnode.crypto.group import ED25519, SECP256K1, Point
from mpcnode.errors import InvalidInput

Q = SECP256K1.order
P = SECP256K1.field_prime
G = SECP256K1.generator()


def single_key_sign(x: int, k: int, digest: bytes) -> EcdsaSignature:
    """Textbook ECDSA with secret key x and nonce k, finished by `signature_from_nonce`."""
    R = SECP256K1.base_mul(k)
    r = affine_coordinates(R)[0] % Q
    s = pow(k, -1, Q) * (digest_scalar(digest) + r * x) % Q
    return signature_from_nonce(R, s)


def openssl_key(public: Point) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public.encode())


def check_with_independent_verifiers(public: Point, digest: bytes, sig: EcdsaSignature) -> None:
    """libsecp256k1 (DER verify + public-key recovery) and OpenSSL accept the signature."""
    key = coincurve.PublicKey(public.encode())
    assert key.verify(sig.der(), digest, hasher=None)
    recovered = coincurve.PublicKey.from_signature_and_message(
        sig.compact() + bytes([sig.recovery_id]), digest, hasher=None
    )
    assert recovered.format(compressed=True) == public.encode()
    openssl_key(public).verify(sig.der(), digest, ec.ECDSA(Prehashed(SHA256())))
    assert decode_dss_signature(sig.der()) == (sig.r, sig.s)
    assert sig.der() == encode_dss_signature(sig.r, sig.s)  # same strict DER as OpenSSL's


def random_case() -> tuple[int, Point, bytes, EcdsaSignature]:
    x = SECP256K1.random_scalar()
    digest = hashlib.sha256(secrets.token_bytes(16)).digest()
    sig = single_key_sign(x, SECP256K1.random_scalar(), digest)
    return x, SECP256K1.base_mul(x), digest, sig


# ---------------------------------------------------------------------------------------------
# Coordinates and the recovery id


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=1, max_value=Q - 1))
def test_affine_coordinates_match_uncompressed_encoding(k: int) -> None:
    point = SECP256K1.base_mul(k)
    uncompressed = coincurve.PublicKey(point.encode()).format(compressed=False)
    x, y = affine_coordinates(point)
    assert uncompressed == b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    assert (y * y - x**3 - 7) % P == 0


def test_affine_coordinates_rejects_identity_and_other_groups() -> None:
    with pytest.raises(InvalidInput):
        affine_coordinates(SECP256K1.identity())
    with pytest.raises(InvalidInput):
        affine_coordinates(ED25519.generator())


def test_recovery_id_bits() -> None:
    assert recovery_id(5, 10) == 0
    assert recovery_id(5, 11) == 1
    assert recovery_id(Q - 1, 2) == 0
    assert recovery_id(Q, 2) == 2  # x = q: r would be 0, but the bit logic is still defined
    assert recovery_id(Q + 1, 2) == 2
    assert recovery_id(P - 1, 3) == 3
    for bad in ((-1, 0), (P, 0), (0, P)):
        with pytest.raises(InvalidInput):
            recovery_id(*bad)


def point_with_large_x() -> Point:
    """A curve point with q <= x < p (about 2^127 such x exist; half are on the curve)."""
    for x in range(Q + 1, P):
        try:
            return SECP256K1.decode_point(b"\x02" + x.to_bytes(32, "big"))
        except InvalidInput:
            continue
    raise AssertionError("no point with x >= q found")


def test_signature_with_x_of_R_at_least_q() -> None:
    """Bit 1 of the recovery id, end to end, without a discrete log.

    Pick R with x(R) >= q, any s and digest, then the key Q = r^-1·(s·R - h·G) makes (r, s)
    valid (ECDSA public-key recovery run backwards). libsecp256k1 must recover Q with the
    recovery id we computed, which only works if bit 1 (add q back to r) is right.
    """
    R = point_with_large_x()
    x, y = affine_coordinates(R)
    assert x >= Q
    digest = hashlib.sha256(b"large x").digest()
    h = digest_scalar(digest)
    for s in (5, Q - 5):  # low S as given, and high S that gets normalised
        sig = signature_from_nonce(R, s)
        assert sig.r == x - Q
        assert sig.recovery_id & 2
        assert sig.s <= Q // 2
        assert sig.recovery_id & 1 == (y & 1) ^ (s > Q // 2)
        public = (R * s - SECP256K1.base_mul(h)) * pow(sig.r, -1, Q)
        assert verify(public, digest, sig)
        check_with_independent_verifiers(public, digest, sig)
        wrong_bit = EcdsaSignature(sig.r, sig.s, sig.recovery_id ^ 2)
        assert not verify(public, digest, wrong_bit)
        other = coincurve.PublicKey.from_signature_and_message(
            wrong_bit.recoverable(), digest, hasher=None
        )
        assert other.format(compressed=True) != public.encode()


# ---------------------------------------------------------------------------------------------
# Random signatures checked by independent verifiers


@pytest.mark.parametrize("case", range(50))
def test_random_signatures_verify_everywhere(case: int) -> None:
    _, public, digest, sig = random_case()
    assert 1 <= sig.r < Q and 1 <= sig.s <= Q // 2  # low S always
    assert sig.recovery_id in (0, 1)  # x(R) >= q has probability ~2^-128
    assert len(sig.compact()) == 64 and len(sig.recoverable()) == 65
    assert sig.recoverable()[64] == sig.recovery_id
    assert verify(public, digest, sig)
    check_with_independent_verifiers(public, digest, sig)


def test_low_s_normalisation_flips_parity() -> None:
    """Same (R, s) and (R, q - s): identical low-S output; the recovery id follows -R."""
    x = SECP256K1.random_scalar()
    k = SECP256K1.random_scalar()
    R = SECP256K1.base_mul(k)
    digest = hashlib.sha256(b"normalise").digest()
    r = affine_coordinates(R)[0] % Q
    s = pow(k, -1, Q) * (digest_scalar(digest) + r * x) % Q
    low, high = sorted((s, Q - s))
    a = signature_from_nonce(R, low)
    b = signature_from_nonce(R, high)
    assert a.s == b.s == low
    assert a.recovery_id ^ b.recovery_id == 1
    assert a.recovery_id == affine_coordinates(R)[1] & 1
    # Boundary: q//2 is low (kept), q//2 + 1 is high (becomes q//2).
    assert signature_from_nonce(R, Q // 2).s == Q // 2
    edge = signature_from_nonce(R, Q // 2 + 1)
    assert edge.s == Q // 2 and edge.recovery_id == a.recovery_id ^ 1
    # The one that is valid for this key is recovered by libsecp256k1 to it.
    valid = a if s == low else b
    check_with_independent_verifiers(SECP256K1.base_mul(x), digest, valid)


def test_sign_matches_libsecp256k1_deterministic_signature() -> None:
    """With libsecp256k1's own RFC 6979 nonce recovered, our (r, s, recid) equal its output."""
    x = SECP256K1.random_scalar()
    digest = hashlib.sha256(b"rfc6979").digest()
    theirs = coincurve.PrivateKey(x.to_bytes(32, "big")).sign_recoverable(digest, hasher=None)
    r = int.from_bytes(theirs[:32], "big")
    s = int.from_bytes(theirs[32:64], "big")
    # The k with s = k^-1·(h + r·x) for libsecp256k1's low s: R = k·G is the recovery point.
    k = pow(s, -1, Q) * (digest_scalar(digest) + r * x) % Q
    ours = signature_from_nonce(SECP256K1.base_mul(k), s)
    assert ours.compact() + bytes([ours.recovery_id]) == theirs


# ---------------------------------------------------------------------------------------------
# Rejections


def test_verify_rejects_tampering() -> None:
    for _ in range(10):
        x, public, digest, sig = random_case()
        assert verify(public, digest, sig)
        other_key = SECP256K1.base_mul(x + 1)
        other_digest = bytes([digest[0] ^ 1]) + digest[1:]
        assert not verify(other_key, digest, sig)
        assert not verify(public, other_digest, sig)
        assert not verify(public, digest, EcdsaSignature((sig.r + 1) % Q, sig.s, sig.recovery_id))
        assert not verify(public, digest, EcdsaSignature(sig.r, sig.s + 1, sig.recovery_id))
        assert not verify(public, digest, EcdsaSignature(sig.r, sig.s, sig.recovery_id ^ 1))
        # High S is the same signature for standard ECDSA (with -R's recovery id).
        high = EcdsaSignature(sig.r, Q - sig.s, sig.recovery_id ^ 1)
        assert verify(public, digest, high)
        # The independent verifiers agree on the tampered ones.
        key = coincurve.PublicKey(public.encode())
        assert not key.verify(
            EcdsaSignature(sig.r, sig.s + 1, sig.recovery_id).der(), digest, hasher=None
        )
        with pytest.raises(CryptoInvalidSignature):
            openssl_key(public).verify(sig.der(), other_digest, ec.ECDSA(Prehashed(SHA256())))


def test_verify_rejects_out_of_range_r_and_s() -> None:
    _, public, digest, sig = random_case()
    for r, s in ((0, sig.s), (sig.r, 0), (Q, sig.s), (sig.r, Q), (sig.r, Q + sig.s)):
        if s < 1 << 256:
            assert not verify(public, digest, EcdsaSignature(r, s, sig.recovery_id))
    # r + q (when below 2^256) has the same value mod q, but is not a valid r.
    if sig.r + Q < 1 << 256:
        assert not verify(public, digest, EcdsaSignature(sig.r + Q, sig.s, sig.recovery_id))


def test_verify_input_errors() -> None:
    _, public, digest, sig = random_case()
    with pytest.raises(InvalidInput):
        verify(public, digest[:31], sig)
    with pytest.raises(InvalidInput):
        verify(SECP256K1.identity(), digest, sig)
    with pytest.raises(InvalidInput):
        verify(ED25519.generator(), digest, sig)


def test_signature_from_nonce_rejects_degenerate() -> None:
    R = SECP256K1.base_mul(7)
    with pytest.raises(InvalidInput):
        signature_from_nonce(R, 0)
    with pytest.raises(InvalidInput):
        signature_from_nonce(R, Q)
    with pytest.raises(InvalidInput):
        signature_from_nonce(SECP256K1.identity(), 1)
    with pytest.raises(InvalidInput):
        signature_from_nonce(ED25519.generator(), 1)


def test_signature_value_checks() -> None:
    for r, s, rec in ((-1, 1, 0), (1, 1 << 256, 0), (1, 1, 4), (1, 1, -1)):
        with pytest.raises(InvalidInput):
            EcdsaSignature(r, s, rec)


def test_digest_scalar() -> None:
    assert digest_scalar(bytes(32)) == 0
    assert digest_scalar(b"\x00" * 31 + b"\x05") == 5  # big-endian
    assert digest_scalar(Q.to_bytes(32, "big")) == 0
    assert digest_scalar(b"\xff" * 32) == (1 << 256) - 1 - Q
    for bad in (b"", bytes(31), bytes(33), bytes(64)):
        with pytest.raises(InvalidInput):
            digest_scalar(bad)


# ---------------------------------------------------------------------------------------------
# Encodings


def test_der_minimal_integers() -> None:
    cases = [
        (1, 1, "3006020101020101"),
        (0x7F, 0x80, "300702017f02020080"),
        (0x80, 0x100, "3008020200800202" + "0100"),
        (Q - 1, Q // 2, None),
    ]
    for r, s, expected in cases:
        sig = EcdsaSignature(r, s, 0)
        der = sig.der()
        if expected is not None:
            assert der.hex() == expected
        assert der == encode_dss_signature(r, s)
        assert decode_dss_signature(der) == (r, s)
        assert der[1] == len(der) - 2
    # Top bit set on a full-width r: 33-byte INTEGER; the longest DER is 72 bytes.
    longest = EcdsaSignature(Q - 1, Q - 1, 0).der()
    assert len(longest) == 72 and longest[3] == 33 and longest[4] == 0


def test_compact_layout() -> None:
    sig = EcdsaSignature(1, 2, 3)
    assert sig.compact() == (1).to_bytes(32, "big") + (2).to_bytes(32, "big")
    assert sig.recoverable() == sig.compact() + b"\x03"
