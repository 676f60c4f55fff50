"""Safe primes for Paillier and ring-Pedersen moduli: generation, checks, and the test-prime guard.

A safe prime is p = 2q + 1 with q prime. CGGMP21/24 build every Paillier modulus N = p·p′ and
(CGGMP24) every ring-Pedersen modulus N̂ from two 1536-bit safe primes, so each party needs
2 (CGGMP21) or 4 (CGGMP24) of them per aux-info run.

Generation (`generate_safe_prime`) is a sieved incremental search, as in Wiener's "Safe prime
generation with a combined sieve" and Taurus' `sample/prime.go`:

1. Draw a random q₀ with the top two of its ``bits - 1`` bits set (so p has exactly `bits` bits
   and its top two bits set: a product of two such primes has exactly ``2 * bits`` bits), and
   round it up to q₀ ≡ 5 (mod 6). Only q ≡ 5 (mod 6) can work: q must be odd and q ≢ 0 (mod 3),
   and 3 ∤ 2q + 1 forces q ≢ 1 (mod 3); then p = 2q + 1 ≡ 11 (mod 12).
2. Sieve the window q_i = q₀ + 6i, 0 ≤ i < W, against every prime 5 ≤ r < `SIEVE_BOUND`:
   strike i when r | q_i, i.e. i ≡ −q₀·6⁻¹ (mod r), and when r | 2q_i + 1, i.e.
   q_i ≡ (r − 1)/2 (mod r). Each strike is one bytearray slice assignment per residue class,
   so the sieve costs two C-level strided writes per small prime, not a division per candidate.
3. For each survivor: a strong-probable-prime test to base 2 on q, then on p (cheap rejections),
   then the full `gmpy2.is_prime(·, MR_ROUNDS)` on both q and p.

Every heavy function here is a plain function on plain ints (no I/O, no global state beyond a
cached table of small primes), so the service layer can run it in a worker process.

Test fixtures: ``tests/fixtures/safe_primes.json`` holds pregenerated safe primes so the test
suite stays fast. They are public, so a key built from one is broken. `check_production_prime`
refuses them; the SHA-256 digests it compares against live in `mpcnode.crypto._test_primes`,
which ``scripts/gen-test-primes`` writes together with the fixture file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from functools import lru_cache

import gmpy2
from gmpy2 import mpz

from mpcnode.crypto._test_primes import TEST_PRIME_DIGESTS
from mpcnode.errors import InvalidInput

__all__ = [
    "DEFAULT_BITS",
    "MAX_BITS",
    "MIN_BITS",
    "MR_ROUNDS",
    "SIEVE_BOUND",
    "check_prime_size",
    "check_production_prime",
    "check_safe_prime",
    "generate_safe_prime",
    "is_safe_prime",
    "is_test_prime",
    "prime_digest",
]

DEFAULT_BITS = 1536
"""Bit length of a Paillier / ring-Pedersen prime at the 128-bit level (4κ with κ = 384)."""

MIN_BITS = 16
"""Smallest `bits` accepted by `generate_safe_prime` (test sizes only; production uses 1536)."""

MAX_BITS = 8192
"""Largest `bits` accepted by `generate_safe_prime` (a guard against a typo costing hours)."""

MR_ROUNDS = 40
"""`reps` passed to `gmpy2.is_prime`. GMP ≥ 6.2 runs Baillie-PSW, then reps − 24 = 16 more
Miller-Rabin rounds with random bases: no BPSW pseudoprime is known, and the extra rounds
bound the error by 4⁻¹⁶ even for an adversarially chosen input."""

SIEVE_BOUND = 1 << 18
"""Candidates q and 2q + 1 are sieved against every prime below this bound."""

_WINDOW = 1 << 17
"""Candidates per sieve window (q₀, q₀ + 6, …): enough that most searches need one window."""


# --------------------------------------------------------------------------- checks


def _check_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{what} must be an integer")
    return value


def is_safe_prime(p: int) -> bool:
    """True when p and q = (p − 1)/2 are both prime (`MR_ROUNDS`-strength probable primes).

    Mathematically exact for 5 and 7; anything below 5 (including 2 and 3) is not safe.
    """
    _check_int(p, "p")
    if p < 5 or p % 2 == 0:
        return False
    p_ = mpz(p)
    return bool(gmpy2.is_prime(p_, MR_ROUNDS)) and bool(gmpy2.is_prime(p_ >> 1, MR_ROUNDS))


def check_prime_size(p: int, bits: int) -> None:
    """Raise InvalidInput unless p is a positive integer of exactly `bits` bits.

    An exact size (not just a lower bound) keeps N = p·p′ within one bit of 2·bits, which the
    range proofs' slack and the Alpha-Rays modulus-size check both assume.
    """
    _check_int(p, "prime")
    _check_int(bits, "bits")
    if p <= 0 or p.bit_length() != bits:
        raise InvalidInput(f"prime has {p.bit_length()} bits, expected exactly {bits}")


def prime_digest(p: int) -> str:
    """Hex SHA-256 of p's minimal big-endian encoding: the key of `TEST_PRIME_DIGESTS`."""
    _check_int(p, "prime")
    if p <= 0:
        raise InvalidInput("prime must be positive")
    return hashlib.sha256(p.to_bytes((p.bit_length() + 7) // 8, "big")).hexdigest()


def is_test_prime(p: int) -> bool:
    """True when p is one of the public test-fixture primes (tests/fixtures/safe_primes.json)."""
    return prime_digest(p) in TEST_PRIME_DIGESTS


def check_production_prime(p: int) -> None:
    """Raise InvalidInput when p is a test-only fixture prime (public, so never safe to use).

    Every path that builds a production Paillier or ring-Pedersen key must call this; only
    code that says ``allow_test_primes=True`` explicitly may skip it. The message never shows p.
    """
    if is_test_prime(p):
        raise InvalidInput(
            "refusing a test-only prime from tests/fixtures/safe_primes.json: "
            "fixture primes are public and must never be used in production"
        )


def check_safe_prime(p: int, bits: int, *, allow_test_primes: bool = False) -> None:
    """Raise InvalidInput unless p is a safe prime of exactly `bits` bits, not a test prime.

    With ``allow_test_primes=True`` (tests only) the fixture guard is skipped; size and
    primality are always checked.
    """
    check_prime_size(p, bits)
    if not is_safe_prime(p):
        raise InvalidInput(f"the {bits}-bit number is not a safe prime")
    if not allow_test_primes:
        check_production_prime(p)


# --------------------------------------------------------------------------- generation


@lru_cache(maxsize=8)
def _sieve_tables(limit: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(primes r with 5 ≤ r < limit, 6⁻¹ mod r for each): cached per limit."""
    if limit <= 5:
        return (), ()
    flags = bytearray(b"\x01") * limit
    flags[0:2] = b"\x00\x00"
    for n in range(2, int(limit**0.5) + 1):
        if flags[n]:
            flags[n * n :: n] = bytes(len(range(n * n, limit, n)))
    primes = tuple(r for r in range(5, limit) if flags[r])
    return primes, tuple(pow(6, -1, r) for r in primes)


def _sieve_window(base: int, window: int, limit: int) -> bytearray:
    """Flags for q_i = base + 6i (0 ≤ i < window): 1 where neither q_i nor 2q_i + 1 has a
    prime factor r with 5 ≤ r < limit (2 and 3 are excluded by base ≡ 5 mod 6)."""
    primes, inverses = _sieve_tables(limit)
    flags = bytearray(b"\x01") * window
    zeros = memoryview(bytes(window))
    last = window - 1
    for r, inv6 in zip(primes, inverses, strict=True):
        b = base % r
        # r | q_i       <=>  6i ≡ −b             (mod r)
        s = (-b * inv6) % r
        if s <= last:
            flags[s::r] = zeros[: (last - s) // r + 1]
        # r | 2q_i + 1  <=>  q_i ≡ (r − 1)/2  <=>  6i ≡ (r − 1)/2 − b   (mod r)
        s = (((r - 1) >> 1) - b) * inv6 % r
        if s <= last:
            flags[s::r] = zeros[: (last - s) // r + 1]
    return flags


def generate_safe_prime(bits: int = DEFAULT_BITS, rng: Callable[[int], bytes] | None = None) -> int:
    """A random safe prime p = 2q + 1 of exactly `bits` bits with its top two bits set.

    `rng(n)` must return n random bytes (default `os.urandom`); inject one only for
    reproducible tests. Plain ints in and out, so it can run in a worker process.
    Mean time for 1536 bits is a few seconds (see the module docstring for the method).
    """
    _check_int(bits, "bits")
    if not MIN_BITS <= bits <= MAX_BITS:
        raise InvalidInput(f"bits must be in [{MIN_BITS}, {MAX_BITS}], got {bits}")
    draw = os.urandom if rng is None else rng
    q_bits = bits - 1
    q_low = 3 << (q_bits - 2)  # smallest q with the top two of its q_bits bits set
    q_high = 1 << q_bits  # exclusive
    # Only primes below every candidate q sieve: then r | q or r | 2q + 1 proves compositeness.
    limit = min(SIEVE_BOUND, q_low)
    n_bytes = (q_bits + 7) // 8
    while True:
        raw = draw(n_bytes)
        if not isinstance(raw, bytes) or len(raw) != n_bytes:
            raise InvalidInput(f"rng must return exactly {n_bytes} bytes")
        base = (int.from_bytes(raw, "big") % q_high) | q_low
        base += (5 - base % 6) % 6  # q ≡ 5 (mod 6), so p ≡ 11 (mod 12)
        window = min(_WINDOW, (q_high - 1 - base) // 6 + 1)
        if window <= 0:
            continue
        flags = _sieve_window(base, window, limit)
        i = flags.find(1)
        while i >= 0:
            q = mpz(base + 6 * i)
            if gmpy2.is_strong_prp(q, 2):
                p = 2 * q + 1
                if (
                    gmpy2.is_strong_prp(p, 2)
                    and gmpy2.is_prime(q, MR_ROUNDS)
                    and gmpy2.is_prime(p, MR_ROUNDS)
                ):
                    return int(p)
            i = flags.find(1, i + 1)
