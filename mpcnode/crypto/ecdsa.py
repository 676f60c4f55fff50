"""ECDSA over secp256k1 (SEC 1 v2 §4.1): signature values, encodings and verification.

The threshold protocols produce the nonce point R and the scalar s themselves; this module
turns them into a standard signature (r = x(R) mod q, low-S, recovery id) and verifies
with its own arithmetic on the `Group` interface, so a signature is not checked only by
the code that made it. Everything here is public data: no secret passes through.

Points are held as 33-byte compressed SEC1 encodings (see `group.py`), which carry x and
the parity of y; `affine_coordinates` recovers y (p ≡ 3 mod 4, so y = c^((p+1)/4)).
"""

from __future__ import annotations

from dataclasses import dataclass

from mpcnode.crypto.group import SECP256K1, Point
from mpcnode.errors import InternalBug, InvalidInput

DIGEST_SIZE = 32
SCALAR_SIZE = 32
_Q = SECP256K1.order
_P = SECP256K1.field_prime
_HALF_Q = _Q // 2
_DER_SEQUENCE = 0x30
_DER_INTEGER = 0x02


def _check_point(point: Point) -> bytes:
    """The compressed encoding of a non-identity secp256k1 point, else `InvalidInput`."""
    if point.group is not SECP256K1:
        raise InvalidInput("not a secp256k1 point")
    if point.is_identity:
        raise InvalidInput("the identity has no affine coordinates")
    raw = point.encode()
    if len(raw) != 33 or raw[0] not in (2, 3):
        raise InternalBug("secp256k1 point is not in compressed form")
    return raw


def affine_coordinates(point: Point) -> tuple[int, int]:
    """(x, y) of a non-identity secp256k1 point, decoded from its compressed encoding."""
    raw = _check_point(point)
    x = int.from_bytes(raw[1:], "big")
    y = pow((pow(x, 3, _P) + 7) % _P, (_P + 1) // 4, _P)
    if y * y % _P != (pow(x, 3, _P) + 7) % _P:
        raise InternalBug("validated secp256k1 point has no square root")
    if y & 1 != raw[0] & 1:
        y = _P - y
    return x, y


def recovery_id(x: int, y: int) -> int:
    """SEC 1 §4.1.6 recovery id of the nonce point R = (x, y) before low-S normalisation.

    bit 0: y is odd; bit 1: x >= q, i.e. r = x - q and the verifier must add q back.
    """
    if not 0 <= x < _P or not 0 <= y < _P:
        raise InvalidInput("coordinate out of range")
    return (y & 1) | (2 if x >= _Q else 0)


def _der_integer(value: int) -> bytes:
    """DER INTEGER of a value >= 0: minimal big-endian, 0x00 prefix if the top bit is set."""
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return bytes([_DER_INTEGER, len(body)]) + body


@dataclass(frozen=True)
class EcdsaSignature:
    """An ECDSA signature (r, s) with its recovery id (0..3, SEC 1 §4.1.6).

    Only the ranges needed for the encodings are enforced here (r, s < 2^256); `verify`
    rejects r or s outside [1, q-1].
    """

    r: int
    s: int
    recovery_id: int

    def __post_init__(self) -> None:
        for name, value in (("r", self.r), ("s", self.s)):
            if not isinstance(value, int) or not 0 <= value < 1 << (8 * SCALAR_SIZE):
                raise InvalidInput(f"ECDSA {name} must be a 32-byte non-negative integer")
        if not isinstance(self.recovery_id, int) or not 0 <= self.recovery_id <= 3:
            raise InvalidInput("recovery id must be 0..3")

    def compact(self) -> bytes:
        """64 bytes r ‖ s, each 32-byte big-endian."""
        return self.r.to_bytes(SCALAR_SIZE, "big") + self.s.to_bytes(SCALAR_SIZE, "big")

    def recoverable(self) -> bytes:
        """65 bytes r ‖ s ‖ recovery_id (libsecp256k1's recoverable form; Ethereum adds 27)."""
        return self.compact() + bytes([self.recovery_id])

    def der(self) -> bytes:
        """Strict DER: SEQUENCE { INTEGER r, INTEGER s } with minimal positive INTEGERs."""
        body = _der_integer(self.r) + _der_integer(self.s)
        return bytes([_DER_SEQUENCE, len(body)]) + body  # at most 72 bytes: short-form length


def signature_from_nonce(R: Point, s: int) -> EcdsaSignature:
    """The low-S signature for nonce point R and s = k^-1·(m + r·x) mod q.

    r = x(R) mod q; recovery id = (y(R) odd) | 2·(x(R) >= q). If s > q/2 it is replaced by
    q - s, which is the signature for -R, so bit 0 of the recovery id flips.
    """
    x, y = affine_coordinates(R)
    r = x % _Q
    s %= _Q
    if r == 0 or s == 0:
        raise InvalidInput("degenerate ECDSA signature (r or s is zero)")
    rec = recovery_id(x, y)
    if s > _HALF_Q:
        s = _Q - s
        rec ^= 1
    return EcdsaSignature(r, s, rec)


def digest_scalar(digest: bytes) -> int:
    """m = int(digest) mod q for a 32-byte digest (no truncation needed: q has 256 bits)."""
    if len(digest) != DIGEST_SIZE:
        raise InvalidInput("ECDSA digest must be 32 bytes")
    return int.from_bytes(digest, "big") % _Q


def verify(public_key: Point, digest: bytes, sig: EcdsaSignature) -> bool:
    """SEC 1 §4.1.4 verification: R' = (m·w)·G + (r·w)·Q with w = s^-1, accept iff x(R') ≡ r.

    Also checks the recovery id against R' (so the 65-byte recoverable form is right), and
    accepts high S as standard ECDSA does (`signature_from_nonce` never makes one).
    Raises `InvalidInput` for a non-secp256k1 or identity key or a digest that is not 32
    bytes; every signature fault gives False.
    """
    _check_point(public_key)
    m = digest_scalar(digest)
    if not 1 <= sig.r < _Q or not 1 <= sig.s < _Q:
        return False
    w = pow(sig.s, -1, _Q)
    R = SECP256K1.base_mul(m * w % _Q) + public_key * (sig.r * w % _Q)
    if R.is_identity:
        return False
    x, y = affine_coordinates(R)
    return x % _Q == sig.r and recovery_id(x, y) == sig.recovery_id
