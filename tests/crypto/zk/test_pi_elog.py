"""Π-elog on secp256k1: the common suite (encoding, tampering, context binding), degenerate
points and scalars, and false statements."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from mpcnode.crypto.group import ED25519, SECP256K1, Point
from mpcnode.crypto.zk import pi_elog
from mpcnode.crypto.zk.pi_elog import ElogProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    CTX,
    G,
    ProofFieldSuite,
    ProofSuite,
    Q,
    StatementSuite,
    Subject,
)


def statement(y: int, lam: int, H: Point | None = None) -> dict[str, Point]:
    """(L, M, X, Y, H) = (λ·G, y·G + λ·X, X, y·H, H) for random X (and H unless given)."""
    X = G * SECP256K1.random_scalar()
    H = G * SECP256K1.random_scalar() if H is None else H
    return {"L": G * lam, "M": G * y + X * lam, "X": X, "Y": H * y, "H": H}


def prove_statement(values: dict[str, Point], y: int, lam: int, checked: bool = True) -> Subject:
    prover = pi_elog.prove if checked else pi_elog._prove
    proof = prover(CTX, **values, y=y, lam=lam)
    return Subject(proof, pi_elog.verify, {"ctx": CTX, **values})


@pytest.fixture(scope="module")
def subject() -> Subject:
    y, lam = SECP256K1.random_scalar(), SECP256K1.random_scalar()
    return prove_statement(statement(y, lam), y, lam)


class TestCommon(ProofSuite, ProofFieldSuite, StatementSuite):
    PROOF = ElogProof
    FIRST_EQUATION = "z·G ≠ A"
    N_POINTS = 3
    STATEMENT = ("L", "M", "X", "Y", "H")


@pytest.mark.parametrize(("y", "lam", "H"), [(1, 2, G), (Q - 1, Q - 1, G), (5, 7, None)])
def test_completeness_presigning_shapes(y: int, lam: int, H: Point | None) -> None:
    """ψ̃ uses H = G; the witnesses may be any scalars (here small and q − 1)."""
    prove_statement(statement(y, lam, H), y, lam).check()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("H", SECP256K1.identity(), "H is the identity"),
        ("X", ED25519.generator(), "X is not a secp256k1 point"),
        ("A", SECP256K1.identity(), "A is the identity"),
        ("N", SECP256K1.identity(), "N is the identity"),
        ("B", SECP256K1.identity(), "B is the identity"),
        ("B", ED25519.generator(), "B is not a secp256k1 point"),
        ("z", Q, "z not in"),
        ("z", -1, "z not in"),
        ("u", Q, "u not in"),
        ("u", -1, "u not in"),
    ],
    ids=["H=O", "X-ed25519", "A=O", "N=O", "B=O", "B-ed25519", "z=q", "z=-1", "u=q", "u=-1"],
)
def test_rejects_degenerate_values(subject: Subject, field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidProof, match=message):
        subject.check_with(field, value)


@pytest.mark.parametrize("field", ["z", "u"])
def test_non_reduced_responses_rejected(subject: Subject, field: str) -> None:
    """z + q and u + q satisfy the equations (points reduce mod q) but are not in [0, q)."""
    bad = dataclasses.replace(subject.proof, **{field: getattr(subject.proof, field) + Q})
    with pytest.raises(InvalidProof, match="not in"):
        subject.check(bad)


@pytest.mark.parametrize("broken", ["L", "M", "Y", "y", "lam"])
def test_false_statement_rejected(broken: str) -> None:
    """One relation of the statement fails (L ≠ λ·G, M ≠ y·G + λ·X or Y ≠ y·H), or the prover
    uses a wrong y or λ: the prover refuses, and a forced proof does not verify."""
    y, lam = SECP256K1.random_scalar(), SECP256K1.random_scalar()
    values = statement(y, lam)
    if broken in ("L", "M", "Y"):
        values[broken] = values[broken] + G
    y_used = y + 1 if broken == "y" else y
    lam_used = lam + 1 if broken == "lam" else lam
    with pytest.raises(InvalidInput, match="witness"):
        prove_statement(values, y_used, lam_used)
    with pytest.raises(InvalidProof):
        prove_statement(values, y_used, lam_used, checked=False).check()


def test_prover_refuses_identity_H() -> None:
    with pytest.raises(InvalidInput, match="H is the identity"):
        pi_elog.prove(CTX, G, G, G, SECP256K1.identity(), SECP256K1.identity(), 1, 1)
