"""What every proof shares: its context (session, prover, instance, level) and `require`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpcnode.crypto.bigint import signed_from_bytes, signed_to_bytes
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.security import SECURITY_128, SecurityLevel
from mpcnode.crypto.transcript import Transcript
from mpcnode.errors import InvalidInput, InvalidProof


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


def require(condition: bool, failure: str) -> None:
    """Raise `InvalidProof(failure)` unless `condition` holds."""
    if not condition:
        raise InvalidProof(failure)


def encode_ints(values: Sequence[int]) -> bytes:
    """Signed integers as one canonical byte string (for proof serialisation)."""
    return encode_fields([signed_to_bytes(v) for v in values])


def decode_ints(data: bytes, count: int | None = None) -> list[int]:
    """Inverse of `encode_ints`; malformed input raises `InvalidProof`."""
    try:
        return [signed_from_bytes(f) for f in decode_fields(data, count)]
    except (InvalidInput, ValueError) as exc:
        raise InvalidProof(f"malformed proof encoding: {exc}") from None
