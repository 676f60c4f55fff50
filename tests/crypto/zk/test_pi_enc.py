"""Π-enc at production size (3072-bit N₀ and N̂, SECURITY_128): completeness, encoding,
tampering, context binding, false statements and the exact range check on z₁."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mpcnode.crypto import bigint
from mpcnode.crypto.bigint import random_signed
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.zk import pi_enc
from mpcnode.crypto.zk.pi_enc import EncProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._paillier_setup import (
    CTX,
    LEVEL,
    OTHER_CONTEXTS,
    PaillierSetup,
    paillier_setup,
    proof_field_names,
    tampered,
)

ELL, EPS = LEVEL.ell, LEVEL.epsilon
Z1_MAX = 1 << (ELL + EPS - 1)  # |z1| <= 2^(ℓ+ε−1)


@dataclasses.dataclass(frozen=True)
class Case:
    K: int
    k: int
    rho: int
    proof: EncProof


@pytest.fixture(scope="module")
def setup() -> PaillierSetup:
    return paillier_setup()


@pytest.fixture(scope="module")
def case(setup: PaillierSetup) -> Case:
    k = random_signed(1 << ELL)
    K, rho = setup.pk.encrypt(k)
    proof = pi_enc.prove(CTX, setup.pk, K, k, rho, setup.aux, sk=setup.sk)
    return Case(K, k, rho, proof)


def _verify(setup: PaillierSetup, K: int, proof: EncProof, **over: Any) -> None:
    pi_enc.verify(
        over.get("ctx", CTX), over.get("pk", setup.pk), K, over.get("aux", setup.aux), proof
    )


def test_completeness(setup: PaillierSetup, case: Case) -> None:
    _verify(setup, case.K, case.proof)


@pytest.mark.parametrize(
    "k", [0, 1, -1, (1 << (ELL - 1)), -(1 << (ELL - 1))], ids=["0", "1", "-1", "max", "min"]
)
def test_completeness_edges_without_secret_key(setup: PaillierSetup, k: int) -> None:
    K, rho = setup.pk.encrypt(k)
    proof = pi_enc.prove(CTX, setup.pk, K, k, rho, setup.aux)
    _verify(setup, K, proof)


def test_encoding_round_trip(setup: PaillierSetup, case: Case) -> None:
    data = case.proof.encode()
    decoded = EncProof.decode(data)
    assert decoded == case.proof
    assert decoded.encode() == data
    _verify(setup, case.K, decoded)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[:-1],
        lambda d: d + b"\x00",
        lambda d: d + b"\x00\x00\x00\x01\x00",
        lambda d: b"",
        lambda d: b"\x00\x00\x00\x01\x02" + d[5:],
    ],
    ids=["truncated", "trailing-byte", "extra-field", "empty", "bad-sign-byte"],
)
def test_decode_rejects_malformed(case: Case, mangle: Callable[[bytes], bytes]) -> None:
    with pytest.raises(InvalidProof):
        EncProof.decode(mangle(case.proof.encode()))


@pytest.mark.parametrize("field", proof_field_names(EncProof(0, 0, 0, 0, 0, 0)))
def test_tampered_proof_field(setup: PaillierSetup, case: Case, field: str) -> None:
    bad = dataclasses.replace(case.proof, **{field: tampered(getattr(case.proof, field))})
    with pytest.raises(InvalidProof):
        _verify(setup, case.K, bad)


def test_tampered_statement_K(setup: PaillierSetup, case: Case) -> None:
    with pytest.raises(InvalidProof):
        _verify(setup, tampered(case.K), case.proof)
    # K·enc(1) is another valid ciphertext: still rejected
    other = setup.pk.add(case.K, setup.pk.encrypt(1)[0])
    with pytest.raises(InvalidProof):
        _verify(setup, other, case.proof)


def test_tampered_statement_N0(setup: PaillierSetup, case: Case) -> None:
    with pytest.raises(InvalidProof):
        _verify(setup, case.K, case.proof, pk=setup.other_pk)
    with pytest.raises(InvalidProof):
        _verify(setup, case.K, case.proof, pk=PaillierPublicKey(setup.pk.n + 2))


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
        _verify(setup, case.K, case.proof, aux=bad)


@pytest.mark.parametrize("which", sorted(OTHER_CONTEXTS))
def test_other_context(setup: PaillierSetup, case: Case, which: str) -> None:
    with pytest.raises(InvalidProof):
        _verify(setup, case.K, case.proof, ctx=OTHER_CONTEXTS[which])


def _not_member_cases(s: PaillierSetup) -> dict[str, Callable[[Case], tuple[int, EncProof]]]:
    """(K, proof) pairs where one element is outside its group (same residue or non-unit)."""
    n0, n2, nh = s.pk.n, s.pk.n_squared, s.aux.n
    p = s.sk.p
    r = dataclasses.replace
    return {
        "K+N0²": lambda c: (c.K + n2, c.proof),
        "K=0": lambda c: (0, c.proof),
        "K=p·K": lambda c: (c.K * p % n2, c.proof),
        "A+N0²": lambda c: (c.K, r(c.proof, A=c.proof.A + n2)),
        "A=p": lambda c: (c.K, r(c.proof, A=p)),
        "S+N̂": lambda c: (c.K, r(c.proof, S=c.proof.S + nh)),
        "S=0": lambda c: (c.K, r(c.proof, S=0)),
        "C+N̂": lambda c: (c.K, r(c.proof, C=c.proof.C + nh)),
        "C=-C": lambda c: (c.K, r(c.proof, C=-c.proof.C)),
        "z2+N0": lambda c: (c.K, r(c.proof, z2=c.proof.z2 + n0)),
        "z2=p": lambda c: (c.K, r(c.proof, z2=p)),
        "z2=0": lambda c: (c.K, r(c.proof, z2=0)),
    }


@pytest.mark.parametrize(
    "name",
    ["K+N0²", "K=0", "K=p·K", "A+N0²", "A=p", "S+N̂", "S=0", "C+N̂", "C=-C", "z2+N0", "z2=p", "z2=0"],
)
def test_rejects_non_members(setup: PaillierSetup, case: Case, name: str) -> None:
    K, proof = _not_member_cases(setup)[name](case)
    with pytest.raises(InvalidProof, match="∉"):
        _verify(setup, K, proof)


def test_rejects_commitment_with_factor_of_n_hat(setup: PaillierSetup, case: Case) -> None:
    """S = p̂ (a factor of N̂) is in [0, N̂) but not a unit. p̂ from N̂ and φ(N̂) = N̂ − (p̂ + q̂) + 1."""
    n, phi = setup.rp.params.n, setup.rp.phi
    total = n - phi + 1  # p̂ + q̂
    disc = bigint.isqrt(total * total - 4 * n)
    p_hat = (total + disc) // 2
    assert n % p_hat == 0
    with pytest.raises(InvalidProof, match="∉"):
        _verify(setup, case.K, dataclasses.replace(case.proof, S=p_hat))


def test_rejects_oversized_responses(setup: PaillierSetup, case: Case) -> None:
    for field in ("z1", "z3"):
        huge = dataclasses.replace(case.proof, **{field: 1 << 20000})
        with pytest.raises(InvalidProof, match="too large"):
            _verify(setup, case.K, huge)


def test_rejects_undersized_moduli(setup: PaillierSetup) -> None:
    """Alpha-Rays: a valid proof under a 2048-bit N₀ or N̂ is refused for the modulus size."""
    k = 12345
    small_pk = setup.small_sk.public
    K, rho = small_pk.encrypt(k)
    proof = pi_enc._prove(CTX, small_pk, K, k, rho, setup.aux, None, None)
    with pytest.raises(InvalidProof, match="bits"):
        _verify(setup, K, proof, pk=small_pk)
    with pytest.raises(InvalidInput):
        pi_enc.prove(CTX, small_pk, K, k, rho, setup.aux)

    K, rho = setup.pk.encrypt(k)
    small_aux = setup.small_rp.params
    proof = pi_enc._prove(CTX, setup.pk, K, k, rho, small_aux, None, None)
    with pytest.raises(InvalidProof, match="bits"):
        _verify(setup, K, proof, aux=small_aux)
    with pytest.raises(InvalidInput):
        pi_enc.prove(CTX, setup.pk, K, k, rho, small_aux)


@pytest.mark.parametrize(
    "k",
    [
        1 << (ELL + EPS),
        -(1 << (ELL + EPS)),
        1 << (ELL + EPS + 200),
        -(1 << (ELL + EPS + 200)) + 12345,
        (1 << 3000) + 7,
    ],
    ids=["2^(l+e)", "-2^(l+e)", "2^(l+e+200)", "-2^(l+e+200)", "2^3000"],
)
def test_false_statement_out_of_range_plaintext(setup: PaillierSetup, k: int) -> None:
    """K encrypts a k far outside I(2^(ℓ+ε)): the prover refuses, a forced proof is rejected."""
    K, rho = setup.pk.encrypt(k)
    with pytest.raises(InvalidInput):
        pi_enc.prove(CTX, setup.pk, K, k, rho, setup.aux)
    proof = pi_enc._prove(CTX, setup.pk, K, k, rho, setup.aux, None, setup.sk)
    with pytest.raises(InvalidProof, match="z1|too large"):
        _verify(setup, K, proof)


@pytest.mark.parametrize("k", [(1 << (ELL - 1)) + 1, -(1 << (ELL - 1)) - 1], ids=["max+1", "min-1"])
def test_prover_refuses_witness_just_outside(setup: PaillierSetup, k: int) -> None:
    K, rho = setup.pk.encrypt(k)
    with pytest.raises(InvalidInput):
        pi_enc.prove(CTX, setup.pk, K, k, rho, setup.aux)


def test_prover_refuses_bad_randomness_or_key(setup: PaillierSetup, case: Case) -> None:
    with pytest.raises(InvalidInput):
        pi_enc.prove(CTX, setup.pk, case.K, case.k, setup.sk.p, setup.aux)
    with pytest.raises(InvalidInput):
        pi_enc.prove(CTX, setup.pk, case.K, case.k, case.rho, setup.aux, sk=setup.small_sk)


def test_wrong_witness_rejected(setup: PaillierSetup, case: Case) -> None:
    """A proof for k+1 (in range) about K = enc(k) does not verify."""
    proof = pi_enc._prove(CTX, setup.pk, case.K, case.k + 1, case.rho, setup.aux, None, None)
    with pytest.raises(InvalidProof, match="enc"):
        _verify(setup, case.K, proof)


@pytest.fixture
def forced_alpha(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Make the prover's α ← I(2^(ℓ+ε)) the value pushed into the returned list."""
    chosen: list[int] = []
    real = bigint.random_signed

    def fake(bound: int, rng: bigint.RandomBytes | None = None) -> int:
        if bound == 1 << (ELL + EPS) and chosen:
            return chosen.pop()
        return real(bound, rng)

    monkeypatch.setattr(pi_enc, "random_signed", fake)
    yield chosen


@pytest.mark.parametrize(
    ("alpha", "accept"),
    [(Z1_MAX, True), (-Z1_MAX, True), (Z1_MAX + 1, False), (-Z1_MAX - 1, False)],
    ids=["max", "min", "max+1", "min-1"],
)
def test_z1_range_check_is_exact(
    setup: PaillierSetup, forced_alpha: list[int], alpha: int, accept: bool
) -> None:
    """With k = 0, z₁ = α whatever e is: the proof is otherwise valid, so only the range
    check |z₁| <= 2^(ℓ+ε−1) decides, at exactly the bound and one past it, both signs."""
    K, rho = setup.pk.encrypt(0)
    forced_alpha.append(alpha)
    proof = pi_enc._prove(CTX, setup.pk, K, 0, rho, setup.aux, None, setup.sk)
    assert proof.z1 == alpha
    if accept:
        _verify(setup, K, proof)
    else:
        with pytest.raises(InvalidProof, match="z1"):
            _verify(setup, K, proof)
