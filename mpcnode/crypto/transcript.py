"""The one Fiat-Shamir transcript.

Every value is absorbed as a tagged, length-prefixed field (`encode_fields` of label and
bytes), so no two different sequences of (label, value) absorb to the same bytes. A
transcript starts with a protocol tag; `Transcript.for_proof` also binds the session id
(execution id), the prover's index, the proof instance and the security level. Statement
values and the prover's first message are then appended by each proof.

Challenges are read from SHAKE-256 over the absorbed bytes, a challenge label and a
counter, so every challenge (and every repetition of a repeated proof) is distinct and
derived from everything absorbed before it. A challenge is itself absorbed, so later
challenges depend on earlier ones. Integers are sampled by rejection: exactly uniform.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from mpcnode.crypto.bigint import gcd, signed_to_bytes
from mpcnode.crypto.encoding import encode_fields, encode_uint
from mpcnode.crypto.group import Point
from mpcnode.crypto.security import SecurityLevel

_DOMAIN = b"mpc.v1.transcript"

Value = bytes | int | Point | str


def _encode(value: Value) -> bytes:
    """Type-tagged encoding, so an int and bytes with the same digits differ."""
    if isinstance(value, bool):
        raise TypeError("booleans are not transcript values; use an int")
    if isinstance(value, bytes):
        return b"b" + value
    if isinstance(value, int):
        return b"i" + signed_to_bytes(value)
    if isinstance(value, str):
        return b"s" + value.encode()
    if isinstance(value, Point):
        return b"p" + (b"" if value.is_identity else value.encode())
    raise TypeError(f"cannot absorb {type(value).__name__}")


class Transcript:
    """A Fiat-Shamir transcript: `append` public values, then draw challenges."""

    def __init__(self, tag: str) -> None:
        self._state = hashlib.shake_256()
        self._state.update(encode_fields([_DOMAIN, tag.encode()]))
        self._challenges = 0

    @classmethod
    def for_proof(
        cls,
        proof_tag: str,
        sid: bytes,
        prover: int,
        level: SecurityLevel,
        instance: str = "",
    ) -> Transcript:
        """Transcript of one proof, bound to session, prover, proof instance and parameters."""
        t = cls(proof_tag)
        t.append("sid", sid)
        t.append("prover", prover)
        t.append("instance", instance)
        t.append("level", level.name)
        for name in ("kappa", "epsilon", "ell", "ell_prime", "m"):
            t.append(name, int(getattr(level, name)))
        return t

    def append(self, label: str, value: Value) -> None:
        self._state.update(encode_fields([label.encode(), _encode(value)]))

    def append_ints(self, label: str, values: list[int]) -> None:
        """A list of integers as one field (e.g. the m commitments of Π-prm)."""
        self._state.update(
            encode_fields([label.encode(), encode_fields([signed_to_bytes(v) for v in values])])
        )

    def _stream(self, label: str) -> Iterator[bytes]:
        """Blocks of the challenge stream for `label`; absorbs the draw afterwards."""
        index = self._challenges
        self._challenges += 1
        seed = self._state.copy()
        seed.update(encode_fields([b"challenge", label.encode(), encode_uint(index)]))
        block = 0
        while True:
            h = seed.copy()
            h.update(encode_uint(block))
            yield h.digest(64)
            block += 1

    def _draw(self, label: str, size: int) -> Iterator[bytes]:
        """Chunks of `size` bytes from a fresh stream for `label`."""
        buffer = b""
        for block in self._stream(label):
            buffer += block
            while len(buffer) >= size:
                chunk, buffer = buffer[:size], buffer[size:]
                yield chunk

    def challenge_bytes(self, label: str, size: int) -> bytes:
        out = next(self._draw(label, size))
        self.append(label, out)
        return out

    def challenge_below(self, label: str, bound: int) -> int:
        """Uniform in [0, bound)."""
        if bound <= 0:
            raise ValueError("bound must be positive")
        bits = bound.bit_length()
        mask = (1 << bits) - 1
        for chunk in self._draw(label, (bits + 7) // 8):
            candidate = int.from_bytes(chunk, "big") & mask
            if candidate < bound:
                self.append(label, candidate)
                return candidate
        raise AssertionError("unreachable")

    def challenge_signed(self, label: str, bound: int) -> int:
        """Uniform in I(bound) = [-floor(bound/2), floor(bound/2)]."""
        h = bound // 2
        return self.challenge_below(label, 2 * h + 1) - h

    def challenge_scalar(self, label: str, order: int) -> int:
        """Uniform in Z_order."""
        return self.challenge_below(label, order)

    def challenge_bits(self, label: str, count: int) -> list[int]:
        """`count` independent challenge bits (one bit of the stream each, never fewer)."""
        data = self.challenge_bytes(label, (count + 7) // 8)
        return [(data[i // 8] >> (i % 8)) & 1 for i in range(count)]

    def challenge_units(self, label: str, modulus: int, count: int) -> list[int]:
        """`count` independent elements of Z*_modulus, one stream per index."""
        out = []
        for i in range(count):
            while True:
                candidate = self.challenge_below(f"{label}[{i}]", modulus)
                if candidate and gcd(candidate, modulus) == 1:
                    out.append(candidate)
                    break
        return out


__all__ = ["Transcript"]
