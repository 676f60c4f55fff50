"""Π-fac: no small factor, both factors of N0 are larger than about √N0/2^(ℓ+ε) (CGGMP24).

Statement: N0, the prover's Paillier modulus. Aux: the **verifier's** ring-Pedersen parameters
(N̂, s, t), so the proof is made once per verifier. Witness: p, q with N0 = p·q.
Both sides compute R0 = ⌊√N0⌋ themselves; it is never taken from the prover.

Prover (half ranges I(R) = [−⌊R/2⌋, ⌊R/2⌋], ℓ = level.ell, ε = level.epsilon):

    α, β ← I(2^(ℓ+ε)·R0),  μ, ν ← I(2^ℓ·N̂),  r ← I(2^(ℓ+ε)·N0·N̂),  x, y ← I(2^(ℓ+ε)·N̂)
    P = s^p·t^μ,  Q = s^q·t^ν,  A = s^α·t^x,  B = s^β·t^y,  T = Q^α·t^r      (mod N̂)
    e ← I(2^ℓ) from the transcript (ρ, N0, R0, N̂, s, t, P, Q, A, B, T absorbed)
    z1 = α + e·p,  z2 = β + e·q,  w1 = x + e·μ,  w2 = y + e·ν,  v = r − e·ν·p   (integers)

Verifier (cggmp-spec.md §3.4): the aux passes `validate(level)`; N0 is odd with at least
max(4ℓ, level.min_modulus_bits) bits; P, Q, A, B, T ∈ Z*_N̂; then e and

    s^z1·t^w1 ≡ A·P^e,   s^z2·t^w2 ≡ B·Q^e,   Q^z1·t^v ≡ T·(s^N0)^e   (mod N̂)
    |z1| ≤ 2^(ℓ+ε−1)·R0 and |z2| ≤ 2^(ℓ+ε−1)·R0, i.e. z1, z2 ∈ I(2^(ℓ+ε)·R0).

The range checks are the point of the proof (BitForge: N0 = small primes × a large prime).
From two accepting answers a knowledge extractor gets |p|, |q| ≤ 2^(ℓ+ε)·R0, so each factor
is at least N0/(2^(ℓ+ε)·R0) ≈ √N0/2^(ℓ+ε). With ε = 512 that bound says nothing unless N0 has
well over 2(ℓ+ε) bits: at the paper's 4ℓ = 1024 bits, 2^(ℓ+ε−1)·R0 exceeds N0 itself. So this
verifier also requires the Paillier size level.min_modulus_bits (3071 bits: factors ≥ 2^767).

Before the challenge, every response is also capped at 2^(2ℓ+ε)·N0·N̂ in magnitude (well above
any honest value), so a malicious proof cannot make the verifier exponentiate by huge numbers.
That cap is about cost, not soundness.

Cost: 10 exponentiations mod N̂ to prove, 9 to verify ((s^N0)^e is one, s^(N0·e)).

Sources: ePrint 2021/060 (CGGMP24) Π-fac; LFDT-Lockness paillier-zk `no_small_factor.rs`;
taurushq multi-party-sig `pkg/zk/fac`; BitForge (ePrint 2023/1234).
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes, isqrt, powmod, random_signed
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.security import SecurityLevel
from mpcnode.crypto.transcript import Transcript
from mpcnode.crypto.zk._common import (
    ProofContext,
    absorb_aux,
    check_moduli,
    check_range,
    check_response_sizes,
    check_units,
    pack,
    pedersen_holds,
    require,
    unpack,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "FIELDS", "FacProof", "min_modulus_bits", "range_bound", "prove", "verify"]

TAG = "mpc.v1.zk.fac"
"""Transcript tag of Π-fac."""

NAME = "Π-fac"

FIELDS = ("P", "Q", "A", "B", "T", "z1", "z2", "w1", "w2", "v")
"""The proof's fields, in encoding order."""


@dataclass(frozen=True)
class FacProof:
    """The prover's message: commitments P, Q, A, B, T (mod the verifier's N̂) and integer
    responses z1, z2, w1, w2, v, named as in the paper. The statement N0 is not included."""

    P: int
    Q: int
    A: int
    B: int
    T: int
    z1: int
    z2: int
    w1: int
    w2: int
    v: int

    def encode(self) -> bytes:
        """pack([], [P, Q, A, B, T, z1, z2, w1, w2, v]) (signed integers)."""
        return pack([], [getattr(self, name) for name in FIELDS])

    @classmethod
    def decode(cls, data: bytes) -> FacProof:
        """Inverse of `encode`; anything malformed or non-canonical raises InvalidProof."""
        _, ints = unpack(data, 0, len(FIELDS), NAME)
        return cls(*ints)


def min_modulus_bits(level: SecurityLevel) -> int:
    """The smallest accepted bit length of N0: max(4ℓ, level.min_modulus_bits)."""
    return max(4 * level.ell, level.min_modulus_bits)


def range_bound(level: SecurityLevel, n0: int) -> int:
    """R = 2^(ℓ+ε)·R0 with R0 = ⌊√N0⌋: z1 and z2 must lie in I(R), i.e. |z| ≤ R/2."""
    return (1 << (level.ell + level.epsilon)) * isqrt(n0)


def _response_cap(level: SecurityLevel, n0: int, n_hat: int) -> int:
    """A magnitude no honest response reaches (|v| ≤ 2^(ℓ+ε−1)·N0·N̂ + 2^(2ℓ−2)·N̂·p is the
    largest); checked before the challenge to bound the verifier's work."""
    return (1 << (2 * level.ell + level.epsilon)) * n0 * n_hat


