"""Π-log* at production size (3072-bit N₀ and N̂, SECURITY_128, secp256k1): completeness,
encoding, tampering, context binding, false statements and the range check on z₁."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from mpcnode.crypto.bigint import random_signed
from mpcnode.crypto.group import ED25519, SECP256K1, Point
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk import pi_log_star
from mpcnode.crypto.zk.pi_log_star import LogStarProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._paillier_setup import (
    CTX,
    LEVEL,
    OTHER_CONTEXTS,
    G,
    PaillierSetup,
    paillier_setup,
    proof_field_names,
    tampered,
)

ELL, EPS = LEVEL.ell, LEVEL.epsilon
STATEMENT = ("C", "X", "B")


@dataclasses.dataclass(frozen=True)
class Case:
    C: int
    X: Point
    B: Point
    x: int
    rho: int
    proof: LogStarProof

    def statement(self, **over: Any) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in STATEMENT}
        values.update(over)
        return values


@pytest.fixture(scope="module")
def setup() -> PaillierSetup:
    return paillier_setup()


def make_statement(setup: PaillierSetup, x: int) -> tuple[int, Point, Point, int]:
    """(C, X, B, ρ) with C = enc(x; ρ), a random base B and X = x·B."""
    B = G * SECP256K1.random_scalar()
    C, rho = setup.pk.encrypt(x)
    return C, B * x, B, rho


@pytest.fixture(scope="module")
def case(setup: PaillierSetup) -> Case:
    x = random_signed(1 << ELL)
    C, X, B, rho = make_statement(setup, x)
    proof = pi_log_star.prove(CTX, setup.pk, C, X, B, x, rho, setup.aux, sk=setup.sk)
    return Case(C, X, B, x, rho, proof)


def _verify(
    setup: PaillierSetup, statement: dict[str, Any], proof: LogStarProof, **over: Any
) -> None:
    pi_log_star.verify(
        over.get("ctx", CTX),
        over.get("pk", setup.pk),
        statement["C"],
        statement["X"],
        statement["B"],
        over.get("aux", setup.aux),
        proof,
    )


def test_completeness(setup: PaillierSetup, case: Case) -> None:
    _verify(setup, case.statement(), case.proof)


@pytest.mark.parametrize(
    "x", [1, -1, (1 << (ELL - 1)), -(1 << (ELL - 1))], ids=["1", "-1", "max", "min"]
)
def test_completeness_edges_without_secret_key(setup: PaillierSetup, x: int) -> None:
    C, X, B, rho = make_statement(setup, x)
    proof = pi_log_star.prove(CTX, setup.pk, C, X, B, x, rho, setup.aux)
    _verify(setup, {"C": C, "X": X, "B": B}, proof)


def test_base_point_G(setup: PaillierSetup) -> None:
    """ψ′ of cggmp21 uses B = G."""
    x = random_signed(1 << ELL)
    C, rho = setup.pk.encrypt(x)
    proof = pi_log_star.prove(CTX, setup.pk, C, G * x, G, x, rho, setup.aux)
    _verify(setup, {"C": C, "X": G * x, "B": G}, proof)


def test_encoding_round_trip(setup: PaillierSetup, case: Case) -> None:
    data = case.proof.encode()
    decoded = LogStarProof.decode(data)
    assert decoded == case.proof
    assert decoded.encode() == data
    _verify(setup, case.statement(), decoded)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],
        lambda d: d + b"\x00\x00\x00\x01\x00",
        lambda d: b"",
        lambda d: d[:4] + b"\x05" + d[5:],
        lambda d: d[:5] + b"\xff" * 32 + d[37:],
    ],
    ids=["truncated", "extra-field", "empty", "bad-point-prefix", "non-canonical-point"],
)
def test_decode_rejects_malformed(case: Case, mangle: Callable[[bytes], bytes]) -> None:
    with pytest.raises(InvalidProof):
        LogStarProof.decode(mangle(case.proof.encode()))


@pytest.mark.parametrize("field", proof_field_names(LogStarProof(0, 0, G, 0, 0, 0, 0)))
def test_tampered_proof_field(setup: PaillierSetup, case: Case, field: str) -> None:
    bad = dataclasses.replace(case.proof, **{field: tampered(getattr(case.proof, field))})
    with pytest.raises(InvalidProof):
        _verify(setup, case.statement(), bad)


@pytest.mark.parametrize("name", STATEMENT)
def test_tampered_statement(setup: PaillierSetup, case: Case, name: str) -> None:
    statement = case.statement(**{name: tampered(getattr(case, name))})
    with pytest.raises(InvalidProof):
        _verify(setup, statement, case.proof)


def test_tampered_statement_N0(setup: PaillierSetup, case: Case) -> None:
    with pytest.raises(InvalidProof):
        _verify(setup, case.statement(), case.proof, pk=setup.other_pk)
    with pytest.raises(InvalidProof):
        _verify(setup, case.statement(), case.proof, pk=PaillierPublicKey(setup.pk.n + 2))


@pytest.mark.parametrize("part", ["n", "s", "t", "swap"])
def test_tampered_aux(setup: PaillierSetup, case: Case, part: str) -> None:
    aux = setup.aux
    bad = {
        "n": RingPedersenParams(setup.pk.n, aux.s, aux.t),
        "s": RingPedersenParams(aux.n, aux.s * aux.s % aux.n, aux.t),
        "t": RingPedersenParams(aux.n, aux.s, aux.t * aux.t % aux.n),
        "swap": RingPedersenParams(aux.n, aux.t, aux.s),
    }[part]
    with pytest.raises(InvalidProof):
        _verify(setup, case.statement(), case.proof, aux=bad)


@pytest.mark.parametrize("which", sorted(OTHER_CONTEXTS))
def test_other_context(setup: PaillierSetup, case: Case, which: str) -> None:
    with pytest.raises(InvalidProof):
        _verify(setup, case.statement(), case.proof, ctx=OTHER_CONTEXTS[which])


def _with(c: Case, **over: Any) -> LogStarProof:
    return dataclasses.replace(c.proof, **over)


NON_MEMBERS: dict[str, Callable[[PaillierSetup, Case], tuple[dict[str, Any], LogStarProof]]] = {
    "C+N0²": lambda s, c: (c.statement(C=c.C + s.pk.n_squared), c.proof),
    "C=p·C": lambda s, c: (c.statement(C=c.C * s.sk.p % s.pk.n_squared), c.proof),
    "C=0": lambda s, c: (c.statement(C=0), c.proof),
    "A+N0²": lambda s, c: (c.statement(), _with(c, A=c.proof.A + s.pk.n_squared)),
    "A=q": lambda s, c: (c.statement(), _with(c, A=s.sk.q)),
    "S+N̂": lambda s, c: (c.statement(), _with(c, S=c.proof.S + s.aux.n)),
    "S=0": lambda s, c: (c.statement(), _with(c, S=0)),
    "D+N̂": lambda s, c: (c.statement(), _with(c, D=c.proof.D + s.aux.n)),
    "D=-D": lambda s, c: (c.statement(), _with(c, D=-c.proof.D)),
    "z2+N0": lambda s, c: (c.statement(), _with(c, z2=c.proof.z2 + s.pk.n)),
    "z2=q": lambda s, c: (c.statement(), _with(c, z2=s.sk.q)),
}


@pytest.mark.parametrize("name", sorted(NON_MEMBERS))
def test_rejects_non_members(setup: PaillierSetup, case: Case, name: str) -> None:
    statement, proof = NON_MEMBERS[name](setup, case)
    with pytest.raises(InvalidProof, match="∉"):
        _verify(setup, statement, proof)


@pytest.mark.parametrize(
    ("where", "field", "value", "message"),
    [
        ("statement", "B", SECP256K1.identity(), "B is the identity"),
        ("statement", "X", SECP256K1.identity(), "X is the identity"),
        ("statement", "B", ED25519.generator(), "secp256k1"),
        ("proof", "Y", SECP256K1.identity(), "Y is the identity"),
        ("proof", "z1", 1 << 20000, "too large"),
        ("proof", "z3", -(1 << 20000), "too large"),
    ],
    ids=["B=O", "X=O", "B-ed25519", "Y=O", "z1-huge", "z3-huge"],
)
def test_rejects_degenerate_values(
    setup: PaillierSetup, case: Case, where: str, field: str, value: Any, message: str
) -> None:
    statement = case.statement(**{field: value}) if where == "statement" else case.statement()
    proof = _with(case, **{field: value}) if where == "proof" else case.proof
    with pytest.raises(InvalidProof, match=message):
        _verify(setup, statement, proof)


def test_rejects_undersized_moduli(setup: PaillierSetup) -> None:
    """Alpha-Rays: a valid proof under a 2048-bit N₀ or N̂ is refused for the modulus size."""
    x = 4242
    B = G * 7
    small_pk = setup.small_sk.public
    C, rho = small_pk.encrypt(x)
    proof = pi_log_star._prove(CTX, small_pk, C, B * x, B, x, rho, setup.aux, None, None)
    with pytest.raises(InvalidProof, match="bits"):
        _verify(setup, {"C": C, "X": B * x, "B": B}, proof, pk=small_pk)
    with pytest.raises(InvalidInput):
        pi_log_star.prove(CTX, small_pk, C, B * x, B, x, rho, setup.aux)

    C, rho = setup.pk.encrypt(x)
    small_aux = setup.small_rp.params
    proof = pi_log_star._prove(CTX, setup.pk, C, B * x, B, x, rho, small_aux, None, None)
    with pytest.raises(InvalidProof, match="bits"):
        _verify(setup, {"C": C, "X": B * x, "B": B}, proof, aux=small_aux)
    with pytest.raises(InvalidInput):
        pi_log_star.prove(CTX, setup.pk, C, B * x, B, x, rho, small_aux)


@pytest.mark.parametrize(
    "x",
    [
        1 << (ELL + EPS),
        -(1 << (ELL + EPS)),
        (1 << (ELL + EPS + 200)) + 5,
        (1 << 3000) - 1,
    ],
    ids=["2^(l+e)", "-2^(l+e)", "2^(l+e+200)", "2^3000"],
)
def test_false_statement_out_of_range_plaintext(setup: PaillierSetup, x: int) -> None:
    """C encrypts x far outside I(2^(ℓ+ε)) and X = x·B is consistent: only the range check can
    reject, and it does. The prover refuses such an x."""
    C, X, B, rho = make_statement(setup, x)
    with pytest.raises(InvalidInput):
        pi_log_star.prove(CTX, setup.pk, C, X, B, x, rho, setup.aux)
    proof = pi_log_star._prove(CTX, setup.pk, C, X, B, x, rho, setup.aux, None, setup.sk)
    with pytest.raises(InvalidProof, match="z1|too large"):
        _verify(setup, {"C": C, "X": X, "B": B}, proof)


@pytest.mark.parametrize("x", [(1 << (ELL - 1)) + 1, -(1 << (ELL - 1)) - 1], ids=["max+1", "min-1"])
def test_prover_refuses_witness_just_outside(setup: PaillierSetup, x: int) -> None:
    C, X, B, rho = make_statement(setup, x)
    with pytest.raises(InvalidInput):
        pi_log_star.prove(CTX, setup.pk, C, X, B, x, rho, setup.aux)


def test_prover_refuses_inconsistent_X(setup: PaillierSetup, case: Case) -> None:
    with pytest.raises(InvalidInput):
        pi_log_star.prove(CTX, setup.pk, case.C, case.X + G, case.B, case.x, case.rho, setup.aux)


@pytest.mark.parametrize("wrong", ["x", "X"])
def test_wrong_witness_rejected(setup: PaillierSetup, case: Case, wrong: str) -> None:
    """In range but inconsistent: x ≠ dec(C) (X = x·B), or X ≠ x·B (x = dec(C))."""
    if wrong == "x":
        x = case.x + 1
        statement = case.statement(X=case.B * x)
    else:
        x = case.x
        statement = case.statement(X=case.X + G)
    proof = pi_log_star._prove(
        CTX, setup.pk, case.C, statement["X"], case.B, x, case.rho, setup.aux, None, setup.sk
    )
    with pytest.raises(InvalidProof, match="enc" if wrong == "x" else "z1·B"):
        _verify(setup, statement, proof)
