"""Π-aff-g: Paillier affine operation with group commitment in range (CGGMP24, secp256k1).

Statement: the verifier's Paillier key N_j, the prover's Paillier key N_i, ciphertexts
C, D ∈ Z*_{N_j²} and Y ∈ Z*_{N_i²}, and a point X. Witness: x ∈ I(2^ℓ), y ∈ I(2^ℓ′),
ρ ∈ Z*_{N_j}, ρ_y ∈ Z*_{N_i} with

    D = (x ⊙ C) ⊕ enc_{N_j}(y; ρ),   Y = enc_{N_i}(y; ρ_y),   X = x·G.

Aux: the verifier's ring-Pedersen parameters (N̂, s, t). Presigning uses it for the MtA
ciphertexts D_{j,i}, F_{j,i} (and the hatted pair) of CGGMP24 §6.4: the recipient checks the
proof before it decrypts D, so the decrypted α_{i,j} cannot wrap mod N_j (Alpha-Rays).

Prover (half ranges I(R) = [-floor(R/2), floor(R/2)], as the cggmp24 code samples them; the
draft spec's "(2^(ℓ+ε)·N̂)²" squares are not followed, see cggmp-spec.md §3.7 "Disagreement"):

    α ← I(2^(ℓ+ε)), β ← I(2^(ℓ′+ε)), r ← Z*_{N_j}, r_y ← Z*_{N_i},
    γ, δ ← I(2^(ℓ+ε)·N̂), m, μ ← I(2^ℓ·N̂)
    A = (α ⊙ C) ⊕ enc_{N_j}(β; r),  B_x = α·G,  B_y = enc_{N_i}(β; r_y),
    E = s^α·t^γ,  S = s^x·t^m,  F = s^β·t^δ,  T = s^y·t^μ   (mod N̂)
    e ← I(q) from the transcript
    z1 = α + e·x,  z2 = β + e·y,  z3 = γ + e·m,  z4 = δ + e·μ   (integers)
    w = r·ρ^e mod N_j,  w_y = r_y·ρ_y^e mod N_i

Verifier: both Paillier keys and the aux are of the level's size; C, D, A ∈ Z*_{N_j²},
Y, B_y ∈ Z*_{N_i²}, E, S, F, T ∈ Z*_N̂, w ∈ Z*_{N_j}, w_y ∈ Z*_{N_i}, B_x ≠ O (Taurus's extras),
|z1|..|z4| at most `response_cap` (above any honest response: a guard on the exponents, as in
Π-enc); then e from the transcript and

    (z1 ⊙ C) ⊕ enc_{N_j}(z2; w) = A ⊕ (e ⊙ D)
    z1·G = B_x + e·X
    enc_{N_i}(z2; w_y) = B_y ⊕ (e ⊙ Y)
    s^z1·t^z3 = E·S^e,  s^z2·t^z4 = F·T^e   (mod N̂)
    |z1| <= 2^(ℓ+ε-1),  |z2| <= 2^(ℓ′+ε-1).

Sources: ePrint 2021/060 (CGGMP24) Π-aff-g; LFDT-Lockness paillier-zk
`paillier_affine_operation_in_range.rs`; taurushq multi-party-sig `pkg/zk/affg`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes, powmod, random_signed, random_unit
from mpcnode.crypto.group import Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.transcript import Transcript
from mpcnode.crypto.zk._common import (
    CURVE,
    ProofContext,
    absorb_aux,
    affine_holds,
    check_moduli,
    check_points,
    check_range,
    check_response_sizes,
    check_secret_key,
    check_units,
    encrypt,
    pack,
    paillier_holds,
    pedersen_holds,
    require,
    response_cap,
    unpack,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "AffGProof", "affine_statement", "prove", "verify"]

TAG = "mpc.v1.zk.aff_g"
"""Transcript tag of Π-aff-g."""

NAME = "Π-aff-g"


@dataclass(frozen=True)
class AffGProof:
    """The prover's message: first message (A, B_x, B_y, E, S, F, T) and responses
    (z1, z2, z3, z4, w, w_y), named as in the paper. The statement is not included."""

    A: int
    B_x: Point
    B_y: int
    E: int
    S: int
    F: int
    T: int
    z1: int
    z2: int
    z3: int
    z4: int
    w: int
    w_y: int

    def encode(self) -> bytes:
        """pack([B_x], [A, B_y, E, S, F, T, z1, z2, z3, z4, w, w_y])."""
        p = self
        ints = [p.A, p.B_y, p.E, p.S, p.F, p.T, p.z1, p.z2, p.z3, p.z4, p.w, p.w_y]
        return pack([p.B_x], ints)

    @classmethod
    def decode(cls, data: bytes) -> AffGProof:
        """Inverse of `encode`; anything malformed or non-canonical raises InvalidProof."""
        (B_x,), (A, B_y, E, S, F, T, z1, z2, z3, z4, w, w_y) = unpack(data, 1, 12, NAME)
        return cls(A, B_x, B_y, E, S, F, T, z1, z2, z3, z4, w, w_y)


def affine_statement(
    pk_j: PaillierPublicKey,
    pk_i: PaillierPublicKey,
    C: int,
    x: int,
    y: int,
    rho: int,
    rho_y: int,
) -> tuple[int, int, Point]:
    """The honest statement (D, Y, X) for witness (x, y, ρ, ρ_y) on ciphertext C:
    D = (x ⊙ C) ⊕ enc_{N_j}(y; ρ), Y = enc_{N_i}(y; ρ_y), X = x·G."""
    D = pk_j.add(pk_j.mul(x, C), pk_j.encrypt_with(y, rho))
    Y = pk_i.encrypt_with(y, rho_y)
    X = CURVE.base_mul(x)
    return D, Y, X


def _transcript(
    ctx: ProofContext,
    pk_j: PaillierPublicKey,
    pk_i: PaillierPublicKey,
    C: int,
    D: int,
    Y: int,
    X: Point,
    aux: RingPedersenParams,
) -> Transcript:
    """The transcript with every statement value and the verifier's aux absorbed."""
    tr = ctx.transcript(TAG)
    tr.append("curve", CURVE.name)
    tr.append("N_j", pk_j.n)
    tr.append("N_i", pk_i.n)
    tr.append("C", C)
    tr.append("D", D)
    tr.append("Y", Y)
    tr.append("X", X)
    absorb_aux(tr, aux)
    return tr


