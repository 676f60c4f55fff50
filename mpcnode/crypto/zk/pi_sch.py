"""Π-sch: Schnorr proof of knowledge of x with X = x·G (CGGMP21/24 §"Π-sch", spec note §3.1).

The interactive proof is split because keygen commits to the first message A = τ·G in round
1 (inside V_i) and answers only after rid is known:

- `commit(group)` → (τ, A); A goes into the keygen commitment;
- `prove(ctx, X, τ, x, A, extra=rid)` → z = τ + e·x mod q with e = H(ctx, X, A, extra);
- `verify(ctx, X, A, proof, extra=rid)` checks z·G = A + e·X.

`prove_simple` / `verify_simple` are the one-shot form, with A inside the proof.

A nonce τ must answer exactly one challenge: two answers z, z′ to e ≠ e′ under one τ reveal
x = (z − z′)/(e − e′). The caller deletes τ after `prove`.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes
from mpcnode.crypto.group import Group, Point
from mpcnode.crypto.zk._common import (
    ProofContext,
    check_points,
    check_scalars,
    pack,
    require,
    unpack,
)
from mpcnode.errors import InvalidInput

__all__ = [
    "TAG",
    "SchnorrPoK",
    "SchnorrProof",
    "SchnorrSecret",
    "commit",
    "prove",
    "prove_simple",
    "verify",
    "verify_simple",
]

TAG = "mpc.v1.zk.sch"
"""Transcript tag of Π-sch."""

NAME = "Π-sch"


@dataclass(frozen=True, repr=False)
class SchnorrSecret:
    """The prover's nonce τ (secret; use for one proof only, then delete)."""

    group: Group
    tau: int

    def __repr__(self) -> str:
        return f"SchnorrSecret(<redacted>, {self.group.name})"


@dataclass(frozen=True)
class SchnorrProof:
    """The response z = τ + e·x mod q (A was sent ahead of time)."""

    z: int

    def encode(self) -> bytes:
        return pack([], [self.z])

    @classmethod
    def decode(cls, data: bytes) -> SchnorrProof:
        _, (z,) = unpack(data, 0, 1, NAME)
        return cls(z)


@dataclass(frozen=True)
class SchnorrPoK:
    """One-shot Π-sch: the commitment A = τ·G and the response z."""

    A: Point
    z: int

    def encode(self) -> bytes:
        return pack([self.A], [self.z])

    @classmethod
    def decode(cls, data: bytes, group: Group) -> SchnorrPoK:
        (A,), (z,) = unpack(data, 1, 1, NAME, group)
        return cls(A, z)


def commit(group: Group, rng: RandomBytes | None = None) -> tuple[SchnorrSecret, Point]:
    """First message: τ ← Z_q \\ {0} and A = τ·G."""
    tau = group.random_scalar(rng)
    return SchnorrSecret(group, tau), group.base_mul(tau)


def _challenge(ctx: ProofContext, X: Point, A: Point, extra: bytes) -> int:
    """e = H(sid, prover, instance, level, group, X, A, extra) ∈ Z_q."""
    t = ctx.transcript(TAG)
    t.append("group", X.group.name)
    t.append("X", X)
    t.append("A", A)
    t.append("extra", extra)
    return t.challenge_scalar("e", X.group.order)


def prove(
    ctx: ProofContext,
    X: Point,
    tau_secret: SchnorrSecret,
    x: int,
    A: Point,
    extra: bytes = b"",
) -> SchnorrProof:
    """z = τ + e·x mod q. `extra` binds protocol values such as rid (keygen)."""
    group = tau_secret.group
    check_points(NAME, {"X": X, "A": A}, group=group, error=InvalidInput)
    if X.is_identity or group.base_mul(x) != X:
        raise InvalidInput(f"{NAME}: witness does not match the statement X")
    if group.base_mul(tau_secret.tau) != A:
        raise InvalidInput(f"{NAME}: nonce does not match the commitment A")
    e = _challenge(ctx, X, A, extra)
    return SchnorrProof((tau_secret.tau + e * x) % group.order)


def verify(ctx: ProofContext, X: Point, A: Point, proof: SchnorrProof, extra: bytes = b"") -> None:
    """Accept iff X, A are non-identity points of one group, 0 <= z < q and z·G = A + e·X."""
    group = X.group
    check_points(NAME, {"X": X, "A": A}, allow_identity=False, group=group)
    check_scalars(NAME, {"z": proof.z}, group=group)
    e = _challenge(ctx, X, A, extra)
    require(group.base_mul(proof.z) == A + X * e, f"{NAME}: z·G ≠ A + e·X")


def prove_simple(
    ctx: ProofContext,
    X: Point,
    x: int,
    extra: bytes = b"",
    rng: RandomBytes | None = None,
) -> SchnorrPoK:
    """One-shot Π-sch (fresh τ, A inside the proof)."""
    secret, A = commit(X.group, rng)
    return SchnorrPoK(A, prove(ctx, X, secret, x, A, extra).z)


def verify_simple(ctx: ProofContext, X: Point, proof: SchnorrPoK, extra: bytes = b"") -> None:
    """Check a one-shot Π-sch proof (`verify` with the proof's own A)."""
    verify(ctx, X, proof.A, SchnorrProof(proof.z), extra)
