"""Π-aff-g at production size (SECURITY_128, 3072-bit moduli from the fixture's 1536-bit primes).

Completeness, serialisation, one rejection per tampered proof field, statement value, aux
value and context, the false statements of the issue (x, y out of range; D, Y, X not matching
the witness) and key-size checks. Expensive setup (keys, an honest proof) is module-scoped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from mpcnode.crypto.bigint import random_signed, random_unit
from mpcnode.crypto.group import ED25519, Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk import pi_aff_g
from mpcnode.crypto.zk._common import CURVE
from mpcnode.crypto.zk.pi_aff_g import AffGProof, affine_statement, prove, verify
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    CTX,
    ELL,
    ELL_PRIME,
    EPS,
    AuxSuite,
    G,
    Keys,
    ProofSuite,
    Subject,
    proof_field_names,
)


@dataclass(frozen=True)
class Setup:
    sk_j: PaillierSecretKey
    sk_i: PaillierSecretKey
    keys: Keys
    C: int
    c: int
    x: int
    y: int
    rho: int
    rho_y: int
    D: int
    Y: int
    X: Point
    proof: AffGProof

    @property
    def pk_j(self) -> PaillierPublicKey:
        return self.sk_j.public

    @property
    def pk_i(self) -> PaillierPublicKey:
        return self.sk_i.public

    @property
    def aux(self) -> RingPedersenParams:
        return self.keys.aux

    @property
    def subject(self) -> Subject:
        """The honest proof and verify's arguments: ctx, pk_j, pk_i, C, D, Y, X, aux."""
        statement = {"pk_j": self.pk_j, "pk_i": self.pk_i, "C": self.C, "D": self.D, "Y": self.Y}
        return Subject(self.proof, verify, {"ctx": CTX, **statement, "X": self.X, "aux": self.aux})


@pytest.fixture(scope="module")
def s(keys: Keys) -> Setup:
    sk_j = keys.other_sk  # verifier j: C, D live under N_j
    sk_i = keys.sk  # prover i: Y lives under N_i
    aux = keys.aux  # verifier's (N̂, s, t)
    c = random_signed(CURVE.order)  # k_j of presigning: signed scalar
    C, _ = sk_j.public.encrypt(c)
    x = random_signed(2**ELL)
    y = random_signed(2**ELL_PRIME)
    rho = random_unit(sk_j.n)
    rho_y = random_unit(sk_i.n)
    D, Y, X = affine_statement(sk_j.public, sk_i.public, C, x, y, rho, rho_y)
    proof = prove(CTX, sk_j.public, sk_i.public, C, D, Y, X, x, y, rho, rho_y, aux)
    return Setup(sk_j, sk_i, keys, C, c, x, y, rho, rho_y, D, Y, X, proof)


@pytest.fixture(scope="module")
def subject(s: Setup) -> Subject:
    return s.subject


class TestCommon(ProofSuite, AuxSuite):
    PROOF = AffGProof
    FIRST_EQUATION = "Paillier equation on N_j"
    N_POINTS = 1


def _prove_for(
    s: Setup, x: int, y: int, *, checked: bool = True
) -> tuple[int, int, Point, AffGProof]:
    """An honest statement (D, Y, X) for (x, y) on the setup's C, and a proof of it."""
    D, Y, X = affine_statement(s.pk_j, s.pk_i, s.C, x, y, s.rho, s.rho_y)
    make = pi_aff_g.prove if checked else pi_aff_g._prove
    proof = make(CTX, s.pk_j, s.pk_i, s.C, D, Y, X, x, y, s.rho, s.rho_y, s.aux)
    return D, Y, X, proof


# --------------------------------------------------------------------------- completeness


def test_statement_helper_is_the_affine_operation(s: Setup) -> None:
    # D decrypts to x·c + y under N_j (no wrap: |x·c + y| << N_j/2), Y to y under N_i.
    assert s.sk_j.decrypt(s.D) == s.x * s.c + s.y
    assert s.sk_i.decrypt(s.Y) == s.y
    assert s.X == CURVE.base_mul(s.x)


