"""What every proof shares: its context, the proof encoding, the checks every verifier makes
on what it receives, and the Paillier / ring-Pedersen pieces common to several proofs.

One helper per job: a proof module that needs one of these uses it instead of its own copy.
Every `check_*` raises `InvalidProof` by default (a verifier rejecting what it received); a
prover refusing its own input passes `error=InvalidInput`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from mpcnode.crypto.bigint import (
    RandomBytes,
    half,
    in_signed_range,
    is_unit,
    powmod,
    random_signed,
    random_unit,
    signed_from_bytes,
    signed_to_bytes,
)
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import SECP256K1, Group, Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.security import SECURITY_128, SecurityLevel
from mpcnode.crypto.transcript import Transcript
from mpcnode.errors import InvalidInput, InvalidProof

CURVE: Group = SECP256K1
"""The curve of the CGGMP proofs: its points are the group statements, its order q bounds
the challenges e ∈ I(q) (Π-sch alone also runs on Ed25519)."""

Failure = type[InvalidProof] | type[InvalidInput]
"""What a failed check raises: InvalidProof (verifier) or InvalidInput (prover)."""


@dataclass(frozen=True)
class ProofContext:
    """Binds a proof to one execution (`sid`), one prover and one proof instance.

    `instance` tells apart several proofs of the same kind by one prover in one session
    (e.g. the two Π-enc-elg proofs of presigning). A proof made under one context never
    verifies under another.
    """

    sid: bytes
    prover: int
    level: SecurityLevel = SECURITY_128
    instance: str = ""

    def transcript(self, proof_tag: str) -> Transcript:
        return Transcript.for_proof(proof_tag, self.sid, self.prover, self.level, self.instance)


def require(condition: bool, failure: str, error: Failure = InvalidProof) -> None:
    """Raise `error(failure)` (InvalidProof unless told) unless `condition` holds."""
    if not condition:
        raise error(failure)


# --------------------------------------------------------------------------- encoding


@contextmanager
def _decoding(name: str) -> Iterator[None]:
    """Turn any decoding failure into InvalidProof("malformed <name> proof: ...")."""
    try:
        yield
    except (InvalidInput, ValueError) as exc:
        raise InvalidProof(f"malformed {name} proof: {exc}") from None


def _decode_int(field: bytes) -> int:
    """One signed integer, in its canonical (minimal) encoding only."""
    value = signed_from_bytes(field)
    if signed_to_bytes(value) != field:
        raise ValueError("non-canonical integer encoding")
    return value


def encode_ints(values: Sequence[int]) -> bytes:
    """Signed integers as one canonical byte string (for proof serialisation)."""
    return encode_fields([signed_to_bytes(v) for v in values])


def decode_ints(data: bytes, count: int | None = None, name: str = "zk") -> list[int]:
    """Inverse of `encode_ints`; malformed or non-canonical input raises `InvalidProof`."""
    with _decoding(name):
        return [_decode_int(f) for f in decode_fields(data, count)]


def pack(points: Sequence[Point], ints: Sequence[int]) -> bytes:
    """Proof bytes: one field per point (its canonical encoding), then one per signed integer."""
    return encode_fields([p.encode() for p in points]) + encode_ints(ints)


def unpack(
    data: bytes, n_points: int, n_ints: int, name: str, group: Group = CURVE
) -> tuple[list[Point], list[int]]:
    """Inverse of `pack`: anything malformed, non-canonical or an invalid point (the identity
    included) raises InvalidProof, so decode(data).encode() == data for every accepted data."""
    with _decoding(name):
        fields = decode_fields(data, n_points + n_ints)
        points = [group.decode_point(f) for f in fields[:n_points]]
        ints = [_decode_int(f) for f in fields[n_points:]]
    return points, ints


def pack_int_lists(lists: Sequence[Sequence[int]]) -> bytes:
    """Several lists of signed integers (the repetitions of Π-mod, Π-prm), one field each."""
    return encode_fields([encode_ints(values) for values in lists])


def unpack_int_lists(
    data: bytes, lengths: Sequence[int | None], name: str
) -> list[tuple[int, ...]]:
    """Inverse of `pack_int_lists` for len(lengths) lists; InvalidProof on malformed input.

    lengths[i] is the exact length of list i, or None: the lists marked None must all have one
    common length (the number of repetitions, which `verify` then compares with level.m)."""
    with _decoding(name):
        parts = decode_fields(data, len(lengths))
    lists = [
        tuple(decode_ints(part, length, name)) for part, length in zip(parts, lengths, strict=True)
    ]
    common = {len(v) for v, length in zip(lists, lengths, strict=True) if length is None}
    require(len(common) <= 1, f"malformed {name} proof: ragged lists")
    return lists


# --------------------------------------------------------------------------- checks


class _Validated(Protocol):
    def validate(self, level: SecurityLevel) -> None: ...


def check_moduli(
    name: str, level: SecurityLevel, *moduli: _Validated, error: Failure = InvalidProof
) -> None:
    """Step 0 of every verifier: each Paillier key / ring-Pedersen aux passes `validate(level)`
    (odd, the level's size (Alpha-Rays), s and t units other than 1). A prover checks the same
    with error=InvalidInput, so it never commits under parameters no verifier accepts."""
    for modulus in moduli:
        try:
            modulus.validate(level)
        except InvalidInput as exc:
            raise error(f"{name}: {exc}") from None


def check_points(
    name: str,
    points: Mapping[str, Point],
    *,
    allow_identity: bool = True,
    group: Group = CURVE,
    error: Failure = InvalidProof,
) -> None:
    """Each point is in `group` (and not the identity unless allowed)."""
    for label, point in points.items():
        require(point.group is group, f"{name}: {label} is not a {group.name} point", error)
        require(allow_identity or not point.is_identity, f"{name}: {label} is the identity", error)


def check_units(
    name: str,
    unit_group: str,
    modulus: int,
    values: Mapping[str, int],
    error: Failure = InvalidProof,
) -> None:
    """Each value is in Z*_modulus (0 <= v < modulus, gcd 1); `unit_group` names it.

    Paillier ciphertexts use modulus N², ring-Pedersen commitments N̂, nonces N."""
    for label, value in values.items():
        require(is_unit(value, modulus), f"{name}: {label} ∉ {unit_group}", error)


def check_scalars(
    name: str, values: Mapping[str, int], *, group: Group = CURVE, nonzero: bool = False
) -> None:
    """Each value is a reduced scalar: in [0, q), or [1, q) when `nonzero`."""
    low = 1 if nonzero else 0
    for label, value in values.items():
        require(low <= value < group.order, f"{name}: {label} not in [{low}, q)")


def check_response_sizes(name: str, cap: int, values: Mapping[str, int]) -> None:
    """|v| <= cap for each integer response, checked before the challenge.

    `cap` is above every honest response, so this only bounds the verifier's exponents (a
    guard against denial of service); the exact range checks come after the equations."""
    for label, value in values.items():
        require(abs(value) <= cap, f"{name}: {label} is larger than any honest response")


def check_range(
    name: str, bound: int, values: Mapping[str, int], error: Failure = InvalidProof
) -> None:
    """Each value is in I(bound) = [−⌊bound/2⌋, ⌊bound/2⌋]: exact, both signs."""
    for label, value in values.items():
        require(in_signed_range(value, bound), f"{name}: {label} out of range", error)


def check_secret_key(name: str, pk: PaillierPublicKey, sk: PaillierSecretKey | None) -> None:
    """A prover's optional secret key (for CRT speed-ups) must be the key of `pk`."""
    if sk is not None and sk.n != pk.n:
        raise InvalidInput(f"{name}: the Paillier secret key does not belong to the statement")


