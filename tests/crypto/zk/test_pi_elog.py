"""Π-elog on secp256k1: completeness, encoding, tampering, context binding, false statements."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from mpcnode.crypto.group import ED25519, SECP256K1, Point
from mpcnode.crypto.zk import pi_elog
from mpcnode.crypto.zk.pi_elog import ElogProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._paillier_setup import CTX, OTHER_CONTEXTS, G, Q, proof_field_names, tampered

STATEMENT = ("L", "M", "X", "Y", "H")


@dataclasses.dataclass(frozen=True)
class Case:
    L: Point
    M: Point
    X: Point
    Y: Point
    H: Point
    y: int
    lam: int
    proof: ElogProof

    def statement(self, **over: Any) -> dict[str, Point]:
        values = {name: getattr(self, name) for name in STATEMENT}
        values.update(over)
        return values


def make_statement(
    y: int, lam: int, H: Point | None = None
) -> tuple[Point, Point, Point, Point, Point]:
    """(L, M, X, Y, H) = (λ·G, y·G + λ·X, X, y·H, H) for random X (and H unless given)."""
    X = G * SECP256K1.random_scalar()
    H = G * SECP256K1.random_scalar() if H is None else H
    return G * lam, G * y + X * lam, X, H * y, H


@pytest.fixture(scope="module")
def case() -> Case:
    y, lam = SECP256K1.random_scalar(), SECP256K1.random_scalar()
    L, M, X, Y, H = make_statement(y, lam)
    proof = pi_elog.prove(CTX, L, M, X, Y, H, y, lam)
    return Case(L, M, X, Y, H, y, lam, proof)


def _verify(statement: dict[str, Point], proof: ElogProof, ctx: Any = CTX) -> None:
    pi_elog.verify(
        ctx, statement["L"], statement["M"], statement["X"], statement["Y"], statement["H"], proof
    )


def test_completeness(case: Case) -> None:
    _verify(case.statement(), case.proof)


def test_completeness_presigning_shapes() -> None:
    """ψ̃ uses H = G; the witnesses may be any scalars (here small and q − 1)."""
    for y, lam, H in [(1, 2, G), (Q - 1, Q - 1, G), (5, 7, None)]:
        L, M, X, Y, H2 = make_statement(y, lam, H)
        proof = pi_elog.prove(CTX, L, M, X, Y, H2, y, lam)
        _verify({"L": L, "M": M, "X": X, "Y": Y, "H": H2}, proof)


def test_encoding_round_trip(case: Case) -> None:
    data = case.proof.encode()
    decoded = ElogProof.decode(data)
    assert decoded == case.proof
    assert decoded.encode() == data
    _verify(case.statement(), decoded)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],
        lambda d: d + b"\x00\x00\x00\x01\x00",
        lambda d: b"",
        lambda d: d[:4] + b"\x04" + d[5:],
        lambda d: d[:5] + b"\xff" * 32 + d[37:],
    ],
    ids=["truncated", "extra-field", "empty", "bad-point-prefix", "non-canonical-point"],
)
def test_decode_rejects_malformed(case: Case, mangle: Callable[[bytes], bytes]) -> None:
    with pytest.raises(InvalidProof):
        ElogProof.decode(mangle(case.proof.encode()))


@pytest.mark.parametrize("field", proof_field_names(ElogProof(G, G, G, 0, 0)))
def test_tampered_proof_field(case: Case, field: str) -> None:
    bad = dataclasses.replace(case.proof, **{field: tampered(getattr(case.proof, field))})
    with pytest.raises(InvalidProof):
        _verify(case.statement(), bad)


@pytest.mark.parametrize("name", STATEMENT)
def test_tampered_statement(case: Case, name: str) -> None:
    with pytest.raises(InvalidProof):
        _verify(case.statement(**{name: tampered(getattr(case, name))}), case.proof)


@pytest.mark.parametrize("which", sorted(OTHER_CONTEXTS))
def test_other_context(case: Case, which: str) -> None:
    with pytest.raises(InvalidProof):
        _verify(case.statement(), case.proof, OTHER_CONTEXTS[which])


@pytest.mark.parametrize(
    ("where", "field", "value", "message"),
    [
        ("statement", "H", SECP256K1.identity(), "H is the identity"),
        ("statement", "X", ED25519.generator(), "secp256k1"),
        ("proof", "A", SECP256K1.identity(), "A is the identity"),
        ("proof", "N", SECP256K1.identity(), "N is the identity"),
        ("proof", "B", SECP256K1.identity(), "B is the identity"),
        ("proof", "B", ED25519.generator(), "secp256k1"),
        ("proof", "z", Q, "z not in"),
        ("proof", "z", -1, "z not in"),
        ("proof", "u", Q, "u not in"),
        ("proof", "u", -1, "u not in"),
    ],
    ids=["H=O", "X-ed25519", "A=O", "N=O", "B=O", "B-ed25519", "z=q", "z=-1", "u=q", "u=-1"],
)
def test_rejects_degenerate_values(
    case: Case, where: str, field: str, value: Any, message: str
) -> None:
    statement = case.statement(**{field: value}) if where == "statement" else case.statement()
    proof = dataclasses.replace(case.proof, **{field: value}) if where == "proof" else case.proof
    with pytest.raises(InvalidProof, match=message):
        _verify(statement, proof)


def test_non_reduced_responses_rejected(case: Case) -> None:
    """z + q and u + q satisfy the equations (points reduce mod q) but are not in [0, q)."""
    for field in ("z", "u"):
        bad = dataclasses.replace(case.proof, **{field: getattr(case.proof, field) + Q})
        with pytest.raises(InvalidProof, match="not in"):
            _verify(case.statement(), bad)


@pytest.mark.parametrize("broken", ["L", "M", "Y", "y", "lam"])
def test_false_statement_rejected(case: Case, broken: str) -> None:
    """One relation of the statement fails (L ≠ λ·G, M ≠ y·G + λ·X or Y ≠ y·H), or the prover
    uses a wrong y or λ: the prover refuses, and a forced proof does not verify."""
    statement = case.statement()
    y, lam = case.y, case.lam
    if broken in ("L", "M", "Y"):
        statement[broken] = statement[broken] + G
    elif broken == "y":
        y += 1
    else:
        lam += 1
    L, M, X, Y, H = (statement[n] for n in STATEMENT)
    with pytest.raises(InvalidInput):
        pi_elog.prove(CTX, L, M, X, Y, H, y, lam)
    proof = pi_elog._prove(CTX, L, M, X, Y, H, y, lam, None)
    with pytest.raises(InvalidProof):
        _verify(statement, proof)


def test_prover_refuses_identity_H() -> None:
    with pytest.raises(InvalidInput):
        pi_elog.prove(CTX, G, G, G, SECP256K1.identity(), SECP256K1.identity(), 1, 1)
