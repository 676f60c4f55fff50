"""mpcnode.crypto.ring_pedersen: honest generation (s ∈ ⟨t⟩), commitment homomorphism, checks."""

from __future__ import annotations

import hashlib
from functools import cache

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpcnode.crypto.bigint import RandomBytes, invert, jacobi
from mpcnode.crypto.ring_pedersen import (
    RingPedersenParams,
    RingPedersenSecret,
    generate_ring_pedersen,
)
from mpcnode.crypto.security import SECURITY_128
from mpcnode.errors import InvalidInput
from tests.fixtures.primes import load_test_primes

LEVEL = SECURITY_128
SMALL_PRIMES = load_test_primes(256)
FULL_PRIMES = load_test_primes(1536)
SMALL = generate_ring_pedersen(SMALL_PRIMES[2], SMALL_PRIMES[3])
FULL = generate_ring_pedersen(FULL_PRIMES[2], FULL_PRIMES[3])
SECRETS = pytest.mark.parametrize("secret", [SMALL, FULL], ids=["512-bit", "3072-bit"])


def _rng_from(seed: bytes) -> RandomBytes:
    stream = hashlib.shake_256(seed).digest(1 << 14)
    position = 0

    def draw(n: int) -> bytes:
        nonlocal position
        out = stream[position : position + n]
        position += n
        return out

    return draw


# --------------------------------------------------------------------------- generation


@SECRETS
def test_generation_gives_s_in_subgroup_of_t(secret: RingPedersenSecret) -> None:
    params, p, q = secret.params, *_factors(secret)
    n = params.n
    assert n == p * q
    assert secret.phi == (p - 1) * (q - 1)
    # s = t^λ with λ ∈ [0, φ/4): s ∈ ⟨t⟩.
    assert 0 <= secret.lam < secret.phi // 4
    assert int(gmpy2.powmod(params.t, secret.lam, n)) == params.s
    # t = r² is a quadratic residue mod p and mod q, so its order divides p'·q' = φ/4.
    assert jacobi(params.t, p) == 1 and jacobi(params.t, q) == 1
    assert int(gmpy2.powmod(params.t, secret.phi // 4, n)) == 1
    assert int(gmpy2.powmod(params.s, secret.phi // 4, n)) == 1
    assert params.is_element(params.s) and params.is_element(params.t)
    assert params.s not in (0, 1) and params.t not in (0, 1)


def _factors(secret: RingPedersenSecret) -> tuple[int, int]:
    for primes in (SMALL_PRIMES, FULL_PRIMES):
        for p in primes:
            if secret.params.n % p == 0:
                return p, secret.params.n // p
    raise AssertionError("modulus not built from fixture primes")


def test_full_size_params_validate() -> None:
    FULL.params.validate(LEVEL)
    assert FULL.params.n.bit_length() >= LEVEL.min_modulus_bits


def test_generation_is_fresh_and_reproducible_with_an_rng() -> None:
    p, q = SMALL_PRIMES[2], SMALL_PRIMES[3]
    a = generate_ring_pedersen(p, q)
    b = generate_ring_pedersen(p, q)
    assert a.params.t != b.params.t and a.lam != b.lam
    c = generate_ring_pedersen(p, q, _rng_from(b"seed"))
    d = generate_ring_pedersen(p, q, _rng_from(b"seed"))
    assert c.params == d.params and c.lam == d.lam


def test_generation_rejects_equal_primes() -> None:
    with pytest.raises(InvalidInput):
        generate_ring_pedersen(SMALL_PRIMES[0], SMALL_PRIMES[0])


def test_secret_repr_is_redacted() -> None:
    for secret in (SMALL, FULL):
        text = repr(secret) + str(secret) + repr([secret])
        for value in (secret.lam, secret.phi, *_factors(secret)):
            assert str(value) not in text and hex(value)[2:] not in text
        assert "redacted" in text


# --------------------------------------------------------------------------- commitments

small_exponents = st.integers(min_value=-(2**1100), max_value=2**1100)


@given(x1=small_exponents, y1=small_exponents, x2=small_exponents, y2=small_exponents)
@settings(max_examples=200)
def test_commit_homomorphism_small(x1: int, y1: int, x2: int, y2: int) -> None:
    params = SMALL.params
    n = params.n
    assert params.commit(x1, y1) * params.commit(x2, y2) % n == params.commit(x1 + x2, y1 + y2)


full_exponents = st.integers(min_value=-(2**3900), max_value=2**3900)


@given(x1=full_exponents, y1=full_exponents, x2=full_exponents, y2=full_exponents)
@settings(max_examples=8, deadline=None)
def test_commit_homomorphism_full(x1: int, y1: int, x2: int, y2: int) -> None:
    params = FULL.params
    n = params.n
    assert params.commit(x1, y1) * params.commit(x2, y2) % n == params.commit(x1 + x2, y1 + y2)


@SECRETS
def test_commit_definition_and_negative_exponents(secret: RingPedersenSecret) -> None:
    params = secret.params
    n = params.n
    assert params.commit(0, 0) == 1
    assert params.commit(1, 0) == params.s and params.commit(0, 1) == params.t
    assert params.commit(3, 5) == pow(params.s, 3, n) * pow(params.t, 5, n) % n
    assert params.commit(-3, 5) == pow(invert(params.s, n), 3, n) * pow(params.t, 5, n) % n
    for x, y in ((7, -11), (-(2**300), 2**500), (-1, -1)):
        assert params.commit(x, y) * params.commit(-x, -y) % n == 1
    # With the trapdoor, com(x, y) = t^(λx + y): exponents matter only mod ord(t) | φ/4.
    x, y = 2**700 + 9, -(2**900) - 3
    assert params.commit(x, y) == params.commit(0, secret.lam * x + y)
    assert params.commit(x + secret.phi // 4, y) == params.commit(x, y - secret.phi)


@SECRETS
def test_commitments_are_elements(secret: RingPedersenSecret) -> None:
    params = secret.params
    for x, y in ((0, 1), (-(2**800), 2**3800), (12345, -67890)):
        assert params.is_element(params.commit(x, y))


# --------------------------------------------------------------------------- validation


def test_is_element_rejects_non_units() -> None:
    params = FULL.params
    p, q = _factors(FULL)
    for bad in (0, params.n, params.n + 1, -1, p, q * 3):
        assert not params.is_element(bad)
    assert params.is_element(1) and params.is_element(params.n - 1)


@cache
def _bad_params() -> dict[str, RingPedersenParams]:
    ok = FULL.params
    n, s, t = ok.n, ok.s, ok.t
    p, _ = _factors(FULL)
    p1024 = load_test_primes(1024)
    short = generate_ring_pedersen(p1024[0], p1024[1]).params
    return {
        "512-bit modulus": SMALL.params,
        "2048-bit modulus": short,
        "even modulus": RingPedersenParams(n + 1, s, t),
        "s = 1": RingPedersenParams(n, 1, t),
        "t = 1": RingPedersenParams(n, s, 1),
        "s = 0": RingPedersenParams(n, 0, t),
        "t = 0": RingPedersenParams(n, s, 0),
        "s = N": RingPedersenParams(n, n, t),
        "t >= N": RingPedersenParams(n, s, t + n),
        "s negative": RingPedersenParams(n, -s, t),
        "s not a unit": RingPedersenParams(n, p, t),
        "t not a unit": RingPedersenParams(n, s, p * 2),
    }


@pytest.mark.parametrize("case", list(_bad_params()))
def test_validate_rejects_bad_params(case: str) -> None:
    with pytest.raises(InvalidInput):
        _bad_params()[case].validate(LEVEL)
