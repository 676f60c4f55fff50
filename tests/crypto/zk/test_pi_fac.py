"""Π-fac at production size (SECURITY_128: N0 and the verifier's N̂ have 3072 bits, from the
fixture's 1536-bit safe primes).

Completeness, serialisation, one rejection per tampered proof field, statement value, aux
value and context, the size checks, the exact range-check boundary (proofs crafted with the
verifier's trapdoor so that z1 or z2 sits exactly on, or one past, the bound while every
equation holds) and BitForge: N0 = (16-bit prime)·(3056-bit prime), whose honest-style proof
passes every equation and fails the range check.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from mpcnode.crypto.bigint import (
    ModexpCounter,
    half,
    in_signed_range,
    isqrt,
    powmod,
    random_signed,
)
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk import pi_fac
from mpcnode.crypto.zk._common import ProofContext
from mpcnode.crypto.zk.pi_fac import FIELDS, FacProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    BITFORGE_LARGE,
    BITFORGE_SMALL,
    CTX,
    ELL,
    EPS,
    LEVEL,
    OTHER_CONTEXTS,
    RHO,
    AuxSuite,
    Honest,
    Keys,
    ProofFieldSuite,
    ProofSuite,
    RhoSuite,
    Subject,
)


@pytest.fixture(scope="module")
def honest(keys: Keys) -> Honest:
    sk = keys.sk
    return Honest.make(
        keys,
        lambda: pi_fac.prove(CTX, sk.n, sk.p, sk.q, keys.aux, rho=RHO),
        pi_fac.verify,
        ctx=CTX,
        n0=sk.n,
        verifier_aux=keys.aux,
        rho=RHO,
    )


@pytest.fixture(scope="module")
def subject(honest: Honest) -> Subject:
    return honest.subject


class TestCommon(ProofSuite, ProofFieldSuite, AuxSuite, RhoSuite):
    PROOF = FacProof
    FIRST_EQUATION = "s\\^z1"
    AUX = "verifier_aux"


def _equations_hold(n0: int, aux: RingPedersenParams, proof: FacProof) -> bool:
    """The three equations alone (no range or size check), with the challenge of CTX and RHO."""
    e = pi_fac._challenge(pi_fac._transcript(CTX, n0, isqrt(n0), aux, RHO), LEVEL, proof)
    n, s, t = aux.n, aux.s, aux.t
    return (
        aux.commit(proof.z1, proof.w1) == proof.A * powmod(proof.P, e, n) % n
        and aux.commit(proof.z2, proof.w2) == proof.B * powmod(proof.Q, e, n) % n
        and powmod(proof.Q, proof.z1, n) * powmod(t, proof.v, n) % n
        == proof.T * powmod(s, n0 * e, n) % n
    )


# --------------------------------------------------------------------------- test-side prover


@dataclass(frozen=True)
class Crafted:
    proof: FacProof
    nu: int


def _prove_here(n0: int, p: int, q: int, aux: RingPedersenParams, r0: int | None = None) -> Crafted:
    """An independent re-implementation of the prover (so tests can reach its nonce ν, and
    use a wrong R0). With r0 = None it computes R0 = ⌊√N0⌋ like the verifier."""
    r0 = isqrt(n0) if r0 is None else r0
    n, s, t = aux.n, aux.s, aux.t
    bound = 2 ** (ELL + EPS)
    alpha, beta = random_signed(bound * r0), random_signed(bound * r0)
    mu, nu = random_signed(2**ELL * n), random_signed(2**ELL * n)
    r = random_signed(bound * n0 * n)
    x, y = random_signed(bound * n), random_signed(bound * n)
    P, Q = aux.commit(p, mu), aux.commit(q, nu)
    A, B = aux.commit(alpha, x), aux.commit(beta, y)
    T = powmod(Q, alpha, n) * powmod(t, r, n) % n
    first = FacProof(P, Q, A, B, T, 0, 0, 0, 0, 0)
    e = pi_fac._challenge(pi_fac._transcript(CTX, n0, r0, aux, RHO), LEVEL, first)
    assert s == aux.s
    proof = FacProof(
        P, Q, A, B, T, alpha + e * p, beta + e * q, x + e * mu, y + e * nu, r - e * nu * p
    )
    return Crafted(proof, nu)


def _shift_z(c: Honest, crafted: Crafted, field: str, target: int) -> FacProof:
    """Move z1 (or z2) of a proof to `target` and keep every equation true, using the
    verifier's trapdoor λ (s = t^λ): s^δ·t^(−λδ) = 1, and Q = t^(λq+ν) so Q^δ·t^(−δ(λq+ν)) = 1."""
    proof, lam = crafted.proof, c.keys.rp.lam
    if field == "z1":
        delta = target - proof.z1
        return dataclasses.replace(
            proof,
            z1=target,
            w1=proof.w1 - lam * delta,
            v=proof.v - delta * (lam * c.q + crafted.nu),
        )
    delta = target - proof.z2
    return dataclasses.replace(proof, z2=target, w2=proof.w2 - lam * delta)