@pytest.mark.parametrize("sign", [1, -1])
def test_completeness_at_witness_bounds(s: Setup, sign: int) -> None:
    x, y = sign * (2 ** (ELL - 1)), sign * (2 ** (ELL_PRIME - 1))
    D, Y, X, proof = _prove_for(s, x, y)
    s.subject.check(proof, D=D, Y=Y, X=X)


def test_completeness_with_prover_secret_key(s: Setup) -> None:
    # sk_i computes B_y = enc_{N_i}(β; r_y) by CRT; the proof is the same kind of object.
    args = (CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, s.X, s.x, s.y, s.rho, s.rho_y, s.aux)
    s.subject.check(prove(*args, sk_i=s.sk_i))
    with pytest.raises(InvalidInput, match="secret key"):
        prove(*args, sk_i=s.sk_j)


def test_proofs_are_randomised(s: Setup) -> None:
    _, _, _, again = _prove_for(s, s.x, s.y)
    assert again.A != s.proof.A and again.z1 != s.proof.z1


# --------------------------------------------------------------------------- serialisation


# --------------------------------------------------------------------------- tampered proof

PROOF_FIELDS = proof_field_names(AffGProof)


def _bump(s: Setup, name: str) -> Any:
    """A different, still well-formed value for proof field `name`."""
    value = getattr(s.proof, name)
    if name == "B_x":
        return value + G
    if name in ("A",):
        return value * (1 + s.pk_j.n) % s.pk_j.n_squared  # ⊕ enc(1; 1): still a unit
    if name == "B_y":
        return value * (1 + s.pk_i.n) % s.pk_i.n_squared
    if name in ("E", "S", "F", "T"):
        return value * s.aux.t % s.aux.n  # still a unit mod N̂
    if name == "w":
        return value * 2 % s.pk_j.n
    if name == "w_y":
        return value * 2 % s.pk_i.n
    return value + 1  # z1..z4


# The first check each tamper trips: a changed first-message value changes e, so the first
# equation fails; each response is caught by the one equation it appears in first.
FIRST_FAILURE = {
    **{name: "equation on N_j" for name in ("A", "B_x", "B_y", "E", "S", "F", "T")},
    "z1": "equation on N_j",
    "z2": "equation on N_j",
    "z3": "ring-Pedersen equation for z1",
    "z4": "ring-Pedersen equation for z2",
    "w": "equation on N_j",
    "w_y": "equation on N_i",
}


@pytest.mark.parametrize("name", PROOF_FIELDS)
def test_rejects_tampered_proof_field(s: Setup, name: str) -> None:
    tampered = replace(s.proof, **{name: _bump(s, name)})
    with pytest.raises(InvalidProof, match=FIRST_FAILURE[name]):
        s.subject.check(tampered)


@pytest.mark.parametrize("name", ["z1", "z2", "z3", "z4"])
def test_rejects_negated_response(s: Setup, name: str) -> None:
    tampered = replace(s.proof, **{name: -getattr(s.proof, name)})
    with pytest.raises(InvalidProof):
        s.subject.check(tampered)


NON_ELEMENTS: dict[str, Callable[[Setup], dict[str, Any]]] = {
    "A=0": lambda s: {"A": 0},
    "A=N_j²": lambda s: {"A": s.pk_j.n_squared},
    "A=N_j² + A": lambda s: {"A": s.pk_j.n_squared + s.proof.A},
    "A multiple of p_j": lambda s: {"A": s.sk_j.p * 5},
    "B_y=0": lambda s: {"B_y": 0},
    "B_y=N_i": lambda s: {"B_y": s.pk_i.n},
    "B_y negative": lambda s: {"B_y": -s.proof.B_y},
    "B_x=O": lambda s: {"B_x": CURVE.identity()},
    "E=0": lambda s: {"E": 0},
    "S=N̂": lambda s: {"S": s.aux.n},
    "F=N̂+F": lambda s: {"F": s.aux.n + s.proof.F},
    "T=-T": lambda s: {"T": -s.proof.T},
    "w=0": lambda s: {"w": 0},
    "w=N_j": lambda s: {"w": s.pk_j.n},
    "w=w+N_j": lambda s: {"w": s.proof.w + s.pk_j.n},
    "w_y=p_i": lambda s: {"w_y": s.sk_i.p},
    "w_y=w_y+N_i": lambda s: {"w_y": s.proof.w_y + s.pk_i.n},
    "z1 huge": lambda s: {"z1": s.proof.z1 << 4000},
    "z2 huge": lambda s: {"z2": -(s.proof.z2 << 4000)},
    "z3 huge": lambda s: {"z3": s.proof.z3 << 4000},
    "z4 huge": lambda s: {"z4": -(s.proof.z4 << 4000)},
}


