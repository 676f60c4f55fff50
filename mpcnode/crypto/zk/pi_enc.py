"""Π-enc: the plaintext of a Paillier ciphertext lies in range (CGGMP21 Fig. 14, spec note §3.5).

Statement: a Paillier key N₀ and K = enc_{N₀}(k; ρ). Witness: k ∈ I(2^ℓ), ρ ∈ Z*_{N₀}.
Aux: the verifier's ring-Pedersen parameters R = (N̂, s, t). CGGMP24 conventions: half ranges
I(R) = [−⌊R/2⌋, ⌊R/2⌋] and a challenge e ∈ I(q) with q the secp256k1 order.

Prover: α ← I(2^(ℓ+ε)), μ ← I(2^ℓ·N̂), r ← Z*_{N₀}, γ ← I(2^(ℓ+ε)·N̂);
S = s^k·t^μ, A = enc_{N₀}(α; r), C = s^α·t^γ; z₁ = α + e·k, z₂ = r·ρ^e mod N₀, z₃ = γ + e·μ.
Verifier: enc_{N₀}(z₁; z₂) = A ⊕ (e ⊙ K), s^z₁·t^z₃ = C·S^e mod N̂, |z₁| ≤ 2^(ℓ+ε−1).
An accepted proof shows |k| ≤ 2^(ℓ+ε) (the soundness slack), which is what MtA needs.

Π-enc is the encryption-in-range part itself: `_common.EncCommit` (prover) and
`_common.EncCheck` (verifier), which Π-enc-elg and Π-log* embed with their group parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk._common import (
    CURVE,
    EncCheck,
    EncCommit,
    ProofContext,
    absorb_aux,
    check_enc_witness,
    pack,
    unpack,
)

__all__ = ["TAG", "EncProof", "prove", "verify"]

TAG = "mpc.v1.zk.enc"
"""Transcript tag of Π-enc."""

NAME = "Π-enc"


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
        return pack([], [self.S, self.A, self.C, self.z1, self.z2, self.z3])

    @classmethod
    def decode(cls, data: bytes) -> EncProof:
        _, ints = unpack(data, 0, 6, NAME)
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
    absorb_aux(t, aux)
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
    check_enc_witness(NAME, ctx.level, pk, aux, sk, ("K", K), ("k", k), rho)
    return _prove(ctx, pk, K, k, rho, aux, rng, sk=sk)


def _prove(
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
    """`prove` without its checks (tests use it to build proofs of false statements)."""
    first = EncCommit.make(ctx.level, pk, sk, aux, k, rng)
    e = _challenge(ctx, pk, K, aux, first.S, first.A, first.C)
    return EncProof(first.S, first.A, first.C, *first.respond(pk, k, rho, e))


def verify(
    ctx: ProofContext,
    pk: PaillierPublicKey,
    K: int,
    aux: RingPedersenParams,
    proof: EncProof,
) -> None:
    """Raise InvalidProof unless `proof` shows K encrypts some k with |k| ≤ 2^(ℓ+ε)."""
    part = EncCheck(NAME, ctx.level, pk, aux, ("K", K), ("A", proof.A), ("C", proof.C), proof)
    part.elements()
    e = _challenge(ctx, pk, K, aux, proof.S, proof.A, proof.C)
    part.equations(e)
