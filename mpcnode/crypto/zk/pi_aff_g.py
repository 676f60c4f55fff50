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
Y, B_y ∈ Z*_{N_i²}, E, S, F, T ∈ Z*_N̂, w ∈ Z*_{N_j}, w_y ∈ Z*_{N_i}, B_x ≠ O (Taurus's extras);
then e from the transcript and

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

from mpcnode.crypto.bigint import (
    RandomBytes,
    half,
    in_signed_range,
    is_unit,
    powmod,
    random_signed,
    random_unit,
)
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import SECP256K1, Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.security import SecurityLevel
from mpcnode.crypto.transcript import Transcript
from mpcnode.crypto.zk._common import ProofContext, decode_ints, encode_ints, require
from mpcnode.errors import InvalidInput, InvalidProof

__all__ = ["GROUP", "TAG", "AffGProof", "affine_statement", "prove", "verify"]

TAG = "mpc.v1.zk.aff_g"
"""Transcript tag of Π-aff-g."""

GROUP = SECP256K1
"""The curve of X and B_x; the challenge e is drawn from I(q) for its order q."""

_INT_FIELDS = ("A", "B_y", "E", "S", "F", "T", "z1", "z2", "z3", "z4", "w", "w_y")


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
        """encode_fields([encode_ints(A, B_y, E, S, F, T, z1..z4, w, w_y), B_x])."""
        ints = [getattr(self, name) for name in _INT_FIELDS]
        return encode_fields([encode_ints(ints), self.B_x.encode()])

    @classmethod
    def decode(cls, data: bytes) -> AffGProof:
        """Inverse of `encode`; anything malformed or non-canonical raises InvalidProof."""
        try:
            outer = decode_fields(data, 2)
            b_x = GROUP.decode_point(outer[1])
        except InvalidInput as exc:
            raise InvalidProof(f"malformed Π-aff-g proof: {exc}") from None
        A, B_y, E, S, F, T, z1, z2, z3, z4, w, w_y = decode_ints(outer[0], len(_INT_FIELDS))
        proof = cls(A, b_x, B_y, E, S, F, T, z1, z2, z3, z4, w, w_y)
        require(proof.encode() == data, "non-canonical Π-aff-g proof encoding")
        return proof


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
    X = GROUP.base_mul(x)
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
    tr.append("curve", GROUP.name)
    tr.append("N_j", pk_j.n)
    tr.append("N_i", pk_i.n)
    tr.append("C", C)
    tr.append("D", D)
    tr.append("Y", Y)
    tr.append("X", X)
    tr.append("N_hat", aux.n)
    tr.append("s", aux.s)
    tr.append("t", aux.t)
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
    return tr.challenge_signed("e", GROUP.order)


def _max_z34(level: SecurityLevel, n_hat: int) -> int:
    """The largest |z3| (and |z4|) an honest prover can send: |γ| + |e|·|m|.

    Not a soundness check (the paper has none on z3, z4); it bounds the exponents a
    verifier raises s and t to, so an oversized response costs no time."""
    return half(2 ** (level.ell + level.epsilon) * n_hat) + half(GROUP.order) * half(
        2**level.ell * n_hat
    )


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
    pk_j.validate(level)
    pk_i.validate(level)
    aux.validate(level)
    if sk_i is not None and sk_i.public != pk_i:
        raise InvalidInput("Π-aff-g: sk_i is not the secret key of N_i")
    if not (pk_j.is_ciphertext(C) and pk_j.is_ciphertext(D) and pk_i.is_ciphertext(Y)):
        raise InvalidInput("Π-aff-g: statement ciphertexts must be units mod N²")
    if X.group is not GROUP:
        raise InvalidInput(f"Π-aff-g: X must be a {GROUP.name} point")
    if not in_signed_range(x, 2**level.ell):
        raise InvalidInput("Π-aff-g: witness x is outside I(2^ℓ)")
    if not in_signed_range(y, 2**level.ell_prime):
        raise InvalidInput("Π-aff-g: witness y is outside I(2^ℓ′)")
    if not (is_unit(rho, pk_j.n) and is_unit(rho_y, pk_i.n)):
        raise InvalidInput("Π-aff-g: nonces ρ, ρ_y must be units")
    return _prove(ctx, pk_j, pk_i, C, D, Y, X, x, y, rho, rho_y, aux, rng, sk_i)


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
    sk_i: PaillierSecretKey | None = None,
) -> AffGProof:
    """The prover's computation with no witness checks (tests use it to build proofs from
    out-of-range witnesses and check that the verifier rejects them)."""
    level = ctx.level
    n_hat = aux.n
    bound_alpha = 2 ** (level.ell + level.epsilon)
    while True:
        alpha = random_signed(bound_alpha, rng)
        if alpha % GROUP.order:  # B_x = α·G must be encodable (probability 2^-256 otherwise)
            break
    beta = random_signed(2 ** (level.ell_prime + level.epsilon), rng)
    r = random_unit(pk_j.n, rng)
    r_y = random_unit(pk_i.n, rng)
    gamma = random_signed(bound_alpha * n_hat, rng)
    delta = random_signed(bound_alpha * n_hat, rng)
    m = random_signed(2**level.ell * n_hat, rng)
    mu = random_signed(2**level.ell * n_hat, rng)

    A = pk_j.add(pk_j.mul(alpha, C), pk_j.encrypt_with(beta, r))
    B_x = GROUP.base_mul(alpha)
    B_y = (sk_i if sk_i is not None else pk_i).encrypt_with(beta, r_y)
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
) -> None:
    """Check `proof` for the statement (N_j, N_i, C, D, Y, X) under the verifier's own aux
    (N̂, s, t). Raises InvalidProof on any failure; returns None when the proof holds."""
    level = ctx.level
    # Sizes of every modulus (Alpha-Rays).
    try:
        pk_j.validate(level)
        pk_i.validate(level)
        aux.validate(level)
    except InvalidInput as exc:
        raise InvalidProof(f"Π-aff-g: {exc}") from None

    # Every received element in its group (checks 1-3 and Taurus's extras).
    require(pk_j.is_ciphertext(C), "Π-aff-g: C is not in Z*_{N_j²}")
    require(pk_j.is_ciphertext(D), "Π-aff-g: D is not in Z*_{N_j²}")
    require(pk_i.is_ciphertext(Y), "Π-aff-g: Y is not in Z*_{N_i²}")
    require(X.group is GROUP, f"Π-aff-g: X is not a {GROUP.name} point")
    require(pk_j.is_ciphertext(proof.A), "Π-aff-g: A is not in Z*_{N_j²}")
    require(pk_i.is_ciphertext(proof.B_y), "Π-aff-g: B_y is not in Z*_{N_i²}")
    require(proof.B_x.group is GROUP, f"Π-aff-g: B_x is not a {GROUP.name} point")
    require(not proof.B_x.is_identity, "Π-aff-g: B_x is the identity")
    for name in ("E", "S", "F", "T"):
        require(aux.is_element(getattr(proof, name)), f"Π-aff-g: {name} is not in Z*_N̂")
    require(is_unit(proof.w, pk_j.n), "Π-aff-g: w is not in Z*_{N_j}")
    require(is_unit(proof.w_y, pk_i.n), "Π-aff-g: w_y is not in Z*_{N_i}")
    max_z34 = _max_z34(level, aux.n)
    require(abs(proof.z3) <= max_z34, "Π-aff-g: z3 larger than any honest response")
    require(abs(proof.z4) <= max_z34, "Π-aff-g: z4 larger than any honest response")

    tr = _transcript(ctx, pk_j, pk_i, C, D, Y, X, aux)
    p = proof
    e = _challenge(tr, p.A, p.B_x, p.B_y, p.E, p.S, p.F, p.T)

    # 4. (z1 ⊙ C) ⊕ enc_{N_j}(z2; w) = A ⊕ (e ⊙ D)
    lhs = pk_j.add(pk_j.mul(proof.z1, C), pk_j.encrypt_with(proof.z2, proof.w))
    require(lhs == pk_j.add(proof.A, pk_j.mul(e, D)), "Π-aff-g: Paillier equation on N_j fails")
    # 5. z1·G = B_x + e·X
    require(GROUP.base_mul(proof.z1) == proof.B_x + X * e, "Π-aff-g: group equation fails")
    # 6. enc_{N_i}(z2; w_y) = B_y ⊕ (e ⊙ Y)
    require(
        pk_i.encrypt_with(proof.z2, proof.w_y) == pk_i.add(proof.B_y, pk_i.mul(e, Y)),
        "Π-aff-g: Paillier equation on N_i fails",
    )
    # 7. s^z1·t^z3 = E·S^e mod N̂;  8. s^z2·t^z4 = F·T^e mod N̂
    n_hat = aux.n
    require(
        aux.commit(proof.z1, proof.z3) == proof.E * powmod(proof.S, e, n_hat) % n_hat,
        "Π-aff-g: ring-Pedersen equation for z1 fails",
    )
    require(
        aux.commit(proof.z2, proof.z4) == proof.F * powmod(proof.T, e, n_hat) % n_hat,
        "Π-aff-g: ring-Pedersen equation for z2 fails",
    )
    # 9. Range checks, exact half-range bounds, both signs.
    require(in_signed_range(proof.z1, 2 ** (level.ell + level.epsilon)), "Π-aff-g: z1 out of range")
    require(
        in_signed_range(proof.z2, 2 ** (level.ell_prime + level.epsilon)),
        "Π-aff-g: z2 out of range",
    )
