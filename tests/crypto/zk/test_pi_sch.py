"""Π-sch on secp256k1 and Ed25519: split (keygen) and one-shot forms."""

from __future__ import annotations

import dataclasses

import pytest

from mpcnode.crypto.group import ED25519, SECP256K1, Group, Point
from mpcnode.crypto.zk import pi_sch
from mpcnode.crypto.zk.pi_sch import SchnorrPoK, SchnorrProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    CTX,
    OTHER_CONTEXTS,
    ProofFieldSuite,
    ProofSuite,
    StatementSuite,
    Subject,
    malformed_encodings,
    malformed_names,
    round_trip,
)

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


@pytest.fixture(scope="module")
def subject(case: Case) -> Subject:
    return Subject(case.proof, pi_sch.verify, {"ctx": CTX, "X": case.X, "A": case.A, "extra": RID})


class TestCommon(ProofSuite, ProofFieldSuite, StatementSuite):
    PROOF = SchnorrProof
    FIRST_EQUATION = "z·G ≠ A"
    STATEMENT = ("X", "A", "extra")


def test_response_is_reduced(case: Case) -> None:
    assert 0 <= case.proof.z < case.group.order


def test_commit_repr_hides_nonce(case: Case) -> None:
    tau, _ = pi_sch.commit(case.group)
    assert str(tau.tau) not in repr(tau)
    assert "redacted" in repr(tau)


@pytest.mark.parametrize("shift", [1, -1], ids=["z+q", "z-q"])
def test_unreduced_response_rejected(case: Case, subject: Subject, shift: int) -> None:
    """z ± q satisfies the equation (points reduce mod q) but is outside [0, q)."""
    with pytest.raises(InvalidProof, match="z not in"):
        subject.check(SchnorrProof(case.proof.z + shift * case.group.order))


@pytest.mark.parametrize("extra", [b"", b"\x17" * 31, b"\x18" + b"\x17" * 31])
def test_other_extra_rejected(subject: Subject, extra: bytes) -> None:
    """The proof is bound to rid."""
    with pytest.raises(InvalidProof):
        subject.check(extra=extra)


@pytest.mark.parametrize("name", ["X", "A"])
def test_identity_rejected(case: Case, subject: Subject, name: str) -> None:
    with pytest.raises(InvalidProof, match=f"{name} is the identity"):
        subject.check(**{name: case.group.identity()})


def test_identity_statement_with_forged_proof_rejected(case: Case) -> None:
    """X = O, A = z·G would satisfy z·G = A + e·X for every e: the identity check stops it."""
    ident = case.group.identity()
    z = 12345
    with pytest.raises(InvalidProof, match="identity"):
        pi_sch.verify(CTX, ident, case.group.base_mul(z), SchnorrProof(z), extra=RID)


def test_mixed_groups_rejected(case: Case, subject: Subject) -> None:
    other = ED25519 if case.group is SECP256K1 else SECP256K1
    with pytest.raises(InvalidProof, match=f"A is not a {case.group.name} point"):
        subject.check(A=other.generator())


def test_false_statement_rejected(case: Case, subject: Subject) -> None:
    """A prover who does not know log X: z computed with a wrong x (prover check bypassed)."""
    tau, A = pi_sch.commit(case.group)
    e = pi_sch._challenge(CTX, case.X, A, RID)
    z = (tau.tau + e * (case.x + 1)) % case.group.order
    with pytest.raises(InvalidProof):
        subject.check(SchnorrProof(z), A=A)


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
    decoded = round_trip(pok, lambda data: SchnorrPoK.decode(data, case.group))
    pi_sch.verify_simple(CTX, case.X, decoded, extra=RID)
    for bad in (
        dataclasses.replace(pok, z=(pok.z + 1) % case.group.order),
        dataclasses.replace(pok, A=pok.A + case.group.generator()),
    ):
        with pytest.raises(InvalidProof):
            pi_sch.verify_simple(CTX, case.X, bad, extra=RID)
    with pytest.raises(InvalidProof):
        pi_sch.verify_simple(OTHER_CONTEXTS["sid"], case.X, pok, extra=RID)


@pytest.mark.parametrize("name", malformed_names(1))
def test_one_shot_decode_rejects_malformed(case: Case, name: str) -> None:
    pok = pi_sch.prove_simple(CTX, case.X, case.x)
    with pytest.raises(InvalidProof):
        SchnorrPoK.decode(malformed_encodings(pok.encode(), 1)[name], case.group)
