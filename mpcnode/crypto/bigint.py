"""Big-integer helpers on gmpy2: modexp (counted), units, Jacobi, CRT, signed ranges.

`I(R)` below is the CGGMP24 half interval [-floor(R/2), floor(R/2)]: sampling "±R" draws from
it and range checks accept exactly it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

import gmpy2
from gmpy2 import mpz

RandomBytes = Callable[[int], bytes]


class ModexpCounter:
    """Counts modular exponentiations, so benchmarks can compare proofs to the modexp floor.

    When `shapes` is a list, each modexp also appends (modulus bits, exponent bits).
    """

    count = 0
    shapes: list[tuple[int, int]] | None = None


def powmod(base: int, exponent: int, modulus: int) -> int:
    """base^exponent mod modulus; a negative exponent uses the modular inverse."""
    ModexpCounter.count += 1
    if ModexpCounter.shapes is not None:
        ModexpCounter.shapes.append((modulus.bit_length(), abs(exponent).bit_length()))
    return int(gmpy2.powmod(mpz(base), mpz(exponent), mpz(modulus)))


def invert(x: int, modulus: int) -> int:
    """x^-1 mod modulus (raises ZeroDivisionError if x is not invertible)."""
    return int(gmpy2.invert(mpz(x), mpz(modulus)))


def gcd(a: int, b: int) -> int:
    return int(gmpy2.gcd(mpz(a), mpz(b)))


def is_unit(x: int, modulus: int) -> bool:
    """x ∈ Z*_modulus: 0 <= x < modulus and gcd(x, modulus) = 1."""
    return 0 <= x < modulus and gcd(x, modulus) == 1


def jacobi(a: int, n: int) -> int:
    """The Jacobi symbol (a | n) for odd positive n."""
    return int(gmpy2.jacobi(mpz(a), mpz(n)))


def is_probable_prime(n: int, rounds: int = 25) -> bool:
    return bool(gmpy2.is_prime(mpz(n), rounds))


def isqrt(n: int) -> int:
    return int(gmpy2.isqrt(mpz(n)))


def crt(residues: Sequence[int], moduli: Sequence[int]) -> int:
    """The x mod prod(moduli) with x ≡ residues[i] mod moduli[i] (pairwise coprime moduli)."""
    total = 0
    product = 1
    for m in moduli:
        product *= m
    for r, m in zip(residues, moduli, strict=True):
        rest = product // m
        total += r * rest * invert(rest, m)
    return total % product


def random_below(bound: int, rng: RandomBytes | None = None) -> int:
    """Uniform in [0, bound) by rejection sampling."""
    if bound <= 0:
        raise ValueError("bound must be positive")
    if rng is None:
        return secrets.randbelow(bound)
    bits = bound.bit_length()
    size = (bits + 7) // 8
    mask = (1 << bits) - 1
    while True:
        candidate = int.from_bytes(rng(size), "big") & mask
        if candidate < bound:
            return candidate


def random_unit(modulus: int, rng: RandomBytes | None = None) -> int:
    """Uniform in Z*_modulus."""
    while True:
        candidate = random_below(modulus, rng)
        if candidate and gcd(candidate, modulus) == 1:
            return candidate


def half(bound: int) -> int:
    """floor(bound / 2): the largest magnitude in I(bound)."""
    return bound // 2


def random_signed(bound: int, rng: RandomBytes | None = None) -> int:
    """Uniform in I(bound) = [-floor(bound/2), floor(bound/2)]."""
    h = half(bound)
    return random_below(2 * h + 1, rng) - h


def in_signed_range(x: int, bound: int) -> bool:
    """x ∈ I(bound), i.e. |x| <= floor(bound/2)."""
    return abs(x) <= half(bound)


def signed_mod(x: int, modulus: int) -> int:
    """The representative of x mod modulus in [-floor((modulus-1)/2), floor(modulus/2)]."""
    r = x % modulus
    return r - modulus if r > modulus // 2 else r


def int_to_bytes(x: int) -> bytes:
    """Minimal big-endian bytes of a non-negative integer (b"" for 0)."""
    if x < 0:
        raise ValueError("negative integer")
    return x.to_bytes((x.bit_length() + 7) // 8, "big")


def int_from_bytes(data: bytes) -> int:
    return int.from_bytes(data, "big")


def signed_to_bytes(x: int) -> bytes:
    """Sign byte (0 or 1) followed by the big-endian magnitude: an injective signed encoding."""
    return (b"\x01" if x < 0 else b"\x00") + int_to_bytes(abs(x))


def signed_from_bytes(data: bytes) -> int:
    if not data or data[0] not in (0, 1):
        raise ValueError("bad signed integer encoding")
    magnitude = int_from_bytes(data[1:])
    if data[0] == 1 and magnitude == 0:
        raise ValueError("negative zero")
    return -magnitude if data[0] == 1 else magnitude
