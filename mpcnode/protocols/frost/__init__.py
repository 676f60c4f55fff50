"""FROST(Ed25519, SHA-512), RFC 9591: ciphersuite, signing (functions, session, aggregator), DKG."""

from mpcnode.protocols.frost.ciphersuite import ED25519_SHA512, Ciphersuite, suite_for
from mpcnode.protocols.frost.dkg import FrostDkgSession
from mpcnode.protocols.frost.sign import (
    FrostAggregator,
    FrostSignSession,
    SigningCommitment,
    SigningNonces,
    aggregate,
    commit,
    sign_share,
    verify_signature,
    verify_signature_share,
)

__all__ = [
    "ED25519_SHA512",
    "Ciphersuite",
    "FrostAggregator",
    "FrostDkgSession",
    "FrostSignSession",
    "SigningCommitment",
    "SigningNonces",
    "aggregate",
    "commit",
    "sign_share",
    "suite_for",
    "verify_signature",
    "verify_signature_share",
]
