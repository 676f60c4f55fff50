"""Π-enc-elg at production size (3072-bit N₀ and N̂, SECURITY_128, secp256k1): the common suite
(encoding, tampering, context binding, the encryption-in-range part with its exact range check
on z₁), degenerate points and scalars, and wrong witnesses."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from mpcnode.crypto.bigint import random_signed
from mpcnode.crypto.group import ED25519, SECP256K1
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.zk import pi_enc_elg
from mpcnode.crypto.zk.pi_enc_elg import EncElgProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    ELL,
    AuxSuite,
    EncSuite,
    ExactRangeSuite,
    G,
    Keys,
    Make,
    ProofFieldSuite,
    ProofSuite,
    StatementSuite,
    Subject,
    enc_maker,
)


def statement(
    pk: PaillierPublicKey, x: int, wrong: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """C = enc(x; ρ), A = a·G, B = b·G, X = (a·b + x)·G and the witness. `wrong` names one
    thing the prover gets wrong: "x" (proves x + 1), "b" (b + 1) or "X" (X + G)."""
    a, b = SECP256K1.random_scalar(), SECP256K1.random_scalar()
    C, rho = pk.encrypt(x)
    X = G * (a * b + x)
    values = {"C": C, "A": G * a, "B": G * b, "X": X + G if wrong == "X" else X}
    witness = {"x": x + 1 if wrong == "x" else x, "rho": rho, "b": b + 1 if wrong == "b" else b}
    return values, witness


@pytest.fixture(scope="module")
def make(keys: Keys) -> Make:
    return enc_maker(keys, pi_enc_elg, statement)


@pytest.fixture(scope="module")
def subject(keys: Keys, make: Make) -> Subject:
    return make(random_signed(1 << ELL), sk=keys.sk)


class TestCommon(ProofSuite, ProofFieldSuite, StatementSuite, AuxSuite, EncSuite, ExactRangeSuite):
    PROOF = EncElgProof
    FIRST_EQUATION = "w·A \\+ z1·G ≠"
    N_POINTS = 2
    STATEMENT = ("pk", "C", "A", "B", "X")
    CT, ENC, PED = "C", "D", "T"


def test_completeness_x_zero(make: Make) -> None:
    make(0).check()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("A", ED25519.generator(), "A is not a secp256k1 point"),
        ("Y", SECP256K1.identity(), "Y is the identity"),
        ("Z", SECP256K1.identity(), "Z is the identity"),
        ("Y", ED25519.generator(), "Y is not a secp256k1 point"),
        ("w", 0, "w not in"),
        ("w", SECP256K1.order, "w not in"),
        ("w", -1, "w not in"),
    ],
    ids=["A-ed25519", "Y=O", "Z=O", "Y-ed25519", "w=0", "w=q", "w=-1"],
)
def test_rejects_degenerate_values(subject: Subject, field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidProof, match=message):
        subject.check_with(field, value)


def test_prover_refuses_wrong_b(keys: Keys) -> None:
    with pytest.raises(InvalidInput, match="witness b"):
        enc_maker(keys, pi_enc_elg, partial(statement, wrong="b"))(5)


@pytest.mark.parametrize("wrong", ["x", "b", "X"])
def test_wrong_witness_rejected(keys: Keys, wrong: str) -> None:
    """In-range but inconsistent witnesses (x ≠ dec C, b with B ≠ b·G, X ≠ (ab + x)·G)."""
    make = enc_maker(keys, pi_enc_elg, partial(statement, wrong=wrong))
    with pytest.raises(InvalidProof):
        make(5, checked=False, sk=keys.sk).check()