@pytest.mark.parametrize("case", list(NON_ELEMENTS))
def test_rejects_proof_element_outside_its_group(s: Setup, case: str) -> None:
    tampered = replace(s.proof, **NON_ELEMENTS[case](s))
    with pytest.raises(InvalidProof, match="∉|identity|larger than"):
        s.subject.check(tampered)


# --------------------------------------------------------------------------- tampered statement


STATEMENT_TAMPERS: dict[str, Callable[[Setup], dict[str, object]]] = {
    "N_j": lambda s: {"pk_j": PaillierPublicKey(s.aux.n)},
    "N_i": lambda s: {"pk_i": PaillierPublicKey(s.keys.other_aux.n)},
    "N_j<->N_i": lambda s: {"pk_j": s.pk_i, "pk_i": s.pk_j},
    "C": lambda s: {"C": s.pk_j.add(s.C, s.pk_j.encrypt_with(1, 1))},
    "D": lambda s: {"D": s.pk_j.add(s.D, s.pk_j.encrypt_with(1, 1))},
    "Y": lambda s: {"Y": s.pk_i.add(s.Y, s.pk_i.encrypt_with(1, 1))},
    "X": lambda s: {"X": s.X + G},
    "X=-X": lambda s: {"X": -s.X},
}


@pytest.mark.parametrize("name", list(STATEMENT_TAMPERS))
def test_rejects_tampered_statement(s: Setup, name: str) -> None:
    with pytest.raises(InvalidProof):
        s.subject.check(**STATEMENT_TAMPERS[name](s))


STATEMENT_NON_ELEMENTS: dict[str, Callable[[Setup], dict[str, object]]] = {
    "C=0": lambda s: {"C": 0},
    "C=N_j²": lambda s: {"C": s.pk_j.n_squared},
    "D multiple of q_j": lambda s: {"D": s.sk_j.q * 3},
    "D=-D": lambda s: {"D": -s.D},
    "Y=N_i": lambda s: {"Y": s.pk_i.n},
    "Y=Y+N_i²": lambda s: {"Y": s.Y + s.pk_i.n_squared},
    "X on ed25519": lambda s: {"X": ED25519.generator()},
}


@pytest.mark.parametrize("case", list(STATEMENT_NON_ELEMENTS))
def test_rejects_statement_element_outside_its_group(s: Setup, case: str) -> None:
    with pytest.raises(InvalidProof, match="∉|not a secp256k1"):
        s.subject.check(**STATEMENT_NON_ELEMENTS[case](s))


# --------------------------------------------------------------------------- Fiat-Shamir


def _e(s: Setup, proof: AffGProof | None = None, **changes: Any) -> int:
    """The challenge e the verifier derives for `proof` (default: the setup's) and the setup's
    statement with `changes` (ctx, pk_j, pk_i, C, D, Y, X, aux)."""
    args: dict[str, Any] = {**s.subject.args, **changes}
    p = proof if proof is not None else s.proof
    tr = pi_aff_g._transcript(**args)
    return pi_aff_g._challenge(tr, p.A, p.B_x, p.B_y, p.E, p.S, p.F, p.T)


