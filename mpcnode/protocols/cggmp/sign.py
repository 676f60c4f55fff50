"""CGGMP24 ECDSA signing from a presignature: partial signatures, their combination, and the
interactive session for a caller's digest.

Every use of a presignature (Γ, k̃_i, χ̃_i) is re-randomised (presignatures-hd.md §5.6-5.8): with
h the message scalar, e the additive key tweak (0 for the root key) and
ρ = SHA-512(tag ‖ every request field ‖ Γ ‖ X ‖ X′) mod q, identical on every signer,

    Γ″ = ρ·Γ,  r = x(Γ″) mod q,  σ_i = h·k̃_i/ρ + r·(χ̃_i + e·k̃_i)/ρ,

so Σ σ_j = (h + r·(x + e))/(ρ·γ): an ECDSA signature under X′ = X + e·G with nonce point Γ″.
R is thus fixed only once the message and tweak are, which defeats the Groth-Shoup
related-key attack on pooled presignatures. The combiner checks each σ_j with
σ_j·Γ″ = (h + r·e)·Δ̃_j + r·S̃_j (CGGMP24's per-signer check, naming the culprit), sums,
normalises to low-S and verifies the result before anyone sees it.

A presignature is single use: two signatures from one reveal the key. The service marks it
consumed durably before σ_i leaves the node; this module only does the arithmetic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mpcnode.crypto import ecdsa
from mpcnode.crypto.bigint import RandomBytes
from mpcnode.crypto.encoding import decode_fields, encode_fields, encode_uint
from mpcnode.crypto.group import SECP256K1, Point
from mpcnode.crypto.security import SECURITY_128, SecurityLevel
from mpcnode.errors import InvalidInput, ProtocolAborted
from mpcnode.protocols.base import COORDINATOR, Outgoing
from mpcnode.protocols.cggmp.aux_info import AuxInfo
from mpcnode.protocols.cggmp.presign import Presignature, PresignaturePublic, _PresignRounds
from mpcnode.protocols.keys import KeyShare

CURVE = SECP256K1
_Q = CURVE.order
_RERANDOMIZE_TAG = b"mpc.v1.cggmp/presig-rerand/v1"
_PARTIAL_TAG = b"mpc.v1.cggmp-partial-signature"
DIGEST_SIZE = 32

SIGN_HASH = "sha256"
"""Pool signing: the nodes hash the message with SHA-256 themselves."""
DIGEST_KIND = "digest"
"""Interactive signing of a caller's digest (never from the pool)."""
HASH_KINDS = (SIGN_HASH, DIGEST_KIND)


def message_digest(message: bytes) -> bytes:
    """The digest pool signing signs: SHA-256 of the message, computed by each node."""
    return hashlib.sha256(message).digest()


