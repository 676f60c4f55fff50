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
from collections.abc import Callable
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
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.ring_pedersen import RingPedersenParams, RingPedersenSecret
from mpcnode.crypto.zk import pi_fac, pi_prm
from mpcnode.crypto.zk._common import ProofContext
from mpcnode.crypto.zk.pi_fac import FIELDS, Proof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._moduli import (
    BITFORGE_LARGE,
    BITFORGE_SMALL,
    CTX,
    LEVEL,
    OTHER_CONTEXTS,
    RHO,
    moduli,
)

ELL, EPS = LEVEL.ell, LEVEL.epsilon


@dataclass(frozen=True)
class Case:
    p: int
    q: int
    aux_secret: RingPedersenSecret
    proof: Proof
    prove_modexps: int

    @property
    def n0(self) -> int:
        return self.p * self.q

    @property
    def aux(self) -> RingPedersenParams:
        return self.aux_secret.params


@pytest.fixture(scope="module")
def honest() -> Case:
    mod = moduli()
    before = ModexpCounter.count
    proof = pi_fac.prove(CTX, mod.n, mod.p, mod.q, mod.aux_secret.params, rho=RHO)
    return Case(mod.p, mod.q, mod.aux_secret, proof, ModexpCounter.count - before)


def _verify(
    n0: int,
    aux: RingPedersenParams,
    proof: Proof,
    ctx: ProofContext = CTX,
    rho: bytes = RHO,
) -> None:
    pi_fac.verify(ctx, n0, aux, proof, rho=rho)


def _equations_hold(n0: int, aux: RingPedersenParams, proof: Proof) -> bool:
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
    proof: Proof
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
    first = Proof(P, Q, A, B, T, 0, 0, 0, 0, 0)
    e = pi_fac._challenge(pi_fac._transcript(CTX, n0, r0, aux, RHO), LEVEL, first)
    assert s == aux.s
    proof = Proof(
        P, Q, A, B, T, alpha + e * p, beta + e * q, x + e * mu, y + e * nu, r - e * nu * p
    )
    return Crafted(proof, nu)


def _shift_z(c: Case, crafted: Crafted, field: str, target: int) -> Proof:
    """Move z1 (or z2) of a proof to `target` and keep every equation true, using the
    verifier's trapdoor λ (s = t^λ): s^δ·t^(−λδ) = 1, and Q = t^(λq+ν) so Q^δ·t^(−δ(λq+ν)) = 1."""
    proof, lam = crafted.proof, c.aux_secret.lam
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


def test_completeness(honest: Case) -> None:
    before = ModexpCounter.count
    _verify(honest.n0, honest.aux, honest.proof)
    # 10 exponentiations mod N̂ to prove (5 commitments of two each), 9 to verify.
    assert (honest.prove_modexps, ModexpCounter.count - before) == (10, 9)
    bound = pi_fac.range_bound(LEVEL, honest.n0)
    assert in_signed_range(honest.proof.z1, bound) and in_signed_range(honest.proof.z2, bound)


def test_independent_prover_is_accepted(honest: Case) -> None:
    crafted = _prove_here(honest.n0, honest.p, honest.q, honest.aux)
    _verify(honest.n0, honest.aux, crafted.proof)


def test_proofs_are_randomised(honest: Case) -> None:
    again = pi_fac.prove(CTX, honest.n0, honest.p, honest.q, honest.aux, rho=RHO)
    assert again.P != honest.proof.P and again.z1 != honest.proof.z1


def test_challenge_range(honest: Case) -> None:
    tr = pi_fac._transcript(CTX, honest.n0, isqrt(honest.n0), honest.aux, RHO)
    e = pi_fac._challenge(tr, LEVEL, honest.proof)
    assert abs(e) <= 2 ** (ELL - 1) and abs(e) > 2 ** (ELL - 16)


