"""Π-prm at production size (SECURITY_128, N̂ = p̂·q̂ from the fixture's 1536-bit safe primes).

Completeness, serialisation, one rejection per tampered proof field, statement value and
context, m independent challenge bits, parameter validation, and the false statement
s ∉ ⟨t⟩ (s of Jacobi symbol −1 while t is a square) with a prover that guesses the challenge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from mpcnode.crypto.bigint import ModexpCounter, jacobi, powmod, random_below
from mpcnode.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from mpcnode.crypto.zk import pi_prm
from mpcnode.crypto.zk.pi_prm import PrmProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    CTX,
    OTHER_CONTEXTS,
    AuxSuite,
    Honest,
    Keys,
    M,
    ProofSuite,
    Subject,
    random_jacobi,
    replace_at,
)


@pytest.fixture(scope="module")
def honest(keys: Keys) -> Honest:
    return Honest.make(
        keys, lambda: pi_prm.prove(CTX, keys.aux, keys.rp), pi_prm.verify, ctx=CTX, params=keys.aux
    )


@pytest.fixture(scope="module")
def subject(honest: Honest) -> Subject:
    return honest.subject


class TestCommon(ProofSuite, AuxSuite):
    """Π-prm's statement is the ring-Pedersen parameters themselves (tampered as the aux)."""

    PROOF = PrmProof
    N_POINTS = None
    FIRST_EQUATION = "t\\^z_"
    AUX = "params"


# --------------------------------------------------------------------------- completeness


def test_modexp_counts(honest: Honest) -> None:
    before = ModexpCounter.count
    honest.subject.check()
    # Prover: 2 exponentiations mod a 1536-bit prime per repetition (CRT); verifier: one
    # exponentiation mod N̂ per repetition (s^e_i is s or 1).
    assert (honest.prove_modexps, ModexpCounter.count - before) == (2 * M, M)
    assert len(honest.proof.A) == M == 128


def test_proofs_are_randomised(honest: Honest) -> None:
    again = pi_prm.prove(CTX, honest.aux, honest.keys.rp)
    assert set(again.A).isdisjoint(honest.proof.A)


def test_challenge_has_m_independent_bits(honest: Honest) -> None:
    bits = pi_prm._challenge(CTX, honest.aux, honest.proof.A)
    assert len(bits) == M and set(bits) <= {0, 1}
    # cggmp24's unpacking defect left e_i = 0 for every i ≥ 32 (only 32 effective bits).
    assert any(bits[32:]) and any(bits[64:]) and any(bits[96:])
    assert 32 <= sum(bits) <= 96
    # A different first message gives a different challenge (A_1..A_m are inside the hash).
    A = honest.proof.A
    moved = (A[0] * honest.aux.t % honest.aux.n, *A[1:])
    assert pi_prm._challenge(CTX, honest.aux, moved) != bits


def test_challenge_binds_every_value(honest: Honest) -> None:
    params, A = honest.aux, honest.proof.A
    n, s, t = params.n, params.s, params.t
    base = pi_prm._challenge(CTX, params, A)
    variants = {
        **{f"ctx.{k}": pi_prm._challenge(c, params, A) for k, c in OTHER_CONTEXTS.items()},
        "N̂": pi_prm._challenge(CTX, RingPedersenParams(honest.keys.other_aux.n, s, t), A),
        "s": pi_prm._challenge(CTX, RingPedersenParams(n, s * t % n, t), A),
        "t": pi_prm._challenge(CTX, RingPedersenParams(n, s, t * t % n), A),
        "A_last": pi_prm._challenge(CTX, params, (*A[:-1], A[-1] * t % n)),
    }
    for name, bits in variants.items():
        assert bits != base, name


# --------------------------------------------------------------------------- tampered proof


