"""Independent checks of an ECDSA signature for tests: libraries that did not make it."""

from __future__ import annotations

import hashlib

import coincurve
import pytest
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from mpcnode.crypto.ecdsa import EcdsaSignature

SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def check_ecdsa(public_key: bytes, digest: bytes, compact: bytes, der: bytes, rec: int) -> int:
    """coincurve and cryptography accept (r, s) over the 32-byte digest, S is low, the DER and
    compact forms agree, the recovery id recovers the key, another digest fails. Returns r."""
    q = SECP256K1_ORDER
    assert len(public_key) == 33 and len(compact) == 64
    r, s = int.from_bytes(compact[:32], "big"), int.from_bytes(compact[32:], "big")
    assert 0 < r < q and 0 < s <= q // 2  # low-S
    assert utils.decode_dss_signature(der) == (r, s)
    assert utils.encode_dss_signature(r, s) == der
    assert coincurve.PublicKey(public_key).verify(der, digest, hasher=None)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public_key)
    key.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    recovered = coincurve.PublicKey.from_signature_and_message(
        compact + bytes([rec]), digest, hasher=None
    )
    assert recovered.format(compressed=True) == public_key
    with pytest.raises(CryptoInvalidSignature):  # the verifiers really look at the digest
        key.verify(der, hashlib.sha256(digest).digest(), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    return r


def check_ecdsa_signature(public_key: bytes, digest: bytes, signature: EcdsaSignature) -> int:
    """`check_ecdsa` for one of our `EcdsaSignature` objects."""
    return check_ecdsa(
        public_key, digest, signature.compact(), signature.der(), signature.recovery_id
    )
