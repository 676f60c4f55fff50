"""mpcnode.crypto.primes: safe-prime generation, checks, and the test-prime production guard.

Primality in these tests is checked independently of gmpy2 where it is cheap (trial division
for small numbers, a plain-Python Miller-Rabin with fixed bases otherwise).
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from mpcnode.crypto import primes as primes_module
from mpcnode.crypto._test_primes import TEST_PRIME_DIGESTS
from mpcnode.crypto.primes import (
    MAX_BITS,
    MIN_BITS,
    check_prime_size,
    check_production_prime,
    check_safe_prime,
    generate_safe_prime,
    is_safe_prime,
    is_test_prime,
    prime_digest,
)
from mpcnode.errors import InvalidInput
from tests.fixtures.primes import available_sizes, load_test_primes

REPO = Path(__file__).resolve().parents[2]

# The first 20 primes as Miller-Rabin bases: a second, independent (pure Python) primality check.
_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def _strong_probable_prime(n: int, a: int) -> bool:
    """The Miller-Rabin test of odd n > 2 to base a."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    x = pow(a, d, n)
    if x in (1, n - 1):
        return True
    for _ in range(s - 1):
        x = x * x % n
        if x == n - 1:
            return True
    return False


def _mr_prime(n: int) -> bool:
    if n < 2:
        return False
    for b in _BASES:
        if n % b == 0:
            return n == b
    return all(_strong_probable_prime(n, a) for a in _BASES)


def _prime_with_composite_half(bits: int, seed: int) -> int:
    """A prime p of `bits` bits with (p - 1)/2 odd but composite."""
    rnd = random.Random(seed)
    while True:
        q = rnd.getrandbits(bits - 1) | (1 << (bits - 2)) | 1
        p = 2 * q + 1
        if _mr_prime(p) and not _mr_prime(q):
            return p


def _trial_prime(n: int) -> bool:
    if n < 2:
        return False
    d = 2
    while d * d <= n:
        if n % d == 0:
            return False
        d += 1
    return True