# --------------------------------------------------------------------------- completeness


def test_modexp_counts(honest: Honest) -> None:
    before = ModexpCounter.count
    honest.subject.check()
    # 10 exponentiations mod N̂ to prove (5 commitments of two each), 9 to verify.
    assert (honest.prove_modexps, ModexpCounter.count - before) == (10, 9)
    bound = pi_fac.range_bound(LEVEL, honest.n)
    assert in_signed_range(honest.proof.z1, bound) and in_signed_range(honest.proof.z2, bound)


def test_independent_prover_is_accepted(honest: Honest) -> None:
    crafted = _prove_here(honest.n, honest.p, honest.q, honest.aux)
    honest.subject.check(crafted.proof)


def test_proofs_are_randomised(honest: Honest) -> None:
    again = pi_fac.prove(CTX, honest.n, honest.p, honest.q, honest.aux, rho=RHO)
    assert again.P != honest.proof.P and again.z1 != honest.proof.z1


def test_challenge_range(honest: Honest) -> None:
    tr = pi_fac._transcript(CTX, honest.n, isqrt(honest.n), honest.aux, RHO)
    e = pi_fac._challenge(tr, LEVEL, honest.proof)
    assert abs(e) <= 2 ** (ELL - 1) and abs(e) > 2 ** (ELL - 16)


def test_challenge_binds_every_value(honest: Honest) -> None:
    n0, aux, proof = honest.n, honest.aux, honest.proof
    n, s, t = aux.n, aux.s, aux.t

    def e_of(
        ctx: ProofContext = CTX,
        n0: int = n0,
        r0: int = isqrt(n0),
        aux: RingPedersenParams = aux,
        rho: bytes = RHO,
        first: FacProof = proof,
    ) -> int:
        return pi_fac._challenge(pi_fac._transcript(ctx, n0, r0, aux, rho), LEVEL, first)

    base = e_of()
    variants = {
        **{f"ctx.{k}": e_of(ctx=c) for k, c in OTHER_CONTEXTS.items()},
        "N0": e_of(n0=honest.keys.other_sk.n),
        "R0": e_of(r0=isqrt(n0) + 1),
        "N̂": e_of(aux=RingPedersenParams(honest.keys.other_aux.n, s, t)),
        "s": e_of(aux=RingPedersenParams(n, s * t % n, t)),
        "t": e_of(aux=RingPedersenParams(n, s, t * t % n)),
        "rho": e_of(rho=RHO[:-1]),
        **{
            name: e_of(first=dataclasses.replace(proof, **{name: getattr(proof, name) + 1}))
            for name in FIELDS[:5]
        },
    }
    for name, e in variants.items():
        assert e != base, name


def test_r0_is_computed_by_the_verifier(honest: Honest) -> None:
    # The proof carries no R0; a prover that binds another R0 (√N0 + 1) gets another challenge.
    assert "R0" not in FIELDS
    crafted = _prove_here(honest.n, honest.p, honest.q, honest.aux, r0=isqrt(honest.n) + 1)
    with pytest.raises(InvalidProof, match="s\\^z1"):
        honest.subject.check(crafted.proof)


# --------------------------------------------------------------------------- tampered proof


@pytest.mark.parametrize("field", FIELDS[:5])
def test_commitment_not_a_unit_rejected(honest: Honest, field: str) -> None:
    n_hat = honest.aux.n
    p_hat = honest.keys.p_hat  # in range, not coprime to N̂
    for bad in (0, -1, p_hat, n_hat, getattr(honest.proof, field) + n_hat):
        with pytest.raises(InvalidProof, match=f"{field} ∉"):
            honest.subject.check(dataclasses.replace(honest.proof, **{field: bad}))


@pytest.mark.parametrize("field", FIELDS[5:])
def test_oversized_response_rejected_before_exponentiation(honest: Honest, field: str) -> None:
    huge = 2 ** (2 * ELL + EPS) * honest.n * honest.aux.n + 1
    for value in (huge, -huge):
        before = ModexpCounter.count
        with pytest.raises(InvalidProof, match=f"{field} is larger than any honest response"):
            honest.subject.check(dataclasses.replace(honest.proof, **{field: value}))
        assert ModexpCounter.count == before


# ------------------------------------------------------------------- statement, aux, context


def test_other_modulus_rejected(honest: Honest) -> None:
    with pytest.raises(InvalidProof, match="s\\^z1"):
        honest.subject.check(n0=honest.keys.other_sk.n)


def test_modulus_plus_two_rejected(honest: Honest) -> None:
    with pytest.raises(InvalidProof, match="s\\^z1"):
        honest.subject.check(n0=honest.n + 2)


# --------------------------------------------------------------------------- sizes of N0


def test_minimum_modulus_size() -> None:
    assert pi_fac.min_modulus_bits(LEVEL) == max(4 * ELL, LEVEL.min_modulus_bits) == 3071


