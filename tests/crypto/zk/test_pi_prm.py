"""Π-prm at production size (SECURITY_128, N̂ = p̂·q̂ from the fixture's 1536-bit safe primes).

Completeness, serialisation, one rejection per tampered proof field, statement value and
context, m independent challenge bits, parameter validation, and the false statement
s ∉ ⟨t⟩ (s of Jacobi symbol −1 while t is a square) with a prover that guesses the challenge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from mpcnode.crypto.bigint import ModexpCounter, jacobi, powmod, random_below, random_unit
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from mpcnode.crypto.zk import pi_prm
from mpcnode.crypto.zk._common import ProofContext, encode_ints
from mpcnode.crypto.zk.pi_prm import Proof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._moduli import CTX, OTHER_CONTEXTS, M, moduli


@dataclass(frozen=True)
class Case:
    secret: RingPedersenSecret
    proof: Proof
    prove_modexps: int

    @property
    def params(self) -> RingPedersenParams:
        return self.secret.params

    @property
    def n(self) -> int:
        return self.secret.params.n

    @property
    def phi(self) -> int:
        return self.secret.phi


@pytest.fixture(scope="module")
def honest() -> Case:
    secret = moduli().aux_secret
    before = ModexpCounter.count
    proof = pi_prm.prove(CTX, secret.params, secret)
    return Case(secret, proof, ModexpCounter.count - before)


def _verify(params: RingPedersenParams, proof: Proof, ctx: ProofContext = CTX) -> None:
    pi_prm.verify(ctx, params, proof)


# --------------------------------------------------------------------------- completeness


def test_completeness(honest: Case) -> None:
    before = ModexpCounter.count
    _verify(honest.params, honest.proof)
    # Prover: 2 exponentiations mod a 1536-bit prime per repetition (CRT); verifier: one
    # exponentiation mod N̂ per repetition (s^e_i is s or 1).
    assert (honest.prove_modexps, ModexpCounter.count - before) == (2 * M, M)
    assert len(honest.proof.A) == M == 128


def test_proofs_are_randomised(honest: Case) -> None:
    again = pi_prm.prove(CTX, honest.params, honest.secret)
    assert set(again.A).isdisjoint(honest.proof.A)


def test_challenge_has_m_independent_bits(honest: Case) -> None:
    bits = pi_prm._challenge(CTX, honest.params, honest.proof.A)
    assert len(bits) == M and set(bits) <= {0, 1}
    # cggmp24's unpacking defect left e_i = 0 for every i ≥ 32 (only 32 effective bits).
    assert any(bits[32:]) and any(bits[64:]) and any(bits[96:])
    assert 32 <= sum(bits) <= 96
    # A different first message gives a different challenge (A_1..A_m are inside the hash).
    A = honest.proof.A
    moved = (A[0] * honest.params.t % honest.n, *A[1:])
    assert pi_prm._challenge(CTX, honest.params, moved) != bits


def test_challenge_binds_every_value(honest: Case) -> None:
    params, A = honest.params, honest.proof.A
    n, s, t = params.n, params.s, params.t
    base = pi_prm._challenge(CTX, params, A)
    variants = {
        **{f"ctx.{k}": pi_prm._challenge(c, params, A) for k, c in OTHER_CONTEXTS.items()},
        "N̂": pi_prm._challenge(CTX, RingPedersenParams(moduli().other_n, s, t), A),
        "s": pi_prm._challenge(CTX, RingPedersenParams(n, s * t % n, t), A),
        "t": pi_prm._challenge(CTX, RingPedersenParams(n, s, t * t % n), A),
        "A_last": pi_prm._challenge(CTX, params, (*A[:-1], A[-1] * t % n)),
    }
    for name, bits in variants.items():
        assert bits != base, name


# --------------------------------------------------------------------------- serialisation


def test_encode_decode_round_trip(honest: Case) -> None:
    data = honest.proof.encode()
    decoded = Proof.decode(data)
    assert decoded == honest.proof
    assert decoded.encode() == data
    _verify(honest.params, decoded)


def _malformed(proof: Proof) -> dict[str, bytes]:
    data = proof.encode()
    a_raw, z_raw = decode_fields(data)
    a_ints = decode_fields(a_raw)
    return {
        "empty": b"",
        "truncated": data[:-1],
        "extra field": data + encode_fields([b""]),
        "one list": encode_fields([a_raw]),
        "ragged lists": encode_fields([a_raw, encode_ints(proof.z[:-1])]),
        "non-canonical A": encode_fields(
            [encode_fields([b"\x00\x00" + a_ints[0][1:], *a_ints[1:]]), z_raw]
        ),
        "negative zero": encode_fields([encode_fields([b"\x01", *a_ints[1:]]), z_raw]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "truncated",
        "extra field",
        "one list",
        "ragged lists",
        "non-canonical A",
        "negative zero",
    ],
)
def test_decode_rejects_malformed(honest: Case, case: str) -> None:
    with pytest.raises(InvalidProof):
        Proof.decode(_malformed(honest.proof)[case])


# --------------------------------------------------------------------------- tampered proof


def _at(values: tuple[int, ...], index: int, value: int) -> tuple[int, ...]:
    return values[:index] + (value,) + values[index + 1 :]


def _p_hat(c: Case) -> int:
    return pi_prm._factor(c.n, c.phi)[0]


TAMPERINGS: dict[str, tuple[Callable[[Case], Proof], str]] = {
    # (tampered proof, the verifier message it must fail with)
    "A[0] times t": (
        lambda c: dataclasses.replace(
            c.proof, A=_at(c.proof.A, 0, c.proof.A[0] * c.params.t % c.n)
        ),
        "t\\^z_",
    ),
    "A[last] times s": (
        lambda c: dataclasses.replace(
            c.proof, A=_at(c.proof.A, M - 1, c.proof.A[-1] * c.params.s % c.n)
        ),
        "t\\^z_",
    ),
    "A[0] = 1": (lambda c: dataclasses.replace(c.proof, A=_at(c.proof.A, 0, 1)), "A_0 = 1"),
    "A[0] = p̂ (not a unit)": (
        lambda c: dataclasses.replace(c.proof, A=_at(c.proof.A, 0, _p_hat(c))),
        "A_0 is not in",
    ),
    "A[last] plus N̂": (
        lambda c: dataclasses.replace(c.proof, A=_at(c.proof.A, M - 1, c.proof.A[-1] + c.n)),
        "A_127 is not in",
    ),
    "z[0] plus 1": (
        lambda c: dataclasses.replace(c.proof, z=_at(c.proof.z, 0, c.proof.z[0] + 1)),
        "t\\^z_0",
    ),
    "z[0] = N̂": (lambda c: dataclasses.replace(c.proof, z=_at(c.proof.z, 0, c.n)), "z_0 is not in"),
    "z[last] = -1": (
        lambda c: dataclasses.replace(c.proof, z=_at(c.proof.z, M - 1, -1)),
        "z_127 is not in",
    ),
    "repetitions 0 and 1 swapped": (
        lambda c: Proof(
            (c.proof.A[1], c.proof.A[0], *c.proof.A[2:]),
            (c.proof.z[1], c.proof.z[0], *c.proof.z[2:]),
        ),
        "t\\^z_",
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampered_proof_field_rejected(honest: Case, name: str) -> None:
    make, message = TAMPERINGS[name]
    tampered = make(honest)
    assert tampered != honest.proof
    with pytest.raises(InvalidProof, match=message):
        _verify(honest.params, tampered)


def test_every_field_is_covered_by_a_tampering() -> None:
    fields = [f.name for f in dataclasses.fields(Proof)]
    assert fields == ["A", "z"]
    for field in fields:
        assert any(name.startswith(field) for name in TAMPERINGS), field


@pytest.mark.parametrize("sign", [1, -1])
def test_response_shifted_by_phi_rejected_by_range_check(honest: Case, sign: int) -> None:
    # z_0 ± φ(N̂) still satisfies t^z_0 ≡ A_0·s^e_0 (t^φ = 1), but is outside [0, N̂): an
    # out-of-range witness response the verifier must refuse (responses are never reduced).
    z0 = honest.proof.z[0] + sign * honest.phi
    assert powmod(honest.params.t, z0, honest.n) == powmod(
        honest.params.t, honest.proof.z[0], honest.n
    )
    with pytest.raises(InvalidProof, match="z_0 is not in"):
        _verify(honest.params, dataclasses.replace(honest.proof, z=_at(honest.proof.z, 0, z0)))


@pytest.mark.parametrize("count", [M - 1, M + 1, 0])
def test_wrong_number_of_repetitions_rejected(honest: Case, count: int) -> None:
    p = honest.proof
    resized = Proof((p.A + p.A)[:count], (p.z + p.z)[:count])
    with pytest.raises(InvalidProof, match="repetitions"):
        _verify(honest.params, resized)


# --------------------------------------------------------------------------- statement, context


STATEMENT_TAMPERINGS: dict[str, Callable[[Case], RingPedersenParams]] = {
    "N̂ of other parameters": lambda c: dataclasses.replace(
        c.params, n=moduli().other_aux_secret.params.n
    ),
    "s times t": lambda c: dataclasses.replace(c.params, s=c.params.s * c.params.t % c.n),
    "t times t": lambda c: dataclasses.replace(c.params, t=c.params.t * c.params.t % c.n),
    "s and t swapped": lambda c: RingPedersenParams(c.n, c.params.t, c.params.s),
    "other parameters": lambda c: moduli().other_aux_secret.params,
}


@pytest.mark.parametrize("name", list(STATEMENT_TAMPERINGS))
def test_tampered_statement_rejected(honest: Case, name: str) -> None:
    params = STATEMENT_TAMPERINGS[name](honest)
    assert params != honest.params
    with pytest.raises(InvalidProof):
        _verify(params, honest.proof)


@pytest.mark.parametrize("field", list(OTHER_CONTEXTS))
def test_other_context_rejected(honest: Case, field: str) -> None:
    with pytest.raises(InvalidProof):
        _verify(honest.params, honest.proof, ctx=OTHER_CONTEXTS[field])


def _bad_params(c: Case) -> dict[str, RingPedersenParams]:
    n, s, t = c.n, c.params.s, c.params.t
    small = moduli().small_aux_secret
    return {
        "2048-bit N̂": small.params,
        "even N̂": RingPedersenParams(2 * n, s, t),
        "s = 1": RingPedersenParams(n, 1, t),
        "t = 1": RingPedersenParams(n, s, 1),
        "s = 0": RingPedersenParams(n, 0, t),
        "t = N̂ + t": RingPedersenParams(n, s, n + t),
        "s = p̂": RingPedersenParams(n, _p_hat(c), t),
    }


@pytest.mark.parametrize(
    "name", ["2048-bit N̂", "even N̂", "s = 1", "t = 1", "s = 0", "t = N̂ + t", "s = p̂"]
)
def test_invalid_parameters_rejected(honest: Case, name: str) -> None:
    with pytest.raises(InvalidProof):
        _verify(_bad_params(honest)[name], honest.proof)


def test_too_small_parameters_rejected_even_with_a_valid_proof() -> None:
    small = moduli().small_aux_secret
    with pytest.raises(InvalidInput):
        pi_prm.prove(CTX, small.params, small)
    proof = pi_prm._prove_unchecked(CTX, small.params, small.lam, small.phi)
    with pytest.raises(InvalidProof, match="at least 3071 bits"):
        _verify(small.params, proof)


# --------------------------------------------------------------------------- false statements


def _s_outside_t(c: Case) -> RingPedersenParams:
    """(N̂, s′, t) with Jacobi(s′ | N̂) = −1: t = r² is a square, so every power of t has
    Jacobi symbol +1 and s′ ∉ ⟨t⟩."""
    assert jacobi(c.params.t, c.n) == 1
    while True:
        s_bad = random_unit(c.n)
        if jacobi(s_bad, c.n) == -1:
            return RingPedersenParams(c.n, s_bad, c.params.t)


def _guessing_prover(params: RingPedersenParams, phi: int) -> tuple[Proof, list[int]]:
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
    return Proof(tuple(A), tuple(z)), guesses


def test_s_outside_t_guessing_prover_rejected(honest: Case) -> None:
    params = _s_outside_t(honest)
    params.validate(CTX.level)  # the parameters themselves look fine
    proof, guesses = _guessing_prover(params, honest.phi)
    bits = pi_prm._challenge(CTX, params, proof.A)
    right = [i for i in range(M) if bits[i] == guesses[i]]
    wrong = [i for i in range(M) if bits[i] != guesses[i]]
    assert M // 8 < len(wrong) < M - M // 8  # each guess is right with probability 1/2
    # The guessed repetitions do verify; the first wrong one is where the verifier stops.
    for i in right[:4]:
        rhs = proof.A[i] * powmod(params.s, bits[i], params.n) % params.n
        assert powmod(params.t, proof.z[i], params.n) == rhs
    with pytest.raises(InvalidProof, match=f"t\\^z_{wrong[0]} "):
        _verify(params, proof)


def test_s_outside_t_with_the_old_trapdoor_rejected(honest: Case) -> None:
    params = _s_outside_t(honest)
    with pytest.raises(InvalidInput, match="other ring-Pedersen parameters"):
        pi_prm.prove(CTX, params, honest.secret)
    proof = pi_prm._prove_unchecked(CTX, params, honest.secret.lam, honest.phi)
    with pytest.raises(InvalidProof, match="t\\^z_"):
        _verify(params, proof)


def test_wrong_trapdoor_rejected(honest: Case) -> None:
    # λ + 1 is an out-of-range witness (s ≠ t^(λ+1)): the first e_i = 1 fails.
    proof = pi_prm._prove_unchecked(CTX, honest.params, honest.secret.lam + 1, honest.phi)
    with pytest.raises(InvalidProof, match="t\\^z_"):
        _verify(honest.params, proof)


# --------------------------------------------------------------------------- prover misuse


def test_prover_refuses_a_phi_that_does_not_factor_n(honest: Case) -> None:
    bad = RingPedersenSecret(honest.params, honest.secret.lam, honest.phi + 2)
    with pytest.raises(InvalidInput, match="φ") as info:
        pi_prm.prove(CTX, honest.params, bad)
    assert str(honest.phi) not in str(info.value)


def test_secret_is_not_in_repr_or_proof(honest: Case) -> None:
    assert str(honest.secret.lam) not in repr(honest.secret)
    assert str(honest.secret.lam) not in repr(honest.proof)
