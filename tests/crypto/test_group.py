"""mpcnode.crypto.group: point validation, scalar ranges, arithmetic against independent code."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium
from py_ecc.secp256k1 import secp256k1 as ref_secp

from mpcnode.crypto.group import ED25519, GROUPS, SECP256K1, Group, Point
from mpcnode.errors import InvalidInput

L = ED25519.order
N = SECP256K1.order
P25519 = 2**255 - 19
PK1 = SECP256K1.field_prime
IDENTITY_ED = b"\x01" + b"\x00" * 31

# The eight torsion points of edwards25519 (libsodium's small-order blocklist), incl. identity.
SMALL_ORDER_ED = [
    bytes.fromhex(h)
    for h in (
        "0100000000000000000000000000000000000000000000000000000000000000",  # order 1
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  # order 2
        "0000000000000000000000000000000000000000000000000000000000000000",  # order 4
        "0000000000000000000000000000000000000000000000000000000000000080",  # order 4
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  # order 8
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  # order 8
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",  # order 8
    )
]

scalars_ed = st.integers(min_value=1, max_value=L - 1)
scalars_k1 = st.integers(min_value=1, max_value=N - 1)
FEW = settings(max_examples=25, deadline=None)


# ---------------------------------------------------------------------------------------------
# Ed25519 validation


def test_ed25519_accepts_valid_points() -> None:
    g = ED25519.generator()
    assert ED25519.decode_point(g.encode()) == g
    assert g.encode() == bytes.fromhex(
        "5866666666666666666666666666666666666666666666666666666666666666"
    )
    p = ED25519.base_mul(123456789)
    assert ED25519.decode_point(p.encode()) == p


@pytest.mark.parametrize("encoding", SMALL_ORDER_ED)
def test_ed25519_rejects_small_order_and_identity(encoding: bytes) -> None:
    with pytest.raises(InvalidInput):
        ED25519.decode_point(encoding)


def test_ed25519_rejects_mixed_order() -> None:
    g = ED25519.generator().encode()
    for torsion in SMALL_ORDER_ED[1:]:
        mixed = sodium.crypto_core_ed25519_add(g, torsion)
        assert mixed != g
        with pytest.raises(InvalidInput):
            ED25519.decode_point(mixed)


@pytest.mark.parametrize(
    "encoding",
    [
        (P25519).to_bytes(32, "little"),  # y = p (non-canonical 0)
        (P25519 + 1).to_bytes(32, "little"),  # y = p + 1 (non-canonical identity)
        (P25519 + 1 + 2**255).to_bytes(32, "little"),
        (2**255 - 1).to_bytes(32, "little"),  # y = 2^255 - 1 >= p
        IDENTITY_ED[:31] + b"\x80",  # identity with the sign bit set
    ],
)
def test_ed25519_rejects_non_canonical(encoding: bytes) -> None:
    with pytest.raises(InvalidInput):
        ED25519.decode_point(encoding)


def test_ed25519_rejects_off_curve_and_wrong_length() -> None:
    with pytest.raises(InvalidInput):
        ED25519.decode_point((2).to_bytes(32, "little"))  # y = 2 is not on the curve
    g = ED25519.generator().encode()
    for bad in (b"", g[:31], g + b"\x00", b"\x00" * 64):
        with pytest.raises(InvalidInput):
            ED25519.decode_point(bad)


def test_ed25519_scalars() -> None:
    assert ED25519.decode_scalar(ED25519.encode_scalar(L - 1)) == L - 1
    assert ED25519.encode_scalar(1) == b"\x01" + b"\x00" * 31  # little-endian
    assert ED25519.encode_scalar(L + 5) == ED25519.encode_scalar(5)
    assert ED25519.decode_scalar(bytes(32)) == 0
    for bad in (L.to_bytes(32, "little"), (L + 1).to_bytes(32, "little"), b"\xff" * 32):
        with pytest.raises(InvalidInput):
            ED25519.decode_scalar(bad)
    for bad in (b"\x01" * 31, b"\x01" * 33, b""):
        with pytest.raises(InvalidInput):
            ED25519.decode_scalar(bad)


def test_ed25519_zero_and_identity() -> None:
    assert ED25519.base_mul(0).is_identity
    assert ED25519.base_mul(L).is_identity
    g = ED25519.generator()
    assert (g * 0).is_identity and (g * L).is_identity
    assert (g - g).is_identity
    assert ED25519.identity() + g == g and g + ED25519.identity() == g
    assert (ED25519.identity() * 5).is_identity
    assert -ED25519.identity() == ED25519.identity()
    with pytest.raises(InvalidInput):
        ED25519.identity().encode()


def test_ed25519_reduces_scalars_above_2_255() -> None:
    """libsodium clears bit 255: the wrapper must reduce mod L first."""
    k = 987654321
    big = k + 8 * L
    assert big >= 2**255
    assert ED25519.base_mul(big) == ED25519.base_mul(k)
    g = ED25519.base_mul(3)
    assert g * big == g * k


@FEW
@given(seed=st.binary(min_size=32, max_size=32))
def test_ed25519_base_mul_matches_openssl(seed: bytes) -> None:
    """RFC 8032 public key = clamp(SHA-512(seed)[:32])·B, computed by OpenSSL independently."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    a = int.from_bytes(h, "little")
    expected = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )
    assert ED25519.base_mul(a).encode() == expected
    assert ED25519.generator() * a == ED25519.base_mul(a)