def _transcript(
    ctx: ProofContext, n0: int, r0: int, aux: RingPedersenParams, rho: bytes
) -> Transcript:
    """The transcript with ρ, the statement (N0, R0) and the verifier's aux absorbed."""
    tr = ctx.transcript(TAG)
    tr.append("rho", rho)
    tr.append("N0", n0)
    tr.append("R0", r0)
    absorb_aux(tr, aux)
    return tr


def _challenge(tr: Transcript, level: SecurityLevel, first: FacProof) -> int:
    """Absorb the first message (P, Q, A, B, T) and draw e ∈ I(2^ℓ)."""
    for name in FIELDS[:5]:
        tr.append(name, getattr(first, name))
    return tr.challenge_signed("e", 1 << level.ell)


def prove(
    ctx: ProofContext,
    n0: int,
    p: int,
    q: int,
    verifier_aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    rho: bytes = b"",
) -> FacProof:
    """Prove that N0 = p·q has no small factor, under the verifier's aux (N̂, s, t).

    Raises InvalidInput on misuse: aux failing `validate(level)`, N0 ≠ p·q, a factor < 2, or a
    factor outside the relation's range p, q ≤ 2^ℓ·√N0 (a small co-factor: the BitForge shape).
    Primality of p and q is not checked."""
    level = ctx.level
    check_moduli(NAME, level, verifier_aux, error=InvalidInput)
    if p < 2 or q < 2 or p * q != n0:
        raise InvalidInput(f"{NAME} witness must be factors p, q ≥ 2 with N0 = p·q")
    limit = (1 << level.ell) * isqrt(n0)
    if p > limit or q > limit:
        raise InvalidInput(f"{NAME} witness factor is outside ±2^ℓ·√N0 (a small co-factor)")
    return _prove(ctx, n0, p, q, verifier_aux, rng, rho=rho)


def _prove(
    ctx: ProofContext,
    n0: int,
    p: int,
    q: int,
    verifier_aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    rho: bytes = b"",
) -> FacProof:
    """`prove` without its checks (tests use it to build proofs from out-of-range
    factorisations and check that the verifier rejects them)."""
    level = ctx.level
    aux = verifier_aux
    n_hat = aux.n
    r0 = isqrt(n0)
    two_l = 1 << level.ell
    two_le = 1 << (level.ell + level.epsilon)

    alpha = random_signed(two_le * r0, rng)
    beta = random_signed(two_le * r0, rng)
    mu = random_signed(two_l * n_hat, rng)
    nu = random_signed(two_l * n_hat, rng)
    r = random_signed(two_le * n0 * n_hat, rng)
    x = random_signed(two_le * n_hat, rng)
    y = random_signed(two_le * n_hat, rng)

    P = aux.commit(p, mu)
    Q = aux.commit(q, nu)
    A = aux.commit(alpha, x)
    B = aux.commit(beta, y)
    T = powmod(Q, alpha, n_hat) * powmod(aux.t, r, n_hat) % n_hat
    first = FacProof(P, Q, A, B, T, 0, 0, 0, 0, 0)
    e = _challenge(_transcript(ctx, n0, r0, aux, rho), level, first)
    return FacProof(
        P=P,
        Q=Q,
        A=A,
        B=B,
        T=T,
        z1=alpha + e * p,
        z2=beta + e * q,
        w1=x + e * mu,
        w2=y + e * nu,
        v=r - e * nu * p,
    )


def verify(
    ctx: ProofContext,
    n0: int,
    verifier_aux: RingPedersenParams,
    proof: FacProof,
    *,
    rho: bytes = b"",
) -> None:
    """Check `proof` that N0 has no small factor, under the verifier's own aux (N̂, s, t).
    Raises InvalidProof on any failure."""
    level = ctx.level
    aux = verifier_aux
    # Sizes of every modulus: the aux, and N0 as a Paillier modulus (odd, the level's size),
    # at least 4ℓ bits too.
    check_moduli(NAME, level, aux, PaillierPublicKey(n0))
    min_bits = min_modulus_bits(level)
    require(
        n0.bit_length() >= min_bits,
        f"{NAME}: N0 has {n0.bit_length()} bits, at least {min_bits} required",
    )

    # Every received element in range.
    p = proof
    check_units(NAME, "Z*_N̂", aux.n, {"P": p.P, "Q": p.Q, "A": p.A, "B": p.B, "T": p.T})
    check_response_sizes(
        NAME,
        _response_cap(level, n0, aux.n),
        {"z1": p.z1, "z2": p.z2, "w1": p.w1, "w2": p.w2, "v": p.v},
    )

    r0 = isqrt(n0)  # computed here, never taken from the prover
    e = _challenge(_transcript(ctx, n0, r0, aux, rho), level, proof)

    n_hat, s, t = aux.n, aux.s, aux.t
    require(pedersen_holds(aux, p.z1, p.w1, p.A, p.P, e), f"{NAME}: s^z1·t^w1 ≠ A·P^e")
    require(pedersen_holds(aux, p.z2, p.w2, p.B, p.Q, e), f"{NAME}: s^z2·t^w2 ≠ B·Q^e")
    require(
        powmod(p.Q, p.z1, n_hat) * powmod(t, p.v, n_hat) % n_hat
        == p.T * powmod(s, n0 * e, n_hat) % n_hat,
        f"{NAME}: Q^z1·t^v ≠ T·(s^N0)^e",
    )
    # Range checks: exact half-range bound, both signs.
    check_range(NAME, range_bound(level, n0), {"z1": p.z1, "z2": p.z2})
