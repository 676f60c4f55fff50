"""FROST ciphersuites (RFC 9591 §6): a group plus the hash functions H1..H5.

Only FROST(Ed25519, SHA-512) (§6.1) is implemented. A suite is a small object so that
another one (e.g. §6.5 secp256k1) can be added without touching the protocol code.
HDKG is ZF frost's extension used for the DKG proof of knowledge.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import final

from mpcnode.crypto.group import ED25519, Group
from mpcnode.errors import InvalidInput

NONCE_RANDOMNESS_SIZE = 32


class Ciphersuite(ABC):
    """RFC 9591 §6 ciphersuite interface."""

    name: str
    context: bytes
    group: Group

    @abstractmethod
    def H1(self, m: bytes) -> int:
        """Binding factor (rho) hash to a scalar."""

    @abstractmethod
    def H2(self, m: bytes) -> int:
        """Signature challenge hash to a scalar."""

    @abstractmethod
    def H3(self, m: bytes) -> int:
        """Nonce hash to a scalar."""

    @abstractmethod
    def H4(self, m: bytes) -> bytes:
        """Message hash (raw digest)."""

    @abstractmethod
    def H5(self, m: bytes) -> bytes:
        """Commitment-list hash (raw digest)."""

    @abstractmethod
    def HDKG(self, m: bytes) -> int:
        """DKG proof-of-knowledge challenge hash to a scalar (ZF frost extension)."""

    def serialize_scalar(self, k: int) -> bytes:
        return self.group.encode_scalar(k)

    def nonce_generate(self, secret: int, random_bytes: bytes) -> int:
        """RFC 9591 §4.1: H3(random_bytes ‖ SerializeScalar(secret)), hedged against a bad RNG."""
        if len(random_bytes) != NONCE_RANDOMNESS_SIZE:
            raise InvalidInput("nonce randomness must be 32 bytes")
        return self.H3(random_bytes + self.serialize_scalar(secret))

    def __repr__(self) -> str:
        return f"<Ciphersuite {self.name}>"


@final
class Ed25519Sha512(Ciphersuite):
    """FROST(Ed25519, SHA-512), RFC 9591 §6.1. Digests are read as little-endian integers."""

    name = "FROST(Ed25519, SHA-512)"
    context = b"FROST-ED25519-SHA512-v1"
    group = ED25519

    def _to_scalar(self, data: bytes) -> int:
        return int.from_bytes(hashlib.sha512(data).digest(), "little") % self.group.order

    def H1(self, m: bytes) -> int:
        return self._to_scalar(self.context + b"rho" + m)

    def H2(self, m: bytes) -> int:
        # No context prefix: this is exactly the RFC 8032 challenge SHA-512(R ‖ A ‖ M).
        return self._to_scalar(m)

    def H3(self, m: bytes) -> int:
        return self._to_scalar(self.context + b"nonce" + m)

    def H4(self, m: bytes) -> bytes:
        return hashlib.sha512(self.context + b"msg" + m).digest()

    def H5(self, m: bytes) -> bytes:
        return hashlib.sha512(self.context + b"com" + m).digest()

    def HDKG(self, m: bytes) -> int:
        return self._to_scalar(self.context + b"dkg" + m)


ED25519_SHA512 = Ed25519Sha512()

SUITES: dict[str, Ciphersuite] = {ED25519.name: ED25519_SHA512}
"""FROST suite per scheme (group name)."""

CONTEXT = ED25519_SHA512.context
H1 = ED25519_SHA512.H1
H2 = ED25519_SHA512.H2
H3 = ED25519_SHA512.H3
H4 = ED25519_SHA512.H4
H5 = ED25519_SHA512.H5
HDKG = ED25519_SHA512.HDKG
nonce_generate = ED25519_SHA512.nonce_generate


def suite_for(scheme: str) -> Ciphersuite:
    """The FROST suite for a scheme name; raises for schemes FROST is not implemented for."""
    try:
        return SUITES[scheme]
    except KeyError:
        raise InvalidInput(f"FROST is not implemented for scheme {scheme!r}") from None
