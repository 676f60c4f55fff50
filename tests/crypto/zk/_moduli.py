"""Shared setup for the modulus proofs (Π-mod, Π-prm, Π-fac) at production size.

SECURITY_128 with 3072-bit moduli from the 1536-bit safe primes of tests/fixtures/safe_primes.json:
the prover's Paillier modulus N = p·q, the verifier's ring-Pedersen parameters N̂ = p̂·q̂ (with
their trapdoor, so tests can craft proofs), and a second modulus and parameter set for
tampering with statements. Also 2048-bit ones (1024-bit primes) for the modulus-size checks,
and the special numbers of the false-statement tests. Everything is computed once per session.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from functools import cache

import gmpy2

from mpcnode.crypto.bigint import is_probable_prime
from mpcnode.crypto.ring_pedersen import RingPedersenSecret, generate_ring_pedersen
from mpcnode.crypto.security import SECURITY_128
from mpcnode.crypto.zk._common import ProofContext
from tests.fixtures.primes import load_test_primes

LEVEL = SECURITY_128
M = LEVEL.m
CTX = ProofContext(sid=b"zk-moduli-session", prover=4, level=LEVEL, instance="aux-gen")
"""The context every test proof is made under; `OTHER_CONTEXTS` each differ in one field."""

OTHER_CONTEXTS = {
    "sid": dataclasses.replace(CTX, sid=b"zk-moduli-session-2"),
    "prover": dataclasses.replace(CTX, prover=5),
    "instance": dataclasses.replace(CTX, instance="aux-gen-2"),
}

RHO = bytes(range(32))
"""The joint randomness ρ of aux-info generation bound into Π-mod and Π-fac."""

MERSENNE_3217 = 2**3217 - 1
"""A 3217-bit prime (Riesel, 1957): an odd "modulus" of production size that is prime."""

BITFORGE_SMALL = 65521
"""The largest 16-bit prime: the small factor of the BitForge modulus."""

BITFORGE_LARGE = int(
    "db1960c9e3473a38b767352e49411098d6a904943815c58718296e8878075043796d406188231b3932044841"
    "0fe3a22fa1f725601b2f4a7ce6e5f89c8d33a37f115c6a44f3cc0df2d1aff1067dbd67c8765c57810ce898f0"
    "1733d942b204a30354ef398bdedf23263c49440a9a11167dd41a347a2e474e5ac63a43514e2e79fdda8fd41f"
    "125b959ba1690ce64264764ae4d4359e9d02dcb25c12903c3ad294a2de50ff54293969d6bd800bc498744284"
    "74c15e9ecba7a6a86bd5a7550d23e085b021e0d44f2b135ab03d8de49eb1b039ee169646a7184f3d9a4de6cf"
    "02bb83d8e92df2adcc0ee683acdf2060d7c4400cb70f964e03c0b4a3165de1ab3e01a5240b6020d0b29c0cf1"
    "97f45625871b82b9bfbc91ba7257dabe22cad37b17c64a894db7e48f12b96a5d670af9a3638e5b08acc213a5"
    "bf07da1b195060c40eb788718c966f3d88f7f4b1b64633be40f5515c61236c88c5373cf3bd58da60fb1ceb7a"
    "79959588532d4242aadbc8f429a479c8c2926b94b5b5749882321e350541",
    16,
)
"""A 3056-bit prime: N0 = BITFORGE_SMALL·BITFORGE_LARGE has 3072 bits, the production size."""


@dataclass(frozen=True)
class Moduli:
    p: int
    q: int
    """The prover's Paillier primes (safe, so ≡ 3 mod 4): N = p·q."""
    aux_secret: RingPedersenSecret
    """The verifier's ring-Pedersen parameters (N̂, s, t) and trapdoor (λ, φ(N̂))."""
    other_p: int
    other_q: int
    """A second Paillier-Blum modulus, to swap into a statement."""
    other_aux_secret: RingPedersenSecret
    """Second ring-Pedersen parameters, to swap into a statement or aux."""
    small_p: int
    small_q: int
    """1024-bit safe primes: N = small_p·small_q has 2048 bits (below min_modulus_bits)."""
    small_aux_secret: RingPedersenSecret
    """2048-bit ring-Pedersen parameters, likewise too small."""

    @property
    def n(self) -> int:
        return self.p * self.q

    @property
    def other_n(self) -> int:
        return self.other_p * self.other_q

    @property
    def small_n(self) -> int:
        return self.small_p * self.small_q


@cache
def moduli() -> Moduli:
    full = load_test_primes(LEVEL.prime_bits)
    small = load_test_primes(1024)
    return Moduli(
        p=full[8],
        q=full[9],
        aux_secret=generate_ring_pedersen(full[10], full[11]),
        other_p=full[12],
        other_q=full[13],
        other_aux_secret=generate_ring_pedersen(full[14], full[15]),
        small_p=small[4],
        small_q=small[5],
        small_aux_secret=generate_ring_pedersen(small[6], small[7]),
    )


@cache
def prime_with_residue(bits: int, residue: int, modulus: int, seed: int) -> int:
    """A deterministic random prime of exactly `bits` bits (top two set) ≡ residue (mod modulus)."""
    rnd = random.Random(seed)
    while True:
        start = rnd.getrandbits(bits) | (3 << (bits - 2))
        candidate = int(gmpy2.next_prime(start))
        while candidate.bit_length() == bits:
            if candidate % modulus == residue:
                assert is_probable_prime(candidate)
                return candidate
            candidate = int(gmpy2.next_prime(candidate))
