"""mpcnode.crypto.transcript: unambiguous absorption, deterministic and distinct challenges,
exact ranges, and no truncated bit challenges (the cggmp21 Π-prm bit-extraction bug)."""

from __future__ import annotations

from collections import Counter

import pytest

from mpcnode.crypto.bigint import gcd, in_signed_range
from mpcnode.crypto.group import SECP256K1
from mpcnode.crypto.security import SECURITY_128, SecurityLevel
from mpcnode.crypto.transcript import Transcript, Value

Q = SECP256K1.order


def challenge_of(*appends: tuple[str, Value], tag: str = "test") -> bytes:
    t = Transcript(tag)
    for label, value in appends:
        t.append(label, value)
    return t.challenge_bytes("c", 32)


# --------------------------------------------------------------------------- unambiguous encoding


def test_two_splits_of_the_same_bytes_give_different_challenges() -> None:
    # The requirement: append("a", b"12"); append("b", b"3") vs b"1" / b"23".
    assert challenge_of(("a", b"12"), ("b", b"3")) != challenge_of(("a", b"1"), ("b", b"23"))


@pytest.mark.parametrize(
    "left, right",
    [
        # label/value boundary shifted
        ([("ab", b"c")], [("a", b"bc")]),
        ([("a", b"")], [("", b"a")]),
        # one field vs two fields with the same concatenation
        ([("a", b"123")], [("a", b"1"), ("a", b"23")]),
        ([("a", b"12"), ("a", b"3")], [("a", b"1"), ("a", b"23")]),
        # an empty field is still a field
        ([("a", b"1")], [("a", b"1"), ("a", b"")]),
        # int vs bytes vs str with the same digits
        ([("a", 12)], [("a", b"12")]),
        ([("a", 12)], [("a", b"\x0c")]),
        ([("a", 12)], [("a", b"\x00\x0c")]),
        ([("a", 12)], [("a", "12")]),
        ([("a", "12")], [("a", b"12")]),
        ([("a", 0)], [("a", b"")]),
        ([("a", 0)], [("a", "")]),
        # sign of an integer
        ([("a", 5)], [("a", -5)]),
        # a point vs its encoding
        ([("P", SECP256K1.generator())], [("P", SECP256K1.generator().encode())]),
        ([("P", SECP256K1.identity())], [("P", b"")]),
        # nothing vs one empty field
        ([], [("", b"")]),
        # order of appends
        ([("a", b"1"), ("b", b"2")], [("b", b"2"), ("a", b"1")]),
    ],
)
def test_ambiguous_looking_inputs_differ(
    left: list[tuple[str, Value]], right: list[tuple[str, Value]]
) -> None:
    assert challenge_of(*left) != challenge_of(*right)


def test_append_ints_is_unambiguous() -> None:
    def ints(values: list[int]) -> bytes:
        t = Transcript("test")
        t.append_ints("v", values)
        return t.challenge_bytes("c", 32)

    # Same concatenated magnitudes, different splits.
    assert ints([0x0102, 0x03]) != ints([0x01, 0x0203])
    assert ints([12, 3]) != ints([1, 23])
    assert ints([1, 2]) != ints([1, 2, 0])
    assert ints([]) != ints([0])
    assert ints([-1]) != ints([1])
    # A list is not the same as appending its elements one by one.
    t = Transcript("test")
    t.append("v", 1)
    t.append("v", 2)
    assert ints([1, 2]) != t.challenge_bytes("c", 32)


def test_tag_and_challenge_label_separate_streams() -> None:
    assert challenge_of(("a", 1), tag="x") != challenge_of(("a", 1), tag="y")
    a, b = Transcript("t"), Transcript("t")
    assert a.challenge_bytes("e", 32) != b.challenge_bytes("f", 32)


