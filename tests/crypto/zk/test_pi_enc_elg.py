"""Π-enc-elg at production size (3072-bit N₀ and N̂, SECURITY_128, secp256k1): completeness,
encoding, tampering, context binding, false statements and the exact range check on z₁."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mpcnode.crypto import bigint
from mpcnode.crypto.bigint import random_signed
from mpcnode.crypto.group import ED25519, SECP256K1, Point
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk import pi_enc_elg
from mpcnode.crypto.zk.pi_enc_elg import EncElgProof
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
Z1_MAX = 1 << (ELL + EPS - 1)
STATEMENT = ("C", "A", "B", "X")


@dataclasses.dataclass(frozen=True)
class Case:
    C: int
    A: Point
    B: Point
    X: Point
    x: int
    rho: int
    b: int
    proof: EncElgProof

    def statement(self, **over: Any) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in STATEMENT}
        values.update(over)
        return values


@pytest.fixture(scope="module")
def setup() -> PaillierSetup:
    return paillier_setup()


def make_statement(setup: PaillierSetup, x: int) -> tuple[int, Point, Point, Point, int, int]:
    """(C, A, B, X, ρ, b) with C = enc(x; ρ), A = a·G, B = b·G, X = (a·b + x)·G."""
    a, b = SECP256K1.random_scalar(), SECP256K1.random_scalar()
    C, rho = setup.pk.encrypt(x)
    return C, G * a, G * b, G * (a * b + x), rho, b


@pytest.fixture(scope="module")
def case(setup: PaillierSetup) -> Case:
    x = random_signed(1 << ELL)
    C, A, B, X, rho, b = make_statement(setup, x)
    proof = pi_enc_elg.prove(CTX, setup.pk, C, A, B, X, x, rho, b, setup.aux, sk=setup.sk)
    return Case(C, A, B, X, x, rho, b, proof)


def _verify(
    setup: PaillierSetup, statement: dict[str, Any], proof: EncElgProof, **over: Any
) -> None:
    pi_enc_elg.verify(
        over.get("ctx", CTX),
        over.get("pk", setup.pk),
        statement["C"],
        statement["A"],
        statement["B"],
        statement["X"],
        over.get("aux", setup.aux),
        proof,
    )


def test_completeness(setup: PaillierSetup, case: Case) -> None:
    _verify(setup, case.statement(), case.proof)


@pytest.mark.parametrize(
    "x", [0, -1, (1 << (ELL - 1)), -(1 << (ELL - 1))], ids=["0", "-1", "max", "min"]
)
def test_completeness_edges_without_secret_key(setup: PaillierSetup, x: int) -> None:
    C, A, B, X, rho, b = make_statement(setup, x)
    proof = pi_enc_elg.prove(CTX, setup.pk, C, A, B, X, x, rho, b, setup.aux)
    _verify(setup, {"C": C, "A": A, "B": B, "X": X}, proof)


def test_encoding_round_trip(setup: PaillierSetup, case: Case) -> None:
    data = case.proof.encode()
    decoded = EncElgProof.decode(data)
    assert decoded == case.proof
    assert decoded.encode() == data
    _verify(setup, case.statement(), decoded)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],
        lambda d: d + b"\x00\x00\x00\x01\x00",
        lambda d: b"",
        lambda d: d[:4] + b"\x04" + d[5:],  # Y: not a compressed SEC1 prefix
        lambda d: d[:5] + b"\xff" * 32 + d[37:],  # Y: x-coordinate >= field prime
    ],
    ids=["truncated", "extra-field", "empty", "bad-point-prefix", "non-canonical-point"],
)
def test_decode_rejects_malformed(case: Case, mangle: Callable[[bytes], bytes]) -> None:
    with pytest.raises(InvalidProof):
        EncElgProof.decode(mangle(case.proof.encode()))


@pytest.mark.parametrize("field", proof_field_names(EncElgProof(0, 0, 0, G, G, 0, 0, 0, 0)))
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


NON_MEMBERS: dict[str, Callable[[PaillierSetup, Case], tuple[dict[str, Any], EncElgProof]]] = {
    "C+N0²": lambda s, c: (c.statement(C=c.C + s.pk.n_squared), c.proof),
    "C=p": lambda s, c: (c.statement(C=s.sk.p), c.proof),
    "C=0": lambda s, c: (c.statement(C=0), c.proof),
    "D+N0²": lambda s, c: (
        c.statement(),
        dataclasses.replace(c.proof, D=c.proof.D + s.pk.n_squared),
    ),
    "D=q·D": lambda s, c: (
        c.statement(),
        dataclasses.replace(c.proof, D=c.proof.D * s.sk.q % s.pk.n_squared),
    ),
    "S+N̂": lambda s, c: (c.statement(), dataclasses.replace(c.proof, S=c.proof.S + s.aux.n)),
    "S=0": lambda s, c: (c.statement(), dataclasses.replace(c.proof, S=0)),
    "T+N̂": lambda s, c: (c.statement(), dataclasses.replace(c.proof, T=c.proof.T + s.aux.n)),
    "T=-T": lambda s, c: (c.statement(), dataclasses.replace(c.proof, T=-c.proof.T)),
    "z2+N0": lambda s, c: (c.statement(), dataclasses.replace(c.proof, z2=c.proof.z2 + s.pk.n)),
    "z2=p": lambda s, c: (c.statement(), dataclasses.replace(c.proof, z2=s.sk.p)),
}


@pytest.mark.parametrize("name", sorted(NON_MEMBERS))
def test_rejects_non_members(setup: PaillierSetup, case: Case, name: str) -> None:
    statement, proof = NON_MEMBERS[name](setup, case)
    with pytest.raises(InvalidProof, match="∉"):
        _verify(setup, statement, proof)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Y", SECP256K1.identity(), "identity"),
        ("Z", SECP256K1.identity(), "identity"),
        ("Y", ED25519.generator(), "secp256k1"),
        ("w", 0, "w not in"),
        ("w", SECP256K1.order, "w not in"),
        ("w", -1, "w not in"),
        ("z1", 1 << 20000, "too large"),
        ("z3", -(1 << 20000), "too large"),
    ],
    ids=["Y=O", "Z=O", "Y-ed25519", "w=0", "w=q", "w=-1", "z1-huge", "z3-huge"],
)
def test_rejects_degenerate_proof_values(
    setup: PaillierSetup, case: Case, field: str, value: Any, message: str
) -> None:
    with pytest.raises(InvalidProof, match=message):
        _verify(setup, case.statement(), dataclasses.replace(case.proof, **{field: value}))


def test_rejects_statement_point_of_other_curve(setup: PaillierSetup, case: Case) -> None:
    with pytest.raises(InvalidProof, match="secp256k1"):
        _verify(setup, case.statement(A=ED25519.generator()), case.proof)


def test_rejects_undersized_moduli(setup: PaillierSetup) -> None:
    """Alpha-Rays: a valid proof under a 2048-bit N₀ or N̂ is refused for the modulus size."""
    x = 777
    a, b = 5, 9
    A, B, X = G * a, G * b, G * (a * b + x)
    small_pk = setup.small_sk.public
    C, rho = small_pk.encrypt(x)
    proof = pi_enc_elg._prove(CTX, small_pk, C, A, B, X, x, rho, b, setup.aux, None, None)
    statement = {"C": C, "A": A, "B": B, "X": X}
    with pytest.raises(InvalidProof, match="bits"):
        _verify(setup, statement, proof, pk=small_pk)
    with pytest.raises(InvalidInput):
        pi_enc_elg.prove(CTX, small_pk, C, A, B, X, x, rho, b, setup.aux)

    C, rho = setup.pk.encrypt(x)
    small_aux = setup.small_rp.params
    proof = pi_enc_elg._prove(CTX, setup.pk, C, A, B, X, x, rho, b, small_aux, None, None)
    statement = {"C": C, "A": A, "B": B, "X": X}
    with pytest.raises(InvalidProof, match="bits"):
        _verify(setup, statement, proof, aux=small_aux)
    with pytest.raises(InvalidInput):
        pi_enc_elg.prove(CTX, setup.pk, C, A, B, X, x, rho, b, small_aux)


@pytest.mark.parametrize(
    "x",
    [
        1 << (ELL + EPS),
        -(1 << (ELL + EPS)),
        (1 << (ELL + EPS + 200)) + 3,
        -(1 << 3000),
    ],
    ids=["2^(l+e)", "-2^(l+e)", "2^(l+e+200)", "-2^3000"],
)
def test_false_statement_out_of_range_plaintext(setup: PaillierSetup, x: int) -> None:
    """C encrypts x far outside I(2^(ℓ+ε)) and X = (a·b + x)·G is consistent: only the range
    check can reject, and it does. The prover refuses such an x."""
    C, A, B, X, rho, b = make_statement(setup, x)
    with pytest.raises(InvalidInput):
        pi_enc_elg.prove(CTX, setup.pk, C, A, B, X, x, rho, b, setup.aux)
    proof = pi_enc_elg._prove(CTX, setup.pk, C, A, B, X, x, rho, b, setup.aux, None, setup.sk)
    with pytest.raises(InvalidProof, match="z1|too large"):
        _verify(setup, {"C": C, "A": A, "B": B, "X": X}, proof)


@pytest.mark.parametrize("x", [(1 << (ELL - 1)) + 1, -(1 << (ELL - 1)) - 1], ids=["max+1", "min-1"])
def test_prover_refuses_witness_just_outside(setup: PaillierSetup, x: int) -> None:
    C, A, B, X, rho, b = make_statement(setup, x)
    with pytest.raises(InvalidInput):
        pi_enc_elg.prove(CTX, setup.pk, C, A, B, X, x, rho, b, setup.aux)


def test_prover_refuses_wrong_b(setup: PaillierSetup, case: Case) -> None:
    with pytest.raises(InvalidInput):
        pi_enc_elg.prove(
            CTX, setup.pk, case.C, case.A, case.B, case.X, case.x, case.rho, case.b + 1, setup.aux
        )


@pytest.mark.parametrize("wrong", ["x", "b", "X"])
def test_wrong_witness_rejected(setup: PaillierSetup, case: Case, wrong: str) -> None:
    """In-range but inconsistent witnesses (x ≠ dec C, b with B ≠ b·G, X ≠ (ab + x)·G)."""
    x = case.x + 1 if wrong == "x" else case.x
    b = case.b + 1 if wrong == "b" else case.b
    statement = case.statement(X=case.X + G) if wrong == "X" else case.statement()
    proof = pi_enc_elg._prove(
        CTX,
        setup.pk,
        case.C,
        case.A,
        case.B,
        statement["X"],
        x,
        case.rho,
        b,
        setup.aux,
        None,
        setup.sk,
    )
    with pytest.raises(InvalidProof):
        _verify(setup, statement, proof)


@pytest.fixture
def forced_alpha(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Make the prover's α ← I(2^(ℓ+ε)) the value pushed into the returned list."""
    chosen: list[int] = []
    real = bigint.random_signed

    def fake(bound: int, rng: bigint.RandomBytes | None = None) -> int:
        if bound == 1 << (ELL + EPS) and chosen:
            return chosen.pop()
        return real(bound, rng)

    monkeypatch.setattr(pi_enc_elg, "random_signed", fake)
    yield chosen


@pytest.mark.parametrize(
    ("alpha", "accept"),
    [(Z1_MAX, True), (-Z1_MAX, True), (Z1_MAX + 1, False), (-Z1_MAX - 1, False)],
    ids=["max", "min", "max+1", "min-1"],
)
def test_z1_range_check_is_exact(
    setup: PaillierSetup, forced_alpha: list[int], alpha: int, accept: bool
) -> None:
    """With x = 0, z₁ = α whatever e is: every equation holds, so only |z₁| <= 2^(ℓ+ε−1)
    decides, at exactly the bound and one past it, both signs."""
    C, A, B, X, rho, b = make_statement(setup, 0)
    forced_alpha.append(alpha)
    proof = pi_enc_elg._prove(CTX, setup.pk, C, A, B, X, 0, rho, b, setup.aux, None, setup.sk)
    assert proof.z1 == alpha
    statement = {"C": C, "A": A, "B": B, "X": X}
    if accept:
        _verify(setup, statement, proof)
    else:
        with pytest.raises(InvalidProof, match="z1"):
            _verify(setup, statement, proof)
