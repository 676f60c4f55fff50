"""Π-sch on secp256k1 and Ed25519: split (keygen) and one-shot forms."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from mpcnode.crypto.group import ED25519, SECP256K1, Group, Point
from mpcnode.crypto.zk import pi_sch
from mpcnode.crypto.zk.pi_sch import SchnorrPoK, SchnorrProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._paillier_setup import CTX, OTHER_CONTEXTS

GROUPS = [SECP256K1, ED25519]
RID = b"\x17" * 32


@dataclasses.dataclass(frozen=True)
class Case:
    group: Group
    x: int
    X: Point
    A: Point
    proof: SchnorrProof


@pytest.fixture(scope="module", params=GROUPS, ids=lambda g: g.name)
def case(request: pytest.FixtureRequest) -> Case:
    group: Group = request.param
    x = group.random_scalar()
    X = group.base_mul(x)
    tau, A = pi_sch.commit(group)
    proof = pi_sch.prove(CTX, X, tau, x, A, extra=RID)
    return Case(group, x, X, A, proof)


def test_completeness(case: Case) -> None:
    pi_sch.verify(CTX, case.X, case.A, case.proof, extra=RID)
    assert 0 <= case.proof.z < case.group.order


def test_commit_repr_hides_nonce(case: Case) -> None:
    tau, _ = pi_sch.commit(case.group)
    assert str(tau.tau) not in repr(tau)
    assert "redacted" in repr(tau)


def test_encoding_round_trip(case: Case) -> None:
    decoded = SchnorrProof.decode(case.proof.encode())
    assert decoded == case.proof
    pi_sch.verify(CTX, case.X, case.A, decoded, extra=RID)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x00\x00\x01\x02", b"\x00\x00\x00\x01\x00\x00\x00\x00\x01\x00", b"\x00\x00"],
    ids=["empty", "bad-sign", "two-fields", "truncated"],
)
def test_decode_rejects_malformed(data: bytes) -> None:
    with pytest.raises(InvalidProof):
        SchnorrProof.decode(data)


@pytest.mark.parametrize("delta", [1, -1], ids=["z+1", "z-1"])
def test_tampered_response(case: Case, delta: int) -> None:
    bad = SchnorrProof((case.proof.z + delta) % case.group.order)
    with pytest.raises(InvalidProof):
        pi_sch.verify(CTX, case.X, case.A, bad, extra=RID)


@pytest.mark.parametrize("shift", [1, -1], ids=["z+q", "z-q"])
def test_unreduced_response_rejected(case: Case, shift: int) -> None:
    """z ± q satisfies the equation (points reduce mod q) but is outside [0, q)."""
    bad = SchnorrProof(case.proof.z + shift * case.group.order)
    with pytest.raises(InvalidProof, match="z out of range"):
        pi_sch.verify(CTX, case.X, case.A, bad, extra=RID)


def test_tampered_statement_X(case: Case) -> None:
    with pytest.raises(InvalidProof):
        pi_sch.verify(CTX, case.X + case.group.generator(), case.A, case.proof, extra=RID)


def test_tampered_commitment_A(case: Case) -> None:
    with pytest.raises(InvalidProof):
        pi_sch.verify(CTX, case.X, case.A + case.group.generator(), case.proof, extra=RID)


@pytest.mark.parametrize("extra", [b"", b"\x17" * 31, b"\x18" + b"\x17" * 31])
def test_other_extra_rejected(case: Case, extra: bytes) -> None:
    """The proof is bound to rid."""
    with pytest.raises(InvalidProof):
        pi_sch.verify(CTX, case.X, case.A, case.proof, extra=extra)


@pytest.mark.parametrize("which", sorted(OTHER_CONTEXTS))
def test_other_context(case: Case, which: str) -> None:
    with pytest.raises(InvalidProof):
        pi_sch.verify(OTHER_CONTEXTS[which], case.X, case.A, case.proof, extra=RID)


def test_identity_rejected(case: Case) -> None:
    ident = case.group.identity()
    with pytest.raises(InvalidProof, match="X is the identity"):
        pi_sch.verify(CTX, ident, case.A, case.proof, extra=RID)
    with pytest.raises(InvalidProof, match="A is the identity"):
        pi_sch.verify(CTX, case.X, ident, case.proof, extra=RID)


def test_identity_statement_with_forged_proof_rejected(case: Case) -> None:
    """X = O, A = z·G would satisfy z·G = A + e·X for every e: the identity check stops it."""
    ident = case.group.identity()
    z = 12345
    with pytest.raises(InvalidProof, match="identity"):
        pi_sch.verify(CTX, ident, case.group.base_mul(z), SchnorrProof(z), extra=RID)


def test_mixed_groups_rejected(case: Case) -> None:
    other = ED25519 if case.group is SECP256K1 else SECP256K1
    with pytest.raises(InvalidProof, match="different group"):
        pi_sch.verify(CTX, case.X, other.generator(), case.proof, extra=RID)


def test_false_statement_rejected(case: Case) -> None:
    """A prover who does not know log X: z computed with a wrong x (prover check bypassed)."""
    tau, A = pi_sch.commit(case.group)
    e = pi_sch._challenge(CTX, case.X, A, RID)
    z = (tau.tau + e * (case.x + 1)) % case.group.order
    with pytest.raises(InvalidProof):
        pi_sch.verify(CTX, case.X, A, SchnorrProof(z), extra=RID)


def test_prover_refuses_wrong_witness_or_nonce(case: Case) -> None:
    tau, A = pi_sch.commit(case.group)
    with pytest.raises(InvalidInput):
        pi_sch.prove(CTX, case.X, tau, case.x + 1, A, extra=RID)
    with pytest.raises(InvalidInput):
        pi_sch.prove(CTX, case.X, tau, case.x, A + case.group.generator(), extra=RID)
    with pytest.raises(InvalidInput):
        pi_sch.prove(CTX, case.group.identity(), tau, 0, A, extra=RID)


def test_one_shot(case: Case) -> None:
    pok = pi_sch.prove_simple(CTX, case.X, case.x, extra=RID)
    pi_sch.verify_simple(CTX, case.X, pok, extra=RID)
    decoded = SchnorrPoK.decode(pok.encode(), case.group)
    assert decoded == pok
    pi_sch.verify_simple(CTX, case.X, decoded, extra=RID)
    for bad in (
        dataclasses.replace(pok, z=(pok.z + 1) % case.group.order),
        dataclasses.replace(pok, A=pok.A + case.group.generator()),
    ):
        with pytest.raises(InvalidProof):
            pi_sch.verify_simple(CTX, case.X, bad, extra=RID)
    with pytest.raises(InvalidProof):
        pi_sch.verify_simple(OTHER_CONTEXTS["sid"], case.X, pok, extra=RID)


@pytest.mark.parametrize(
    "mangle",
    [lambda d: d[:-1], lambda d: b"", lambda d: d[:4] + b"\xff" * (len(d) - 4)],
    ids=["truncated", "empty", "bad-point"],
)
def test_one_shot_decode_rejects_malformed(case: Case, mangle: Callable[[bytes], bytes]) -> None:
    pok = pi_sch.prove_simple(CTX, case.X, case.x)
    with pytest.raises(InvalidProof):
        SchnorrPoK.decode(mangle(pok.encode()), case.group)