def test_unsupported_values_are_refused() -> None:
    t = Transcript("test")
    with pytest.raises(TypeError):
        t.append("flag", True)
    with pytest.raises(TypeError):
        t.append("x", 1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        t.append("x", [1, 2])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- for_proof binding

BASE = {"proof_tag": "mpc.v1.zk.test", "sid": b"sid", "prover": 1, "instance": ""}


@pytest.mark.parametrize(
    "change",
    [
        {"proof_tag": "mpc.v1.zk.other"},
        {"sid": b"sie"},
        {"sid": b"sid\x00"},
        {"prover": 2},
        {"instance": "1"},
        {"level": SecurityLevel("cggmp24-128", 384, 512, 256, 1281, 128, 1536, 3071)},
        {"level": SecurityLevel("other-name", 384, 512, 256, 1280, 128, 1536, 3071)},
        {"level": SecurityLevel("cggmp24-128", 384, 513, 256, 1280, 128, 1536, 3071)},
    ],
)
def test_for_proof_binds_every_context_value(change: dict[str, object]) -> None:
    def draw(args: dict[str, object]) -> int:
        t = Transcript.for_proof(
            str(args["proof_tag"]),
            args["sid"],  # type: ignore[arg-type]
            args["prover"],  # type: ignore[arg-type]
            args.get("level", SECURITY_128),  # type: ignore[arg-type]
            str(args["instance"]),
        )
        return t.challenge_scalar("e", Q)

    assert draw(BASE) == draw(BASE)
    assert draw(BASE) != draw({**BASE, **change})


# --------------------------------------------------------------------------- determinism


def _script(t: Transcript) -> list[object]:
    t.append("N", 2**3071 + 12345)
    t.append("X", SECP256K1.base_mul(7))
    t.append_ints("A", [1, -2, 3])
    return [
        t.challenge_bytes("b", 17),
        t.challenge_below("e", 10**50),
        t.challenge_signed("s", Q),
        t.challenge_scalar("k", Q),
        t.challenge_bits("bits", 128),
        t.challenge_units("y", 3 * 5 * 7 * 2**200 + 1, 4),
    ]


def test_same_inputs_give_same_challenges() -> None:
    assert _script(Transcript("det")) == _script(Transcript("det"))


def test_a_challenge_depends_on_everything_appended_before_it() -> None:
    a, b = Transcript("det"), Transcript("det")
    a.append("x", 1)
    b.append("x", 1)
    assert a.challenge_bytes("c", 32) == b.challenge_bytes("c", 32)
    a.append("y", 2)
    b.append("y", 3)
    assert a.challenge_bytes("c", 32) != b.challenge_bytes("c", 32)


def test_every_challenge_in_a_sequence_differs() -> None:
    t = Transcript("seq")
    same_label = [t.challenge_bytes("c", 32) for _ in range(200)]
    assert len(set(same_label)) == 200
    scalars = [t.challenge_scalar("e", Q) for _ in range(200)]
    assert len(set(scalars)) == 200
    # A small range still gives a fresh draw each time (not one value repeated).
    small = [t.challenge_below("b", 2**16) for _ in range(64)]
    assert len(set(small)) > 50


def test_same_sequence_of_draws_agrees() -> None:
    # Two transcripts drawing the same labels in the same order agree at every position.
    a, b = Transcript("seq"), Transcript("seq")
    assert [a.challenge_scalar("e", Q) for _ in range(20)] == [
        b.challenge_scalar("e", Q) for _ in range(20)
    ]


# --------------------------------------------------------------------------- ranges


@pytest.mark.parametrize("bound", [1, 2, 3, 4, 2**128, 2**256, Q])
def test_challenge_signed_stays_in_range_and_hits_both_signs(bound: int) -> None:
    t = Transcript("signed")
    draws = [t.challenge_signed("e", bound) for _ in range(600)]
    assert all(in_signed_range(e, bound) for e in draws)
    h = bound // 2
    if h:
        assert any(e < 0 for e in draws) and any(e > 0 for e in draws)
        assert min(draws) >= -h and max(draws) <= h
    else:
        assert set(draws) == {0}
    if bound <= 4:
        assert set(draws) == set(range(-h, h + 1))  # every value, endpoints included


def test_challenge_signed_order_q_uses_full_magnitude() -> None:
    t = Transcript("signed")
    draws = [t.challenge_signed("e", Q) for _ in range(300)]
    assert max(abs(e) for e in draws) > Q // 8
    assert all(abs(e) <= (Q - 1) // 2 for e in draws)


def test_challenge_below_and_scalar_range() -> None:
    t = Transcript("below")
    for bound in (1, 2, 3, 255, 256, 257, Q):
        assert all(0 <= t.challenge_below("x", bound) < bound for _ in range(200))
    assert all(0 <= t.challenge_scalar("k", Q) < Q for _ in range(200))
    for bad in (0, -5):
        with pytest.raises(ValueError):
            t.challenge_below("x", bad)


@pytest.mark.parametrize("bound", [3, 5, 6])
def test_challenge_below_is_roughly_uniform(bound: int) -> None:
    # Rejection sampling sanity: 3000·bound/3 draws, each value within 15 % of its expectation
    # (about 8 standard deviations at these counts; the transcript is deterministic anyway).
    t = Transcript("uniform")
    draws = 1000 * bound
    counts = Counter(t.challenge_below("u", bound) for _ in range(draws))
    assert set(counts) == set(range(bound))
    for value in range(bound):
        assert abs(counts[value] - 1000) < 150, counts


def test_challenge_signed_bound_3_is_roughly_uniform() -> None:
    t = Transcript("uniform-signed")
    counts = Counter(t.challenge_signed("u", 3) for _ in range(3000))
    assert set(counts) == {-1, 0, 1}
    assert all(abs(c - 1000) < 150 for c in counts.values()), counts


# --------------------------------------------------------------------------- bits and units


def test_challenge_bits_returns_exactly_count_bits() -> None:
    t = Transcript("bits")
    for count in (1, 7, 8, 9, 13, 128, 200):
        bits = t.challenge_bits("e", count)
        assert len(bits) == count
        assert set(bits) <= {0, 1}


def test_challenge_bits_beyond_bit_32_are_not_zero() -> None:
    # Regression for the cggmp21 Π-prm bug (only the first 32-bit word was ever read, so
    # e_i = 0 for i >= 32): over many transcripts bits 32..127 are never all zero, every
    # position takes both values, and each transcript's 128 bits are not all equal.
    per_position: list[set[int]] = [set() for _ in range(128)]
    ones = 0
    for i in range(300):
        t = Transcript("prm")
        t.append("i", i)
        bits = t.challenge_bits("e", 128)
        assert len(bits) == 128
        assert any(bits[32:]), i
        assert len(set(bits[32:])) == 2, i
        for position, bit in enumerate(bits):
            per_position[position].add(bit)
        ones += sum(bits)
    assert all(seen == {0, 1} for seen in per_position)
    assert abs(ones - 300 * 64) < 600  # about 1/2 of the 38400 bits are ones (σ ≈ 98)


def test_challenge_bits_use_the_whole_byte_stream() -> None:
    # Each bit of a 128-bit challenge is a bit of the 16-byte challenge stream: two different
    # bit challenges never agree on all 128 positions.
    seen = set()
    for i in range(200):
        t = Transcript("bits-distinct")
        t.append("i", i)
        seen.add(tuple(t.challenge_bits("e", 128)))
    assert len(seen) == 200


@pytest.mark.parametrize(
    "modulus",
    [15, 3 * 5 * 7 * 11 * 13, (2**127 - 1) * (2**61 - 1), 2**255 - 19],
)
def test_challenge_units_are_units(modulus: int) -> None:
    t = Transcript("units")
    units = t.challenge_units("y", modulus, 64)
    assert len(units) == 64
    assert all(0 < u < modulus and gcd(u, modulus) == 1 for u in units)
    if modulus > 10**6:
        assert len(set(units)) == 64  # one fresh stream per index (the Taurus Π-mod bug)


def test_challenge_units_index_streams_are_distinct() -> None:
    a = Transcript("units").challenge_units("y", 2**127 - 1, 2)
    b = Transcript("units").challenge_units("y", 2**127 - 1, 2)
    assert a == b and a[0] != a[1]
