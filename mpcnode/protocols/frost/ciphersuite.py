"""FROST ciphersuites (RFC 9591 §6): a group plus the hash functions H1..H5.

Implemented: FROST(Ed25519, SHA-512) (§6.1) and FROST(secp256k1, SHA-256) (§6.5). A suite is
a small object so the protocol code (signing, DKG) does not change per group. HDKG is ZF
frost's extension used for the DKG proof of knowledge.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import final

from mpcnode.crypto.group import ED25519, SECP256K1, Group
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


# --------------------------------------------------------------------------------------------
# RFC 9380 §5: hash_to_field with expand_message_xmd (used by the secp256k1 suite)

_XMD_MAX_DST = 255
_SHA256_OUTPUT = 32
_SHA256_BLOCK = 64


def expand_message_xmd_sha256(msg: bytes, dst: bytes, len_in_bytes: int) -> bytes:
    """RFC 9380 §5.3.1 expand_message_xmd with H = SHA-256 (b_in_bytes 32, s_in_bytes 64)."""
    ell = -(-len_in_bytes // _SHA256_OUTPUT)
    if not 1 <= len_in_bytes <= 65535 or ell > 255:
        raise InvalidInput("expand_message_xmd output length out of range")
    if not 1 <= len(dst) <= _XMD_MAX_DST:
        raise InvalidInput("expand_message_xmd DST must be 1..255 bytes")
    dst_prime = dst + bytes([len(dst)])
    msg_prime = bytes(_SHA256_BLOCK) + msg + len_in_bytes.to_bytes(2, "big") + b"\x00" + dst_prime
    b_0 = hashlib.sha256(msg_prime).digest()
    b_i = hashlib.sha256(b_0 + b"\x01" + dst_prime).digest()
    uniform = [b_i]
    for i in range(2, ell + 1):
        mixed = bytes(x ^ y for x, y in zip(b_0, b_i, strict=True))
        b_i = hashlib.sha256(mixed + bytes([i]) + dst_prime).digest()
        uniform.append(b_i)
    return b"".join(uniform)[:len_in_bytes]


def hash_to_field_sha256(msg: bytes, dst: bytes, modulus: int, length: int = 48) -> int:
    """RFC 9380 §5.2 hash_to_field with count = 1, m = 1: OS2IP(expand(msg, DST, L)) mod p.

    L = 48 = ceil((ceil(log2(p)) + k) / 8) for a 256-bit p and k = 128, so the bias is
    below 2^-128.
    """
    return int.from_bytes(expand_message_xmd_sha256(msg, dst, length), "big") % modulus


@final
class Secp256k1Sha256(Ciphersuite):
    """FROST(secp256k1, SHA-256), RFC 9591 §6.5.

    H1, H2, H3 (and HDKG, as in ZF frost-secp256k1) are hash_to_field with DST = context ‖
    tag; H4 and H5 are SHA-256 over context ‖ tag ‖ m. Signatures are R ‖ z with a 33-byte
    compressed R: not BIP-340 compatible.
    """

    name = "FROST(secp256k1, SHA-256)"
    context = b"FROST-secp256k1-SHA256-v1"
    group = SECP256K1

    def _to_scalar(self, tag: bytes, m: bytes) -> int:
        return hash_to_field_sha256(m, self.context + tag, self.group.order)

    def H1(self, m: bytes) -> int:
        return self._to_scalar(b"rho", m)

    def H2(self, m: bytes) -> int:
        return self._to_scalar(b"chal", m)

    def H3(self, m: bytes) -> int:
        return self._to_scalar(b"nonce", m)

    def H4(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"msg" + m).digest()

    def H5(self, m: bytes) -> bytes:
        return hashlib.sha256(self.context + b"com" + m).digest()

    def HDKG(self, m: bytes) -> int:
        return self._to_scalar(b"dkg", m)


SECP256K1_SHA256 = Secp256k1Sha256()

SUITES: dict[str, Ciphersuite] = {
    ED25519.name: ED25519_SHA512,
    SECP256K1.name: SECP256K1_SHA256,
}
"""FROST suite per scheme (group name)."""

# Module-level aliases for the Ed25519 suite (the original single-suite API).
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
