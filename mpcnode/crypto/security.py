"""Security-level constants for CGGMP21/24 (Paillier sizes, ranges, repetitions).

Names follow the paper: ell (ℓ) bounds honest secrets, ell_prime (ℓ′) the MtA masks,
epsilon (ε) the statistical slack of range proofs, m the repetitions of Π-mod and Π-prm.
We use the CGGMP24 values (ε 512, ℓ′ 1280), which are stricter than cggmp21's
SecurityLevel128 (ε 230, ℓ′ 848), with κ 384 as in cggmp21.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SecurityLevel:
    name: str
    kappa: int
    epsilon: int
    ell: int
    ell_prime: int
    m: int
    prime_bits: int
    """Bit length of each Paillier / ring-Pedersen safe prime."""
    min_modulus_bits: int
    """Smallest accepted bit length of a received Paillier or ring-Pedersen modulus."""

    def __post_init__(self) -> None:
        # Constraints from the CGGMP guidelines (see shared/notes/cggmp-spec.md §2.3).
        if self.m < 128:
            raise ValueError("m must be at least 128 repetitions")
        if self.ell_prime <= 2 * self.ell + self.epsilon // 2:
            raise ValueError("ell_prime too small for statistical masking")
        if 2 * self.prime_bits - 1 < self.min_modulus_bits:
            raise ValueError("primes too small for the modulus bound")


SECURITY_128 = SecurityLevel(
    name="cggmp24-128",
    kappa=384,
    epsilon=512,
    ell=256,
    ell_prime=1280,
    m=128,
    prime_bits=1536,
    min_modulus_bits=3071,
)
"""The only production level. Tests use it too, with pregenerated primes."""
