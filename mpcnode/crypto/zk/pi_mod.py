"""Π-mod: N is a Paillier-Blum modulus (CGGMP24 form, with the CVE-2025-66016 fix).

Statement: N. Witness: distinct primes p, q ≡ 3 (mod 4) with N = p·q. Repetitions m = level.m.

Prover:

    w ← Z*_N with Jacobi(w | N) = −1
    y_1..y_m ← Z*_N from the transcript (every statement value, ρ and w absorbed; one
                 stream per index, so no two y_i are derived alike: the Taurus bug)
    for each i: the unique (a_i, b_i) ∈ {0,1}² with y′_i = (−1)^a_i·w^b_i·y_i a square mod p
                 and mod q (Legendre symbols; −1 is a non-residue mod both, and w a non-residue
                 mod exactly one, so exactly one of ±y_i, ±w·y_i is a square);
                 x_i = the principal 4th root of y′_i   (CRT: y′^(((p+1)/4)² mod (p−1)) mod p, …)
                 z_i = y_i^(N⁻¹ mod φ(N))               (CRT: y^(N⁻¹ mod (p−1)) mod p, …)
    send w and (x_i, a_i, b_i, z_i) for i = 1..m

Verifier (cggmp-spec.md §3.2, all mandatory): bitlen(N) ≥ level.min_modulus_bits; N odd;
N composite (25-round probable-prime test says "composite"); w ∈ Z*_N; **Jacobi(w | N) = −1**
(the check the paper lists only as a prover step; without it a prover can use a w that shares
a factor with N and pass the equations for a non-Blum N: CVE-2025-66016); every x_i, z_i ∈ Z*_N;
every a_i, b_i a bit; then the challenge, then for every i

    z_i^N ≡ y_i (mod N)     (N-th roots of every unit exist: gcd(N, φ(N)) = 1, so N is square-free)
    x_i^4 ≡ (−1)^a_i·w^b_i·y_i (mod N)

Cost: the prover computes 4 exponentiations mod a 1536-bit prime per repetition (4m in all);
the verifier computes one N-th power mod N per repetition (m in all); x_i^4 is two modular
squarings, not an exponentiation.

`rho` binds the joint randomness ρ of aux-info generation into the challenge, so the prover
cannot grind challenges before ρ is fixed (cggmp-spec.md §4).

Sources: ePrint 2021/060 (CGGMP24) Π-mod; LFDT-Lockness paillier-zk `paillier_blum_modulus.rs`;
taurushq multi-party-sig `pkg/zk/mod`; https://wednesdei.com/research/blum.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.bigint import (
    RandomBytes,
    invert,
    is_probable_prime,
    jacobi,
    powmod,
    random_unit,
)
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.zk._common import (
    ProofContext,
    check_moduli,
    check_units,
    crt_pair,
    pack_int_lists,
    require,
    unpack_int_lists,
)
from mpcnode.errors import InvalidInput

__all__ = ["TAG", "MR_ROUNDS", "ModProof", "prove", "verify"]

TAG = "mpc.v1.zk.mod"
"""Transcript tag of Π-mod."""

NAME = "Π-mod"

MR_ROUNDS = 25
"""Rounds of the probable-prime test the verifier runs on N (it must say "composite")."""


@dataclass(frozen=True)
class ModProof:
    """The prover's message: w (Jacobi −1) and, per repetition i, the 4th root x_i, the bits
    a_i, b_i and the N-th root z_i. The statement N is not included."""

    w: int
    x: tuple[int, ...]
    a: tuple[int, ...]
    b: tuple[int, ...]
    z: tuple[int, ...]

    def encode(self) -> bytes:
        """pack_int_lists([[w], x, a, b, z])."""
        return pack_int_lists([[self.w], self.x, self.a, self.b, self.z])

    @classmethod
    def decode(cls, data: bytes) -> ModProof:
        """Inverse of `encode`; anything malformed or non-canonical raises InvalidProof.

        The number of repetitions is not fixed here; `verify` requires exactly level.m."""
        (w,), x, a, b, z = unpack_int_lists(data, (1, None, None, None, None), NAME)
        return cls(w, x, a, b, z)


def _challenge(ctx: ProofContext, n: int, w: int, rho: bytes) -> list[int]:
    """y_1..y_m ∈ Z*_N from the transcript over (ctx, ρ, N, w)."""
    tr = ctx.transcript(TAG)
    tr.append("rho", rho)
    tr.append("N", n)
    tr.append("w", w)
    return tr.challenge_units("y", n, ctx.level.m)


def prove(
    ctx: ProofContext,
    n: int,
    p: int,
    q: int,
    rng: RandomBytes | None = None,
    *,
    rho: bytes = b"",
) -> ModProof:
    """Prove that N = p·q is a Paillier-Blum modulus.

    Raises InvalidInput on misuse: N ≠ p·q, p = q, a factor not ≡ 3 (mod 4), N below the
    level's modulus size, or factors that are not prime (detected when a root fails)."""
    if p == q or p < 3 or q < 3 or p * q != n:
        raise InvalidInput(f"{NAME} witness must be distinct factors p, q with N = p·q")
    if p % 4 != 3 or q % 4 != 3:
        raise InvalidInput(f"{NAME} witness factors must be ≡ 3 (mod 4)")
    check_moduli(NAME, ctx.level, PaillierPublicKey(n), error=InvalidInput)
    return _prove(ctx, n, p, q, rng, rho=rho)


