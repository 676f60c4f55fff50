"""One error family for the whole project.

Every error the crypto, protocol and service layers raise derives from `MpcError`.
Messages never contain secret material (shares, nonces, keys): only indices,
names and public values.
"""

from __future__ import annotations

from collections.abc import Iterable


class MpcError(Exception):
    """Base of every error raised by this project."""


class InvalidInput(MpcError):
    """The caller gave malformed or out-of-range input (a bad point, a bad argument)."""


class InvalidSignature(MpcError):
    """A signature (Ed25519, ECDSA, envelope or signature share) did not verify."""


class ProtocolAborted(MpcError):
    """A protocol session stopped because a party misbehaved.

    `culprits` are the party indices whose misbehaviour is provable from
    authenticated messages; it is empty when the fault cannot be attributed.
    """

    def __init__(self, reason: str, culprits: Iterable[int] = ()) -> None:
        self.reason = reason
        self.culprits: tuple[int, ...] = tuple(sorted(set(culprits)))
        suffix = f" (culprits: {list(self.culprits)})" if self.culprits else ""
        super().__init__(reason + suffix)


class InternalBug(MpcError):
    """An internal invariant broke. This should never happen."""


class KeyNotFound(MpcError):
    """No key with this id is known."""


class QuorumUnavailable(MpcError):
    """Fewer parties answered than the operation needs."""

    def __init__(self, message: str, missing: Iterable[str] = ()) -> None:
        self.missing: tuple[str, ...] = tuple(missing)
        suffix = f"; not answering: {', '.join(self.missing)}" if self.missing else ""
        super().__init__(message + suffix)


class Unauthenticated(MpcError):
    """The caller proved no identity: no, a malformed, expired or unverifiable credential."""


class PermissionDenied(MpcError):
    """The caller is authenticated but not allowed to do this."""


class ResourceExhausted(MpcError):
    """The caller exceeded a quota or rate limit: RESOURCE_EXHAUSTED."""


class SessionUnknown(MpcError):
    """No live protocol session with this id (finished, aborted, or lost in a restart)."""


class InvalidProof(MpcError):
    """A zero-knowledge proof, or the statement it is about, failed a verifier check."""


class PreconditionFailed(MpcError):
    """The node lacks state the call needs first (e.g. no aux-info yet): FAILED_PRECONDITION."""