def _challenge(tr: Transcript, A: int, B_x: Point, B_y: int, E: int, S: int, F: int, T: int) -> int:
    """Absorb the first message (A, B_x, B_y, E, S, F, T) and draw e ∈ I(q)."""
    tr.append("A", A)
    tr.append("B_x", B_x)
    tr.append("B_y", B_y)
    tr.append("E", E)
    tr.append("S", S)
    tr.append("F", F)
    tr.append("T", T)
    return tr.challenge_signed("e", CURVE.order)


def prove(
    ctx: ProofContext,
    pk_j: PaillierPublicKey,
    pk_i: PaillierPublicKey,
    C: int,
    D: int,
    Y: int,
    X: Point,
    x: int,
    y: int,
    rho: int,
    rho_y: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    sk_i: PaillierSecretKey | None = None,
) -> AffGProof:
    """Prove knowledge of (x, y, ρ, ρ_y) for the statement (N_j, N_i, C, D, Y, X) under the
    verifier's aux (N̂, s, t). `sk_i`, the prover's own Paillier key, computes B_y by CRT.

    Raises InvalidInput on misuse: a key or aux below the level's size, a statement element
    outside its group, a witness outside I(2^ℓ) / I(2^ℓ′) or a nonce that is not a unit. The
    statement is not recomputed from the witness (a false one yields a rejected proof)."""
    level = ctx.level
    check_moduli(NAME, level, pk_j, pk_i, aux, error=InvalidInput)
    check_secret_key(NAME, pk_i, sk_i)
    check_units(NAME, "Z*_{N_j²}", pk_j.n_squared, {"C": C, "D": D}, InvalidInput)
    check_units(NAME, "Z*_{N_i²}", pk_i.n_squared, {"Y": Y}, InvalidInput)
    check_points(NAME, {"X": X}, error=InvalidInput)
    check_range(NAME, 2**level.ell, {"witness x": x}, InvalidInput)
    check_range(NAME, 2**level.ell_prime, {"witness y": y}, InvalidInput)
    check_units(NAME, "Z*_{N_j}", pk_j.n, {"ρ": rho}, InvalidInput)
    check_units(NAME, "Z*_{N_i}", pk_i.n, {"ρ_y": rho_y}, InvalidInput)
    return _prove(ctx, pk_j, pk_i, C, D, Y, X, x, y, rho, rho_y, aux, rng, sk_i=sk_i)


