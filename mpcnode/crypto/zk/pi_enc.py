"""Π-enc: the plaintext of a Paillier ciphertext lies in range (CGGMP21 Fig. 14, spec note §3.5).

Statement: a Paillier key N₀ and K = enc_{N₀}(k; ρ). Witness: k ∈ I(2^ℓ), ρ ∈ Z*_{N₀}.
Aux: the verifier's ring-Pedersen parameters R = (N̂, s, t). CGGMP24 conventions: half ranges
I(R) = [−⌊R/2⌋, ⌊R/2⌋] and a challenge e ∈ I(q) with q the secp256k1 order.

Prover: α ← I(2^(ℓ+ε)), μ ← I(2^ℓ·N̂), r ← Z*_{N₀}, γ ← I(2^(ℓ+ε)·N̂);
S = s^k·t^μ, A = enc_{N₀}(α; r), C = s^α·t^γ; z₁ = α + e·k, z₂ = r·ρ^e mod N₀, z₃ = γ + e·μ.
Verifier: enc_{N₀}(z₁; z₂) = A ⊕ (e ⊙ K), s^z₁·t^z₃ = C·S^e mod N̂, |z₁| ≤ 2^(ℓ+ε−1).
An accepted proof shows |k| ≤ 2^(ℓ+ε) (the soundness slack), which is what MtA needs.

The private helpers here (modulus checks, proof packing, the two verification equations) are
shared with Π-enc-elg and Π-log*, which have the same Paillier and ring-Pedersen parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpcnode.crypto.bigint import (
    RandomBytes,
    half,
    in_signed_range,
    is_unit,
    powmod,
    random_signed,
    random_unit,
    signed_from_bytes,
    signed_to_bytes,
)
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import SECP256K1, Group, Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.security import SecurityLevel
from mpcnode.crypto.transcript import Transcript
from mpcnode.crypto.zk._common import ProofContext, require
from mpcnode.errors import InvalidInput, InvalidProof

__all__ = ["TAG", "EncProof", "prove", "verify"]

TAG = "mpc.v1.zk.enc"
CURVE: Group = SECP256K1
"""The curve whose order q bounds the challenge e ∈ I(q)."""


# --------------------------------------------------------------------------- shared helpers


def _pack(points: Sequence[Point], ints: Sequence[int]) -> bytes:
    """Proof bytes: one field per point (SEC1 compressed), then one per signed integer."""
    return encode_fields([p.encode() for p in points] + [signed_to_bytes(v) for v in ints])


def _unpack(
    data: bytes, n_points: int, n_ints: int, name: str, group: Group = CURVE
) -> tuple[list[Point], list[int]]:
    """Inverse of `_pack`; anything malformed (or an invalid point) raises InvalidProof."""
    try:
        fields = decode_fields(data, n_points + n_ints)
        points = [group.decode_point(f) for f in fields[:n_points]]
        ints = [signed_from_bytes(f) for f in fields[n_points:]]
    except (InvalidInput, ValueError) as exc:
        raise InvalidProof(f"malformed {name} proof: {exc}") from None
    return points, ints


def _check_moduli(
    name: str, pk: PaillierPublicKey, aux: RingPedersenParams, level: SecurityLevel
) -> None:
    """Verifier step 0: size of every received modulus (Alpha-Rays), s, t units ≠ 1."""
    try:
        pk.validate(level)
        aux.validate(level)
    except InvalidInput as exc:
        raise InvalidProof(f"{name}: {exc}") from None


def _check_prover_moduli(
    pk: PaillierPublicKey, aux: RingPedersenParams, level: SecurityLevel
) -> None:
    """The prover refuses to commit under parameters no verifier would accept."""
    pk.validate(level)
    aux.validate(level)


def _check_point(name: str, label: str, point: Point, allow_identity: bool = True) -> None:
    require(point.group is CURVE, f"{name}: {label} is not a {CURVE.name} point")
    require(allow_identity or not point.is_identity, f"{name}: {label} is the identity")


def _response_cap(aux: RingPedersenParams, level: SecurityLevel) -> int:
    """The largest honest |z₃| = ⌊2^(ℓ+ε)·N̂/2⌋ + ⌊q/2⌋·⌊2^ℓ·N̂/2⌋.

    No honest integer response exceeds it, so larger ones are rejected before any modexp
    (a size guard against denial of service; the range check on z₁ is the exact one).
    """
    gamma_max = half((1 << (level.ell + level.epsilon)) * aux.n)
    mu_max = half((1 << level.ell) * aux.n)
    return gamma_max + half(CURVE.order) * mu_max


def _absorb_aux(t: Transcript, aux: RingPedersenParams) -> None:
    t.append("N_hat", aux.n)
    t.append("s", aux.s)
    t.append("t", aux.t)


def _paillier_holds(pk: PaillierPublicKey, z1: int, z2: int, first: int, ct: int, e: int) -> bool:
    """enc_{N₀}(z₁; z₂) = first ⊕ (e ⊙ ct); z₂ must already be known to be a unit."""
    n2 = pk.n_squared
    return pk.encrypt_with(z1, z2) == first * powmod(ct, e, n2) % n2


def _pedersen_holds(aux: RingPedersenParams, z1: int, z3: int, first: int, S: int, e: int) -> bool:
    """s^z₁·t^z₃ ≡ first·S^e (mod N̂)."""
    return aux.commit(z1, z3) == first * powmod(S, e, aux.n) % aux.n


def _encrypt(pk: PaillierPublicKey, sk: PaillierSecretKey | None, m: int, r: int) -> int:
    """enc_{N₀}(m; r), through the CRT when the prover passes its own secret key."""
    return sk.encrypt_with(m, r) if sk is not None else pk.encrypt_with(m, r)


def _check_secret_key(pk: PaillierPublicKey, sk: PaillierSecretKey | None) -> None:
    if sk is not None and sk.n != pk.n:
        raise InvalidInput("the Paillier secret key does not belong to N₀")


# --------------------------------------------------------------------------- Π-enc


@dataclass(frozen=True)
class EncProof:
    """Π-enc prover message: commitments S, A, C and responses z₁, z₂, z₃."""

    S: int
    A: int
    C: int
    z1: int
    z2: int
    z3: int

    def encode(self) -> bytes:
        return _pack([], [self.S, self.A, self.C, self.z1, self.z2, self.z3])

    @classmethod
    def decode(cls, data: bytes) -> EncProof:
        _, ints = _unpack(data, 0, 6, "Π-enc")
        return cls(*ints)


def _challenge(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    K: int,
    aux: RingPedersenParams,
    S: int,
    A: int,
    C: int,
) -> int:
    """e ∈ I(q) over (ctx, N̂, s, t, N₀, K, S, A, C)."""
    t = ctx.transcript(TAG)
    _absorb_aux(t, aux)
    t.append("N0", pk.n)
    t.append("K", K)
    t.append("S", S)
    t.append("A", A)
    t.append("C", C)
    return t.challenge_signed("e", CURVE.order)


def prove(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    K: int,
    k: int,
    rho: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None = None,
    *,
    sk: PaillierSecretKey | None = None,
) -> EncProof:
    """Prove K = enc_{N₀}(k; ρ) with k ∈ I(2^ℓ). `sk` (the key of N₀), if given, speeds up A.

    The prover checks the witness ranges and parameter sizes (InvalidInput); it does not
    re-encrypt k to compare with K (a full modexp): a mismatch yields a rejected proof.
    """
    level = ctx.level
    _check_prover_moduli(pk, aux, level)
    _check_secret_key(pk, sk)
    if not in_signed_range(k, 1 << level.ell):
        raise InvalidInput("Π-enc: witness k outside I(2^ℓ)")
    if not is_unit(rho, pk.n) or not pk.is_ciphertext(K):
        raise InvalidInput("Π-enc: ρ or K is not a unit of its modulus")
    return _prove(ctx, pk, K, k, rho, aux, rng, sk)


def _prove(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    K: int,
    k: int,
    rho: int,
    aux: RingPedersenParams,
    rng: RandomBytes | None,
    sk: PaillierSecretKey | None,
) -> EncProof:
    """The prover without witness checks (tests use it to build proofs of false statements)."""
    level = ctx.level
    n0, n_hat = pk.n, aux.n
    alpha = random_signed(1 << (level.ell + level.epsilon), rng)
    mu = random_signed((1 << level.ell) * n_hat, rng)
    r = random_unit(n0, rng)
    gamma = random_signed((1 << (level.ell + level.epsilon)) * n_hat, rng)
    S = aux.commit(k, mu)
    A = _encrypt(pk, sk, alpha, r)
    C = aux.commit(alpha, gamma)
    e = _challenge(ctx, pk, K, aux, S, A, C)
    z1 = alpha + e * k
    z2 = r * powmod(rho, e, n0) % n0
    z3 = gamma + e * mu
    return EncProof(S, A, C, z1, z2, z3)


def verify(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    K: int,
    aux: RingPedersenParams,
    proof: EncProof,
) -> None:
    """Raise InvalidProof unless `proof` shows K encrypts some k with |k| ≤ 2^(ℓ+ε)."""
    level = ctx.level
    _check_moduli("Π-enc", pk, aux, level)
    require(pk.is_ciphertext(K), "Π-enc: K ∉ Z*_{N0²}")
    require(pk.is_ciphertext(proof.A), "Π-enc: A ∉ Z*_{N0²}")
    require(aux.is_element(proof.S), "Π-enc: S ∉ Z*_N̂")
    require(aux.is_element(proof.C), "Π-enc: C ∉ Z*_N̂")
    require(is_unit(proof.z2, pk.n), "Π-enc: z2 ∉ Z*_N0")
    cap = _response_cap(aux, level)
    require(abs(proof.z1) <= cap and abs(proof.z3) <= cap, "Π-enc: response too large")
    e = _challenge(ctx, pk, K, aux, proof.S, proof.A, proof.C)
    require(
        _paillier_holds(pk, proof.z1, proof.z2, proof.A, K, e),
        "Π-enc: enc(z1; z2) ≠ A ⊕ (e ⊙ K)",
    )
    require(
        _pedersen_holds(aux, proof.z1, proof.z3, proof.C, proof.S, e),
        "Π-enc: s^z1·t^z3 ≠ C·S^e",
    )
    require(
        in_signed_range(proof.z1, 1 << (level.ell + level.epsilon)),
        "Π-enc: |z1| > 2^(ℓ+ε−1)",
    )