# ---------------------------------------------------------------------------------------------
# secp256k1 validation


def ref_point(k: int) -> bytes:
    """Compressed SEC1 encoding of k·G from py-ecc (pure Python, independent of libsecp256k1)."""
    x, y = ref_secp.multiply(ref_secp.G, k)
    return bytes([2 + (y & 1)]) + x.to_bytes(32, "big")


def test_secp256k1_accepts_valid_points() -> None:
    g = SECP256K1.generator()
    assert g.encode() == ref_point(1)
    assert SECP256K1.decode_point(g.encode()) == g
    odd = SECP256K1.decode_point(bytes([g.encode()[0] ^ 1]) + g.encode()[1:])
    assert odd == -g


def non_residue_x() -> int:
    """The smallest x for which x^3 + 7 has no square root mod p (no point with this x)."""
    x = 1
    while pow(x**3 + 7, (PK1 - 1) // 2, PK1) == 1:
        x += 1
    return x


@pytest.mark.parametrize(
    "encoding",
    [
        b"\x04" + ref_point(1)[1:],  # uncompressed prefix
        b"\x00" + ref_point(1)[1:],
        b"\x05" + ref_point(1)[1:],
        b"\x02" + PK1.to_bytes(32, "big"),  # x = p
        b"\x03" + (PK1 + 1).to_bytes(32, "big"),  # x >= p
        b"\x02" + (2**256 - 1).to_bytes(32, "big"),
        b"\x02" + non_residue_x().to_bytes(32, "big"),  # off the curve
        b"\x02" + bytes(32),  # x = 0 is not on the curve either (7 is not a square)
        ref_point(1)[:32],
        ref_point(1) + b"\x00",
        b"",
    ],
)
def test_secp256k1_rejects_bad_points(encoding: bytes) -> None:
    with pytest.raises(InvalidInput):
        SECP256K1.decode_point(encoding)


def test_secp256k1_scalars() -> None:
    assert SECP256K1.encode_scalar(1) == b"\x00" * 31 + b"\x01"  # big-endian
    assert SECP256K1.decode_scalar(SECP256K1.encode_scalar(N - 1)) == N - 1
    assert SECP256K1.encode_scalar(N + 2) == SECP256K1.encode_scalar(2)
    for bad in (N.to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31, b"\x01" * 33):
        with pytest.raises(InvalidInput):
            SECP256K1.decode_scalar(bad)


def test_secp256k1_identity() -> None:
    g = SECP256K1.generator()
    assert (g + (-g)).is_identity
    assert (g - g).is_identity
    assert SECP256K1.base_mul(N).is_identity and (g * 0).is_identity
    assert SECP256K1.identity() + g == g
    with pytest.raises(InvalidInput):
        SECP256K1.identity().encode()


@FEW
@given(k=scalars_k1)
def test_secp256k1_base_mul_matches_py_ecc(k: int) -> None:
    assert SECP256K1.base_mul(k).encode() == ref_point(k)
    assert (SECP256K1.generator() * k).encode() == ref_point(k)


# ---------------------------------------------------------------------------------------------
# Group laws, both groups


@pytest.mark.parametrize("group", [ED25519, SECP256K1], ids=lambda g: g.name)
@FEW
@given(data=st.data())
def test_group_laws(group: Group, data: st.DataObject) -> None:
    scalars = st.integers(min_value=1, max_value=group.order - 1)
    a, b = data.draw(scalars), data.draw(scalars)
    pa, pb = group.base_mul(a), group.base_mul(b)
    assert pa + pb == group.base_mul(a + b)
    assert pa - pb == group.base_mul(a - b)
    assert pa * b == group.base_mul(a * b)
    assert b * pa == pa * b
    assert -pa == group.base_mul(-a)
    assert group.sum_points([pa, pb, -pa]) == pb
    assert group.decode_point(pa.encode()) == pa
    assert hash(group.decode_point(pa.encode())) == hash(pa)
    assert len(pa.encode()) == group.point_size


def test_groups_do_not_mix() -> None:
    with pytest.raises(InvalidInput):
        ED25519.generator() + SECP256K1.generator()
    assert ED25519.generator() != SECP256K1.generator()
    assert GROUPS == {"ed25519": ED25519, "secp256k1": SECP256K1}
    assert isinstance(ED25519.generator(), Point)


def test_random_scalar_in_range() -> None:
    for group in (ED25519, SECP256K1):
        values = {group.random_scalar() for _ in range(20)}
        assert len(values) == 20
        assert all(0 < v < group.order for v in values)


def test_groups_and_points_survive_pickling_as_the_same_group() -> None:
    """Sessions travel to worker processes by pickle; points compare groups by identity."""
    import pickle

    from mpcnode.crypto.group import ED25519, SECP256K1

    for group in (ED25519, SECP256K1):
        assert pickle.loads(pickle.dumps(group)) is group
        point = group.base_mul(7)
        again = pickle.loads(pickle.dumps(point))
        assert again == point and again.group is group
        assert again + point == group.base_mul(14)
