"""The one shared setup of the zero-knowledge proof tests, at production size.

SECURITY_128 with 3072-bit moduli from the 1536-bit safe primes of tests/fixtures/safe_primes.json:
the prover's Paillier key N0 = p·q, the verifier's ring-Pedersen parameters N̂ = p̂·q̂ (with their
trapdoor, so tests can craft proofs), a second key and parameter set (Π-aff-g's N_j; something to
swap into a statement), and 2048-bit ones (1024-bit primes) for the modulus-size checks. `keys()`
is computed once per test session (conftest.py hands it to the tests as the `keys` fixture).

Also the shared tamper helpers (`tampered`, `replace_at`, the malformed encodings every decoder
must refuse, tampered and invalid ring-Pedersen parameters) and the common suite: `Subject` (an
honest proof and its verifier's arguments), `ProofSuite` and its mixins, the tests every proof
module runs (as `class TestCommon`), `Honest` and `enc_maker` to build subjects.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any, ClassVar, Protocol, TypeVar

import gmpy2
import pytest

from mpcnode.crypto import bigint
from mpcnode.crypto.bigint import ModexpCounter, is_probable_prime, jacobi, random_unit
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import (
    RingPedersenParams,
    RingPedersenSecret,
    generate_ring_pedersen,
)
from mpcnode.crypto.security import SECURITY_128
from mpcnode.crypto.zk import _common
from mpcnode.crypto.zk._common import CURVE, ProofContext, pack, pack_int_lists
from mpcnode.errors import InvalidInput, InvalidProof
from tests.fixtures.primes import load_test_primes

LEVEL = SECURITY_128
ELL, ELL_PRIME, EPS, M = LEVEL.ell, LEVEL.ell_prime, LEVEL.epsilon, LEVEL.m
G = CURVE.generator()
Q = CURVE.order

CTX = ProofContext(sid=b"zk-test-session", prover=2, level=LEVEL, instance="test")
"""The context every test proof is made under; `OTHER_CONTEXTS` each differ in one field."""

OTHER_CONTEXTS = {
    "sid": dataclasses.replace(CTX, sid=b"zk-test-session-2"),
    "prover": dataclasses.replace(CTX, prover=3),
    "instance": dataclasses.replace(CTX, instance="test-2"),
    "no instance": dataclasses.replace(CTX, instance=""),
}

RHO = bytes(range(32))
"""The joint randomness ρ of aux-info generation bound into Π-mod and Π-fac."""

MERSENNE_3217 = 2**3217 - 1
"""A 3217-bit prime (Riesel, 1957): an odd "modulus" of production size that is prime."""

BITFORGE_SMALL = 65521
"""The largest 16-bit prime: the small factor of the BitForge modulus."""

BITFORGE_LARGE = int(
    "db1960c9e3473a38b767352e49411098d6a904943815c58718296e8878075043796d406188231b3932044841"
    "0fe3a22fa1f725601b2f4a7ce6e5f89c8d33a37f115c6a44f3cc0df2d1aff1067dbd67c8765c57810ce898f0"
    "1733d942b204a30354ef398bdedf23263c49440a9a11167dd41a347a2e474e5ac63a43514e2e79fdda8fd41f"
    "125b959ba1690ce64264764ae4d4359e9d02dcb25c12903c3ad294a2de50ff54293969d6bd800bc498744284"
    "74c15e9ecba7a6a86bd5a7550d23e085b021e0d44f2b135ab03d8de49eb1b039ee169646a7184f3d9a4de6cf"
    "02bb83d8e92df2adcc0ee683acdf2060d7c4400cb70f964e03c0b4a3165de1ab3e01a5240b6020d0b29c0cf1"
    "97f45625871b82b9bfbc91ba7257dabe22cad37b17c64a894db7e48f12b96a5d670af9a3638e5b08acc213a5"
    "bf07da1b195060c40eb788718c966f3d88f7f4b1b64633be40f5515c61236c88c5373cf3bd58da60fb1ceb7a"
    "79959588532d4242aadbc8f429a479c8c2926b94b5b5749882321e350541",
    16,
)
"""A 3056-bit prime: N0 = BITFORGE_SMALL·BITFORGE_LARGE has 3072 bits, the production size."""


# --------------------------------------------------------------------------- keys


@dataclass(frozen=True)
class Keys:
    sk: PaillierSecretKey
    """The prover's Paillier key N0 = p·q (safe primes, so ≡ 3 mod 4; Π-aff-g's N_i)."""
    rp: RingPedersenSecret
    """The verifier's ring-Pedersen parameters (aux = rp.params) and trapdoor (λ, φ(N̂))."""
    p_hat: int
    """A prime factor of N̂: in [0, N̂) but not a unit."""
    other_sk: PaillierSecretKey
    """A second Paillier key: Π-aff-g's verifier key N_j, or a modulus to swap in."""
    other_rp: RingPedersenSecret
    """Second ring-Pedersen parameters, to swap into a statement or aux."""
    small_sk: PaillierSecretKey
    """A 2048-bit Paillier key (1024-bit primes): below min_modulus_bits (Alpha-Rays)."""
    small_rp: RingPedersenSecret
    """2048-bit ring-Pedersen parameters, likewise too small."""

    @property
    def pk(self) -> PaillierPublicKey:
        return self.sk.public

    @property
    def aux(self) -> RingPedersenParams:
        return self.rp.params

    @property
    def other_pk(self) -> PaillierPublicKey:
        return self.other_sk.public

    @property
    def other_aux(self) -> RingPedersenParams:
        return self.other_rp.params