# ------------------------------------------------------------------ Paillier, ring-Pedersen


def response_cap(aux: RingPedersenParams, level: SecurityLevel) -> int:
    """The largest honest ring-Pedersen response, ⌊2^(ℓ+ε)·N̂/2⌋ + ⌊q/2⌋·⌊2^ℓ·N̂/2⌋ (γ + e·μ).

    It bounds every integer response of the proofs with a ring-Pedersen part and e ∈ I(q)
    (z₁ = α + e·x is far below it), for `check_response_sizes`."""
    gamma_max = half((1 << (level.ell + level.epsilon)) * aux.n)
    mu_max = half((1 << level.ell) * aux.n)
    return gamma_max + half(CURVE.order) * mu_max


def absorb_aux(t: Transcript, aux: RingPedersenParams) -> None:
    """Absorb the verifier's ring-Pedersen parameters (N̂, s, t)."""
    t.append("N_hat", aux.n)
    t.append("s", aux.s)
    t.append("t", aux.t)


def paillier_holds(pk: PaillierPublicKey, z1: int, z2: int, first: int, ct: int, e: int) -> bool:
    """enc_N(z₁; z₂) = first ⊕ (e ⊙ ct); z₂ must already be known to be a unit."""
    n2 = pk.n_squared
    return pk.encrypt_with(z1, z2) == first * powmod(ct, e, n2) % n2


