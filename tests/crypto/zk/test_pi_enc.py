"""Π-enc at production size (3072-bit N₀ and N̂, SECURITY_128): the common suite (encoding,
tampering, context binding, the encryption-in-range part with its exact range check on z₁)
and wrong witnesses."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from mpcnode.crypto.bigint import random_signed
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.zk import pi_enc
from mpcnode.crypto.zk.pi_enc import EncProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    CTX,
    ELL,
    AuxSuite,
    EncSuite,
    ExactRangeSuite,
    Keys,
    Make,
    ProofFieldSuite,
    ProofSuite,
    StatementSuite,
    Subject,
    enc_maker,
)


def statement(
    pk: PaillierPublicKey, k: int, wrong: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """K = enc(k; ρ) and the witness (with k + 1 if `wrong`)."""
    K, rho = pk.encrypt(k)
    return {"K": K}, {"k": k + 1 if wrong else k, "rho": rho}


@pytest.fixture(scope="module")
def make(keys: Keys) -> Make:
    return enc_maker(keys, pi_enc, statement)


@pytest.fixture(scope="module")
def subject(keys: Keys, make: Make) -> Subject:
    return make(random_signed(1 << ELL), sk=keys.sk)


class TestCommon(ProofSuite, ProofFieldSuite, StatementSuite, AuxSuite, EncSuite, ExactRangeSuite):
    PROOF = EncProof
    FIRST_EQUATION = "enc\\(z1; z2\\) ≠ A"
    STATEMENT = ("pk", "K")
    CT, ENC, PED = "K", "A", "C"


def test_completeness_k_zero(make: Make) -> None:
    make(0).check()


def test_other_valid_ciphertext_rejected(keys: Keys, subject: Subject) -> None:
    """K ⊕ enc(1) is another valid ciphertext (of k + 1): still rejected."""
    other = keys.pk.add(subject.args["K"], keys.pk.encrypt(1)[0])
    with pytest.raises(InvalidProof, match="enc"):
        subject.check(K=other)


def test_prover_refuses_non_unit_randomness(keys: Keys, subject: Subject) -> None:
    with pytest.raises(InvalidInput, match="ρ ∉"):
        pi_enc.prove(CTX, keys.pk, subject.args["K"], 1, keys.sk.p, keys.aux)


def test_wrong_witness_rejected(keys: Keys) -> None:
    """A proof for k + 1 (in range) about K = enc(k) does not verify."""
    make = enc_maker(keys, pi_enc, partial(statement, wrong=True))
    with pytest.raises(InvalidProof, match="enc"):
        make(77, checked=False).check()
