"""Π-mod at production size (SECURITY_128, 3072-bit N from the fixture's 1536-bit safe primes).

Completeness, serialisation, one rejection per tampered proof field, statement value and
context, and the false statements: a prime N, a non-Blum N, the CVE-2025-66016 proofs (w with
Jacobi symbol +1, and w sharing a factor with N, for which every equation holds), an even N
and a too-small N. Forged proofs come from `_cheat`, a test-only prover that answers whatever
it can with the factorisation it knows and skips every check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from mpcnode.crypto.bigint import (
    ModexpCounter,
    crt,
    gcd,
    invert,
    is_unit,
    jacobi,
    powmod,
    random_unit,
)
from mpcnode.crypto.zk import pi_mod
from mpcnode.crypto.zk._common import ProofContext
from mpcnode.crypto.zk.pi_mod import ModProof
from mpcnode.errors import InvalidInput, InvalidProof
from tests.crypto.zk._setup import (
    CTX,
    LEVEL,
    MERSENNE_3217,
    OTHER_CONTEXTS,
    RHO,
    Honest,
    Keys,
    M,
    ProofSuite,
    RhoSuite,
    Subject,
    prime_with_residue,
    random_jacobi,
    replace_at,
)


@pytest.fixture(scope="module")
def honest(keys: Keys) -> Honest:
    sk = keys.sk
    return Honest.make(
        keys,
        lambda: pi_mod.prove(CTX, sk.n, sk.p, sk.q, rho=RHO),
        pi_mod.verify,
        ctx=CTX,
        n=sk.n,
        rho=RHO,
    )


@pytest.fixture(scope="module")
def non_blum_q() -> int:
    """A 1536-bit prime q′ ≡ 5 (mod 8): N = p·q′ is not a Blum integer (q′ ≡ 1 mod 4)."""
    return prime_with_residue(LEVEL.prime_bits, 5, 8, seed=66016)


@pytest.fixture(scope="module")
def subject(honest: Honest) -> Subject:
    return honest.subject


class TestCommon(ProofSuite, RhoSuite):
    PROOF = ModProof
    N_POINTS = None
    FIRST_EQUATION = "x_\\d+\\^4"


# --------------------------------------------------------------------------- test-only prover


def _fourth_root(u: int, prime: int) -> int | None:
    """A 4th root of u modulo `prime` (≡ 3 mod 4 or ≡ 5 mod 8), or None when there is none."""
    u %= prime
    if u == 0:
        return 0
    if jacobi(u, prime) != 1:  # a 4th power is a square
        return None
    if prime % 4 == 3:  # 4th powers = squares; the principal root u^(((p+1)/4)²)
        root = powmod(u, ((prime + 1) // 4) ** 2 % (prime - 1), prime)
    elif prime % 8 == 5:  # 4th powers = the subgroup of odd order k = (p−1)/4
        k = (prime - 1) // 4
        if powmod(u, k, prime) != 1:
            return None
        root = powmod(u, invert(4, k), prime)
    else:
        raise AssertionError("test helper supports primes ≡ 3 (mod 4) or ≡ 5 (mod 8)")
    assert powmod(root, 4, prime) == u
    return root


def _cheat(
    n: int, primes: Sequence[int], w: int, ctx: ProofContext = CTX, rho: bytes = RHO
) -> tuple[ModProof, int]:
    """(proof, number of repetitions it could not answer) for N = ∏ primes and a chosen w.

    For each y_i it tries (a, b) = (0,0), (1,0), (0,1), (1,1) and uses the first for which
    (−1)^a·w^b·y_i has a 4th root modulo every prime; otherwise it sends x_i = 1 (a wrong
    answer). z_i is the N-th root by CRT (N must be coprime to every p − 1). No check is made
    on N or w: this is the prover a cheater would write."""
    xs, as_, bs, zs = [], [], [], []
    unanswered = 0
    for y in pi_mod._challenge(ctx, n, w, rho):
        choice = None
        for a, b in ((0, 0), (1, 0), (0, 1), (1, 1)):
            target = (-1) ** a * (w if b else 1) * y % n
            roots = [_fourth_root(target, prime) for prime in primes]
            if all(root is not None for root in roots):
                choice = (a, b, crt([r for r in roots if r is not None], primes))
                break
        if choice is None:
            unanswered += 1
            choice = (0, 0, 1)
        zs.append(crt([powmod(y, invert(n % (pr - 1), pr - 1), pr) for pr in primes], primes))
        as_.append(choice[0])
        bs.append(choice[1])
        xs.append(choice[2])
    return ModProof(w, tuple(xs), tuple(as_), tuple(bs), tuple(zs)), unanswered


def _equations_hold(
    n: int, primes: Sequence[int], proof: ModProof, ctx: ProofContext = CTX, rho: bytes = RHO
) -> bool:
    """Only the two equations of every repetition (what paillier-zk 0.4 checked), nothing else.

    Checked modulo each prime factor of N = ∏ primes (equivalent, and cheaper than mod N)."""
    ys = pi_mod._challenge(ctx, n, proof.w, rho)
    for x, a, b, z, y in zip(proof.x, proof.a, proof.b, proof.z, ys, strict=True):
        if powmod(x, 4, n) != (-1) ** a * (proof.w if b else 1) * y % n:
            return False
        for prime in primes:
            if powmod(z % prime, n % (prime - 1), prime) != y % prime:
                return False
    return True


# --------------------------------------------------------------------------- completeness


def test_modexp_counts(honest: Honest) -> None:
    before = ModexpCounter.count
    honest.subject.check()
    # 4 exponentiations mod a 1536-bit prime per repetition to prove; one N-th power mod N per
    # repetition to verify (x_i^4 is two squarings).
    assert (honest.prove_modexps, ModexpCounter.count - before) == (4 * M, M)
    assert jacobi(honest.proof.w, honest.n) == -1
    assert len(honest.proof.x) == M == 128


def test_proofs_are_randomised(honest: Honest) -> None:
    again = pi_mod.prove(CTX, honest.n, honest.p, honest.q, rho=RHO)
    assert again.w != honest.proof.w and again.x != honest.proof.x


def test_challenges_are_distinct_units(honest: Honest) -> None:
    ys = pi_mod._challenge(CTX, honest.n, honest.proof.w, RHO)
    assert len(ys) == M and len(set(ys)) == M  # the Taurus bug made every y_i equal
    assert all(is_unit(y, honest.n) for y in ys)


def test_challenge_binds_every_value(honest: Honest) -> None:
    # y_1..y_m change with the context, N, w and ρ (w is fixed before the y_i are known).
    n, w = honest.n, honest.proof.w
    base = pi_mod._challenge(CTX, n, w, RHO)
    variants = {
        **{f"ctx.{k}": pi_mod._challenge(c, n, w, RHO) for k, c in OTHER_CONTEXTS.items()},
        "N": pi_mod._challenge(CTX, honest.keys.other_sk.n, w, RHO),
        "w": pi_mod._challenge(CTX, n, w * 4 % n, RHO),
        "rho": pi_mod._challenge(CTX, n, w, RHO[:-1]),
    }
    for name, ys in variants.items():
        assert all(y != y0 for y, y0 in zip(ys, base, strict=True)), name


def test_prover_answers_every_symbol_class(honest: Honest) -> None:
    # All four (a, b) combinations occur over 128 repetitions (each has probability 1/4).
    assert set(zip(honest.proof.a, honest.proof.b, strict=True)) == {(0, 0), (0, 1), (1, 0), (1, 1)}


# --------------------------------------------------------------------------- tampered proof


TAMPERINGS = {
    # w·4 keeps w a unit of Jacobi symbol −1: only the challenge binding catches it.
    "w times 4": lambda c: dataclasses.replace(c.proof, w=c.proof.w * 4 % c.n),
    "w plus 1": lambda c: dataclasses.replace(c.proof, w=c.proof.w + 1),
    "w = N - w": lambda c: dataclasses.replace(c.proof, w=c.n - c.proof.w),
    "x[0] plus 1": lambda c: dataclasses.replace(
        c.proof, x=replace_at(c.proof.x, 0, c.proof.x[0] + 1)
    ),
    "x[last] plus 1": lambda c: dataclasses.replace(
        c.proof, x=replace_at(c.proof.x, M - 1, c.proof.x[-1] + 1)
    ),
    "x[0] = 0": lambda c: dataclasses.replace(c.proof, x=replace_at(c.proof.x, 0, 0)),
    "x[0] plus N": lambda c: dataclasses.replace(
        c.proof, x=replace_at(c.proof.x, 0, c.proof.x[0] + c.n)
    ),
    "a[0] flipped": lambda c: dataclasses.replace(
        c.proof, a=replace_at(c.proof.a, 0, 1 - c.proof.a[0])
    ),
    "a[last] flipped": lambda c: dataclasses.replace(
        c.proof, a=replace_at(c.proof.a, M - 1, 1 - c.proof.a[-1])
    ),
    # A non-bit that a sloppy verifier would read as 1, where the honest bit is 1.
    "a[first one] = 2": lambda c: dataclasses.replace(
        c.proof, a=replace_at(c.proof.a, c.proof.a.index(1), 2)
    ),
    "b[0] flipped": lambda c: dataclasses.replace(
        c.proof, b=replace_at(c.proof.b, 0, 1 - c.proof.b[0])
    ),
    "b[first one] = -1": lambda c: dataclasses.replace(
        c.proof, b=replace_at(c.proof.b, c.proof.b.index(1), -1)
    ),
    "b[first one] = 3": lambda c: dataclasses.replace(
        c.proof, b=replace_at(c.proof.b, c.proof.b.index(1), 3)
    ),
    "z[0] plus 1": lambda c: dataclasses.replace(
        c.proof, z=replace_at(c.proof.z, 0, c.proof.z[0] + 1)
    ),
    "z[0] plus N": lambda c: dataclasses.replace(
        c.proof, z=replace_at(c.proof.z, 0, c.proof.z[0] + c.n)
    ),
    "z[0] = p (not a unit)": lambda c: dataclasses.replace(
        c.proof, z=replace_at(c.proof.z, 0, c.p)
    ),
    "x, z swapped at 0": lambda c: dataclasses.replace(
        c.proof,
        x=replace_at(c.proof.x, 0, c.proof.z[0]),
        z=replace_at(c.proof.z, 0, c.proof.x[0]),
    ),
    "repetitions 0 and 1 swapped": lambda c: dataclasses.replace(
        c.proof,
        x=(c.proof.x[1], c.proof.x[0], *c.proof.x[2:]),
        a=(c.proof.a[1], c.proof.a[0], *c.proof.a[2:]),
        b=(c.proof.b[1], c.proof.b[0], *c.proof.b[2:]),
        z=(c.proof.z[1], c.proof.z[0], *c.proof.z[2:]),
    ),
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampered_proof_field_rejected(honest: Honest, name: str) -> None:
    tampered = TAMPERINGS[name](honest)
    assert tampered != honest.proof
    with pytest.raises(InvalidProof):
        honest.subject.check(tampered)


def test_every_field_is_covered_by_a_tampering() -> None:
    fields = [f.name for f in dataclasses.fields(ModProof)]
    assert fields == ["w", "x", "a", "b", "z"]
    for field in fields:
        assert any(name.startswith(field) for name in TAMPERINGS), field


@pytest.mark.parametrize("count", [M - 1, M + 1, 0])
def test_wrong_number_of_repetitions_rejected(honest: Honest, count: int) -> None:
    def resize(values: tuple[int, ...]) -> tuple[int, ...]:
        return (values + values)[:count]

    p = honest.proof
    short = ModProof(p.w, resize(p.x), resize(p.a), resize(p.b), resize(p.z))
    with pytest.raises(InvalidProof, match="repetitions"):
        honest.subject.check(short)


# --------------------------------------------------------------------------- statement, context


def test_other_modulus_rejected(honest: Honest) -> None:
    with pytest.raises(InvalidProof):
        honest.subject.check(n=honest.keys.other_sk.n)


def test_modulus_plus_two_rejected(honest: Honest) -> None:
    with pytest.raises(InvalidProof):
        honest.subject.check(n=honest.n + 2)


# --------------------------------------------------------------------------- false statements


def test_prime_modulus_rejected_at_the_composite_check(subject: Subject) -> None:
    # N = 2^3217 − 1 is prime and ≡ 3 (mod 4): every unit has an N-th root (z = y, as
    # N ≡ 1 mod N − 1) and ±y is a square, so a cheater answers EVERY repetition and the
    # equations all hold. Only "N is composite" stops it.
    n = MERSENNE_3217
    w = next(c for c in range(2, 1000) if jacobi(c, n) == -1)
    proof, unanswered = _cheat(n, [n], w)
    assert unanswered == 0
    assert _equations_hold(n, [n], proof)
    assert all(is_unit(x, n) for x in proof.x) and all(is_unit(z, n) for z in proof.z)
    with pytest.raises(InvalidProof, match="N is prime"):
        subject.check(proof, n=n)


def test_non_blum_modulus_refused_by_prover(keys: Keys, non_blum_q: int) -> None:
    p = keys.sk.p
    with pytest.raises(InvalidInput, match="3 \\(mod 4\\)"):
        pi_mod.prove(CTX, p * non_blum_q, p, non_blum_q, rho=RHO)


def test_non_blum_modulus_cannot_be_proved(subject: Subject, keys: Keys, non_blum_q: int) -> None:
    # N = p·q′ with q′ ≡ 5 (mod 8): Z*_N modulo 4th powers has 8 classes, and ±1, ±w reach
    # at most 4 of them, so about half of the y_i have no answer for any w (here Jacobi −1).
    p = keys.sk.p
    n = p * non_blum_q
    proof, unanswered = _cheat(n, [p, non_blum_q], random_jacobi(n, -1))
    assert M // 8 < unanswered < M - M // 8
    with pytest.raises(InvalidProof, match="x_\\d+\\^4"):
        subject.check(proof, n=n)


def test_cve_2025_66016_w_sharing_a_factor_with_n(
    subject: Subject, keys: Keys, non_blum_q: int
) -> None:
    # The exploitable form of CVE-2025-66016: w ≡ 0 (mod q′). Then (−1)^a·w·y_i ≡ 0 (mod q′)
    # has the 4th root 0 there for EVERY y_i, and a square root mod p for a = 0 or 1, so a
    # cheater answers all repetitions for a non-Blum N; Jacobi(w | N) = 0, not −1.
    p = keys.sk.p
    n = p * non_blum_q
    w = non_blum_q * random_unit(p) % n
    assert jacobi(w, n) == 0 and gcd(w, n) == non_blum_q
    proof, unanswered = _cheat(n, [p, non_blum_q], w)
    assert unanswered == 0
    assert _equations_hold(
        n, [p, non_blum_q], proof
    )  # a verifier checking only the equations would accept
    with pytest.raises(InvalidProof, match="w ∉ Z\\*_N"):
        subject.check(proof, n=n)


@pytest.mark.parametrize("sign", [1, -1], ids=["w=r^2", "w=-r^2"])
def test_cve_2025_66016_w_with_jacobi_plus_one(honest: Honest, sign: int) -> None:
    # A unit w of Jacobi symbol +1 on a Blum N is ±(a square): ±1 and ±w then reach only the
    # two classes of y with equal Legendre symbols, so the cheater cannot answer the others
    # (about half). A proof whose w has Jacobi +1 is rejected before any equation is looked at.
    r = random_unit(honest.n)
    w = sign * r * r % honest.n
    assert jacobi(w, honest.n) == 1
    proof, unanswered = _cheat(honest.n, [honest.p, honest.q], w)
    assert M // 8 < unanswered < M - M // 8
    with pytest.raises(InvalidProof, match="Jacobi"):
        honest.subject.check(proof)


def test_jacobi_check_precedes_the_equations(honest: Honest) -> None:
    # The honest proof with w times a Jacobi −1 unit: w is still a unit, its symbol is +1.
    w_plus = honest.proof.w * random_jacobi(honest.n, -1) % honest.n
    assert jacobi(w_plus, honest.n) == 1 and is_unit(w_plus, honest.n)
    with pytest.raises(InvalidProof, match="Jacobi"):
        honest.subject.check(dataclasses.replace(honest.proof, w=w_plus))


def test_even_modulus_rejected(honest: Honest) -> None:
    with pytest.raises(InvalidProof, match="odd"):
        honest.subject.check(n=2 * honest.n)


def test_too_small_modulus_refused_and_rejected(subject: Subject, keys: Keys) -> None:
    small = keys.small_sk
    with pytest.raises(InvalidInput, match="bits"):
        pi_mod.prove(CTX, small.n, small.p, small.q, rho=RHO)
    # The unchecked prover makes a proof whose equations all hold: only the size check stops it.
    proof = pi_mod._prove(CTX, small.n, small.p, small.q, rho=RHO)
    assert _equations_hold(small.n, [small.p, small.q], proof)
    with pytest.raises(InvalidProof, match="2048 bits, at least 3071"):
        subject.check(proof, n=small.n)


# --------------------------------------------------------------------------- prover misuse


def test_prover_refuses_wrong_factorisation(honest: Honest) -> None:
    with pytest.raises(InvalidInput):
        pi_mod.prove(CTX, honest.n, honest.p, honest.keys.other_sk.q, rho=RHO)
    with pytest.raises(InvalidInput):
        pi_mod.prove(CTX, honest.p * honest.p, honest.p, honest.p, rho=RHO)


def test_prover_refuses_composite_factors(keys: Keys) -> None:
    # A "factor" 3·p1·p2 ≡ 3 (mod 4) that is not prime: the CRT roots come out wrong, the
    # prover notices (x_i^4 ≠ y′_i) and refuses, without naming the factors.
    fake_p = 3 * keys.small_sk.p * keys.small_sk.q
    assert fake_p % 4 == 3
    n = fake_p * keys.sk.p
    with pytest.raises(InvalidInput) as info:
        pi_mod.prove(CTX, n, fake_p, keys.sk.p, rho=RHO)
    assert str(keys.sk.p) not in str(info.value) and str(fake_p) not in str(info.value)
