"""Π-prm: ring-Pedersen parameters are well formed, s ∈ ⟨t⟩ (CGGMP24, cggmp-spec.md §3.3).

Statement: (N̂, s, t). Witness: λ with s = t^λ mod N̂, and φ(N̂). Repetitions m = level.m,
each with a one-bit challenge (a binary-challenge Schnorr proof in a group of unknown order).

Prover:

    a_i ← [0, φ(N̂)),  A_i = t^a_i mod N̂          (i = 1..m; CRT over p̂, q̂)
    e_1..e_m ∈ {0,1}: m independent bits of the transcript (N̂, s, t, A_1..A_m absorbed)
    z_i = a_i + e_i·λ mod φ(N̂)

Verifier: (N̂, s, t) pass `RingPedersenParams.validate` (odd, level's size, s and t units other
than 1); exactly m pairs; every A_i ∈ Z*_N̂ with A_i ≠ 1 (Taurus's extra); 0 ≤ z_i < N̂; then
the challenge bits and t^z_i ≡ A_i·s^e_i (mod N̂) for every i.

A cheating prover (s ∉ ⟨t⟩) can answer each repetition for one guessed bit only, so it succeeds
with probability 2^−m. The challenge is m bits drawn independently (`challenge_bits`): fewer
effective bits is the TSSHOCK "c-guess" class of bug, and cggmp24's bit unpacking at 140dbe7
yields only 32 (cggmp-spec.md §3.3).

Cost: the prover computes 2 exponentiations mod a 1536-bit prime per repetition (2m); the
factors p̂, q̂ come from N̂ and φ(N̂). The verifier computes one exponentiation mod N̂ per
repetition (m); s^e_i is s or 1.

Sources: ePrint 2021/060 Π-prm; LFDT-Lockness cggmp24 `zk/ring_pedersen_parameters.rs`;
taurushq multi-party-sig `pkg/zk/prm`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes, invert, isqrt, powmod, random_below
from mpcnode.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from mpcnode.crypto.zk._common import (
    ProofContext,
    absorb_aux,
    check_moduli,
    check_units,
    crt_pair,
    pack_int_lists,
    require,
    unpack_int_lists,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "PrmProof", "prove", "verify"]

TAG = "mpc.v1.zk.prm"
"""Transcript tag of Π-prm."""

NAME = "Π-prm"


@dataclass(frozen=True)
class PrmProof:
    """The prover's message: commitments A_1..A_m and responses z_1..z_m. The statement
    (N̂, s, t) is not included."""

    A: tuple[int, ...]
    z: tuple[int, ...]

    def encode(self) -> bytes:
        """pack_int_lists([A, z])."""
        return pack_int_lists([self.A, self.z])

    @classmethod
    def decode(cls, data: bytes) -> PrmProof:
        """Inverse of `encode`; anything malformed or non-canonical raises InvalidProof.

        The number of repetitions is not fixed here; `verify` requires exactly level.m."""
        A, z = unpack_int_lists(data, (None, None), NAME)
        return cls(A, z)


def _challenge(ctx: ProofContext, params: RingPedersenParams, A: tuple[int, ...]) -> list[int]:
    """e_1..e_m: m independent bits from the transcript over (ctx, N̂, s, t, A_1..A_m)."""
    tr = ctx.transcript(TAG)
    absorb_aux(tr, params)
    tr.append_ints("A", list(A))
    return tr.challenge_bits("e", ctx.level.m)


def _factor(n: int, phi: int) -> tuple[int, int]:
    """(p̂, q̂) from N̂ = p̂·q̂ and φ(N̂) = (p̂−1)(q̂−1): the roots of X² − (N̂ − φ + 1)·X + N̂."""
    total = n - phi + 1
    disc = total * total - 4 * n
    if disc <= 0:
        raise InvalidInput(f"{NAME} secret φ(N̂) does not match N̂")
    root = isqrt(disc)
    p, q = (total + root) // 2, (total - root) // 2
    if root * root != disc or p * q != n or q < 2:
        raise InvalidInput(f"{NAME} secret φ(N̂) does not match N̂")
    return p, q


def prove(
    ctx: ProofContext,
    params: RingPedersenParams,
    secret: RingPedersenSecret,
    rng: RandomBytes | None = None,
) -> PrmProof:
    """Prove s ∈ ⟨t⟩ for (N̂, s, t) with the trapdoor λ (s = t^λ) and φ(N̂).

    Raises InvalidInput on misuse: parameters that fail `validate(level)`, a secret for other
    parameters, or a φ(N̂) that does not factor N̂. A wrong λ is not checked (the verifier
    rejects the proof)."""
    check_moduli(NAME, ctx.level, params, error=InvalidInput)
    if secret.params != params:
        raise InvalidInput(f"{NAME} secret belongs to other ring-Pedersen parameters")
    return _prove(ctx, params, secret, rng)


def _prove(
    ctx: ProofContext,
    params: RingPedersenParams,
    secret: RingPedersenSecret,
    rng: RandomBytes | None = None,
) -> PrmProof:
    """`prove` without its checks: `secret` may belong to other parameters or hold a wrong λ
    (tests build proofs from wrong or out-of-range witnesses with it)."""
    n, t = params.n, params.t
    lam, phi = secret.lam, secret.phi
    p, q = _factor(n, phi)
    q_inv_p = invert(q, p)
    t_p, t_q = t % p, t % q
    secrets_a: list[int] = []
    commitments: list[int] = []
    for _ in range(ctx.level.m):
        while True:
            a = random_below(phi, rng)
            # A_i = t^a_i by CRT (t^a mod p needs a mod (p − 1)).
            A = crt_pair(powmod(t_p, a % (p - 1), p), powmod(t_q, a % (q - 1), q), p, q, q_inv_p)
            if A != 1:  # the verifier rejects A_i = 1 (probability ~1/φ for honest a_i)
                break
        secrets_a.append(a)
        commitments.append(A)
    A_tuple = tuple(commitments)
    bits = _challenge(ctx, params, A_tuple)
    z = tuple((a + e * lam) % phi for a, e in zip(secrets_a, bits, strict=True))
    return PrmProof(A_tuple, z)


def verify(ctx: ProofContext, params: RingPedersenParams, proof: PrmProof) -> None:
    """Check `proof` that s ∈ ⟨t⟩ for (N̂, s, t). Raises InvalidProof on any failure."""
    level = ctx.level
    m = level.m
    n, s, t = params.n, params.s, params.t
    check_moduli(NAME, level, params)
    require(len(proof.A) == len(proof.z) == m, f"{NAME}: expected {m} repetitions")
    check_units(NAME, "Z*_N̂", n, {f"A_{i}": A for i, A in enumerate(proof.A)})
    for i in range(m):
        require(proof.A[i] != 1, f"{NAME}: A_{i} = 1")
        require(0 <= proof.z[i] < n, f"{NAME}: z_{i} is not in [0, N̂)")

    bits = _challenge(ctx, params, proof.A)

    for i, e in enumerate(bits):
        rhs = proof.A[i] * s % n if e else proof.A[i]
        require(powmod(t, proof.z[i], n) == rhs, f"{NAME}: t^z_{i} ≠ A_{i}·s^e_{i}")
