"""Π-log* at production size (3072-bit N₀ and N̂, SECURITY_128, secp256k1): the common suite
(encoding, tampering, context binding, the encryption-in-range part), degenerate points and
wrong witnesses."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from mpcnode.crypto.bigint import random_signed
from mpcnode.crypto.group import ED25519, SECP256K1, Point
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.zk import pi_log_star
from mpcnode.crypto.zk.pi_log_star import LogStarProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    ELL,
    AuxSuite,
    EncSuite,
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
    pk: PaillierPublicKey, x: int, B: Point | None = None, wrong: str = ""
) -> tuple[dict[str, Any], dict[str, Any]]:
    """C = enc(x; ρ), X = x·B for a random base B (unless given) and the witness. `wrong`
    names what the prover gets wrong: "x" (x + 1 with X = (x + 1)·B) or "X" (X + G)."""
    B = G * SECP256K1.random_scalar() if B is None else B
    C, rho = pk.encrypt(x)
    x_used = x + 1 if wrong == "x" else x
    X = B * x_used + G if wrong == "X" else B * x_used
    return {"C": C, "X": X, "B": B}, {"x": x_used, "rho": rho}


@pytest.fixture(scope="module")
def make(keys: Keys) -> Make:
    return enc_maker(keys, pi_log_star, statement)


@pytest.fixture(scope="module")
def subject(keys: Keys, make: Make) -> Subject:
    return make(random_signed(1 << ELL), sk=keys.sk)


class TestCommon(ProofSuite, ProofFieldSuite, StatementSuite, AuxSuite, EncSuite):
    PROOF = LogStarProof
    FIRST_EQUATION = "z1·B ≠"
    N_POINTS = 1
    STATEMENT = ("pk", "C", "X", "B")
    CT, ENC, PED = "C", "A", "D"


def test_base_point_G(keys: Keys) -> None:
    """ψ′ of cggmp21 uses B = G."""
    enc_maker(keys, pi_log_star, partial(statement, B=G))(random_signed(1 << ELL)).check()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("B", SECP256K1.identity(), "B is the identity"),
        ("X", SECP256K1.identity(), "X is the identity"),
        ("B", ED25519.generator(), "B is not a secp256k1 point"),
        ("Y", SECP256K1.identity(), "Y is the identity"),
        ("Y", ED25519.generator(), "Y is not a secp256k1 point"),
    ],
    ids=["B=O", "X=O", "B-ed25519", "Y=O", "Y-ed25519"],
)
def test_rejects_degenerate_points(subject: Subject, field: str, value: Any, message: str) -> None:
    with pytest.raises(InvalidProof, match=message):
        subject.check_with(field, value)


def test_prover_refuses_inconsistent_X(keys: Keys) -> None:
    with pytest.raises(InvalidInput, match="does not match X"):
        enc_maker(keys, pi_log_star, partial(statement, wrong="X"))(5)


@pytest.mark.parametrize("wrong", ["x", "X"])
def test_wrong_witness_rejected(keys: Keys, wrong: str) -> None:
    """In range but inconsistent: x ≠ dec(C) (X = x·B), or X ≠ x·B (x = dec(C))."""
    make = enc_maker(keys, pi_log_star, partial(statement, wrong=wrong))
    with pytest.raises(InvalidProof, match="enc" if wrong == "x" else "z1·B"):
        make(1234, checked=False, sk=keys.sk).check()
