"""mpcnode.crypto.paillier: correctness against the textbook scheme, homomorphisms, key checks.

Property tests run twice: at a small size (512-bit N from the fixture's 256-bit safe primes,
many examples) and at production size (3072-bit N from its 1536-bit primes, few examples).
"""

from __future__ import annotations

import hashlib

import gmpy2
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mpcnode.crypto.bigint import RandomBytes, gcd, invert, is_probable_prime, signed_mod
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.primes import is_test_prime
from mpcnode.crypto.security import SECURITY_128
from mpcnode.errors import InvalidInput
from tests.fixtures.primes import load_test_primes

LEVEL = SECURITY_128

SMALL_PRIMES = load_test_primes(256)
FULL_PRIMES = load_test_primes(1536)
SMALL = PaillierSecretKey(SMALL_PRIMES[0], SMALL_PRIMES[1])
FULL = PaillierSecretKey(FULL_PRIMES[0], FULL_PRIMES[1])

# Many examples at the small size, a few (no deadline) at production size.
small_settings = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
full_settings = settings(max_examples=6, deadline=None)

KEYS = pytest.mark.parametrize("key", [SMALL, FULL], ids=["512-bit", "3072-bit"])


def plaintexts(key: PaillierSecretKey) -> st.SearchStrategy[int]:
    """Signed plaintexts over the whole [-floor(N/2), floor(N/2)], boundaries weighted in."""
    h = key.n // 2
    edges = [0, 1, -1, h, -h, h - 1, -h + 1, 2**256, -(2**256)]
    return st.one_of(st.sampled_from(edges), st.integers(min_value=-h, max_value=h))


def nonces(key: PaillierSecretKey) -> st.SearchStrategy[int]:
    """r ∈ Z*_N (a non-unit turns up with probability ~2^-255; assume() drops it)."""
    return st.one_of(st.just(1), st.just(key.n - 1), st.integers(min_value=1, max_value=key.n - 1))


