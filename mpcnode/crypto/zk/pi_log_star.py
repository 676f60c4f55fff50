"""Π-log*: a group element and a Paillier ciphertext share a plaintext in range
(CGGMP21 Fig. 25, spec note §3.8), with CGGMP24 half ranges and e ∈ I(q).

Statement: N₀, C = enc_{N₀}(x; ρ), a base point B and X = x·B. Witness: x ∈ I(2^ℓ), ρ.
Aux: the verifier's R = (N̂, s, t).

Prover: α ← I(2^(ℓ+ε)), μ ← I(2^ℓ·N̂), r ← Z*_{N₀}, γ ← I(2^(ℓ+ε)·N̂);
S = s^x·t^μ, A = enc_{N₀}(α; r), Y = α·B, D = s^α·t^γ;
z₁ = α + e·x, z₂ = r·ρ^e mod N₀, z₃ = γ + e·μ.
Verifier: C, A ∈ Z*_{N₀²}; S, D ∈ Z*_N̂; z₂ ∈ Z*_{N₀}; B, X, Y ≠ O;
enc_{N₀}(z₁; z₂) = A ⊕ (e ⊙ C); z₁·B = Y + e·X; s^z₁·t^z₃ ≡ D·S^e (mod N̂); |z₁| ≤ 2^(ℓ+ε−1).
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

__all__ = ["TAG", "LogStarProof", "prove", "verify"]

TAG = "mpc.v1.zk.log_star"


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
        return _pack([self.Y], [self.S, self.A, self.D, self.z1, self.z2, self.z3])

    @classmethod
    def decode(cls, data: bytes) -> LogStarProof:
        (Y,), (S, A, D, z1, z2, z3) = _unpack(data, 1, 6, "Π-log*")
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
    _absorb_aux(t, aux)
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
    level = ctx.level
    _check_prover_moduli(pk, aux, level)
    _check_secret_key(pk, sk)
    if X.group is not CURVE or B.group is not CURVE or B.is_identity:
        raise InvalidInput(f"Π-log*: X and B must be {CURVE.name} points, B not the identity")
    if not in_signed_range(x, 1 << level.ell):
        raise InvalidInput("Π-log*: witness x outside I(2^ℓ)")
    if not is_unit(rho, pk.n) or not pk.is_ciphertext(C):
        raise InvalidInput("Π-log*: ρ or C is not a unit of its modulus")
    if B * x != X:
        raise InvalidInput("Π-log*: witness x does not match X = x·B")
    return _prove(ctx, pk, C, X, B, x, rho, aux, rng, sk)


def _prove(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    C: int,
    X: Point,
    B: Point,
    x: int,
    rho: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None,
    sk: PaillierSecretKey | None,
) -> LogStarProof:
    """The prover without witness checks (tests use it to build proofs of false statements)."""
    level = ctx.level
    n0, n_hat = pk.n, aux.n
    alpha = random_signed(1 << (level.ell + level.epsilon), rng)
    mu = random_signed((1 << level.ell) * n_hat, rng)
    r = random_unit(n0, rng)
    gamma = random_signed((1 << (level.ell + level.epsilon)) * n_hat, rng)
    S = aux.commit(x, mu)
    A = _encrypt(pk, sk, alpha, r)
    Y = B * alpha
    D = aux.commit(alpha, gamma)
    e = _challenge(ctx, pk, C, X, B, aux, S, A, Y, D)
    z1 = alpha + e * x
    z2 = r * powmod(rho, e, n0) % n0
    z3 = gamma + e * mu
    return LogStarProof(S, A, Y, D, z1, z2, z3)


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
    name = "Π-log*"
    level = ctx.level
    _check_moduli(name, pk, aux, level)
    _check_point(name, "X", X, allow_identity=False)
    _check_point(name, "B", B, allow_identity=False)
    _check_point(name, "Y", proof.Y, allow_identity=False)
    require(pk.is_ciphertext(C), f"{name}: C ∉ Z*_{{N0²}}")
    require(pk.is_ciphertext(proof.A), f"{name}: A ∉ Z*_{{N0²}}")
    require(aux.is_element(proof.S), f"{name}: S ∉ Z*_N̂")
    require(aux.is_element(proof.D), f"{name}: D ∉ Z*_N̂")
    require(is_unit(proof.z2, pk.n), f"{name}: z2 ∉ Z*_N0")
    cap = _response_cap(aux, level)
    require(abs(proof.z1) <= cap and abs(proof.z3) <= cap, f"{name}: response too large")
    e = _challenge(ctx, pk, C, X, B, aux, proof.S, proof.A, proof.Y, proof.D)
    require(
        _paillier_holds(pk, proof.z1, proof.z2, proof.A, C, e),
        f"{name}: enc(z1; z2) ≠ A ⊕ (e ⊙ C)",
    )
    require(B * proof.z1 == proof.Y + X * e, f"{name}: z1·B ≠ Y + e·X")
    require(
        _pedersen_holds(aux, proof.z1, proof.z3, proof.D, proof.S, e),
        f"{name}: s^z1·t^z3 ≠ D·S^e",
    )
    require(
        in_signed_range(proof.z1, 1 << (level.ell + level.epsilon)),
        f"{name}: |z1| > 2^(ℓ+ε−1)",
    )
