"""The zero-knowledge proof section of scripts/bench: time and modexp count per proof.

Production size (SECURITY_128, 3072-bit moduli from 1536-bit primes). Primes come from the
test fixture so runs are comparable; the bench never asserts anything about speed.
Each proof's time is shown next to its modexp count times the cost of one gmpy2 modexp
measured in the same run, so the gap to the arithmetic floor is visible.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import gmpy2

from mpcnode.crypto.bigint import ModexpCounter, random_below, random_signed, random_unit
from mpcnode.crypto.group import SECP256K1
from mpcnode.crypto.paillier import PaillierSecretKey
from mpcnode.crypto.ring_pedersen import generate_ring_pedersen
from mpcnode.crypto.security import SECURITY_128 as LEVEL
from mpcnode.crypto.zk import (
    pi_aff_g,
    pi_elog,
    pi_enc,
    pi_enc_elg,
    pi_fac,
    pi_log_star,
    pi_mod,
    pi_prm,
    pi_sch,
)
from mpcnode.crypto.zk._common import ProofContext
from tests.fixtures.primes import load_test_primes

CTX = ProofContext(sid=b"bench-session", prover=1, level=LEVEL)
G = SECP256K1.generator()
Q = SECP256K1.order


def _median_seconds(fn: Callable[[], Any], runs: int) -> tuple[float, list[tuple[int, int]]]:
    """Median wall time of `fn` over `runs` calls, and the modexp shapes of one call."""
    times = []
    shapes: list[tuple[int, int]] = []
    for _ in range(runs):
        shapes = []
        ModexpCounter.shapes = shapes
        started = time.perf_counter()
        try:
            fn()
        finally:
            ModexpCounter.shapes = None
        times.append(time.perf_counter() - started)
    return statistics.median(times), shapes


class ModexpFloor:
    """The bare gmpy2 cost of the same modexps a proof makes (same modulus and exponent sizes)."""

    def __init__(self) -> None:
        self._cost: dict[tuple[int, int], float] = {}

    def seconds(self, modulus_bits: int, exponent_bits: int) -> float:
        key = (modulus_bits, exponent_bits)
        if key not in self._cost:
            modulus = gmpy2.mpz(random_below(1 << modulus_bits) | (1 << (modulus_bits - 1)) | 1)
            base = gmpy2.mpz(random_below(int(modulus)))
            exponent = gmpy2.mpz(random_below(1 << max(exponent_bits, 1)))
            times = []
            for _ in range(5):
                started = time.perf_counter()
                gmpy2.powmod(base, exponent, modulus)
                times.append(time.perf_counter() - started)
            self._cost[key] = statistics.median(times)
        return self._cost[key]

    def of(self, shapes: list[tuple[int, int]]) -> float:
        return sum(self.seconds(m, e) for m, e in shapes)


def modexp_costs(runs: int = 20) -> dict[str, float]:
    """Cost in ms of one gmpy2 modexp with a full-size exponent, at the sizes the proofs use."""
    out = {}
    for name, bits in (("mod_1536", 1536), ("mod_3072", 3072), ("mod_6144", 6144)):
        modulus = gmpy2.mpz(random_below(1 << bits) | (1 << (bits - 1)) | 1)
        base = gmpy2.mpz(random_below(int(modulus)))
        exponent = gmpy2.mpz(random_below(1 << bits))
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            gmpy2.powmod(base, exponent, modulus)
            times.append(time.perf_counter() - started)
        out[name] = round(statistics.median(times) * 1000, 3)
    return out


def bench_proofs(runs: int = 3) -> dict[str, Any]:
    primes = load_test_primes(LEVEL.prime_bits)
    prover_sk = PaillierSecretKey.from_primes(primes[0], primes[1], LEVEL, allow_test_primes=True)
    other_sk = PaillierSecretKey.from_primes(primes[2], primes[3], LEVEL, allow_test_primes=True)
    rp = generate_ring_pedersen(primes[4], primes[5])
    aux = rp.params
    pk, pk_other = prover_sk.public, other_sk.public

    # Statements with honest witnesses.
    k = random_signed(1 << LEVEL.ell)
    K, rho = pk.encrypt(k)
    b = random_below(Q)
    a = random_below(Q)
    A_pt, B_pt = G * a, G * b
    X_elg = G * (a * b + k)
    B_base = G * random_below(Q)
    X_log = B_base * k
    lam, y_el = random_below(Q), random_below(Q)
    X_el, H_el = G * random_below(Q), G * random_below(Q)
    L_el, M_el, Y_el = G * lam, G * y_el + X_el * lam, H_el * y_el
    x_sch = random_below(Q)
    X_sch = G * x_sch
    x_aff, y_aff = random_signed(1 << LEVEL.ell), random_signed(1 << LEVEL.ell_prime)
    C_aff, _ = pk_other.encrypt(random_signed(1 << LEVEL.ell))
    rho_aff, rho_y = random_unit(pk_other.n), random_unit(pk.n)
    D_aff, Y_aff, X_aff = pi_aff_g.affine_statement(
        pk_other, pk, C_aff, x_aff, y_aff, rho_aff, rho_y
    )

    cases: dict[str, tuple[Callable[[], Any], Callable[[Any], Any]]] = {
        "pi_mod": (
            lambda: pi_mod.prove(CTX, pk.n, prover_sk.p, prover_sk.q),
            lambda pr: pi_mod.verify(CTX, pk.n, pr),
        ),
        "pi_prm": (
            lambda: pi_prm.prove(CTX, aux, rp),
            lambda pr: pi_prm.verify(CTX, aux, pr),
        ),
        "pi_fac": (
            lambda: pi_fac.prove(CTX, pk.n, prover_sk.p, prover_sk.q, aux),
            lambda pr: pi_fac.verify(CTX, pk.n, aux, pr),
        ),
        "pi_enc": (
            lambda: pi_enc.prove(CTX, pk, K, k, rho, aux, sk=prover_sk),
            lambda pr: pi_enc.verify(CTX, pk, K, aux, pr),
        ),
        "pi_enc_elg": (
            lambda: pi_enc_elg.prove(CTX, pk, K, A_pt, B_pt, X_elg, k, rho, b, aux, sk=prover_sk),
            lambda pr: pi_enc_elg.verify(CTX, pk, K, A_pt, B_pt, X_elg, aux, pr),
        ),
        "pi_aff_g": (
            lambda: pi_aff_g.prove(
                CTX, pk_other, pk, C_aff, D_aff, Y_aff, X_aff, x_aff, y_aff, rho_aff, rho_y, aux
            ),
            lambda pr: pi_aff_g.verify(CTX, pk_other, pk, C_aff, D_aff, Y_aff, X_aff, aux, pr),
        ),
        "pi_log_star": (
            lambda: pi_log_star.prove(CTX, pk, K, X_log, B_base, k, rho, aux, sk=prover_sk),
            lambda pr: pi_log_star.verify(CTX, pk, K, X_log, B_base, aux, pr),
        ),
        "pi_elog": (
            lambda: pi_elog.prove(CTX, L_el, M_el, X_el, Y_el, H_el, y_el, lam),
            lambda pr: pi_elog.verify(CTX, L_el, M_el, X_el, Y_el, H_el, pr),
        ),
        "pi_sch": (
            lambda: pi_sch.prove_simple(CTX, X_sch, x_sch),
            lambda pr: pi_sch.verify_simple(CTX, X_sch, pr),
        ),
    }
    costs = modexp_costs()
    floor = ModexpFloor()
    results: dict[str, Any] = {"modexp_ms": costs}
    for name, (prove, verify) in cases.items():
        proof = prove()
        verify(proof)  # an honest proof must verify before it is timed
        prove_s, prove_shapes = _median_seconds(prove, runs)
        verify_s, verify_shapes = _median_seconds(lambda p=proof, v=verify: v(p), runs)
        results[name] = {
            "prove_ms": round(prove_s * 1000, 2),
            "prove_modexps": len(prove_shapes),
            "prove_floor_ms": round(floor.of(prove_shapes) * 1000, 2),
            "verify_ms": round(verify_s * 1000, 2),
            "verify_modexps": len(verify_shapes),
            "verify_floor_ms": round(floor.of(verify_shapes) * 1000, 2),
            "proof_bytes": len(proof.encode()),
        }
    return results


def markdown(results: dict[str, Any]) -> list[str]:
    costs = results["modexp_ms"]
    lines = [
        "## Zero-knowledge proofs at production size (3072-bit moduli, SECURITY_128)",
        "",
        f"One gmpy2 modexp with a full-size exponent, same run: {costs['mod_1536']} ms mod a "
        f"1536-bit prime (a CRT half), {costs['mod_3072']} ms mod N (3072 bits), "
        f'{costs["mod_6144"]} ms mod N² (6144 bits). "Floor" is the bare gmpy2 time of the '
        "very modexps the proof makes (same modulus and exponent sizes, measured in this run): "
        "the arithmetic the proof cannot avoid.",
        "",
        "| proof | prove ms | modexps | floor ms | verify ms | modexps | floor ms | bytes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        if name == "modexp_ms":
            continue
        lines.append(
            f"| {name} | {r['prove_ms']} | {r['prove_modexps']} | {r['prove_floor_ms']} "
            f"| {r['verify_ms']} | {r['verify_modexps']} | {r['verify_floor_ms']} "
            f"| {r['proof_bytes']} |"
        )
    return lines