def test_small_modulus_rejected(honest: Honest) -> None:
    small = honest.keys.small_sk
    proof = pi_fac.prove(CTX, small.n, small.p, small.q, honest.aux, rho=RHO)
    assert _equations_hold(small.n, honest.aux, proof)
    with pytest.raises(InvalidProof, match="Π-fac: Paillier modulus has 2048 bits, at least 3071"):
        honest.subject.check(proof, n0=small.n)


def test_even_modulus_rejected(honest: Honest) -> None:
    # N0 = 2·(p·q) with the honest factors 2p and q: every equation holds, N0 is even.
    n0 = 2 * honest.n
    proof = pi_fac._prove(CTX, n0, 2 * honest.p, honest.q, honest.aux, rho=RHO)
    assert _equations_hold(n0, honest.aux, proof)
    with pytest.raises(InvalidProof, match="Π-fac: Paillier modulus must be odd"):
        honest.subject.check(proof, n0=n0)


# --------------------------------------------------------------------------- range check


def test_range_bound_function(honest: Honest) -> None:
    bound = pi_fac.range_bound(LEVEL, honest.n)
    assert bound == 2 ** (ELL + EPS) * isqrt(honest.n)
    h = half(bound)
    assert h == 2 ** (ELL + EPS - 1) * isqrt(honest.n)
    assert in_signed_range(h, bound) and in_signed_range(-h, bound)
    assert not in_signed_range(h + 1, bound) and not in_signed_range(-h - 1, bound)


@pytest.mark.parametrize("field", ["z1", "z2"])
@pytest.mark.parametrize("sign", [1, -1])
def test_response_on_the_bound_accepted_one_past_rejected(
    honest: Honest, field: str, sign: int
) -> None:
    h = half(pi_fac.range_bound(LEVEL, honest.n))
    crafted = _prove_here(honest.n, honest.p, honest.q, honest.aux)
    on_bound = _shift_z(honest, crafted, field, sign * h)
    honest.subject.check(on_bound)
    past = _shift_z(honest, crafted, field, sign * (h + 1))
    assert _equations_hold(honest.n, honest.aux, past)
    with pytest.raises(InvalidProof, match=f"{field} out of range"):
        honest.subject.check(past)


# --------------------------------------------------------------------------- BitForge


BITFORGE_N0 = BITFORGE_SMALL * BITFORGE_LARGE


def test_bitforge_modulus_has_production_size() -> None:
    assert BITFORGE_N0.bit_length() == 3072 and BITFORGE_N0 % 2 == 1
    assert BITFORGE_SMALL.bit_length() == 16


@pytest.mark.parametrize("order", ["small first", "large first"])
def test_bitforge_refused_by_prover(honest: Honest, order: str) -> None:
    p, q = (BITFORGE_SMALL, BITFORGE_LARGE)
    if order == "large first":
        p, q = q, p
    with pytest.raises(InvalidInput, match="small co-factor"):
        pi_fac.prove(CTX, BITFORGE_N0, p, q, honest.aux, rho=RHO)


@pytest.mark.parametrize(("order", "failing"), [("small first", "z2"), ("large first", "z1")])
def test_bitforge_honest_style_proof_fails_the_range_check(
    honest: Honest, order: str, failing: str
) -> None:
    # The prover follows the protocol with its real factorisation 65521 × (3056-bit prime).
    # Every equation holds; the response for the 3056-bit factor is about 2^(255+3056),
    # far above 2^(ℓ+ε−1)·R0 ≈ 2^2302, so only the range check rejects.
    p, q = (BITFORGE_SMALL, BITFORGE_LARGE)
    if order == "large first":
        p, q = q, p
    proof = pi_fac._prove(CTX, BITFORGE_N0, p, q, honest.aux, rho=RHO)
    assert _equations_hold(BITFORGE_N0, honest.aux, proof)
    bound = pi_fac.range_bound(LEVEL, BITFORGE_N0)
    assert abs(getattr(proof, failing)) > 2**800 * half(bound)
    with pytest.raises(InvalidProof, match=f"{failing} out of range"):
        honest.subject.check(proof, n0=BITFORGE_N0)


# --------------------------------------------------------------------------- prover misuse


def test_prover_refuses_wrong_factorisation(honest: Honest) -> None:
    with pytest.raises(InvalidInput) as info:
        pi_fac.prove(CTX, honest.n, honest.p, honest.keys.other_sk.q, honest.aux, rho=RHO)
    assert str(honest.p) not in str(info.value)
    with pytest.raises(InvalidInput):
        pi_fac.prove(CTX, honest.n, 1, honest.n, honest.aux, rho=RHO)


def test_prover_refuses_invalid_aux(honest: Honest) -> None:
    small_aux = honest.keys.small_rp.params
    with pytest.raises(InvalidInput, match="ring-Pedersen"):
        pi_fac.prove(CTX, honest.n, honest.p, honest.q, small_aux, rho=RHO)
