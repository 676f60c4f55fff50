"""Π-elog: discrete log with an ElGamal commitment (CGGMP24, spec note §3.9).

Statement: points L, M, X, Y, H of secp256k1. Witness: scalars y, λ with
L = λ·G, M = y·G + λ·X (an ElGamal encryption of y·G under X) and Y = y·H.

Prover: α, m ← Z_q; A = α·G, N = m·G + α·X, B = m·H; e ∈ Z_q;
z = α + e·λ mod q, u = m + e·y mod q.
Verifier: H ≠ O; A, N, B are points (≠ O); 0 <= z, u < q;
z·G = A + e·L; u·G + z·X = N + e·M; u·H = B + e·Y.

In presigning ψ̃_i proves (B_{i,1}, B_{i,2}, Y_i, Γ_i, G) with witness (γ_i, b_i) and ψ′_i
proves (A_{i,1}, A_{i,2}, Y_i, Δ_i, Γ) with witness (k_i, a_i) (distinct `ctx.instance`s).
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes
from mpcnode.crypto.group import Point
from mpcnode.crypto.zk._common import (
    CURVE,
    ProofContext,
    check_points,
    check_scalars,
    pack,
    require,
    unpack,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "ElogProof", "prove", "verify"]

TAG = "mpc.v1.zk.elog"
"""Transcript tag of Π-elog."""

NAME = "Π-elog"


@dataclass(frozen=True)
class ElogProof:
    """Π-elog prover message: A, N, B (points) and z, u (scalars)."""

    A: Point
    N: Point
    B: Point
    z: int
    u: int

    def encode(self) -> bytes:
        return pack([self.A, self.N, self.B], [self.z, self.u])

    @classmethod
    def decode(cls, data: bytes) -> ElogProof:
        (A, N, B), (z, u) = unpack(data, 3, 2, NAME)
        return cls(A, N, B, z, u)


def _challenge(
    ctx: ProofContext,
    L: Point,
    M: Point,
    X: Point,
    Y: Point,
    H: Point,
    A: Point,
    N: Point,
    B: Point,
) -> int:
    """e ∈ Z_q over (ctx, curve, L, M, X, Y, H, A, N, B)."""
    t = ctx.transcript(TAG)
    t.append("curve", CURVE.name)
    t.append("L", L)
    t.append("M", M)
    t.append("X", X)
    t.append("Y", Y)
    t.append("H", H)
    t.append("A", A)
    t.append("N", N)
    t.append("B", B)
    return t.challenge_scalar("e", CURVE.order)


def prove(
    ctx: ProofContext,
    L: Point,
    M: Point,
    X: Point,
    Y: Point,
    H: Point,
    y: int,
    lam: int,
    rng: RandomBytes | None = None,
) -> ElogProof:
    """Prove knowledge of (y, λ) with L = λ·G, M = y·G + λ·X, Y = y·H (checked: InvalidInput)."""
    check_points(NAME, {"L": L, "M": M, "X": X, "Y": Y}, error=InvalidInput)
    check_points(NAME, {"H": H}, allow_identity=False, error=InvalidInput)
    G = CURVE.generator()
    require(
        G * lam == L and G * y + X * lam == M and H * y == Y,
        f"{NAME}: witness does not satisfy the statement",
        InvalidInput,
    )
    return _prove(ctx, L, M, X, Y, H, y, lam, rng)


def _prove(
    ctx: ProofContext,
    L: Point,
    M: Point,
    X: Point,
    Y: Point,
    H: Point,
    y: int,
    lam: int,
    rng: RandomBytes | None = None,
) -> ElogProof:
    """`prove` without its checks (tests use it to build proofs of false statements)."""
    q = CURVE.order
    alpha = CURVE.random_scalar(rng)
    m = CURVE.random_scalar(rng)
    A = CURVE.base_mul(alpha)
    N = CURVE.base_mul(m) + X * alpha
    B = H * m
    e = _challenge(ctx, L, M, X, Y, H, A, N, B)
    return ElogProof(A, N, B, (alpha + e * lam) % q, (m + e * y) % q)


def verify(
    ctx: ProofContext,
    L: Point,
    M: Point,
    X: Point,
    Y: Point,
    H: Point,
    proof: ElogProof,
) -> None:
    """Raise InvalidProof unless `proof` is valid for (L, M, X, Y, H)."""
    check_points(NAME, {"L": L, "M": M, "X": X, "Y": Y})
    check_points(NAME, {"H": H, "A": proof.A, "N": proof.N, "B": proof.B}, allow_identity=False)
    check_scalars(NAME, {"z": proof.z, "u": proof.u})
    e = _challenge(ctx, L, M, X, Y, H, proof.A, proof.N, proof.B)
    require(CURVE.base_mul(proof.z) == proof.A + L * e, f"{NAME}: z·G ≠ A + e·L")
    require(
        CURVE.base_mul(proof.u) + X * proof.z == proof.N + M * e,
        f"{NAME}: u·G + z·X ≠ N + e·M",
    )
    require(H * proof.u == proof.B + Y * e, f"{NAME}: u·H ≠ B + e·Y")