def affine_holds(
    pk: PaillierPublicKey,
    sk: PaillierSecretKey | None,
    C: int,
    D: int,
    A: int,
    z1: int,
    z2: int,
    w: int,
    e: int,
) -> bool:
    """(z₁ ⊙ C) ⊕ enc_N(z₂; w) = A ⊕ (e ⊙ D) under N; C, D, A, w must already be units.

    With `sk`, the verifier's own key for N, both sides are compared mod p² and mod q²
    (equal mod N² iff equal mod both), exponents reduced mod φ(p²) = p(p-1): about a third of
    the work of computing mod N².
    """
    if sk is None:
        return pk.add(pk.mul(z1, C), pk.encrypt_with(z2, w)) == pk.add(A, pk.mul(e, D))
    n = pk.n
    g_part = 1 + (z2 % n) * n  # (1 + N)^z₂ mod N²
    for prime in (sk.p, sk.q):
        m = prime * prime
        phi = prime * (prime - 1)
        lhs = powmod(C % m, z1 % phi, m) * (g_part % m) % m * powmod(w % m, n % phi, m) % m
        if lhs != A * powmod(D % m, e % phi, m) % m:
            return False
    return True


def pedersen_holds(aux: RingPedersenParams, z1: int, z3: int, first: int, S: int, e: int) -> bool:
    """s^z₁·t^z₃ ≡ first·S^e (mod N̂)."""
    return aux.commit(z1, z3) == first * powmod(S, e, aux.n) % aux.n


def encrypt(pk: PaillierPublicKey, sk: PaillierSecretKey | None, m: int, r: int) -> int:
    """enc_N(m; r), through the CRT when the prover passes its own secret key."""
    return sk.encrypt_with(m, r) if sk is not None else pk.encrypt_with(m, r)


def crt_pair(xp: int, xq: int, p: int, q: int, q_inv_p: int) -> int:
    """The x mod p·q with x ≡ xp (mod p), x ≡ xq (mod q), given q_inv_p = q⁻¹ mod p (Garner;
    `bigint.crt` recomputes the inverses, this is for loops over one factorisation)."""
    return xq + q * ((xp - xq) * q_inv_p % p)


# ------------------------------------------------------------------ the encryption-in-range part

Named = tuple[str, int]
"""A value with the name it has in the proof that holds it (for failure messages)."""


def check_enc_witness(
    name: str,
    level: SecurityLevel,
    pk: PaillierPublicKey,
    aux: RingPedersenParams,
    sk: PaillierSecretKey | None,
    ct: Named,
    x: Named,
    rho: int,
) -> None:
    """The prover's refusals (InvalidInput) for the encryption-in-range part of Π-enc, Π-enc-elg
    and Π-log*: N₀ or N̂ below the level's size, `sk` not the key of N₀, the witness x outside
    I(2^ℓ), ρ ∉ Z*_N₀, the statement's ciphertext ct ∉ Z*_{N₀²}."""
    check_moduli(name, level, pk, aux, error=InvalidInput)
    check_secret_key(name, pk, sk)
    check_range(name, 1 << level.ell, {f"witness {x[0]}": x[1]}, InvalidInput)
    check_units(name, "Z*_N0", pk.n, {"ρ": rho}, InvalidInput)
    check_units(name, "Z*_{N0²}", pk.n_squared, {ct[0]: ct[1]}, InvalidInput)