def _prove(
    ctx: ProofContext,
    n: int,
    p: int,
    q: int,
    rng: RandomBytes | None = None,
    *,
    rho: bytes = b"",
) -> ModProof:
    """`prove` without the size check (tests use it to build proofs for moduli the verifier
    must reject). Needs distinct primes p, q ≡ 3 (mod 4), N = p·q."""
    # CRT exponents: 4th root mod p is u^(((p+1)/4)²) for a square u (p ≡ 3 mod 4), and the
    # N-th root is y^(N⁻¹ mod (p−1)); likewise mod q.
    try:
        e4_p = ((p + 1) // 4) ** 2 % (p - 1)
        e4_q = ((q + 1) // 4) ** 2 % (q - 1)
        d_p = invert(n % (p - 1), p - 1)
        d_q = invert(n % (q - 1), q - 1)
        q_inv_p = invert(q, p)
    except ZeroDivisionError:
        raise InvalidInput(f"{NAME} witness is not a Paillier-Blum factorisation") from None

    while True:
        w = random_unit(n, rng)
        if jacobi(w, n) == -1:
            break
    w_p = jacobi(w % p, p)  # and (w | q) = −w_p, as Jacobi(w | N) = −1

    xs: list[int] = []
    as_: list[int] = []
    bs: list[int] = []
    zs: list[int] = []
    for y in _challenge(ctx, n, w, rho):
        l_p, l_q = jacobi(y % p, p), jacobi(y % q, q)
        # (−1 | p) = (−1 | q) = −1, so the symbol of (−1)^a·w^b·y mod p is (−1)^a·w_p^b·l_p.
        b = 0 if l_p == l_q else 1
        sym_p = l_p * (w_p if b else 1)
        a = 0 if sym_p == 1 else 1
        y_prime = y * w % n if b else y
        if a:
            y_prime = n - y_prime
        x = crt_pair(powmod(y_prime % p, e4_p, p), powmod(y_prime % q, e4_q, q), p, q, q_inv_p)
        x2 = x * x % n
        if x2 * x2 % n != y_prime:
            raise InvalidInput(f"{NAME} witness is not a Paillier-Blum factorisation")
        z = crt_pair(powmod(y % p, d_p, p), powmod(y % q, d_q, q), p, q, q_inv_p)
        xs.append(x)
        as_.append(a)
        bs.append(b)
        zs.append(z)
    return ModProof(w, tuple(xs), tuple(as_), tuple(bs), tuple(zs))


def verify(ctx: ProofContext, n: int, proof: ModProof, *, rho: bytes = b"") -> None:
    """Check `proof` that N is a Paillier-Blum modulus. Raises InvalidProof on any failure."""
    level = ctx.level
    m = level.m
    # The statement: odd, the level's size (Alpha-Rays), composite.
    check_moduli(NAME, level, PaillierPublicKey(n))
    require(not is_probable_prime(n, MR_ROUNDS), f"{NAME}: N is prime")

    # Every received element: exactly m repetitions, w a unit of Jacobi symbol −1, x_i and z_i
    # units, a_i and b_i bits.
    require(
        len(proof.x) == len(proof.a) == len(proof.b) == len(proof.z) == m,
        f"{NAME}: expected {m} repetitions",
    )
    w = proof.w
    check_units(NAME, "Z*_N", n, {"w": w})
    require(jacobi(w, n) == -1, f"{NAME}: Jacobi(w | N) ≠ −1")
    check_units(NAME, "Z*_N", n, {f"x_{i}": x for i, x in enumerate(proof.x)})
    check_units(NAME, "Z*_N", n, {f"z_{i}": z for i, z in enumerate(proof.z)})
    for i in range(m):
        require(proof.a[i] in (0, 1), f"{NAME}: a_{i} is not a bit")
        require(proof.b[i] in (0, 1), f"{NAME}: b_{i} is not a bit")

    ys = _challenge(ctx, n, w, rho)

    # The cheap 4th-power equations first (two squarings each), then the N-th powers.
    for i, y in enumerate(ys):
        x = proof.x[i]
        target = y * w % n if proof.b[i] else y
        if proof.a[i]:
            target = n - target
        x2 = x * x % n
        require(x2 * x2 % n == target, f"{NAME}: x_{i}^4 ≠ (−1)^a_{i}·w^b_{i}·y_{i}")
    for i, y in enumerate(ys):
        require(powmod(proof.z[i], n, n) == y, f"{NAME}: z_{i}^N ≠ y_{i}")
