"""One prime-order group interface with two implementations: Ed25519 and secp256k1.

Points are immutable values tied to their group. Every point decoded from bytes
is validated (on the curve, in the prime-order subgroup, not the identity), so a
`Point` that did not come from `Group.decode_point` or from arithmetic on valid
points cannot exist. Scalars are plain Python ints reduced mod `Group.order`.

Ed25519 uses libsodium through `nacl.bindings` (never the clamped variants; the
scalar is always reduced mod L first because libsodium silently clears bit 255).
secp256k1 uses libsecp256k1 through coincurve. Scalar arithmetic in Python ints
is not constant-time; see the README's security notes.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import final

import coincurve
from nacl import bindings as sodium

from mpcnode.errors import InvalidInput

RandomBytes = Callable[[int], bytes]
"""A randomness source: called with n, returns n random bytes (sessions take one injected)."""


class Group(ABC):
    """A prime-order group: generator, scalar field size, encodings."""

    name: str
    order: int
    point_size: int
    scalar_size: int

    @abstractmethod
    def base_mul(self, k: int) -> Point:
        """k·G for the standard generator G."""

    @abstractmethod
    def decode_point(self, data: bytes) -> Point:
        """Decode and validate a point; raises `InvalidInput` on anything but a valid non-identity
        element of the prime-order subgroup."""

    @abstractmethod
    def encode_scalar(self, k: int) -> bytes:
        """Canonical fixed-size encoding of a scalar (the curve's own byte order)."""

    @abstractmethod
    def decode_scalar(self, data: bytes) -> int:
        """Decode a scalar, rejecting wrong length and values >= order."""

    @abstractmethod
    def _add(self, a: Point, b: Point) -> Point: ...

    @abstractmethod
    def _mul(self, p: Point, k: int) -> Point: ...

    @abstractmethod
    def _neg(self, p: Point) -> Point: ...

    def identity(self) -> Point:
        return Point(self, None)

    def generator(self) -> Point:
        return self.base_mul(1)

    def random_scalar(self, rng: RandomBytes | None = None) -> int:
        """A uniformly random non-zero scalar.

        `rng(n)` returns n random bytes; the default is the OS CSPRNG. 64 bytes are reduced
        mod the order, so the bias is below 2^-250.
        """
        source = rng if rng is not None else secrets.token_bytes
        while True:
            k = int.from_bytes(source(64), "big") % self.order
            if k:
                return k

    def sum_points(self, points: Iterable[Point]) -> Point:
        total = self.identity()
        for p in points:
            total = total + p
        return total

    def __repr__(self) -> str:
        return f"<Group {self.name}>"


@final
class Point:
    """An element of a `Group`. `raw` is its canonical encoding, None for the identity."""

    __slots__ = ("group", "raw")

    def __init__(self, group: Group, raw: bytes | None) -> None:
        self.group = group
        self.raw = raw

    @property
    def is_identity(self) -> bool:
        return self.raw is None

    def encode(self) -> bytes:
        """Canonical encoding; the identity has none (RFC 9591 SerializeElement fails on it)."""
        if self.raw is None:
            raise InvalidInput("the identity element has no encoding")
        return self.raw

    def _check(self, other: Point) -> None:
        if other.group is not self.group:
            raise InvalidInput("points from different groups")

    def __add__(self, other: Point) -> Point:
        self._check(other)
        if self.raw is None:
            return other
        if other.raw is None:
            return self
        return self.group._add(self, other)

    def __neg__(self) -> Point:
        if self.raw is None:
            return self
        return self.group._neg(self)

    def __sub__(self, other: Point) -> Point:
        return self + (-other)

    def __mul__(self, k: int) -> Point:
        k %= self.group.order
        if k == 0 or self.raw is None:
            return self.group.identity()
        return self.group._mul(self, k)

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.group is self.group and other.raw == self.raw

    def __hash__(self) -> int:
        return hash((self.group.name, self.raw))

    def __repr__(self) -> str:
        body = "identity" if self.raw is None else self.raw.hex()
        return f"<Point {self.group.name} {body}>"


_ED25519_IDENTITY = b"\x01" + b"\x00" * 31


@final
class Ed25519Group(Group):
    """The prime-order subgroup of edwards25519 (RFC 8032 encoding, little-endian scalars)."""

    name = "ed25519"
    order = 2**252 + 27742317777372353535851937790883648493
    point_size = 32
    scalar_size = 32

    def __reduce__(self) -> str:
        # Groups are singletons compared by identity: unpickle to the module's instance.
        return "ED25519"

    def _wrap(self, raw: bytes) -> Point:
        return Point(self, None if raw == _ED25519_IDENTITY else bytes(raw))

    def base_mul(self, k: int) -> Point:
        k %= self.order
        if k == 0:
            return self.identity()
        return self._wrap(sodium.crypto_scalarmult_ed25519_base_noclamp(k.to_bytes(32, "little")))

    def decode_point(self, data: bytes) -> Point:
        if len(data) != 32 or not sodium.crypto_core_ed25519_is_valid_point(bytes(data)):
            raise InvalidInput("invalid ed25519 point")
        return Point(self, bytes(data))

    def encode_scalar(self, k: int) -> bytes:
        return (k % self.order).to_bytes(32, "little")

    def decode_scalar(self, data: bytes) -> int:
        if len(data) != 32:
            raise InvalidInput("ed25519 scalar must be 32 bytes")
        k = int.from_bytes(data, "little")
        if k >= self.order:
            raise InvalidInput("ed25519 scalar out of range")
        return k

    def _add(self, a: Point, b: Point) -> Point:
        assert a.raw is not None and b.raw is not None
        return self._wrap(sodium.crypto_core_ed25519_add(a.raw, b.raw))

    def _neg(self, p: Point) -> Point:
        assert p.raw is not None
        return self._wrap(sodium.crypto_core_ed25519_sub(_ED25519_IDENTITY, p.raw))

    def _mul(self, p: Point, k: int) -> Point:
        assert p.raw is not None
        # k is in [1, L-1] and p has prime order, so the result is never the identity.
        return self._wrap(sodium.crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), p.raw))