@dataclass(frozen=True)
class SignRequest:
    """Everything a signature from one presignature is bound to (the same on every signer)."""

    key_id: str
    presignature_id: bytes
    request_id: bytes
    signers: tuple[int, ...]
    digest: bytes
    hash_kind: str
    tweak: int = 0
    """e: additive key tweak (a BIP-32 child key's offset; 0 signs with the root key)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "signers", tuple(self.signers))
        if len(self.digest) != DIGEST_SIZE:
            raise InvalidInput("the digest must be 32 bytes")
        if self.hash_kind not in HASH_KINDS:
            raise InvalidInput(f"unknown hash kind {self.hash_kind!r}")
        if not 0 <= self.tweak < _Q:
            raise InvalidInput("tweak out of range")
        if not self.presignature_id or not self.request_id:
            raise InvalidInput("presignature id and request id must not be empty")

    def encode(self) -> bytes:
        """Canonical encoding of the request (what `consumed_by` hashes)."""
        return encode_fields(
            [
                self.key_id.encode(),
                self.presignature_id,
                self.request_id,
                b"".join(encode_uint(p) for p in self.signers),
                self.digest,
                self.hash_kind.encode(),
                CURVE.encode_scalar(self.tweak),
            ]
        )

    def request_hash(self) -> bytes:
        return hashlib.sha256(b"mpc.v1.cggmp-sign-request" + self.encode()).digest()


def digest_request(
    key_id: str, eid: bytes, signers: Sequence[int], digest: bytes, tweak: int = 0
) -> SignRequest:
    """The request of an interactive digest signature: the session's eid is both ids.

    `tweak` is the child key's offset e (0: the root key), derived by the node from the path.
    """
    return SignRequest(key_id, eid, eid, tuple(signers), digest, DIGEST_KIND, tweak)


@dataclass(frozen=True)
class _Rerandomized:
    rho: int
    nonce_point: Point  # Γ″ = ρ·Γ
    r: int
    h: int
    tweaked_key: Point  # X′ = X + e·G


def _rerandomize(public: PresignaturePublic, request: SignRequest) -> _Rerandomized:
    if tuple(sorted(request.signers)) != public.signers:
        raise InvalidInput("the request's signers are not the presignature's signer set")
    tweaked = public.public_key + CURVE.base_mul(request.tweak)
    if tweaked.is_identity:
        raise InvalidInput("the tweaked key is the identity")
    digest = hashlib.sha512(
        encode_fields(
            [
                _RERANDOMIZE_TAG,
                CURVE.name.encode(),
                request.encode(),
                public.public_key.encode(),
                public.Gamma.encode(),
                tweaked.encode(),
            ]
        )
    ).digest()
    rho = int.from_bytes(digest, "big") % _Q
    if rho == 0:
        raise ProtocolAborted("re-randomiser is zero; the presignature is burnt")
    nonce_point = public.Gamma * rho
    x, _y = ecdsa.affine_coordinates(nonce_point)
    r = x % _Q
    if r == 0:
        raise ProtocolAborted("r = 0; the presignature is burnt")
    return _Rerandomized(rho, nonce_point, r, ecdsa.digest_scalar(request.digest), tweaked)


def partial_sign(presig: Presignature, request: SignRequest) -> int:
    """σ_i = (h·k̃_i + r·(χ̃_i + e·k̃_i))/ρ mod q."""
    rr = _rerandomize(presig.public, request)
    rho_inv = pow(rr.rho, -1, _Q)
    e = request.tweak
    return (rr.h * presig.k + rr.r * (presig.chi + e * presig.k)) * rho_inv % _Q


def encode_partial(sigma: int, public: PresignaturePublic) -> bytes:
    return encode_fields([_PARTIAL_TAG, CURVE.encode_scalar(sigma), public.encode()])


def decode_partial(data: bytes) -> tuple[int, PresignaturePublic]:
    """(σ_j, public presignature data) from a signer's partial-signature payload."""
    fields = decode_fields(data)
    if len(fields) != 3 or fields[0] != _PARTIAL_TAG:
        raise InvalidInput("malformed partial signature")
    return CURVE.decode_scalar(fields[1]), PresignaturePublic.decode(fields[2])


def combine(
    public: PresignaturePublic, request: SignRequest, partials: Mapping[int, int]
) -> ecdsa.EcdsaSignature:
    """The ECDSA signature from every signer's σ_j, each checked first (culprits named)."""
    if set(partials) != set(public.signers):
        raise InvalidInput("one partial signature per signer of the presignature is required")
    rr = _rerandomize(public, request)
    coefficient = (rr.h + rr.r * request.tweak) % _Q
    faults = []
    for j in public.signers:
        sigma = partials[j]
        delta, s_point = public.of(j)
        if not 0 <= sigma < _Q or (rr.nonce_point * sigma != delta * coefficient + s_point * rr.r):
            faults.append(j)
    if faults:
        raise ProtocolAborted(f"invalid partial signature from parties {faults}", faults)
    s = sum(partials.values()) % _Q
    if s == 0:
        raise ProtocolAborted("s = 0; the presignature is burnt")
    signature = ecdsa.signature_from_nonce(rr.nonce_point, s)
    if not ecdsa.verify(rr.tweaked_key, request.digest, signature):
        raise ProtocolAborted("the combined signature does not verify")
    return signature


class CggmpDigestSignSession(_PresignRounds[bytes]):
    """Interactive ECDSA over a caller's 32-byte digest: presigning with the digest bound into
    the execution id, then σ_i to the coordinator. Output: that payload (`decode_partial`).

    The service must put the digest into `eid` (`execution_id(..., message=digest)`): the
    presignature then cannot exist before the digest is fixed (ePrint 2021/1330 §1.1.2).
    `tweak` (keyword only) signs under the child key X + e·G; presigning stays on the root key.
    """

    protocol = "cggmp-sign-digest"

    def __init__(
        self,
        key_share: KeyShare,
        aux: AuxInfo,
        signers: Sequence[int],
        eid: bytes,
        digest: bytes,
        key_id: str,
        level: SecurityLevel = SECURITY_128,
        randomness: RandomBytes | None = None,
        *,
        tweak: int = 0,
    ) -> None:
        super().__init__(key_share, aux, signers, eid, level, randomness)
        self.request = digest_request(key_id, self.eid, self.signers, digest, tweak)

    def _presigned(self, presig: Presignature) -> list[Outgoing]:
        payload = encode_partial(partial_sign(presig, self.request), presig.public)
        self._finish(payload)
        return [Outgoing(5, COORDINATOR, payload)]
