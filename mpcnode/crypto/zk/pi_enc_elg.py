"""Π-enc-elg: Paillier encryption in range with an ElGamal commitment (CGGMP24, spec note §3.6).

Statement: N₀ (the prover's Paillier key), C ∈ Z*_{N₀²} and points A, B, X of secp256k1.
Witness: x ∈ I(2^ℓ), ρ ∈ Z*_{N₀}, a scalar b with C = enc_{N₀}(x; ρ), B = b·G and
X = (a·b + x)·G where A = a·G (a itself is not needed). Aux: the verifier's R = (N̂, s, t).

Prover: α ← I(2^(ℓ+ε)), μ ← I(2^ℓ·N̂), r ← Z*_{N₀}, β ← Z_q, γ ← I(2^(ℓ+ε)·N̂);
S = s^x·t^μ, T = s^α·t^γ (mod N̂), D = enc_{N₀}(α; r), Y = β·A + α·G, Z = β·G;
e ∈ I(q); z₁ = α + e·x, z₂ = r·ρ^e mod N₀, z₃ = γ + e·μ, w = β + e·b mod q.

Verifier (cggmp24 order, plus Taurus' w ≠ 0, Y ≠ O, Z ≠ O, z₂ ∈ Z*_{N₀}):
1. C, D ∈ Z*_{N₀²}; S, T ∈ Z*_N̂;  2. enc_{N₀}(z₁; z₂) = D ⊕ (e ⊙ C);  3. w·A + z₁·G = Y + e·X;
4. w·G = Z + e·B;  5. s^z₁·t^z₃ ≡ T·S^e (mod N̂);  6. |z₁| ≤ 2^(ℓ+ε−1).

In presigning ψ⁰ proves K_i with (A, B, X) = (Y_i, A_{i,1}, A_{i,2}), x = k_i, b = a_i, and ψ¹
proves G_i with (Y_i, B_{i,1}, B_{i,2}), x = γ_i, b = b_i (distinct `ctx.instance`s).
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import (
    RandomBytes,
    in_signed_range,
    is_unit,
    powmod,
    random_signed,
    random_unit,
)
from mpcnode.crypto.group import Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk._common import ProofContext, require
from mpcnode.crypto.zk.pi_enc import (
    CURVE,
    _absorb_aux,
    _check_moduli,
    _check_point,
    _check_prover_moduli,
    _check_secret_key,
    _encrypt,
    _pack,
    _paillier_holds,
    _pedersen_holds,
    _response_cap,
    _unpack,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "EncElgProof", "prove", "verify"]

TAG = "mpc.v1.zk.enc_elg"


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
        return _pack([self.Y, self.Z], [self.S, self.T, self.D, self.z1, self.z2, self.z3, self.w])

    @classmethod
    def decode(cls, data: bytes) -> EncElgProof:
        (Y, Z), (S, T, D, z1, z2, z3, w) = _unpack(data, 2, 7, "Π-enc-elg")
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
    _absorb_aux(t, aux)
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
    level = ctx.level
    _check_prover_moduli(pk, aux, level)
    _check_secret_key(pk, sk)
    for label, point in (("A", A), ("B", B), ("X", X)):
        if point.group is not CURVE:
            raise InvalidInput(f"Π-enc-elg: {label} is not a {CURVE.name} point")
    if not in_signed_range(x, 1 << level.ell):
        raise InvalidInput("Π-enc-elg: witness x outside I(2^ℓ)")
    if not is_unit(rho, pk.n) or not pk.is_ciphertext(C):
        raise InvalidInput("Π-enc-elg: ρ or C is not a unit of its modulus")
    if CURVE.base_mul(b) != B:
        raise InvalidInput("Π-enc-elg: witness b does not match B")
    return _prove(ctx, pk, C, A, B, X, x, rho, b, aux, rng, sk)


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
    rng: RandomBytes | None,
    sk: PaillierSecretKey | None,
) -> EncElgProof:
    """The prover without witness checks (tests use it to build proofs of false statements)."""
    level = ctx.level
    n0, n_hat, q = pk.n, aux.n, CURVE.order
    alpha = random_signed(1 << (level.ell + level.epsilon), rng)
    mu = random_signed((1 << level.ell) * n_hat, rng)
    r = random_unit(n0, rng)
    beta = CURVE.random_scalar(rng)
    gamma = random_signed((1 << (level.ell + level.epsilon)) * n_hat, rng)
    S = aux.commit(x, mu)
    T = aux.commit(alpha, gamma)
    D = _encrypt(pk, sk, alpha, r)
    Y = A * beta + CURVE.base_mul(alpha)
    Z = CURVE.base_mul(beta)
    e = _challenge(ctx, pk, C, A, B, X, aux, S, T, D, Y, Z)
    z1 = alpha + e * x
    z2 = r * powmod(rho, e, n0) % n0
    z3 = gamma + e * mu
    w = (beta + e * b) % q
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
    name = "Π-enc-elg"
    level = ctx.level
    _check_moduli(name, pk, aux, level)
    _check_point(name, "A", A)
    _check_point(name, "B", B)
    _check_point(name, "X", X)
    _check_point(name, "Y", proof.Y, allow_identity=False)
    _check_point(name, "Z", proof.Z, allow_identity=False)
    require(pk.is_ciphertext(C), f"{name}: C ∉ Z*_{{N0²}}")
    require(pk.is_ciphertext(proof.D), f"{name}: D ∉ Z*_{{N0²}}")
    require(aux.is_element(proof.S), f"{name}: S ∉ Z*_N̂")
    require(aux.is_element(proof.T), f"{name}: T ∉ Z*_N̂")
    require(is_unit(proof.z2, pk.n), f"{name}: z2 ∉ Z*_N0")
    require(0 < proof.w < CURVE.order, f"{name}: w not in [1, q)")
    cap = _response_cap(aux, level)
    require(abs(proof.z1) <= cap and abs(proof.z3) <= cap, f"{name}: response too large")
    e = _challenge(ctx, pk, C, A, B, X, aux, proof.S, proof.T, proof.D, proof.Y, proof.Z)
    require(
        _paillier_holds(pk, proof.z1, proof.z2, proof.D, C, e),
        f"{name}: enc(z1; z2) ≠ D ⊕ (e ⊙ C)",
    )
    require(
        A * proof.w + CURVE.base_mul(proof.z1) == proof.Y + X * e,
        f"{name}: w·A + z1·G ≠ Y + e·X",
    )
    require(CURVE.base_mul(proof.w) == proof.Z + B * e, f"{name}: w·G ≠ Z + e·B")
    require(
        _pedersen_holds(aux, proof.z1, proof.z3, proof.T, proof.S, e),
        f"{name}: s^z1·t^z3 ≠ T·S^e",
    )
    require(
        in_signed_range(proof.z1, 1 << (level.ell + level.epsilon)),
        f"{name}: |z1| > 2^(ℓ+ε−1)",
    )