def _assert_generated_shape(p: int, bits: int) -> None:
    assert p.bit_length() == bits
    assert p >> (bits - 2) == 0b11, "top two bits must be set"
    assert p % 12 == 11  # q ≡ 5 (mod 6)


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("bits", [256, 256, 256, 512])
def test_generated_numbers_are_safe_primes_of_exact_size(bits: int) -> None:
    p = generate_safe_prime(bits)
    _assert_generated_shape(p, bits)
    assert type(p) is int
    assert _mr_prime(p) and _mr_prime((p - 1) // 2)
    assert is_safe_prime(p)


def test_small_sizes_against_trial_division() -> None:
    for bits in range(MIN_BITS, 25):
        p = generate_safe_prime(bits)
        _assert_generated_shape(p, bits)
        assert _trial_prime(p) and _trial_prime((p - 1) // 2), (bits, p)


def test_top_two_bits_make_the_modulus_exactly_twice_as_long() -> None:
    p, q = generate_safe_prime(256), generate_safe_prime(256)
    assert p != q
    assert (p * q).bit_length() == 512


def test_injected_rng_is_used_and_reproducible() -> None:
    a = generate_safe_prime(256, rng=random.Random(1).randbytes)
    b = generate_safe_prime(256, rng=random.Random(1).randbytes)
    c = generate_safe_prime(256, rng=random.Random(2).randbytes)
    assert a == b
    assert a != c
    assert is_safe_prime(a) and is_safe_prime(c)


def test_fresh_primes_differ() -> None:
    assert len({generate_safe_prime(128) for _ in range(5)}) == 5


@pytest.mark.parametrize("bits", [MIN_BITS - 1, 0, -5, MAX_BITS + 1])
def test_bit_length_out_of_range_is_refused(bits: int) -> None:
    with pytest.raises(InvalidInput):
        generate_safe_prime(bits)


@pytest.mark.parametrize("bits", [True, 256.0, "256"])
def test_bit_length_must_be_an_int(bits: object) -> None:
    with pytest.raises(InvalidInput):
        generate_safe_prime(bits)  # type: ignore[arg-type]


def test_rng_returning_the_wrong_length_is_refused() -> None:
    with pytest.raises(InvalidInput, match="rng"):
        generate_safe_prime(256, rng=lambda n: bytes(n - 1))


def test_sieve_window_matches_brute_force() -> None:
    """Each flag is 1 exactly when no prime 5 <= r < limit divides q_i or 2q_i + 1."""
    rnd = random.Random(7)
    limit = 2000
    small = [r for r in range(5, limit) if _trial_prime(r)]
    for _ in range(3):
        base = rnd.getrandbits(200) | (1 << 199)
        base += (5 - base % 6) % 6
        window = 3000
        flags = primes_module._sieve_window(base, window, limit)
        assert len(flags) == window
        for i in range(window):
            q = base + 6 * i
            expected = all(q % r and (2 * q + 1) % r for r in small)
            assert flags[i] == expected, i
        assert 0 < sum(flags) < window  # neither vacuous nor everything struck


# --------------------------------------------------------------------------- is_safe_prime


def test_is_safe_prime_accepts_known_safe_primes() -> None:
    for p in (5, 7, 11, 23, 47, 59, 83, 107, 167, 179, 227, 263):
        assert is_safe_prime(p), p
    # 2^127 - 1 is a Mersenne prime but (2^127 - 2)/2 = 2^126 - 1 is composite.
    assert not is_safe_prime((1 << 127) - 1)


def test_is_safe_prime_rejects_prime_with_composite_half() -> None:
    for p in (13, 17, 29, 31, 37, 41, 43, 53, 61, 97, 101):
        assert _trial_prime(p) and not _trial_prime((p - 1) // 2)
        assert not is_safe_prime(p), p
    # A large prime p ≡ 3 (mod 4) whose (p - 1)/2 is odd but composite.
    assert not is_safe_prime(_prime_with_composite_half(256, seed=3))


def test_is_safe_prime_is_not_fooled_by_a_base_2_pseudoprime_half() -> None:
    """q = 357761 = 131·2731 passes the strong test to base 2; p = 2q + 1 is prime."""
    q = 357761
    assert not _trial_prime(q) and _trial_prime(2 * q + 1)
    assert _strong_probable_prime(q, 2)
    assert not is_safe_prime(2 * q + 1)


def test_is_safe_prime_rejects_composites_and_small_values() -> None:
    p, q = load_test_primes(256)[:2]
    assert not is_safe_prime(p * q)
    assert not is_safe_prime(561)  # Carmichael number
    assert not is_safe_prime(2 * p + 2)
    for n in (-7, 0, 1, 2, 3, 4, 9, 15):
        assert not is_safe_prime(n), n
    with pytest.raises(InvalidInput):
        is_safe_prime(True)
    with pytest.raises(InvalidInput):
        is_safe_prime(7.0)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- size and guards


def test_check_prime_size() -> None:
    p = load_test_primes(256)[0]
    check_prime_size(p, 256)
    for bits in (255, 257, 1536):
        with pytest.raises(InvalidInput, match="bits"):
            check_prime_size(p, bits)
    with pytest.raises(InvalidInput):
        check_prime_size(-p, 256)
    with pytest.raises(InvalidInput):
        check_prime_size(str(p), 256)  # type: ignore[arg-type]


def test_prime_digest_is_sha256_of_minimal_big_endian_bytes() -> None:
    p = load_test_primes(256)[0]
    assert prime_digest(p) == hashlib.sha256(p.to_bytes(32, "big")).hexdigest()
    assert prime_digest(255) == hashlib.sha256(b"\xff").hexdigest()
    with pytest.raises(InvalidInput):
        prime_digest(0)


def test_check_production_prime_rejects_every_fixture_prime() -> None:
    count = 0
    for bits in available_sizes():
        for p in load_test_primes(bits):
            assert is_test_prime(p)
            with pytest.raises(InvalidInput, match="test-only prime") as info:
                check_production_prime(p)
            message = str(info.value)
            assert format(p, "x") not in message and str(p) not in message
            count += 1
    assert count == len(TEST_PRIME_DIGESTS) == 64


def test_check_production_prime_accepts_a_fresh_prime() -> None:
    p = generate_safe_prime(256)
    assert not is_test_prime(p)
    check_production_prime(p)
    check_safe_prime(p, 256)


def test_check_safe_prime() -> None:
    fixture = load_test_primes(256)[0]
    with pytest.raises(InvalidInput, match="test-only"):
        check_safe_prime(fixture, 256)
    check_safe_prime(fixture, 256, allow_test_primes=True)
    with pytest.raises(InvalidInput, match="bits"):
        check_safe_prime(fixture, 255, allow_test_primes=True)
    with pytest.raises(InvalidInput, match="not a safe prime"):
        check_safe_prime(_prime_with_composite_half(256, seed=4), 256)
    with pytest.raises(InvalidInput, match="not a safe prime"):
        check_safe_prime(fixture + 2, 256)


# --------------------------------------------------------------------------- the fixture


def test_fixture_has_enough_distinct_safe_primes_of_exact_size() -> None:
    assert available_sizes() == [256, 1024, 1536]
    wanted = {1536: 24, 1024: 8, 256: 8}
    everything: list[int] = []
    for bits, n in wanted.items():
        primes = load_test_primes(bits)
        assert len(primes) >= n
        for p in primes:
            assert p.bit_length() == bits and p >> (bits - 2) == 0b11
            assert is_safe_prime(p)
        everything += primes
    assert len(set(everything)) == len(everything)


def test_fixture_1536_primes_pass_an_independent_check() -> None:
    for p in load_test_primes(1536)[:2]:
        assert _mr_prime(p) and _mr_prime((p - 1) // 2)


def test_digest_module_matches_the_fixture() -> None:
    digests = {prime_digest(p) for bits in available_sizes() for p in load_test_primes(bits)}
    assert digests == TEST_PRIME_DIGESTS


def test_unknown_fixture_size_raises() -> None:
    with pytest.raises(KeyError):
        load_test_primes(2048)


def test_gen_test_primes_check_mode_agrees() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen-test-primes"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHON_NO_REEXEC": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "digests match" in result.stderr
