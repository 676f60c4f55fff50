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
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import Group, Point
from mpcnode.crypto.zk._common import ProofContext, decode_ints, encode_ints, require
from mpcnode.errors import InvalidInput, InvalidProof

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
        return encode_ints([self.z])

    @classmethod
    def decode(cls, data: bytes) -> SchnorrProof:
        (z,) = decode_ints(data, 1)
        return cls(z)


@dataclass(frozen=True)
class SchnorrPoK:
    """One-shot Π-sch: the commitment A = τ·G and the response z."""

    A: Point
    z: int

    def encode(self) -> bytes:
        return encode_fields([self.A.encode(), encode_ints([self.z])])

    @classmethod
    def decode(cls, data: bytes, group: Group) -> SchnorrPoK:
        try:
            a_raw, z_raw = decode_fields(data, 2)
            A = group.decode_point(a_raw)
        except InvalidInput as exc:
            raise InvalidProof(f"malformed Π-sch proof: {exc}") from None
        (z,) = decode_ints(z_raw, 1)
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
    if X.group is not group or A.group is not group:
        raise InvalidInput("Π-sch: points from a different group")
    if X.is_identity or group.base_mul(x) != X:
        raise InvalidInput("Π-sch: witness does not match the statement X")
    if group.base_mul(tau_secret.tau) != A:
        raise InvalidInput("Π-sch: nonce does not match the commitment A")
    e = _challenge(ctx, X, A, extra)
    return SchnorrProof((tau_secret.tau + e * x) % group.order)


def verify(ctx: ProofContext, X: Point, A: Point, proof: SchnorrProof, extra: bytes = b"") -> None:
    """Accept iff X, A are non-identity points of one group, 0 <= z < q and z·G = A + e·X."""
    group = X.group
    require(A.group is group, "Π-sch: A is in a different group")
    require(not X.is_identity, "Π-sch: X is the identity")
    require(not A.is_identity, "Π-sch: A is the identity")
    require(0 <= proof.z < group.order, "Π-sch: z out of range")
    e = _challenge(ctx, X, A, extra)
    require(group.base_mul(proof.z) == A + X * e, "Π-sch: z·G ≠ A + e·X")


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
    verify(ctx, X, proof.A, SchnorrProof(proof.z), extra)