TAMPERINGS: dict[str, tuple[Callable[[Honest], PrmProof], str]] = {
    # (tampered proof, the verifier message it must fail with)
    "A[0] times t": (
        lambda c: dataclasses.replace(
            c.proof, A=replace_at(c.proof.A, 0, c.proof.A[0] * c.aux.t % c.aux.n)
        ),
        "t\\^z_",
    ),
    "A[last] times s": (
        lambda c: dataclasses.replace(
            c.proof, A=replace_at(c.proof.A, M - 1, c.proof.A[-1] * c.aux.s % c.aux.n)
        ),
        "t\\^z_",
    ),
    "A[0] = 1": (lambda c: dataclasses.replace(c.proof, A=replace_at(c.proof.A, 0, 1)), "A_0 = 1"),
    "A[0] = p̂ (not a unit)": (
        lambda c: dataclasses.replace(c.proof, A=replace_at(c.proof.A, 0, c.keys.p_hat)),
        "A_0 ∉",
    ),
    "A[last] plus N̂": (
        lambda c: dataclasses.replace(
            c.proof, A=replace_at(c.proof.A, M - 1, c.proof.A[-1] + c.aux.n)
        ),
        "A_127 ∉",
    ),
    "z[0] plus 1": (
        lambda c: dataclasses.replace(c.proof, z=replace_at(c.proof.z, 0, c.proof.z[0] + 1)),
        "t\\^z_0",
    ),
    "z[0] = N̂": (
        lambda c: dataclasses.replace(c.proof, z=replace_at(c.proof.z, 0, c.aux.n)),
        "z_0 is not in",
    ),
    "z[last] = -1": (
        lambda c: dataclasses.replace(c.proof, z=replace_at(c.proof.z, M - 1, -1)),
        "z_127 is not in",
    ),
    "repetitions 0 and 1 swapped": (
        lambda c: PrmProof(
            (c.proof.A[1], c.proof.A[0], *c.proof.A[2:]),
            (c.proof.z[1], c.proof.z[0], *c.proof.z[2:]),
        ),
        "t\\^z_",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampered_proof_field_rejected(honest: Honest, name: str) -> None:
    make, message = TAMPERINGS[name]
    tampered = make(honest)
    assert tampered != honest.proof
    with pytest.raises(InvalidProof, match=message):
        honest.subject.check(tampered)


def test_every_field_is_covered_by_a_tampering() -> None:
    fields = [f.name for f in dataclasses.fields(PrmProof)]
    assert fields == ["A", "z"]
    for field in fields:
        assert any(name.startswith(field) for name in TAMPERINGS), field


@pytest.mark.parametrize("sign", [1, -1])
def test_response_shifted_by_phi_rejected_by_range_check(honest: Honest, sign: int) -> None:
    # z_0 ± φ(N̂) still satisfies t^z_0 ≡ A_0·s^e_0 (t^φ = 1), but is outside [0, N̂): an
    # out-of-range witness response the verifier must refuse (responses are never reduced).
    z0 = honest.proof.z[0] + sign * honest.keys.rp.phi
    assert powmod(honest.aux.t, z0, honest.aux.n) == powmod(
        honest.aux.t, honest.proof.z[0], honest.aux.n
    )
    with pytest.raises(InvalidProof, match="z_0 is not in"):
        honest.subject.check(dataclasses.replace(honest.proof, z=replace_at(honest.proof.z, 0, z0)))


@pytest.mark.parametrize("count", [M - 1, M + 1, 0])
def test_wrong_number_of_repetitions_rejected(honest: Honest, count: int) -> None:
    p = honest.proof
    resized = PrmProof((p.A + p.A)[:count], (p.z + p.z)[:count])
    with pytest.raises(InvalidProof, match="repetitions"):
        honest.subject.check(resized)


def test_too_small_parameters_rejected_even_with_a_valid_proof(
    subject: Subject, keys: Keys
) -> None:
    small = keys.small_rp
    with pytest.raises(InvalidInput):
        pi_prm.prove(CTX, small.params, small)
    proof = pi_prm._prove(CTX, small.params, small)
    with pytest.raises(InvalidProof, match="at least 3071 bits"):
        subject.check(proof, params=small.params)


# --------------------------------------------------------------------------- false statements


def _s_outside_t(c: Honest) -> RingPedersenParams:
    """(N̂, s′, t) with Jacobi(s′ | N̂) = −1: t = r² is a square, so every power of t has
    Jacobi symbol +1 and s′ ∉ ⟨t⟩."""
    assert jacobi(c.aux.t, c.aux.n) == 1
    return RingPedersenParams(c.aux.n, random_jacobi(c.aux.n, -1), c.aux.t)


def _guessing_prover(params: RingPedersenParams, phi: int) -> tuple[PrmProof, list[int]]:
    """A cheater for s ∉ ⟨t⟩: guesses each challenge bit ê_i and prepares
    A_i = t^z_i·s^(−ê_i), which answers e_i = ê_i only. Returns (proof, guesses)."""
    guesses, A, z = [], [], []
    for _ in range(M):
        guess = random_below(2)
        z_i = random_below(phi)
        a_i = powmod(params.t, z_i, params.n)
        if guess:
            a_i = a_i * powmod(params.s, -1, params.n) % params.n
        guesses.append(guess)
        A.append(a_i)
        z.append(z_i)
    return PrmProof(tuple(A), tuple(z)), guesses


def test_s_outside_t_guessing_prover_rejected(honest: Honest) -> None:
    params = _s_outside_t(honest)
    params.validate(CTX.level)  # the parameters themselves look fine
    proof, guesses = _guessing_prover(params, honest.keys.rp.phi)
    bits = pi_prm._challenge(CTX, params, proof.A)
    right = [i for i in range(M) if bits[i] == guesses[i]]
    wrong = [i for i in range(M) if bits[i] != guesses[i]]
    assert M // 8 < len(wrong) < M - M // 8  # each guess is right with probability 1/2
    # The guessed repetitions do verify; the first wrong one is where the verifier stops.
    for i in right[:4]:
        rhs = proof.A[i] * powmod(params.s, bits[i], params.n) % params.n
        assert powmod(params.t, proof.z[i], params.n) == rhs
    with pytest.raises(InvalidProof, match=f"t\\^z_{wrong[0]} "):
        honest.subject.check(proof, params=params)


def test_s_outside_t_with_the_old_trapdoor_rejected(honest: Honest) -> None:
    params = _s_outside_t(honest)
    with pytest.raises(InvalidInput, match="other ring-Pedersen parameters"):
        pi_prm.prove(CTX, params, honest.keys.rp)
    proof = pi_prm._prove(CTX, params, honest.keys.rp)
    with pytest.raises(InvalidProof, match="t\\^z_"):
        honest.subject.check(proof, params=params)


def test_wrong_trapdoor_rejected(honest: Honest) -> None:
    # λ + 1 is an out-of-range witness (s ≠ t^(λ+1)): the first e_i = 1 fails.
    wrong = RingPedersenSecret(honest.aux, honest.keys.rp.lam + 1, honest.keys.rp.phi)
    proof = pi_prm._prove(CTX, honest.aux, wrong)
    with pytest.raises(InvalidProof, match="t\\^z_"):
        honest.subject.check(proof)


# --------------------------------------------------------------------------- prover misuse


def test_prover_refuses_a_phi_that_does_not_factor_n(honest: Honest) -> None:
    bad = RingPedersenSecret(honest.aux, honest.keys.rp.lam, honest.keys.rp.phi + 2)
    with pytest.raises(InvalidInput, match="φ") as info:
        pi_prm.prove(CTX, honest.aux, bad)
    assert str(honest.keys.rp.phi) not in str(info.value)


def test_secret_is_not_in_repr_or_proof(honest: Honest) -> None:
    assert str(honest.keys.rp.lam) not in repr(honest.keys.rp)
    assert str(honest.keys.rp.lam) not in repr(honest.proof)