BINDING: dict[str, Callable[[Setup], dict[str, Any]]] = {
    "N_j": lambda s: {"pk_j": PaillierPublicKey(s.pk_j.n + 2)},
    "N_i": lambda s: {"pk_i": PaillierPublicKey(s.pk_i.n + 2)},
    "C": lambda s: {"C": s.C + 1},
    "D": lambda s: {"D": s.D + 1},
    "Y": lambda s: {"Y": s.Y + 1},
    "X": lambda s: {"X": s.X + G},
    "N̂": lambda s: {"aux": RingPedersenParams(s.aux.n + 2, s.aux.s, s.aux.t)},
    "s": lambda s: {"aux": RingPedersenParams(s.aux.n, s.aux.s + 1, s.aux.t)},
    "t": lambda s: {"aux": RingPedersenParams(s.aux.n, s.aux.s, s.aux.t + 1)},
    "sid": lambda s: {"ctx": replace(CTX, sid=CTX.sid + b"!")},
    "prover": lambda s: {"ctx": replace(CTX, prover=CTX.prover + 1)},
    "instance": lambda s: {"ctx": replace(CTX, instance="hat=true")},
}


@pytest.mark.parametrize("name", list(BINDING))
def test_challenge_binds_every_statement_value(s: Setup, name: str) -> None:
    # Every statement value, the verifier's aux and the context are absorbed before e is
    # drawn (a value left out could be chosen after seeing e).
    assert _e(s, **BINDING[name](s)) != _e(s)


@pytest.mark.parametrize("name", ["A", "B_x", "B_y", "E", "S", "F", "T"])
def test_challenge_binds_every_first_message_value(s: Setup, name: str) -> None:
    assert _e(s, replace(s.proof, **{name: _bump(s, name)})) != _e(s)