def textbook_decrypt(key: PaillierSecretKey, c: int) -> int:
    """m = L(c^λ mod N²)·μ mod N with λ = lcm(p-1, q-1), μ = L(g^λ mod N²)^-1, g = 1 + N,
    without CRT: an independent reference for the CRT decryption."""
    n, n2 = key.n, key.n * key.n
    lam = (key.p - 1) * (key.q - 1) // gcd(key.p - 1, key.q - 1)
    mu = invert((int(gmpy2.powmod(1 + n, lam, n2)) - 1) // n, n)
    return signed_mod((int(gmpy2.powmod(c, lam, n2)) - 1) // n * mu % n, n)


# --------------------------------------------------------------------------- properties


def _check_round_trip(key: PaillierSecretKey, m: int, r: int) -> None:
    assume(gcd(r, key.n) == 1)
    c = key.public.encrypt_with(m, r)
    assert key.public.is_ciphertext(c)
    assert key.decrypt(c) == m
    assert textbook_decrypt(key, c) == m
    assert key.encrypt_with(m, r) == c  # CRT encryption is the same function


@given(data=st.data())
@small_settings
def test_decrypt_inverts_encrypt_small(data: st.DataObject) -> None:
    _check_round_trip(SMALL, data.draw(plaintexts(SMALL)), data.draw(nonces(SMALL)))


@given(data=st.data())
@full_settings
def test_decrypt_inverts_encrypt_full(data: st.DataObject) -> None:
    _check_round_trip(FULL, data.draw(plaintexts(FULL)), data.draw(nonces(FULL)))


@KEYS
def test_plaintext_boundaries(key: PaillierSecretKey) -> None:
    h = key.n // 2
    for m in (h, -h, 0):
        c, _ = key.public.encrypt(m)
        assert key.decrypt(c) == m
    # One past the boundary wraps to the other end: plaintexts live mod N.
    c, _ = key.public.encrypt(h + 1)
    assert key.decrypt(c) == -h
    c, _ = key.public.encrypt(-h - 1)
    assert key.decrypt(c) == h
    c, _ = key.public.encrypt(5 + 3 * key.n)
    assert key.decrypt(c) == 5


def _check_homomorphisms(key: PaillierSecretKey, m1: int, m2: int, a: int) -> None:
    pk = key.public
    c1, _ = pk.encrypt(m1)
    c2, _ = pk.encrypt(m2)
    assert key.decrypt(pk.add(c1, c2)) == signed_mod(m1 + m2, key.n)
    assert key.decrypt(pk.mul(a, c1)) == signed_mod(a * m1, key.n)
    # The affine map of MtA: (a ⊙ C1) ⊕ C2.
    assert key.decrypt(pk.add(pk.mul(a, c1), c2)) == signed_mod(a * m1 + m2, key.n)


def scalars(key: PaillierSecretKey) -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from([0, 1, -1, 2, -2, key.n, -key.n, key.n - 1]),
        st.integers(min_value=-(2**300), max_value=2**300),
        st.integers(min_value=-(key.n**2), max_value=key.n**2),
    )


@given(data=st.data())
@small_settings
def test_homomorphic_add_and_scalar_multiply_small(data: st.DataObject) -> None:
    key = SMALL
    m1, m2 = data.draw(plaintexts(key)), data.draw(plaintexts(key))
    _check_homomorphisms(key, m1, m2, data.draw(scalars(key)))


@given(data=st.data())
@full_settings
def test_homomorphic_add_and_scalar_multiply_full(data: st.DataObject) -> None:
    key = FULL
    m1, m2 = data.draw(plaintexts(key)), data.draw(plaintexts(key))
    _check_homomorphisms(key, m1, m2, data.draw(scalars(key)))


@KEYS
def test_negative_scalar_is_inverse_ciphertext_power(key: PaillierSecretKey) -> None:
    pk = key.public
    c, _ = pk.encrypt(12345)
    assert pk.mul(-1, c) == invert(c, pk.n_squared)
    assert key.decrypt(pk.mul(-7, c)) == -7 * 12345
    assert pk.add(c, pk.mul(-1, c)) == 1  # enc(0; 1)


@KEYS
def test_crt_encrypt_with_equals_public_encrypt_with(key: PaillierSecretKey) -> None:
    for m, r in ((0, 1), (1, 2), (-1, key.n - 1), (key.n // 2, 3), (-(key.n // 2), 2**200 + 1)):
        assert key.encrypt_with(m, r) == key.public.encrypt_with(m, r)
    for _ in range(5):
        c, r = key.public.encrypt(-42)
        assert key.encrypt_with(-42, r) == c


@KEYS
def test_encryption_is_randomised(key: PaillierSecretKey) -> None:
    (c1, r1), (c2, r2) = key.public.encrypt(7), key.public.encrypt(7)
    assert r1 != r2 and c1 != c2
    assert key.decrypt(c1) == key.decrypt(c2) == 7


def _rng_from(seed: bytes) -> RandomBytes:
    """Deterministic bytes: SHAKE-256(seed) read in order."""
    stream = hashlib.shake_256(seed).digest(1 << 16)
    position = 0

    def draw(n: int) -> bytes:
        nonlocal position
        out = stream[position : position + n]
        position += n
        return out

    return draw


def test_injected_rng_makes_encryption_reproducible() -> None:
    first = SMALL.public.encrypt(9, _rng_from(b"a"))
    assert first == SMALL.public.encrypt(9, _rng_from(b"a"))
    assert first != SMALL.public.encrypt(9, _rng_from(b"b"))


# --------------------------------------------------------------------------- input checks


@KEYS
def test_encrypt_with_rejects_non_unit_nonce(key: PaillierSecretKey) -> None:
    for r in (0, key.n, key.p, key.q * 2, -1, key.n + 1):
        with pytest.raises(InvalidInput):
            key.public.encrypt_with(1, r)
        with pytest.raises(InvalidInput):
            key.encrypt_with(1, r)


@KEYS
def test_is_ciphertext(key: PaillierSecretKey) -> None:
    pk = key.public
    n2 = pk.n_squared
    c, _ = pk.encrypt(3)
    assert pk.is_ciphertext(c) and pk.is_ciphertext(1) and pk.is_ciphertext(n2 - 1)
    for bad in (0, n2, n2 + 1, c + n2, -c, key.p, key.q * 7, pk.n, key.p * key.p):
        assert not pk.is_ciphertext(bad), bad
        with pytest.raises(InvalidInput):
            key.decrypt(bad)


def test_validate_accepts_production_keys() -> None:
    FULL.public.validate(LEVEL)
    assert FULL.n.bit_length() >= LEVEL.min_modulus_bits


@pytest.mark.parametrize(
    "n",
    [
        SMALL.n,  # 512 bits
        load_test_primes(1024)[0] * load_test_primes(1024)[1],  # 2048 bits
        2**3069 + 1,  # 3070 bits, odd
        FULL.n + 1,  # even
        2 * FULL.n,  # even
        0,
        1,
        2,
        -FULL.n,
    ],
    ids=["512", "2048", "3070", "even", "2N", "0", "1", "2", "negative"],
)
def test_validate_rejects_even_and_short_moduli(n: int) -> None:
    with pytest.raises(InvalidInput):
        PaillierPublicKey(n).validate(LEVEL)


def test_validate_bit_length_boundary() -> None:
    assert LEVEL.min_modulus_bits == 3071
    PaillierPublicKey(2**3070 + 1).validate(LEVEL)  # 3071 bits: accepted (size check only)
    with pytest.raises(InvalidInput, match="3071"):
        PaillierPublicKey(2**3069 + 1).validate(LEVEL)  # 3070 bits


# --------------------------------------------------------------------------- key construction


def test_from_primes_accepts_fixture_primes_only_when_allowed() -> None:
    p, q = FULL_PRIMES[2], FULL_PRIMES[3]
    assert is_test_prime(p) and is_test_prime(q)
    key = PaillierSecretKey.from_primes(p, q, LEVEL, allow_test_primes=True)
    assert key.n == p * q
    with pytest.raises(InvalidInput, match="test-only") as info:
        PaillierSecretKey.from_primes(p, q, LEVEL)
    assert str(p) not in str(info.value) and hex(p)[2:] not in str(info.value)


def test_from_primes_rejects_small_primes() -> None:
    p, q = SMALL_PRIMES[0], SMALL_PRIMES[1]
    with pytest.raises(InvalidInput, match="1536"):
        PaillierSecretKey.from_primes(p, q, LEVEL, allow_test_primes=True)
    p1024 = load_test_primes(1024)
    with pytest.raises(InvalidInput, match="1536"):
        PaillierSecretKey.from_primes(p1024[0], p1024[1], LEVEL, allow_test_primes=True)


def _non_safe_prime_3_mod_4(bits: int) -> int:
    """A prime p ≡ 3 mod 4 of `bits` bits whose (p-1)/2 is composite."""
    candidate = (1 << (bits - 1)) + 3
    while True:
        if (
            candidate % 4 == 3
            and is_probable_prime(candidate)
            and not is_probable_prime((candidate - 1) // 2)
        ):
            return candidate
        candidate += 4


def test_from_primes_rejects_non_safe_primes() -> None:
    bad = _non_safe_prime_3_mod_4(LEVEL.prime_bits)
    with pytest.raises(InvalidInput, match="safe"):
        PaillierSecretKey.from_primes(bad, FULL_PRIMES[0], LEVEL, allow_test_primes=True)
    with pytest.raises(InvalidInput, match="safe"):
        PaillierSecretKey.from_primes(FULL_PRIMES[0], bad, LEVEL, allow_test_primes=True)
    composite = FULL_PRIMES[4] * 3  # not prime at all (and 1538 bits)
    with pytest.raises(InvalidInput, match="safe"):
        PaillierSecretKey.from_primes(composite, FULL_PRIMES[0], LEVEL, allow_test_primes=True)


def test_constructor_rejects_equal_or_wrong_residue_primes() -> None:
    p = SMALL_PRIMES[0]
    with pytest.raises(InvalidInput):
        PaillierSecretKey(p, p)
    with pytest.raises(InvalidInput):
        PaillierSecretKey(p, 13)  # 13 ≡ 1 mod 4
    with pytest.raises(InvalidInput):
        PaillierSecretKey(2, p)


def test_secret_key_repr_has_no_prime_digits() -> None:
    for key in (SMALL, FULL):
        for text in (repr(key), str(key), f"{key}", f"{key!r}", repr([key])):
            for secret in (key.p, key.q, key.phi):
                assert str(secret) not in text
                assert hex(secret)[2:] not in text
                assert format(secret, "X") not in text
        assert "redacted" in repr(key)


def test_public_key_equality_and_n_squared() -> None:
    assert FULL.public == PaillierPublicKey(FULL.n)
    assert FULL.public.n_squared == FULL.n**2
    assert FULL.public != SMALL.public