@cache
def keys() -> Keys:
    full = load_test_primes(LEVEL.prime_bits)
    small = load_test_primes(1024)
    return Keys(
        sk=PaillierSecretKey(full[0], full[1]),
        rp=generate_ring_pedersen(full[2], full[3]),
        p_hat=full[2],
        other_sk=PaillierSecretKey(full[4], full[5]),
        other_rp=generate_ring_pedersen(full[6], full[7]),
        small_sk=PaillierSecretKey(small[0], small[1]),
        small_rp=generate_ring_pedersen(small[2], small[3]),
    )


@cache
def prime_with_residue(bits: int, residue: int, modulus: int, seed: int) -> int:
    """A deterministic random prime of exactly `bits` bits (top two set) ≡ residue (mod modulus)."""
    rnd = random.Random(seed)
    while True:
        start = rnd.getrandbits(bits) | (3 << (bits - 2))
        candidate = int(gmpy2.next_prime(start))
        while candidate.bit_length() == bits:
            if candidate % modulus == residue:
                assert is_probable_prime(candidate)
                return candidate
            candidate = int(gmpy2.next_prime(candidate))


def random_jacobi(n: int, symbol: int) -> int:
    """A random unit of N with Jacobi symbol `symbol`."""
    while True:
        w = random_unit(n)
        if jacobi(w, n) == symbol:
            return w


# --------------------------------------------------------------------------- tampering


def tampered(value: Any) -> Any:
    """A different value of the same kind: a point plus its group's generator, an integer plus
    one, a Paillier key N + 2 (odd, full size), bytes with one more byte, a tuple (repetitions)
    with its first element tampered."""
    if isinstance(value, Point):
        return value + value.group.generator()
    if isinstance(value, PaillierPublicKey):
        return PaillierPublicKey(value.n + 2)
    if isinstance(value, bytes):
        return value + b"\x00"
    if isinstance(value, tuple):
        return (tampered(value[0]), *value[1:])
    assert isinstance(value, int)
    return value + 1


def proof_field_names(proof_class: type) -> list[str]:
    """The fields of a proof dataclass, in order."""
    return [f.name for f in dataclasses.fields(proof_class)]


def replace_at(values: tuple[int, ...], index: int, value: int) -> tuple[int, ...]:
    """`values` with values[index] replaced (a tampered repetition of Π-mod / Π-prm)."""
    return values[:index] + (value,) + values[index + 1 :]


class _Encodable(Protocol):
    def encode(self) -> bytes: ...


P = TypeVar("P", bound=_Encodable)


def round_trip(proof: P, decode: Callable[[bytes], P]) -> P:
    """decode(proof.encode()), checked to be the same proof with the same bytes."""
    data = proof.encode()
    decoded = decode(data)
    assert decoded == proof
    assert decoded.encode() == data
    return decoded


def _framing(data: bytes) -> dict[str, bytes]:
    fields = decode_fields(data)
    return {
        "empty": b"",
        "truncated": data[:-1],
        "trailing byte": data + b"\x00",
        "extra field": data + encode_fields([b"\x00"]),
        "missing field": encode_fields(fields[:-1]),
    }