def test_challenge_is_drawn_from_I_q(s: Setup) -> None:
    # e ∈ I(q) = [-(q-1)/2, (q-1)/2] (cggmp24), not a 128-bit challenge: over many transcripts
    # every e is in range, both signs occur and the magnitudes reach the order's size.
    q = CURVE.order
    draws = [_e(s, ctx=replace(CTX, instance=str(k))) for k in range(200)]
    assert all(abs(e) <= (q - 1) // 2 for e in draws)
    assert any(e < 0 for e in draws) and any(e > 0 for e in draws)
    assert sum(abs(e) > 2**250 for e in draws) > 150
    assert _e(s) == _e(s)  # deterministic


# --------------------------------------------------------------------------- false statements


def _false_proofs(
    s: Setup, x: int, y: int, field: str, wanted: list[Callable[[int], bool]]
) -> list[tuple[int, int, Point, AffGProof]]:
    """Proofs for the honest statement of an out-of-range witness (x, y), built without the
    prover's range checks: for each predicate in `wanted`, the first proof whose response
    `field` satisfies it (the prover's randomness and e vary, the statement does not)."""
    D, Y, X = affine_statement(s.pk_j, s.pk_i, s.C, x, y, s.rho, s.rho_y)
    found: list[tuple[int, int, Point, AffGProof] | None] = [None] * len(wanted)
    for _ in range(100):
        proof = pi_aff_g._prove(CTX, s.pk_j, s.pk_i, s.C, D, Y, X, x, y, s.rho, s.rho_y, s.aux)
        value = getattr(proof, field)
        for k, predicate in enumerate(wanted):
            if found[k] is None and predicate(value):
                found[k] = (D, Y, X, proof)
        if all(f is not None for f in found):
            return [f for f in found if f is not None]
    raise AssertionError("no proof with the wanted responses in 100 tries")


def _any(z: int) -> bool:
    return True


@pytest.mark.parametrize("sign", [1, -1])
def test_rejects_x_outside_range(s: Setup, sign: int) -> None:
    # The range check has slack 2^ε·q: only an x with |e·x| well above 2^(ℓ+ε-1) is caught
    # for every challenge e, so take |x| = 2^(ℓ+ε). Every equation holds; the range check
    # alone rejects (both signs of z1 near the bound: test_range_check_bound_is_exact_half_range).
    x = sign * 2 ** (ELL + EPS)
    with pytest.raises(InvalidInput, match="witness x out of range"):
        prove(CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, s.X, x, s.y, s.rho, s.rho_y, s.aux)
    for D, Y, X, proof in _false_proofs(s, x, s.y, "z1", [_any]):
        with pytest.raises(InvalidProof, match="z1 out of range"):
            s.subject.check(proof, D=D, Y=Y, X=X)


@pytest.mark.parametrize("sign", [1, -1])
def test_rejects_y_outside_range(s: Setup, sign: int) -> None:
    y = sign * 2 ** (ELL_PRIME + EPS)
    with pytest.raises(InvalidInput, match="witness y out of range"):
        prove(CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, s.X, s.x, y, s.rho, s.rho_y, s.aux)
    for D, Y, X, proof in _false_proofs(s, s.x, y, "z2", [_any]):
        with pytest.raises(InvalidProof, match="z2 out of range"):
            s.subject.check(proof, D=D, Y=Y, X=X)


@pytest.mark.parametrize("field", ["z1", "z2"])
def test_range_check_bound_is_exact_half_range(s: Setup, field: str) -> None:
    # With |x| = 2^(ℓ+ε-255) (resp. |y| = 2^(ℓ′+ε-255)), |e·x| is comparable to the bound
    # B = 2^(ℓ+ε-1), so some proofs have B < |z1| <= 2B: inside cggmp21's full range ±2^(ℓ+ε)
    # but outside I(2^(ℓ+ε)). Both signs must be rejected.
    bits = (ELL if field == "z1" else ELL_PRIME) + EPS
    bound = 2 ** (bits - 1)
    witness = 2 ** (bits - 255)
    x, y = (witness, s.y) if field == "z1" else (s.x, witness)
    wanted = [lambda z: bound < z <= 2 * bound, lambda z: -2 * bound <= z < -bound]
    for D, Y, X, proof in _false_proofs(s, x, y, field, wanted):
        with pytest.raises(InvalidProof, match=f"{field} out of range"):
            s.subject.check(proof, D=D, Y=Y, X=X)


@pytest.mark.parametrize(
    "x_off, y_off", [(0, 1), (1, 0), (0, -(2**ELL_PRIME))], ids=["y+1", "x+1", "y-2^ℓ′"]
)
def test_rejects_d_not_matching_witness(s: Setup, x_off: int, y_off: int) -> None:
    # D = (x' ⊙ C) ⊕ enc(y'; ρ) for another (x', y') while Y and X are honest for (x, y).
    D_other = s.pk_j.add(s.pk_j.mul(s.x + x_off, s.C), s.pk_j.encrypt_with(s.y + y_off, s.rho))
    proof = prove(CTX, s.pk_j, s.pk_i, s.C, D_other, s.Y, s.X, s.x, s.y, s.rho, s.rho_y, s.aux)
    with pytest.raises(InvalidProof, match="equation on N_j"):
        s.subject.check(proof, D=D_other)


def test_rejects_y_not_matching_witness(s: Setup) -> None:
    Y_other = s.pk_i.encrypt_with(s.y + 1, s.rho_y)
    proof = prove(CTX, s.pk_j, s.pk_i, s.C, s.D, Y_other, s.X, s.x, s.y, s.rho, s.rho_y, s.aux)
    with pytest.raises(InvalidProof, match="equation on N_i"):
        s.subject.check(proof, Y=Y_other)


def test_rejects_x_point_not_matching_witness(s: Setup) -> None:
    X_other = CURVE.base_mul(s.x + 1)
    proof = prove(CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, X_other, s.x, s.y, s.rho, s.rho_y, s.aux)
    with pytest.raises(InvalidProof, match="group equation"):
        s.subject.check(proof, X=X_other)


@pytest.mark.parametrize(
    "x_off, y_off, message",
    [
        (2 ** (ELL - 1) + 1, 0, "witness x out of range"),
        (-(2 ** (ELL - 1)) - 1, 0, "witness x out of range"),
        (0, 2 ** (ELL_PRIME - 1) + 1, "witness y out of range"),
        (0, -(2 ** (ELL_PRIME - 1)) - 1, "witness y out of range"),
    ],
    ids=["x+", "x-", "y+", "y-"],
)
def test_prover_refuses_witness_just_outside_range(
    s: Setup, x_off: int, y_off: int, message: str
) -> None:
    # One past the bound on either side (x_off/y_off replace the setup's witness value).
    x = x_off or s.x
    y = y_off or s.y
    with pytest.raises(InvalidInput, match=message) as info:
        prove(CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, s.X, x, y, s.rho, s.rho_y, s.aux)
    assert str(abs(x_off or y_off)) not in str(info.value)


@pytest.mark.parametrize("which", ["rho", "rho_y"])
def test_prover_refuses_non_unit_nonce(s: Setup, which: str) -> None:
    rho = s.sk_j.p if which == "rho" else s.rho
    rho_y = s.sk_i.q if which == "rho_y" else s.rho_y
    with pytest.raises(InvalidInput, match="∉"):
        prove(CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, s.X, s.x, s.y, rho, rho_y, s.aux)


# --------------------------------------------------------------------------- parameter sizes


def test_rejects_short_keys_and_aux(s: Setup) -> None:
    short_pk = s.keys.small_sk.public  # 2048 bits < 3071
    short_aux = s.keys.small_rp.params
    for changes in ({"pk_j": short_pk}, {"pk_i": short_pk}, {"aux": short_aux}):
        with pytest.raises(InvalidProof, match="bits"):
            s.subject.check(**changes)
    with pytest.raises(InvalidInput):
        prove(CTX, short_pk, s.pk_i, s.C, s.D, s.Y, s.X, s.x, s.y, s.rho, s.rho_y, s.aux)
    with pytest.raises(InvalidInput):
        prove(CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, s.X, s.x, s.y, s.rho, s.rho_y, short_aux)


def test_rejects_even_modulus(s: Setup) -> None:
    even = PaillierPublicKey(s.pk_j.n + 1)
    with pytest.raises(InvalidProof, match="odd"):
        s.subject.check(pk_j=even)


def test_proof_encoding_is_public_only(s: Setup) -> None:
    # The proof carries no witness value in the clear.
    data = s.proof.encode()
    for secret in (s.x, s.y, s.rho, s.rho_y):
        digits = abs(secret).to_bytes((abs(secret).bit_length() + 7) // 8, "big")
        assert digits not in data


# --------------------------------------------------------------------------- verifier's CRT path


def _verify_crt(s: Setup, proof: AffGProof, **statement: Any) -> None:
    args = {"C": s.C, "D": s.D, "Y": s.Y, "X": s.X, **statement}
    verify(
        CTX, s.pk_j, s.pk_i, args["C"], args["D"], args["Y"], args["X"], s.aux, proof, sk_j=s.sk_j
    )


def test_crt_verification_accepts_the_honest_proof(s: Setup) -> None:
    _verify_crt(s, s.proof)


@pytest.mark.parametrize("name", ["A", "z1", "z2", "w"])
def test_crt_verification_rejects_what_the_plain_one_rejects(s: Setup, name: str) -> None:
    tampered = replace(s.proof, **{name: _bump(s, name)})
    with pytest.raises(InvalidProof, match="equation on N_j"):
        _verify_crt(s, tampered)


@pytest.mark.parametrize("off", [1, -1, CURVE.order])
def test_crt_verification_rejects_d_off_by_anything(s: Setup, off: int) -> None:
    D_other = s.pk_j.add(s.pk_j.mul(s.x + off, s.C), s.pk_j.encrypt_with(s.y, s.rho))
    proof = prove(CTX, s.pk_j, s.pk_i, s.C, D_other, s.Y, s.X, s.x, s.y, s.rho, s.rho_y, s.aux)
    with pytest.raises(InvalidProof, match="equation on N_j"):
        _verify_crt(s, proof, D=D_other)


def test_crt_verification_refuses_a_foreign_secret_key(s: Setup) -> None:
    with pytest.raises(InvalidInput):
        verify(CTX, s.pk_j, s.pk_i, s.C, s.D, s.Y, s.X, s.aux, s.proof, sk_j=s.sk_i)
