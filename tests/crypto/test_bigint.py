"""mpcnode.crypto.bigint: CRT, signed encodings and ranges, counted modexp."""

from __future__ import annotations

import math
from collections import Counter
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpcnode.crypto import bigint
from mpcnode.crypto.bigint import (
    ModexpCounter,
    crt,
    gcd,
    half,
    in_signed_range,
    int_from_bytes,
    int_to_bytes,
    invert,
    is_probable_prime,
    is_unit,
    isqrt,
    jacobi,
    powmod,
    random_below,
    random_signed,
    random_unit,
    signed_from_bytes,
    signed_mod,
    signed_to_bytes,
)

# Small primes and safe-prime-sized moduli for the number-theory checks.
PRIMES = [3, 5, 7, 11, 13, 101, 65537, 2**61 - 1, 2**127 - 1]
M127 = 2**127 - 1
M61 = 2**61 - 1


def counter_rng(seed: int) -> bigint.RandomBytes:
    """A deterministic byte source (SHA-256 in counter mode) for reproducible draws."""
    import hashlib

    blocks = count()

    def draw(n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha256(
                seed.to_bytes(8, "big") + next(blocks).to_bytes(8, "big")
            ).digest()
        return out[:n]

    return draw


# --------------------------------------------------------------------------- CRT


@given(
    x=st.integers(min_value=0, max_value=M61 * M127 * 65537 - 1),
)
@settings(max_examples=300)
def test_crt_recovers_value_from_residues(x: int) -> None:
    moduli = [M61, M127, 65537]
    assert crt([x % m for m in moduli], moduli) == x


@given(
    a=st.integers(min_value=-(10**40), max_value=10**40),
    b=st.integers(min_value=-(10**40), max_value=10**40),
)
def test_crt_two_moduli_matches_definition(a: int, b: int) -> None:
    p, q = M61, M127
    x = crt([a, b], [p, q])
    assert 0 <= x < p * q
    assert x % p == a % p and x % q == b % q


def test_crt_rejects_non_coprime_moduli() -> None:
    with pytest.raises(ZeroDivisionError):
        crt([1, 2], [6, 9])


def test_crt_single_modulus_reduces() -> None:
    assert crt([17], [5]) == 2


# --------------------------------------------------------------------------- encodings


@given(st.integers(min_value=0, max_value=2**4096))
@settings(max_examples=300)
def test_int_bytes_round_trip_and_minimal(x: int) -> None:
    data = int_to_bytes(x)
    assert int_from_bytes(data) == x
    assert data == b"" if x == 0 else data[0] != 0
    assert len(data) == (x.bit_length() + 7) // 8


def test_int_to_bytes_rejects_negative() -> None:
    with pytest.raises(ValueError):
        int_to_bytes(-1)


@given(st.integers(min_value=-(2**4096), max_value=2**4096))
@settings(max_examples=500)
def test_signed_bytes_round_trip(x: int) -> None:
    data = signed_to_bytes(x)
    assert signed_from_bytes(data) == x
    assert data[0] == (1 if x < 0 else 0)
    assert data[1:] == int_to_bytes(abs(x))


@given(st.integers(), st.integers())
@settings(max_examples=500)
def test_signed_bytes_injective(x: int, y: int) -> None:
    if x != y:
        assert signed_to_bytes(x) != signed_to_bytes(y)


@pytest.mark.parametrize("x", [0, 1, -1, 255, -255, 256, -256, 2**64, -(2**64)])
def test_signed_bytes_edges(x: int) -> None:
    assert signed_from_bytes(signed_to_bytes(x)) == x


def test_signed_bytes_known_values() -> None:
    assert signed_to_bytes(0) == b"\x00"
    assert signed_to_bytes(1) == b"\x00\x01"
    assert signed_to_bytes(-1) == b"\x01\x01"
    assert signed_to_bytes(256) == b"\x00\x01\x00"


@pytest.mark.parametrize("data", [b"", b"\x02", b"\x02\x01", b"\xff\x01", b"\x01", b"\x01\x00"])
def test_signed_from_bytes_rejects_malformed(data: bytes) -> None:
    # Empty, a sign byte other than 0/1, and negative zero (b"\x01" and b"\x01\x00").
    with pytest.raises(ValueError):
        signed_from_bytes(data)


# --------------------------------------------------------------------------- ranges and sampling


@pytest.mark.parametrize("bound", [1, 2, 3, 4, 5, 7, 8, 2**256, 2**256 + 1, 2**1280 - 1])
def test_in_signed_range_boundaries(bound: int) -> None:
    h = bound // 2
    assert half(bound) == h
    for inside in (0, h, -h):
        assert in_signed_range(inside, bound)
    for outside in (h + 1, -h - 1, h + 2**300, -(h + 2**300)):
        assert not in_signed_range(outside, bound)


def test_in_signed_range_is_the_cggmp24_half_interval() -> None:
    # I(2^ℓ) = [-2^(ℓ-1), 2^(ℓ-1)]: 2^(ℓ-1) is in, 2^(ℓ-1) + 1 is not (not the full ±2^ℓ).
    assert in_signed_range(2**255, 2**256) and in_signed_range(-(2**255), 2**256)
    assert not in_signed_range(2**255 + 1, 2**256)
    assert not in_signed_range(-(2**255) - 1, 2**256)
    assert not in_signed_range(2**256 - 1, 2**256)


@pytest.mark.parametrize("bound", [1, 2, 3, 4, 5, 10])
def test_random_signed_covers_exactly_the_interval(bound: int) -> None:
    h = bound // 2
    rng = counter_rng(bound)
    seen = Counter(random_signed(bound, rng) for _ in range(400 * (2 * h + 1)))
    assert set(seen) == set(range(-h, h + 1))  # both endpoints hit, nothing outside
    expected = 400
    assert all(abs(c - expected) < 120 for c in seen.values()), seen


@pytest.mark.parametrize("bound", [2**256, 2**768, 2**1792, 3 * 2**3072 + 1])
def test_random_signed_in_range_both_signs_large(bound: int) -> None:
    draws = [random_signed(bound) for _ in range(200)] + [
        random_signed(bound, counter_rng(7)) for _ in range(50)
    ]
    assert all(in_signed_range(v, bound) for v in draws)
    assert any(v < 0 for v in draws) and any(v > 0 for v in draws)
    # Uses the full magnitude: some draw is within a factor 4 of the bound.
    assert max(abs(v) for v in draws) > bound // 8


def test_random_below_range_and_errors() -> None:
    rng = counter_rng(1)
    for bound in (1, 2, 3, 255, 256, 257, 2**200 + 3):
        for source in (None, rng):
            values = [random_below(bound, source) for _ in range(100)]
            assert all(0 <= v < bound for v in values)
    assert {random_below(3, rng) for _ in range(200)} == {0, 1, 2}
    for bad in (0, -1):
        with pytest.raises(ValueError):
            random_below(bad)


def test_random_below_is_deterministic_under_an_injected_rng() -> None:
    a = [random_below(10**30, counter_rng(5)) for _ in range(3)]
    b = [random_below(10**30, counter_rng(5)) for _ in range(3)]
    assert a == b


def test_random_unit_is_unit() -> None:
    n = 3 * 5 * 7
    rng = counter_rng(3)
    values = [random_unit(n, rng) for _ in range(1000)]
    assert all(is_unit(v, n) for v in values)
    assert len(set(values)) == math.prod(p - 1 for p in (3, 5, 7))  # all 48 units are drawn


# --------------------------------------------------------------------------- modexp


@given(
    base=st.integers(min_value=1, max_value=M127 - 1),
    exponent=st.integers(min_value=-(2**300), max_value=2**300),
)
@settings(max_examples=300)
def test_powmod_matches_builtin_including_negative_exponents(base: int, exponent: int) -> None:
    assert powmod(base, exponent, M127) == pow(base, exponent, M127)


@given(
    base=st.integers(min_value=1, max_value=M127 - 1), e=st.integers(min_value=1, max_value=2**80)
)
def test_powmod_negative_exponent_is_inverse_power(base: int, e: int) -> None:
    assert powmod(base, -e, M127) == powmod(invert(base, M127), e, M127)
    assert powmod(base, -e, M127) * powmod(base, e, M127) % M127 == 1


def test_powmod_negative_exponent_of_non_unit_fails() -> None:
    with pytest.raises((ZeroDivisionError, ValueError)):
        powmod(6, -1, 15)


def test_powmod_returns_python_int() -> None:
    assert type(powmod(3, 5, 7)) is int
    assert type(invert(3, 7)) is int
    assert type(gcd(12, 18)) is int


def test_modexp_counter_counts_every_powmod() -> None:
    before = ModexpCounter.count
    for k in range(5):
        powmod(2, k - 2, 11)
    assert ModexpCounter.count == before + 5
    # Other helpers are not modexps.
    invert(3, 7), gcd(4, 6), jacobi(2, 7), crt([1, 2], [3, 5])
    assert ModexpCounter.count == before + 5


# --------------------------------------------------------------------------- the rest


@pytest.mark.parametrize("p", [p for p in PRIMES if p < 10**6])
def test_jacobi_is_legendre_by_euler_for_primes(p: int) -> None:
    for a in range(1, min(p, 300)):
        euler = pow(a, (p - 1) // 2, p)
        assert jacobi(a, p) == (1 if euler == 1 else -1)
    assert jacobi(p, p) == 0


def test_jacobi_is_multiplicative_in_the_modulus() -> None:
    for a in range(1, 200):
        assert jacobi(a, 7 * 11) == jacobi(a, 7) * jacobi(a, 11)


def test_is_unit() -> None:
    n = 15
    assert [x for x in range(-2, 18) if is_unit(x, n)] == [1, 2, 4, 7, 8, 11, 13, 14]


def test_invert() -> None:
    assert invert(3, 7) * 3 % 7 == 1
    with pytest.raises(ZeroDivisionError):
        invert(5, 15)


@given(
    st.integers(min_value=-(2**300), max_value=2**300), st.integers(min_value=1, max_value=2**200)
)
@settings(max_examples=300)
def test_signed_mod_representative(x: int, modulus: int) -> None:
    r = signed_mod(x, modulus)
    assert (r - x) % modulus == 0
    assert -((modulus - 1) // 2) <= r <= modulus // 2


def test_primality_and_isqrt() -> None:
    assert all(is_probable_prime(p) for p in PRIMES)
    assert not any(is_probable_prime(n) for n in (1, 4, 561, 2**61 + 1, M61 * M127))
    for n in (0, 1, 15, 16, 17, 2**300, 2**300 - 1):
        r = isqrt(n)
        assert r * r <= n < (r + 1) * (r + 1)
