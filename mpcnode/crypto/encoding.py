"""The one canonical byte encoding: a sequence of length-prefixed fields.

Used for protocol payloads, envelope signing input and Fiat-Shamir transcripts,
so that no two different field sequences ever encode to the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from mpcnode.errors import InvalidInput

_LEN = 4  # bytes of big-endian length prefix per field


def encode_fields(fields: Sequence[bytes]) -> bytes:
    """Concatenate `fields`, each preceded by its 4-byte big-endian length."""
    out = bytearray()
    for field in fields:
        if len(field) >= 1 << (8 * _LEN):
            raise InvalidInput("field too long to encode")
        out += len(field).to_bytes(_LEN, "big")
        out += field
    return bytes(out)


def decode_fields(data: bytes, count: int | None = None) -> list[bytes]:
    """Inverse of `encode_fields`; `count`, when given, is the exact number of fields expected."""
    fields: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + _LEN > len(data):
            raise InvalidInput("truncated field length")
        size = int.from_bytes(data[pos : pos + _LEN], "big")
        pos += _LEN
        if pos + size > len(data):
            raise InvalidInput("truncated field")
        fields.append(bytes(data[pos : pos + size]))
        pos += size
    if count is not None and len(fields) != count:
        raise InvalidInput(f"expected {count} fields, got {len(fields)}")
    return fields


def encode_uint(value: int, size: int = 4) -> bytes:
    """Fixed-size big-endian unsigned integer (for indices and counts inside fields)."""
    if value < 0 or value >= 1 << (8 * size):
        raise InvalidInput("integer out of range")
    return value.to_bytes(size, "big")


def decode_uint(data: bytes, size: int = 4) -> int:
    if len(data) != size:
        raise InvalidInput(f"expected a {size}-byte integer")
    return int.from_bytes(data, "big")