@dataclass(frozen=True, repr=False)
class EncCommit:
    """The prover's encryption-in-range part (Π-enc; also inside Π-enc-elg and Π-log*), in
    Π-enc's names: nonces α ← I(2^(ℓ+ε)), μ ← I(2^ℓ·N̂), r ← Z*_N₀, γ ← I(2^(ℓ+ε)·N̂) (secret)
    and first message S = s^x·t^μ, A = enc_N₀(α; r), C = s^α·t^γ (mod N̂) for the plaintext x."""

    alpha: int
    mu: int
    r: int
    gamma: int
    S: int
    A: int
    C: int

    @classmethod
    def make(
        cls,
        level: SecurityLevel,
        pk: PaillierPublicKey,
        sk: PaillierSecretKey | None,
        aux: RingPedersenParams,
        x: int,
        rng: RandomBytes | None,
    ) -> EncCommit:
        """Sample the nonces and commit to x (`sk`, the key of N₀, computes A by CRT)."""
        bound = 1 << (level.ell + level.epsilon)
        alpha = random_signed(bound, rng)
        mu = random_signed((1 << level.ell) * aux.n, rng)
        r = random_unit(pk.n, rng)
        gamma = random_signed(bound * aux.n, rng)
        S = aux.commit(x, mu)
        return cls(alpha, mu, r, gamma, S, encrypt(pk, sk, alpha, r), aux.commit(alpha, gamma))

    def respond(self, pk: PaillierPublicKey, x: int, rho: int, e: int) -> tuple[int, int, int]:
        """(z₁, z₂, z₃) = (α + e·x, r·ρ^e mod N₀, γ + e·μ)."""
        n0 = pk.n
        return self.alpha + e * x, self.r * powmod(rho, e, n0) % n0, self.gamma + e * self.mu

    def __repr__(self) -> str:
        return "EncCommit(<redacted>)"


class EncResponses(Protocol):
    """What a proof with an encryption-in-range part carries under Π-enc's names."""

    @property
    def S(self) -> int: ...
    @property
    def z1(self) -> int: ...
    @property
    def z2(self) -> int: ...
    @property
    def z3(self) -> int: ...


@dataclass(frozen=True)
class EncCheck:
    """The verifier's encryption-in-range part, in Π-enc's names: the statement's ciphertext
    `ct` = enc_N₀(x; ρ), the first message A (Paillier) and C (ring-Pedersen) with their names
    in the embedding proof, and its S, z₁, z₂, z₃."""

    name: str
    level: SecurityLevel
    pk: PaillierPublicKey
    aux: RingPedersenParams
    ct: Named
    A: Named
    C: Named
    proof: EncResponses

    def elements(self) -> None:
        """Before the challenge: N₀ and N̂ of the level's size (Alpha-Rays), ct, A ∈ Z*_{N₀²},
        S, C ∈ Z*_N̂, z₂ ∈ Z*_N₀, and z₁, z₃ below any honest response (`response_cap`)."""
        name, p = self.name, self.proof
        check_moduli(name, self.level, self.pk, self.aux)
        for label, value in (self.ct, self.A):
            check_units(name, "Z*_{N0²}", self.pk.n_squared, {label: value})
        for label, value in (("S", p.S), self.C):
            check_units(name, "Z*_N̂", self.aux.n, {label: value})
        check_units(name, "Z*_N0", self.pk.n, {"z2": p.z2})
        check_response_sizes(name, response_cap(self.aux, self.level), {"z1": p.z1, "z3": p.z3})

    def equations(self, e: int) -> None:
        """After the challenge: enc_N₀(z₁; z₂) = A ⊕ (e ⊙ ct), s^z₁·t^z₃ ≡ C·S^e (mod N̂), then
        the range check z₁ ∈ I(2^(ℓ+ε)), i.e. |z₁| ≤ 2^(ℓ+ε−1) (exact, both signs)."""
        name, p, level = self.name, self.proof, self.level
        (ct_name, ct), (a_name, a), (c_name, c) = self.ct, self.A, self.C
        require(
            paillier_holds(self.pk, p.z1, p.z2, a, ct, e),
            f"{name}: enc(z1; z2) ≠ {a_name} ⊕ (e ⊙ {ct_name})",
        )
        require(
            pedersen_holds(self.aux, p.z1, p.z3, c, p.S, e), f"{name}: s^z1·t^z3 ≠ {c_name}·S^e"
        )
        check_range(name, 1 << (level.ell + level.epsilon), {"z1": p.z1})