def _prove(
    ctx: ProofContext,
    pk_j: PaillierPublicKey,
    pk_i: PaillierPublicKey,
    C: int,
    D: int,
    Y: int,
    X: Point,
    x: int,
    y: int,
    rho: int,
    rho_y: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    sk_i: PaillierSecretKey | None = None,
) -> AffGProof:
    """`prove` without its checks (tests use it to build proofs from out-of-range witnesses
    and check that the verifier rejects them)."""
    level = ctx.level
    n_hat = aux.n
    bound_alpha = 2 ** (level.ell + level.epsilon)
    while True:
        alpha = random_signed(bound_alpha, rng)
        if alpha % CURVE.order:  # B_x = α·G must be encodable (probability 2^-256 otherwise)
            break
    beta = random_signed(2 ** (level.ell_prime + level.epsilon), rng)
    r = random_unit(pk_j.n, rng)
    r_y = random_unit(pk_i.n, rng)
    gamma = random_signed(bound_alpha * n_hat, rng)
    delta = random_signed(bound_alpha * n_hat, rng)
    m = random_signed(2**level.ell * n_hat, rng)
    mu = random_signed(2**level.ell * n_hat, rng)

    A = pk_j.add(pk_j.mul(alpha, C), pk_j.encrypt_with(beta, r))
    B_x = CURVE.base_mul(alpha)
    B_y = encrypt(pk_i, sk_i, beta, r_y)
    E = aux.commit(alpha, gamma)
    S = aux.commit(x, m)
    F = aux.commit(beta, delta)
    T = aux.commit(y, mu)
    e = _challenge(_transcript(ctx, pk_j, pk_i, C, D, Y, X, aux), A, B_x, B_y, E, S, F, T)
    return AffGProof(
        A=A,
        B_x=B_x,
        B_y=B_y,
        E=E,
        S=S,
        F=F,
        T=T,
        z1=alpha + e * x,
        z2=beta + e * y,
        z3=gamma + e * m,
        z4=delta + e * mu,
        w=r * powmod(rho, e, pk_j.n) % pk_j.n,
        w_y=r_y * powmod(rho_y, e, pk_i.n) % pk_i.n,
    )


def verify(
    ctx: ProofContext,
    pk_j: PaillierPublicKey,
    pk_i: PaillierPublicKey,
    C: int,
    D: int,
    Y: int,
    X: Point,
    aux: RingPedersenParams,
    proof: AffGProof,
    *,
    sk_j: PaillierSecretKey | None = None,
) -> None:
    """Check `proof` for the statement (N_j, N_i, C, D, Y, X) under the verifier's own aux
    (N̂, s, t). Raises InvalidProof on any failure; returns None when the proof holds.
    `sk_j`, the verifier's own Paillier key, checks the N_j equation by the CRT (faster)."""
    level = ctx.level
    p = proof
    # Sizes of every modulus (Alpha-Rays).
    check_moduli(NAME, level, pk_j, pk_i, aux)
    check_secret_key(NAME, pk_j, sk_j)
    # Every received element in its group (checks 1-3 and Taurus's extras).
    check_units(NAME, "Z*_{N_j²}", pk_j.n_squared, {"C": C, "D": D, "A": p.A})
    check_units(NAME, "Z*_{N_i²}", pk_i.n_squared, {"Y": Y, "B_y": p.B_y})
    check_points(NAME, {"X": X})
    check_points(NAME, {"B_x": p.B_x}, allow_identity=False)
    check_units(NAME, "Z*_N̂", aux.n, {"E": p.E, "S": p.S, "F": p.F, "T": p.T})
    check_units(NAME, "Z*_{N_j}", pk_j.n, {"w": p.w})
    check_units(NAME, "Z*_{N_i}", pk_i.n, {"w_y": p.w_y})
    check_response_sizes(
        NAME, response_cap(aux, level), {"z1": p.z1, "z2": p.z2, "z3": p.z3, "z4": p.z4}
    )

    tr = _transcript(ctx, pk_j, pk_i, C, D, Y, X, aux)
    e = _challenge(tr, p.A, p.B_x, p.B_y, p.E, p.S, p.F, p.T)

    # 4. (z1 ⊙ C) ⊕ enc_{N_j}(z2; w) = A ⊕ (e ⊙ D)
    require(
        affine_holds(pk_j, sk_j, C, D, p.A, p.z1, p.z2, p.w, e),
        f"{NAME}: Paillier equation on N_j fails",
    )
    # 5. z1·G = B_x + e·X
    require(CURVE.base_mul(p.z1) == p.B_x + X * e, f"{NAME}: group equation fails")
    # 6. enc_{N_i}(z2; w_y) = B_y ⊕ (e ⊙ Y)
    require(
        paillier_holds(pk_i, p.z2, p.w_y, p.B_y, Y, e), f"{NAME}: Paillier equation on N_i fails"
    )
    # 7. s^z1·t^z3 = E·S^e mod N̂;  8. s^z2·t^z4 = F·T^e mod N̂
    require(
        pedersen_holds(aux, p.z1, p.z3, p.E, p.S, e),
        f"{NAME}: ring-Pedersen equation for z1 fails",
    )
    require(
        pedersen_holds(aux, p.z2, p.z4, p.F, p.T, e),
        f"{NAME}: ring-Pedersen equation for z2 fails",
    )
    # 9. Range checks, exact half-range bounds, both signs.
    check_range(NAME, 2 ** (level.ell + level.epsilon), {"z1": p.z1})
    check_range(NAME, 2 ** (level.ell_prime + level.epsilon), {"z2": p.z2})