def test_challenge_binds_every_value(honest: Case) -> None:
    n0, aux, proof = honest.n0, honest.aux, honest.proof
    n, s, t = aux.n, aux.s, aux.t

    def e_of(
        ctx: ProofContext = CTX,
        n0: int = n0,
        r0: int = isqrt(n0),
        aux: RingPedersenParams = aux,
        rho: bytes = RHO,
        first: Proof = proof,
    ) -> int:
        return pi_fac._challenge(pi_fac._transcript(ctx, n0, r0, aux, rho), LEVEL, first)

    base = e_of()
    variants = {
        **{f"ctx.{k}": e_of(ctx=c) for k, c in OTHER_CONTEXTS.items()},
        "N0": e_of(n0=moduli().other_n),
        "R0": e_of(r0=isqrt(n0) + 1),
        "N̂": e_of(aux=RingPedersenParams(moduli().other_n, s, t)),
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


def test_r0_is_computed_by_the_verifier(honest: Case) -> None:
    # The proof carries no R0; a prover that binds another R0 (√N0 + 1) gets another challenge.
    assert "R0" not in FIELDS
    crafted = _prove_here(honest.n0, honest.p, honest.q, honest.aux, r0=isqrt(honest.n0) + 1)
    with pytest.raises(InvalidProof, match="s\\^z1"):
        _verify(honest.n0, honest.aux, crafted.proof)


# --------------------------------------------------------------------------- serialisation


def test_encode_decode_round_trip(honest: Case) -> None:
    data = honest.proof.encode()
    decoded = Proof.decode(data)
    assert decoded == honest.proof
    assert decoded.encode() == data
    _verify(honest.n0, honest.aux, decoded)


def _malformed(proof: Proof) -> dict[str, bytes]:
    data = proof.encode()
    ints = decode_fields(data)
    return {
        "empty": b"",
        "truncated": data[:-1],
        "nine ints": encode_fields(ints[:-1]),
        "eleven ints": encode_fields([*ints, ints[0]]),
        "non-canonical P": encode_fields([b"\x00\x00" + ints[0][1:], *ints[1:]]),
        "negative zero": encode_fields([b"\x01", *ints[1:]]),
        "bad sign byte": encode_fields([b"\x02" + ints[0][1:], *ints[1:]]),
    }


@pytest.mark.parametrize(
    "case",
    [
        "empty",
        "truncated",
        "nine ints",
        "eleven ints",
        "non-canonical P",
        "negative zero",
        "bad sign byte",
    ],
)
def test_decode_rejects_malformed(honest: Case, case: str) -> None:
    with pytest.raises(InvalidProof):
        Proof.decode(_malformed(honest.proof)[case])


# --------------------------------------------------------------------------- tampered proof


@pytest.mark.parametrize("field", FIELDS)
def test_tampered_proof_field_rejected(honest: Case, field: str) -> None:
    tampered = dataclasses.replace(honest.proof, **{field: getattr(honest.proof, field) + 1})
    with pytest.raises(InvalidProof):
        _verify(honest.n0, honest.aux, tampered)


@pytest.mark.parametrize("field", FIELDS[:5])
def test_commitment_not_a_unit_rejected(honest: Case, field: str) -> None:
    n_hat = honest.aux.n
    p_hat = pi_prm._factor(n_hat, honest.aux_secret.phi)[0]  # in range, not coprime to N̂
    for bad in (0, -1, p_hat, n_hat, getattr(honest.proof, field) + n_hat):
        with pytest.raises(InvalidProof, match=f"{field} is not in"):
            _verify(honest.n0, honest.aux, dataclasses.replace(honest.proof, **{field: bad}))


@pytest.mark.parametrize("field", FIELDS[5:])
def test_oversized_response_rejected_before_exponentiation(honest: Case, field: str) -> None:
    huge = 2 ** (2 * ELL + EPS) * honest.n0 * honest.aux.n + 1
    for value in (huge, -huge):
        before = ModexpCounter.count
        with pytest.raises(InvalidProof, match=f"{field} larger than any honest response"):
            _verify(honest.n0, honest.aux, dataclasses.replace(honest.proof, **{field: value}))
        assert ModexpCounter.count == before


# ------------------------------------------------------------------- statement, aux, context


def test_other_modulus_rejected(honest: Case) -> None:
    with pytest.raises(InvalidProof, match="s\\^z1"):
        _verify(moduli().other_n, honest.aux, honest.proof)


def test_modulus_plus_two_rejected(honest: Case) -> None:
    with pytest.raises(InvalidProof, match="s\\^z1"):
        _verify(honest.n0 + 2, honest.aux, honest.proof)


AUX_TAMPERINGS: dict[str, Callable[[Case], RingPedersenParams]] = {
    "N̂": lambda c: dataclasses.replace(c.aux, n=moduli().other_aux_secret.params.n),
    "s": lambda c: dataclasses.replace(c.aux, s=c.aux.s * c.aux.t % c.aux.n),
    "t": lambda c: dataclasses.replace(c.aux, t=c.aux.t * c.aux.t % c.aux.n),
    "s and t swapped": lambda c: RingPedersenParams(c.aux.n, c.aux.t, c.aux.s),
    "other aux": lambda c: moduli().other_aux_secret.params,
}


@pytest.mark.parametrize("name", list(AUX_TAMPERINGS))
def test_tampered_aux_rejected(honest: Case, name: str) -> None:
    aux = AUX_TAMPERINGS[name](honest)
    assert aux != honest.aux
    with pytest.raises(InvalidProof):
        _verify(honest.n0, aux, honest.proof)


@pytest.mark.parametrize("rho", [b"", RHO[:-1], RHO + b"\x00"])
def test_other_rho_rejected(honest: Case, rho: bytes) -> None:
    with pytest.raises(InvalidProof, match="s\\^z1"):
        _verify(honest.n0, honest.aux, honest.proof, rho=rho)


@pytest.mark.parametrize("field", list(OTHER_CONTEXTS))
def test_other_context_rejected(honest: Case, field: str) -> None:
    with pytest.raises(InvalidProof, match="s\\^z1"):
        _verify(honest.n0, honest.aux, honest.proof, ctx=OTHER_CONTEXTS[field])


def test_invalid_aux_rejected(honest: Case) -> None:
    n, s, t = honest.aux.n, honest.aux.s, honest.aux.t
    for aux in (
        moduli().small_aux_secret.params,  # 2048 bits (Alpha-Rays)
        RingPedersenParams(2 * n, s, t),
        RingPedersenParams(n, 1, t),
        RingPedersenParams(n, s, 1),
        RingPedersenParams(n, s, 0),
        RingPedersenParams(n, s + n, t),
    ):
        with pytest.raises(InvalidProof, match="ring-Pedersen"):
            _verify(honest.n0, aux, honest.proof)


# --------------------------------------------------------------------------- sizes of N0


def test_minimum_modulus_size() -> None:
    assert pi_fac.min_modulus_bits(LEVEL) == max(4 * ELL, LEVEL.min_modulus_bits) == 3071


def test_small_modulus_rejected(honest: Case) -> None:
    mod = moduli()
    proof = pi_fac.prove(CTX, mod.small_n, mod.small_p, mod.small_q, honest.aux, rho=RHO)
    assert _equations_hold(mod.small_n, honest.aux, proof)
    with pytest.raises(InvalidProof, match="N0 has 2048 bits, at least 3071"):
        _verify(mod.small_n, honest.aux, proof)


def test_even_modulus_rejected(honest: Case) -> None:
    # N0 = 2·(p·q) with the honest factors 2p and q: every equation holds, N0 is even.
    n0 = 2 * honest.n0
    proof = pi_fac._prove_unchecked(CTX, n0, 2 * honest.p, honest.q, honest.aux, rho=RHO)
    assert _equations_hold(n0, honest.aux, proof)
    with pytest.raises(InvalidProof, match="N0 is even"):
        _verify(n0, honest.aux, proof)


# --------------------------------------------------------------------------- range check


def test_range_bound_function(honest: Case) -> None:
    bound = pi_fac.range_bound(LEVEL, honest.n0)
    assert bound == 2 ** (ELL + EPS) * isqrt(honest.n0)
    h = half(bound)
    assert h == 2 ** (ELL + EPS - 1) * isqrt(honest.n0)
    assert in_signed_range(h, bound) and in_signed_range(-h, bound)
    assert not in_signed_range(h + 1, bound) and not in_signed_range(-h - 1, bound)


@pytest.mark.parametrize("field", ["z1", "z2"])
@pytest.mark.parametrize("sign", [1, -1])
def test_response_on_the_bound_accepted_one_past_rejected(
    honest: Case, field: str, sign: int
) -> None:
    h = half(pi_fac.range_bound(LEVEL, honest.n0))
    crafted = _prove_here(honest.n0, honest.p, honest.q, honest.aux)
    on_bound = _shift_z(honest, crafted, field, sign * h)
    _verify(honest.n0, honest.aux, on_bound)
    past = _shift_z(honest, crafted, field, sign * (h + 1))
    assert _equations_hold(honest.n0, honest.aux, past)
    with pytest.raises(InvalidProof, match=f"{field} out of range"):
        _verify(honest.n0, honest.aux, past)


# --------------------------------------------------------------------------- BitForge


BITFORGE_N0 = BITFORGE_SMALL * BITFORGE_LARGE


def test_bitforge_modulus_has_production_size() -> None:
    assert BITFORGE_N0.bit_length() == 3072 and BITFORGE_N0 % 2 == 1
    assert BITFORGE_SMALL.bit_length() == 16


@pytest.mark.parametrize("order", ["small first", "large first"])
def test_bitforge_refused_by_prover(honest: Case, order: str) -> None:
    p, q = (BITFORGE_SMALL, BITFORGE_LARGE)
    if order == "large first":
        p, q = q, p
    with pytest.raises(InvalidInput, match="small co-factor"):
        pi_fac.prove(CTX, BITFORGE_N0, p, q, honest.aux, rho=RHO)


@pytest.mark.parametrize(("order", "failing"), [("small first", "z2"), ("large first", "z1")])
def test_bitforge_honest_style_proof_fails_the_range_check(
    honest: Case, order: str, failing: str
) -> None:
    # The prover follows the protocol with its real factorisation 65521 × (3056-bit prime).
    # Every equation holds; the response for the 3056-bit factor is about 2^(255+3056),
    # far above 2^(ℓ+ε−1)·R0 ≈ 2^2302, so only the range check rejects.
    p, q = (BITFORGE_SMALL, BITFORGE_LARGE)
    if order == "large first":
        p, q = q, p
    proof = pi_fac._prove_unchecked(CTX, BITFORGE_N0, p, q, honest.aux, rho=RHO)
    assert _equations_hold(BITFORGE_N0, honest.aux, proof)
    bound = pi_fac.range_bound(LEVEL, BITFORGE_N0)
    assert abs(getattr(proof, failing)) > 2**800 * half(bound)
    with pytest.raises(InvalidProof, match=f"{failing} out of range"):
        _verify(BITFORGE_N0, honest.aux, proof)


# --------------------------------------------------------------------------- prover misuse


def test_prover_refuses_wrong_factorisation(honest: Case) -> None:
    mod = moduli()
    with pytest.raises(InvalidInput) as info:
        pi_fac.prove(CTX, honest.n0, honest.p, mod.other_q, honest.aux, rho=RHO)
    assert str(honest.p) not in str(info.value)
    with pytest.raises(InvalidInput):
        pi_fac.prove(CTX, honest.n0, 1, honest.n0, honest.aux, rho=RHO)


def test_prover_refuses_invalid_aux(honest: Case) -> None:
    small_aux = moduli().small_aux_secret.params
    with pytest.raises(InvalidInput, match="ring-Pedersen"):
        pi_fac.prove(CTX, honest.n0, honest.p, honest.q, small_aux, rho=RHO)
