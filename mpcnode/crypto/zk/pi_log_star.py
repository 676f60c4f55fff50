"""Π-log*: a group element and a Paillier ciphertext share a plaintext in range
(CGGMP21 Fig. 25, spec note §3.8), with CGGMP24 half ranges and e ∈ I(q).

Statement: N₀, C = enc_{N₀}(x; ρ), a base point B and X = x·B. Witness: x ∈ I(2^ℓ), ρ.
Aux: the verifier's R = (N̂, s, t).

Prover: α ← I(2^(ℓ+ε)), μ ← I(2^ℓ·N̂), r ← Z*_{N₀}, γ ← I(2^(ℓ+ε)·N̂);
S = s^x·t^μ, A = enc_{N₀}(α; r), Y = α·B, D = s^α·t^γ;
z₁ = α + e·x, z₂ = r·ρ^e mod N₀, z₃ = γ + e·μ.
Verifier: C, A ∈ Z*_{N₀²}; S, D ∈ Z*_N̂; z₂ ∈ Z*_{N₀}; B, X, Y ≠ O;
enc_{N₀}(z₁; z₂) = A ⊕ (e ⊙ C); z₁·B = Y + e·X; s^z₁·t^z₃ ≡ D·S^e (mod N̂); |z₁| ≤ 2^(ℓ+ε−1).
(S, A, D, z₁, z₂, z₃) are Π-enc's (S, A, C, z₁, z₂, z₃) for x: `_common.EncCommit` makes them,
`_common.EncCheck` checks them (after the group equation z₁·B = Y + e·X).
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes
from mpcnode.crypto.group import Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk._common import (
    CURVE,
    EncCheck,
    EncCommit,
    ProofContext,
    absorb_aux,
    check_enc_witness,
    check_points,
    pack,
    require,
    unpack,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "LogStarProof", "prove", "verify"]

TAG = "mpc.v1.zk.log_star"
"""Transcript tag of Π-log*."""

NAME = "Π-log*"


@dataclass(frozen=True)
class LogStarProof:
    """Π-log* prover message: S, A, D (integers), Y (point), z₁, z₂, z₃."""

    S: int
    A: int
    Y: Point
    D: int
    z1: int
    z2: int
    z3: int

    def encode(self) -> bytes:
        return pack([self.Y], [self.S, self.A, self.D, self.z1, self.z2, self.z3])

    @classmethod
    def decode(cls, data: bytes) -> LogStarProof:
        (Y,), (S, A, D, z1, z2, z3) = unpack(data, 1, 6, NAME)
        return cls(S, A, Y, D, z1, z2, z3)


def _challenge(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    X: Point,
    B: Point,
    aux: RingPedersenParams,
    S: int,
    A: int,
    Y: Point,
    D: int,
) -> int:
    """e ∈ I(q) over (ctx, N̂, s, t, curve, N₀, C, X, B, S, A, Y, D)."""
    t = ctx.transcript(TAG)
    absorb_aux(t, aux)
    t.append("curve", CURVE.name)
    t.append("N0", pk.n)
    t.append("C", C)
    t.append("X", X)
    t.append("B", B)
    t.append("S", S)
    t.append("A", A)
    t.append("Y", Y)
    t.append("D", D)
    return t.challenge_signed("e", CURVE.order)


def prove(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    X: Point,
    B: Point,
    x: int,
    rho: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    sk: PaillierSecretKey | None = None,
) -> LogStarProof:
    """Prove C = enc_{N₀}(x; ρ) and X = x·B with x ∈ I(2^ℓ). `sk` speeds up A.

    Checks the ranges, parameter sizes and X = x·B (InvalidInput); C is not re-encrypted.
    """
    check_enc_witness(NAME, ctx.level, pk, aux, sk, ("C", C), ("x", x), rho)
    check_points(NAME, {"X": X}, error=InvalidInput)
    check_points(NAME, {"B": B}, allow_identity=False, error=InvalidInput)
    require(B * x == X, f"{NAME}: witness x does not match X = x·B", InvalidInput)
    return _prove(ctx, pk, C, X, B, x, rho, aux, rng, sk=sk)


def _prove(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    X: Point,
    B: Point,
    x: int,
    rho: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    sk: PaillierSecretKey | None = None,
) -> LogStarProof:
    """`prove` without its checks (tests use it to build proofs of false statements)."""
    first = EncCommit.make(ctx.level, pk, sk, aux, x, rng)  # S, A, D = C of Π-enc
    S, A, D = first.S, first.A, first.C
    Y = B * first.alpha
    e = _challenge(ctx, pk, C, X, B, aux, S, A, Y, D)
    return LogStarProof(S, A, Y, D, *first.respond(pk, x, rho, e))


def verify(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    X: Point,
    B: Point,
    aux: RingPedersenParams,
    proof: LogStarProof,
) -> None:
    """Raise InvalidProof unless `proof` is valid for (N₀, C, X, B) under aux."""
    part = EncCheck(NAME, ctx.level, pk, aux, ("C", C), ("A", proof.A), ("D", proof.D), proof)
    part.elements()
    check_points(NAME, {"X": X, "B": B, "Y": proof.Y}, allow_identity=False)
    e = _challenge(ctx, pk, C, X, B, aux, proof.S, proof.A, proof.Y, proof.D)
    require(B * proof.z1 == proof.Y + X * e, f"{NAME}: z1·B ≠ Y + e·X")
    part.equations(e)