def _bad_ints(field: bytes) -> dict[str, bytes]:
    """A canonical signed integer `field` spoiled: leading zero, negative zero, bad sign byte."""
    return {
        "non-canonical int": field[:1] + b"\x00" + field[1:],
        "negative zero": b"\x01",
        "bad sign byte": b"\x02" + field[1:],
    }


_BAD_POINTS = {
    "identity point": b"",
    "uncompressed point prefix": b"\x04" + G.encode()[1:],
    "x not below the field prime": b"\x02" + b"\xff" * 32,
    "x not on the curve": b"\x02" + b"\x00" * 31 + b"\x05",
}


def malformed_encodings(data: bytes, n_points: int = 0) -> dict[str, bytes]:
    """Encodings a decoder must refuse, made from `data`, a valid `pack` encoding whose first
    `n_points` fields are points: bad framing, a bad first integer, a bad first point."""
    fields = decode_fields(data)
    out = _framing(data)
    for name, bad in _bad_ints(fields[n_points]).items():
        out[name] = encode_fields([*fields[:n_points], bad, *fields[n_points + 1 :]])
    if n_points:
        for name, bad in _BAD_POINTS.items():
            out[name] = encode_fields([bad, *fields[1:]])
    return out


def malformed_names(n_points: int = 0) -> list[str]:
    """The names of `malformed_encodings(data, n_points)` (for parametrize)."""
    return list(malformed_encodings(pack([G] * n_points, [1]), n_points))


def malformed_list_encodings(data: bytes) -> dict[str, bytes]:
    """Likewise for a `pack_int_lists` encoding (Π-mod, Π-prm): bad framing, a bad first
    integer, a first list one longer and a last list one shorter (ragged)."""
    lists = [decode_fields(part) for part in decode_fields(data)]
    out = _framing(data)

    def with_lists(first: list[bytes], last: list[bytes]) -> bytes:
        middle = [encode_fields(v) for v in lists[1:-1]]
        return encode_fields([encode_fields(first), *middle, encode_fields(last)])

    for name, bad in _bad_ints(lists[0][0]).items():
        out[name] = with_lists([bad, *lists[0][1:]], lists[-1])
    out["first list longer"] = with_lists([*lists[0], lists[0][0]], lists[-1])
    out["ragged lists"] = with_lists(lists[0], lists[-1][:-1])
    return out


MALFORMED_LISTS = list(malformed_list_encodings(pack_int_lists([[1], [1, 2], [3, 4]])))
"""The names of `malformed_list_encodings` (for parametrize)."""


def aux_tamperings(k: Keys) -> dict[str, RingPedersenParams]:
    """Other valid-looking (N̂, s, t) in place of the verifier's: each must change the verdict."""
    aux = k.aux
    n, s, t = aux.n, aux.s, aux.t
    return {
        "N̂": RingPedersenParams(k.other_aux.n, s, t),
        "s": RingPedersenParams(n, s * t % n, t),
        "t": RingPedersenParams(n, s, t * t % n),
        "s and t swapped": RingPedersenParams(n, t, s),
        "other aux": k.other_aux,
    }


AUX_TAMPERINGS = ["N̂", "s", "t", "s and t swapped", "other aux"]


def invalid_aux(k: Keys) -> dict[str, RingPedersenParams]:
    """(N̂, s, t) that `validate(level)` refuses: too small, even N̂, s or t not a unit ≠ 1."""
    n, s, t = k.aux.n, k.aux.s, k.aux.t
    return {
        "2048-bit N̂": k.small_rp.params,
        "even N̂": RingPedersenParams(2 * n, s, t),
        "s = 1": RingPedersenParams(n, 1, t),
        "t = 1": RingPedersenParams(n, s, 1),
        "s = 0": RingPedersenParams(n, 0, t),
        "t = N̂ + t": RingPedersenParams(n, s, n + t),
        "s = p̂": RingPedersenParams(n, k.p_hat, t),
    }


INVALID_AUX = ["2048-bit N̂", "even N̂", "s = 1", "t = 1", "s = 0", "t = N̂ + t", "s = p̂"]


