"""Π-enc-elg: Paillier encryption in range with an ElGamal commitment (CGGMP24, spec note §3.6).

Statement: N₀ (the prover's Paillier key), C ∈ Z*_{N₀²} and points A, B, X of secp256k1.
Witness: x ∈ I(2^ℓ), ρ ∈ Z*_{N₀}, a scalar b with C = enc_{N₀}(x; ρ), B = b·G and
X = (a·b + x)·G where A = a·G (a itself is not needed). Aux: the verifier's R = (N̂, s, t).

Prover: α ← I(2^(ℓ+ε)), μ ← I(2^ℓ·N̂), r ← Z*_{N₀}, β ← Z_q, γ ← I(2^(ℓ+ε)·N̂);
S = s^x·t^μ, T = s^α·t^γ (mod N̂), D = enc_{N₀}(α; r), Y = β·A + α·G, Z = β·G;
e ∈ I(q); z₁ = α + e·x, z₂ = r·ρ^e mod N₀, z₃ = γ + e·μ, w = β + e·b mod q.

Verifier (cggmp24's checks, plus Taurus' w ≠ 0, Y ≠ O, Z ≠ O, z₂ ∈ Z*_{N₀}):
1. C, D ∈ Z*_{N₀²}; S, T ∈ Z*_N̂;  2. enc_{N₀}(z₁; z₂) = D ⊕ (e ⊙ C);  3. w·A + z₁·G = Y + e·X;
4. w·G = Z + e·B;  5. s^z₁·t^z₃ ≡ T·S^e (mod N̂);  6. |z₁| ≤ 2^(ℓ+ε−1).
(S, D, T, z₁, z₂, z₃) are Π-enc's (S, A, C, z₁, z₂, z₃) for x: `_common.EncCommit` makes them,
`_common.EncCheck` runs 1, 2, 5 and 6, the group equations 3 and 4 run before 2.

In presigning ψ⁰ proves K_i with (A, B, X) = (Y_i, A_{i,1}, A_{i,2}), x = k_i, b = a_i, and ψ¹
proves G_i with (Y_i, B_{i,1}, B_{i,2}), x = γ_i, b = b_i (distinct `ctx.instance`s).
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
    check_scalars,
    pack,
    require,
    unpack,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "EncElgProof", "prove", "verify"]

TAG = "mpc.v1.zk.enc_elg"
"""Transcript tag of Π-enc-elg."""

NAME = "Π-enc-elg"


@dataclass(frozen=True)
class EncElgProof:
    """Π-enc-elg prover message: S, T, D (integers), Y, Z (points), z₁, z₂, z₃, w."""

    S: int
    T: int
    D: int
    Y: Point
    Z: Point
    z1: int
    z2: int
    z3: int
    w: int

    def encode(self) -> bytes:
        return pack([self.Y, self.Z], [self.S, self.T, self.D, self.z1, self.z2, self.z3, self.w])

    @classmethod
    def decode(cls, data: bytes) -> EncElgProof:
        (Y, Z), (S, T, D, z1, z2, z3, w) = unpack(data, 2, 7, NAME)
        return cls(S, T, D, Y, Z, z1, z2, z3, w)


def _challenge(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    A: Point,
    B: Point,
    X: Point,
    aux: RingPedersenParams,
    S: int,
    T: int,
    D: int,
    Y: Point,
    Z: Point,
) -> int:
    """e ∈ I(q) over (ctx, N̂, s, t, curve, N₀, C, A, B, X, S, T, D, Y, Z)."""
    t = ctx.transcript(TAG)
    absorb_aux(t, aux)
    t.append("curve", CURVE.name)
    t.append("N0", pk.n)
    t.append("C", C)
    t.append("A", A)
    t.append("B", B)
    t.append("X", X)
    t.append("S", S)
    t.append("T", T)
    t.append("D", D)
    t.append("Y", Y)
    t.append("Z", Z)
    return t.challenge_signed("e", CURVE.order)


def prove(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    A: Point,
    B: Point,
    X: Point,
    x: int,
    rho: int,
    b: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    sk: PaillierSecretKey | None = None,
) -> EncElgProof:
    """Prove C = enc_{N₀}(x; ρ), x ∈ I(2^ℓ), B = b·G, X = (a·b + x)·G. `sk` speeds up D.

    Checks the ranges, parameter sizes and B = b·G (InvalidInput); C and X are not
    recomputed (a mismatch yields a rejected proof).
    """
    check_enc_witness(NAME, ctx.level, pk, aux, sk, ("C", C), ("x", x), rho)
    check_points(NAME, {"A": A, "B": B, "X": X}, error=InvalidInput)
    require(CURVE.base_mul(b) == B, f"{NAME}: witness b does not match B", InvalidInput)
    return _prove(ctx, pk, C, A, B, X, x, rho, b, aux, rng, sk=sk)


def _prove(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    A: Point,
    B: Point,
    X: Point,
    x: int,
    rho: int,
    b: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    sk: PaillierSecretKey | None = None,
) -> EncElgProof:
    """`prove` without its checks (tests use it to build proofs of false statements)."""
    first = EncCommit.make(ctx.level, pk, sk, aux, x, rng)  # S, D = A, T = C of Π-enc
    S, D, T = first.S, first.A, first.C
    beta = CURVE.random_scalar(rng)
    Y = A * beta + CURVE.base_mul(first.alpha)
    Z = CURVE.base_mul(beta)
    e = _challenge(ctx, pk, C, A, B, X, aux, S, T, D, Y, Z)
    z1, z2, z3 = first.respond(pk, x, rho, e)
    w = (beta + e * b) % CURVE.order
    return EncElgProof(S, T, D, Y, Z, z1, z2, z3, w)


def verify(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    A: Point,
    B: Point,
    X: Point,
    aux: RingPedersenParams,
    proof: EncElgProof,
) -> None:
    """Raise InvalidProof unless `proof` is valid for (N₀, C, A, B, X) under aux."""
    part = EncCheck(NAME, ctx.level, pk, aux, ("C", C), ("D", proof.D), ("T", proof.T), proof)
    part.elements()
    check_points(NAME, {"A": A, "B": B, "X": X})
    check_points(NAME, {"Y": proof.Y, "Z": proof.Z}, allow_identity=False)
    check_scalars(NAME, {"w": proof.w}, nonzero=True)
    e = _challenge(ctx, pk, C, A, B, X, aux, proof.S, proof.T, proof.D, proof.Y, proof.Z)
    require(
        A * proof.w + CURVE.base_mul(proof.z1) == proof.Y + X * e,
        f"{NAME}: w·A + z1·G ≠ Y + e·X",
    )
    require(CURVE.base_mul(proof.w) == proof.Z + B * e, f"{NAME}: w·G ≠ Z + e·B")
    part.equations(e)