@final
class Secp256k1Group(Group):
    """secp256k1 with 33-byte SEC1 compressed points and big-endian scalars."""

    name = "secp256k1"
    order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    field_prime = 2**256 - 2**32 - 977
    point_size = 33
    scalar_size = 32

    def __reduce__(self) -> str:
        # Groups are singletons compared by identity: unpickle to the module's instance.
        return "SECP256K1"

    def base_mul(self, k: int) -> Point:
        k %= self.order
        if k == 0:
            return self.identity()
        pub = coincurve.PublicKey.from_secret(k.to_bytes(32, "big"))
        return Point(self, pub.format(compressed=True))

    def decode_point(self, data: bytes) -> Point:
        if len(data) != 33 or data[0] not in (2, 3):
            raise InvalidInput("secp256k1 point must be 33-byte compressed SEC1")
        if int.from_bytes(data[1:], "big") >= self.field_prime:
            raise InvalidInput("non-canonical secp256k1 point")
        try:
            coincurve.PublicKey(bytes(data))
        except ValueError as exc:
            raise InvalidInput("invalid secp256k1 point") from exc
        return Point(self, bytes(data))

    def encode_scalar(self, k: int) -> bytes:
        return (k % self.order).to_bytes(32, "big")

    def decode_scalar(self, data: bytes) -> int:
        if len(data) != 32:
            raise InvalidInput("secp256k1 scalar must be 32 bytes")
        k = int.from_bytes(data, "big")
        if k >= self.order:
            raise InvalidInput("secp256k1 scalar out of range")
        return k

    def _add(self, a: Point, b: Point) -> Point:
        assert a.raw is not None and b.raw is not None
        if a.raw[1:] == b.raw[1:] and a.raw[0] != b.raw[0]:
            return self.identity()  # P + (-P); libsecp256k1 refuses to return infinity
        combined = coincurve.PublicKey.combine_keys(
            [coincurve.PublicKey(a.raw), coincurve.PublicKey(b.raw)]
        )
        return Point(self, combined.format(compressed=True))

    def _neg(self, p: Point) -> Point:
        assert p.raw is not None
        return Point(self, bytes([p.raw[0] ^ 1]) + p.raw[1:])

    def _mul(self, p: Point, k: int) -> Point:
        assert p.raw is not None
        product = coincurve.PublicKey(p.raw).multiply(k.to_bytes(32, "big"))
        return Point(self, product.format(compressed=True))


ED25519 = Ed25519Group()
SECP256K1 = Secp256k1Group()

GROUPS: dict[str, Group] = {ED25519.name: ED25519, SECP256K1.name: SECP256K1}
