"""Ring-Pedersen parameters (N̂, s, t) and commitments com(x, y) = s^x · t^y mod N̂.

Honest setup (CGGMP24): t = r² mod N̂ for a random unit r, λ ← [0, φ(N̂)/4), s = t^λ.
A verifier's parameters are used by provers to commit to their witnesses, so they must
be proved well formed (Π-prm: s ∈ ⟨t⟩) before anyone commits under them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes, is_unit, powmod, random_below, random_unit
from mpcnode.crypto.security import SecurityLevel
from mpcnode.errors import InvalidInput


@dataclass(frozen=True)
class RingPedersenParams:
    n: int
    s: int
    t: int

    def validate(self, level: SecurityLevel) -> None:
        """Size and membership checks on received parameters (Π-prm proves the rest)."""
        if self.n % 2 == 0 or self.n.bit_length() < level.min_modulus_bits:
            raise InvalidInput(
                f"ring-Pedersen modulus must be odd with at least {level.min_modulus_bits} bits"
            )
        for name, value in (("s", self.s), ("t", self.t)):
            if not is_unit(value, self.n) or value == 1:
                raise InvalidInput(f"ring-Pedersen {name} must be a unit other than 1")

    def commit(self, x: int, y: int) -> int:
        """s^x · t^y mod N̂ (x, y may be negative)."""
        return powmod(self.s, x, self.n) * powmod(self.t, y, self.n) % self.n

    def is_element(self, value: int) -> bool:
        """value ∈ Z*_N̂, the check every received commitment must pass."""
        return is_unit(value, self.n)


@dataclass(frozen=True, repr=False)
class RingPedersenSecret:
    """The trapdoor: λ with s = t^λ, and φ(N̂). Needed only to prove Π-prm."""

    params: RingPedersenParams
    lam: int
    phi: int

    def __repr__(self) -> str:
        return f"RingPedersenSecret(<redacted>, {self.params.n.bit_length()} bits)"


def generate_ring_pedersen(p: int, q: int, rng: RandomBytes | None = None) -> RingPedersenSecret:
    """Parameters over N̂ = p·q from two safe primes."""
    if p == q:
        raise InvalidInput("ring-Pedersen primes must be distinct")
    n = p * q
    phi = (p - 1) * (q - 1)
    r = random_unit(n, rng)
    t = r * r % n
    lam = random_below(phi // 4, rng)
    s = powmod(t, lam, n)
    return RingPedersenSecret(RingPedersenParams(n, s, t), lam, phi)