def force_alpha(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make α ← I(2^(ℓ+ε)) of the encryption-in-range part (`_common.EncCommit`) the value
    pushed into the returned list (with x = 0, z₁ = α whatever e is)."""
    chosen: list[int] = []
    real = bigint.random_signed

    def fake(bound: int, rng: bigint.RandomBytes | None = None) -> int:
        if bound == 1 << (ELL + EPS) and chosen:
            return chosen.pop()
        return real(bound, rng)

    monkeypatch.setattr(_common, "random_signed", fake)
    return chosen


# --------------------------------------------------------------------------- the common suite


@dataclass(frozen=True)
class Subject:
    """An honest proof and the arguments its `verify` takes (by name, the proof aside)."""

    proof: Any
    verify: Callable[..., None]
    args: Mapping[str, Any]

    def check(self, proof: Any = None, /, **changes: Any) -> None:
        """verify(**args, proof=proof) with some arguments replaced (ctx, aux, statement...)."""
        self.verify(**{**self.args, **changes}, proof=self.proof if proof is None else proof)

    def check_with(self, name: str, value: Any) -> None:
        """check() with one `verify` argument or, failing that, one proof field replaced."""
        if name in self.args:
            self.check(**{name: value})
        else:
            self.check(dataclasses.replace(self.proof, **{name: value}))


@dataclass(frozen=True)
class Honest:
    """An honest proof over the shared keys (as a `Subject`) and the modexps its prover made."""

    keys: Keys
    subject: Subject
    prove_modexps: int

    @classmethod
    def make(
        cls, keys: Keys, prove: Callable[[], Any], verify: Callable[..., None], **args: Any
    ) -> Honest:
        """Run `prove` (counting its modexps); `args` are verify's other arguments."""
        before = ModexpCounter.count
        proof = prove()
        return cls(keys, Subject(proof, verify, args), ModexpCounter.count - before)

    @property
    def proof(self) -> Any:
        return self.subject.proof

    @property
    def p(self) -> int:
        return self.keys.sk.p

    @property
    def q(self) -> int:
        return self.keys.sk.q

    @property
    def n(self) -> int:
        """The prover's Paillier modulus N = p·q."""
        return self.keys.sk.n

    @property
    def aux(self) -> RingPedersenParams:
        return self.keys.aux


class ProofSuite:
    """What every proof must pass. A test module subclasses it (with the mixins below that
    apply) as `class TestCommon`, sets PROOF (and N_POINTS: the points at the start of its
    `pack` encoding, or None for a `pack_int_lists` one) and provides a `subject` fixture.
    conftest.py parametrizes `malformed`, `proof_field` and `statement_value` from these class
    attributes."""

    PROOF: ClassVar[type]
    N_POINTS: ClassVar[int | None] = 0
    FIRST_EQUATION: ClassVar[str] = ""
    """A regex of the first equation's failure message: another challenge trips it."""

    def test_completeness(self, subject: Subject) -> None:
        subject.check()

    def test_encoding_round_trip(self, subject: Subject) -> None:
        subject.check(round_trip(subject.proof, self.PROOF.decode))

    def test_decode_rejects_malformed(self, subject: Subject, malformed: str) -> None:
        data = subject.proof.encode()
        if self.N_POINTS is None:
            bad = malformed_list_encodings(data)[malformed]
        else:
            bad = malformed_encodings(data, self.N_POINTS)[malformed]
        with pytest.raises(InvalidProof):
            self.PROOF.decode(bad)

    @pytest.mark.parametrize("other_context", list(OTHER_CONTEXTS))
    def test_other_context(self, subject: Subject, other_context: str) -> None:
        with pytest.raises(InvalidProof, match=self.FIRST_EQUATION):
            subject.check(ctx=OTHER_CONTEXTS[other_context])


class RhoSuite:
    """The proof is bound to the joint randomness ρ of aux-info generation (`rho`)."""

    FIRST_EQUATION: ClassVar[str]

    @pytest.mark.parametrize("rho", [b"", RHO[:-1], RHO + b"\x00", b"\x01" + RHO[1:]])
    def test_other_rho_rejected(self, subject: Subject, rho: bytes) -> None:
        with pytest.raises(InvalidProof, match=self.FIRST_EQUATION):
            subject.check(rho=rho)


class ProofFieldSuite:
    """Each field of the proof tampered (`tampered`) alone is rejected."""

    def test_tampered_proof_field(self, subject: Subject, proof_field: str) -> None:
        value = tampered(getattr(subject.proof, proof_field))
        with pytest.raises(InvalidProof):
            subject.check(dataclasses.replace(subject.proof, **{proof_field: value}))


class StatementSuite:
    """Each statement value in STATEMENT (names of `verify` arguments) tampered alone."""

    STATEMENT: ClassVar[tuple[str, ...]]

    def test_tampered_statement(self, subject: Subject, statement_value: str) -> None:
        with pytest.raises(InvalidProof):
            subject.check(**{statement_value: tampered(subject.args[statement_value])})


class AuxSuite:
    """The verifier's ring-Pedersen parameters (the `verify` argument AUX): other valid-looking
    ones are rejected, and invalid ones fail `validate` (InvalidProof naming ring-Pedersen)."""

    AUX: ClassVar[str] = "aux"

    @pytest.mark.parametrize("aux_tampering", AUX_TAMPERINGS)
    def test_tampered_aux(self, keys: Keys, subject: Subject, aux_tampering: str) -> None:
        with pytest.raises(InvalidProof):
            subject.check(**{self.AUX: aux_tamperings(keys)[aux_tampering]})

    @pytest.mark.parametrize("bad_aux", INVALID_AUX)
    def test_invalid_aux(self, keys: Keys, subject: Subject, bad_aux: str) -> None:
        with pytest.raises(InvalidProof, match="ring-Pedersen"):
            subject.check(**{self.AUX: invalid_aux(keys)[bad_aux]})


Make = Callable[..., Subject]
"""make(x, *, pk=None, aux=None, checked=True, sk=None): an honest statement for plaintext x under
pk (default: keys.pk) and aux (default: keys.aux), and its proof by `prove` (checked; it may
refuse with InvalidInput) or by `_prove`; `sk` is passed to the prover."""

EncStatement = Callable[[PaillierPublicKey, int], tuple[dict[str, Any], dict[str, Any]]]
"""statement(pk, x) -> (statement values, witness), by the names `verify` and `prove` use."""


def enc_maker(keys: Keys, module: ModuleType, statement: EncStatement) -> Make:
    """The `Make` of a proof module with an encryption-in-range part (`prove`, `_prove` and
    `verify` taking ctx, pk, the statement, the witness, aux and sk by name)."""

    def make(
        x: int,
        *,
        pk: PaillierPublicKey | None = None,
        aux: RingPedersenParams | None = None,
        checked: bool = True,
        sk: PaillierSecretKey | None = None,
    ) -> Subject:
        pk, aux = pk or keys.pk, aux or keys.aux
        values, witness = statement(pk, x)
        prover = module.prove if checked else module._prove
        proof = prover(CTX, pk=pk, **values, **witness, aux=aux, sk=sk)
        return Subject(proof, module.verify, {"ctx": CTX, "pk": pk, **values, "aux": aux})

    return make


ENC_NON_MEMBERS = [
    "ct+N0²",
    "ct=0",
    "ct=p·ct",
    "enc+N0²",
    "enc=p",
    "S+N̂",
    "S=0",
    "S=p̂",
    "ped+N̂",
    "ped=-ped",
    "z2+N0",
    "z2=p",
    "z2=0",
]


class EncSuite:
    """The encryption-in-range part of Π-enc, Π-enc-elg and Π-log* (`_common.EncCheck`). The
    module provides a `make` fixture (see `Make`) and names, as CT, ENC and PED, the statement's
    ciphertext (a `verify` argument) and the proof's Paillier and ring-Pedersen commitments
    (Π-enc's K, A and C)."""

    CT: ClassVar[str]
    ENC: ClassVar[str]
    PED: ClassVar[str]

    @pytest.mark.parametrize(
        "x", [1, -1, (1 << (ELL - 1)), -(1 << (ELL - 1))], ids=["1", "-1", "max", "min"]
    )
    def test_completeness_edges_without_secret_key(self, make: Make, x: int) -> None:
        make(x).check()

    @pytest.mark.parametrize("non_member", ENC_NON_MEMBERS)
    def test_rejects_non_members(self, keys: Keys, subject: Subject, non_member: str) -> None:
        """Every element outside its group (same residue plus the modulus, or not a unit)."""
        n2, n_hat, p = keys.pk.n_squared, keys.aux.n, keys.sk.p
        proof, ct = subject.proof, subject.args[self.CT]
        enc, ped = getattr(proof, self.ENC), getattr(proof, self.PED)
        cases = {
            "ct+N0²": (self.CT, ct + n2),
            "ct=0": (self.CT, 0),
            "ct=p·ct": (self.CT, ct * p % n2),
            "enc+N0²": (self.ENC, enc + n2),
            "enc=p": (self.ENC, p),
            "S+N̂": ("S", proof.S + n_hat),
            "S=0": ("S", 0),
            "S=p̂": ("S", keys.p_hat),
            "ped+N̂": (self.PED, ped + n_hat),
            "ped=-ped": (self.PED, -ped),
            "z2+N0": ("z2", proof.z2 + keys.pk.n),
            "z2=p": ("z2", p),
            "z2=0": ("z2", 0),
        }
        with pytest.raises(InvalidProof, match="∉"):
            subject.check_with(*cases[non_member])

    @pytest.mark.parametrize("field", ["z1", "z3"])
    @pytest.mark.parametrize("sign", [1, -1])
    def test_rejects_oversized_responses(self, subject: Subject, field: str, sign: int) -> None:
        huge = dataclasses.replace(subject.proof, **{field: sign << 20000})
        with pytest.raises(InvalidProof, match=f"{field} is larger than any honest response"):
            subject.check(huge)

    @pytest.mark.parametrize("small", ["pk", "aux"])
    def test_rejects_undersized_moduli(self, keys: Keys, make: Make, small: str) -> None:
        """Alpha-Rays: a 2048-bit N₀ or N̂ is refused by the prover, and a proof made under it
        anyway (every equation holds) is rejected for the modulus size."""
        changes = {"pk": keys.small_sk.public} if small == "pk" else {"aux": keys.small_rp.params}
        with pytest.raises(InvalidInput, match="bits"):
            make(4242, **changes)
        with pytest.raises(InvalidProof, match="bits"):
            make(4242, checked=False, **changes).check()

    @pytest.mark.parametrize(
        "x",
        [1 << (ELL + EPS), -(1 << (ELL + EPS)), (1 << (ELL + EPS + 200)) + 5, -(1 << 3000) + 7],
        ids=["2^(l+e)", "-2^(l+e)", "2^(l+e+200)", "-2^3000"],
    )
    def test_false_statement_out_of_range_plaintext(self, keys: Keys, make: Make, x: int) -> None:
        """ct encrypts x far outside I(2^(ℓ+ε)) and the rest of the statement is consistent:
        the prover refuses, and a proof made anyway fails on z₁ (its range or its size)."""
        with pytest.raises(InvalidInput, match="witness"):
            make(x)
        with pytest.raises(InvalidProof, match="z1"):
            make(x, checked=False, sk=keys.sk).check()

    @pytest.mark.parametrize(
        "x", [(1 << (ELL - 1)) + 1, -(1 << (ELL - 1)) - 1], ids=["max+1", "min-1"]
    )
    def test_prover_refuses_witness_just_outside(self, make: Make, x: int) -> None:
        with pytest.raises(InvalidInput, match="witness .* out of range"):
            make(x)

    def test_prover_refuses_another_secret_key(self, keys: Keys, make: Make) -> None:
        with pytest.raises(InvalidInput, match="secret key"):
            make(1, sk=keys.other_sk)


Z1_MAX = 1 << (ELL + EPS - 1)
"""The largest |z₁| the encryption-in-range part accepts: 2^(ℓ+ε−1)."""


class ExactRangeSuite:
    """With x = 0, z₁ = α whatever e is (`forced_alpha` chooses α): the proof is otherwise
    valid, so only |z₁| ≤ 2^(ℓ+ε−1) decides, at the bound and one past it, both signs."""

    @pytest.mark.parametrize(
        ("alpha", "accept"),
        [(Z1_MAX, True), (-Z1_MAX, True), (Z1_MAX + 1, False), (-Z1_MAX - 1, False)],
        ids=["max", "min", "max+1", "min-1"],
    )
    def test_z1_range_check_is_exact(
        self, keys: Keys, make: Make, forced_alpha: list[int], alpha: int, accept: bool
    ) -> None:
        forced_alpha.append(alpha)
        subject = make(0, checked=False, sk=keys.sk)
        assert subject.proof.z1 == alpha
        if accept:
            subject.check()
        else:
            with pytest.raises(InvalidProof, match="z1 out of range"):
                subject.check()
