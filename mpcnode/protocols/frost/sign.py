"""FROST signing (RFC 9591 §4-5): plain functions, then the sans-I/O session and aggregator.

Names follow the RFC: commit (round one), compute_binding_factors, compute_group_commitment,
compute_challenge, sign (here `sign_share`), verify_signature_share, aggregate.

The result is a plain RFC 8032 Ed25519 signature R ‖ z. Nonces are hedged (random bytes
hashed with the secret share), used for exactly one `sign_share` call and deleted by the
session before the share leaves it.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from mpcnode.crypto.group import ED25519, Group, Point, RandomBytes
from mpcnode.crypto.sharing import check_indices, lagrange_coefficient
from mpcnode.errors import InternalBug, InvalidInput, InvalidSignature, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, COORDINATOR, Incoming, Outgoing, Session
from mpcnode.protocols.frost.ciphersuite import (
    ED25519_SHA512,
    NONCE_RANDOMNESS_SIZE,
    Ciphersuite,
    suite_for,
)
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage

# --------------------------------------------------------------------------------------------
# Round one: nonces and commitments


@dataclass(repr=False)
class SigningNonces:
    """A signer's secret nonce pair (d_i, e_i). Use once, then drop."""

    hiding: int
    binding: int

    def __repr__(self) -> str:
        return "SigningNonces(<redacted>)"


@dataclass(frozen=True)
class SigningCommitment:
    """Public commitment (D_i, E_i) = (d_i·G, e_i·G) of signer `party`."""

    party: int
    hiding: Point
    binding: Point

    def encode(self) -> bytes:
        """SerializeElement(D) ‖ SerializeElement(E) (64 bytes for Ed25519)."""
        return self.hiding.encode() + self.binding.encode()

    @classmethod
    def decode(cls, party: int, data: bytes, group: Group = ED25519) -> SigningCommitment:
        """Parse D ‖ E and validate both points; `party` comes from the authenticated sender."""
        size = group.point_size
        if len(data) != 2 * size:
            raise InvalidInput("signing commitment has the wrong length")
        return cls(party, group.decode_point(data[:size]), group.decode_point(data[size:]))


def commit(
    secret_share: int,
    hiding_randomness: bytes | None = None,
    binding_randomness: bytes | None = None,
    *,
    party: int,
    suite: Ciphersuite = ED25519_SHA512,
) -> tuple[SigningNonces, SigningCommitment]:
    """RFC 9591 §5.1 commit. Randomness is injectable only so test vectors can be reproduced."""
    if hiding_randomness is None:
        hiding_randomness = secrets.token_bytes(NONCE_RANDOMNESS_SIZE)
    if binding_randomness is None:
        binding_randomness = secrets.token_bytes(NONCE_RANDOMNESS_SIZE)
    d = suite.nonce_generate(secret_share, hiding_randomness)
    e = suite.nonce_generate(secret_share, binding_randomness)
    group = suite.group
    return SigningNonces(d, e), SigningCommitment(party, group.base_mul(d), group.base_mul(e))


# --------------------------------------------------------------------------------------------
# Helpers shared by signers and the aggregator


def _sorted_commitments(commitments: Iterable[SigningCommitment]) -> list[SigningCommitment]:
    """Commitments sorted by identifier; identifiers must be non-zero and distinct."""
    ordered = sorted(commitments, key=lambda c: c.party)
    if not ordered:
        raise InvalidInput("empty commitment list")
    group = ordered[0].hiding.group
    if any(c.hiding.group is not group or c.binding.group is not group for c in ordered):
        raise InvalidInput("commitments from different groups")
    check_indices([c.party for c in ordered], group.order)
    if any(c.party <= 0 for c in ordered):
        raise InvalidInput("identifiers must be positive")
    return ordered


def _check_signer_set(public: PublicKeyPackage, signers: Sequence[int]) -> None:
    check_indices(signers, public.group.order)
    if len(signers) < public.threshold:
        raise InvalidInput(f"need at least {public.threshold} signers, got {len(signers)}")
    outsiders = sorted(set(signers) - set(public.parties))
    if outsiders:
        raise InvalidInput(f"parties {outsiders} hold no share of this key")


def encode_group_commitment_list(commitments: Iterable[SigningCommitment]) -> bytes:
    """RFC 9591 §4.3: SerializeScalar(i) ‖ D_i ‖ E_i for every signer, sorted by i."""
    ordered = _sorted_commitments(commitments)
    group = ordered[0].hiding.group
    return b"".join(group.encode_scalar(c.party) + c.encode() for c in ordered)


def binding_factor_inputs(
    public_key: Point, commitments: Iterable[SigningCommitment], message: bytes
) -> dict[int, bytes]:
    """rho_input_i = SerializeElement(PK) ‖ H4(msg) ‖ H5(encoded list) ‖ SerializeScalar(i)."""
    suite = suite_for(public_key.group.name)
    ordered = _sorted_commitments(commitments)
    prefix = (
        public_key.encode() + suite.H4(message) + suite.H5(encode_group_commitment_list(ordered))
    )
    return {c.party: prefix + suite.serialize_scalar(c.party) for c in ordered}


def compute_binding_factors(
    public_key: Point, commitments: Iterable[SigningCommitment], message: bytes
) -> dict[int, int]:
    """RFC 9591 §4.4: rho_i = H1(rho_input_i) for every signer i."""
    suite = suite_for(public_key.group.name)
    inputs = binding_factor_inputs(public_key, commitments, message)
    return {party: suite.H1(data) for party, data in inputs.items()}


def compute_group_commitment(
    commitments: Iterable[SigningCommitment], binding_factors: Mapping[int, int]
) -> Point:
    """RFC 9591 §4.5: R = sum_i (D_i + rho_i·E_i)."""
    ordered = _sorted_commitments(commitments)
    group = ordered[0].hiding.group
    try:
        return group.sum_points(c.hiding + c.binding * binding_factors[c.party] for c in ordered)
    except KeyError as exc:
        raise InvalidInput(f"no binding factor for party {exc.args[0]}") from None


def compute_challenge(group_commitment: Point, public_key: Point, message: bytes) -> int:
    """RFC 9591 §4.6: c = H2(SerializeElement(R) ‖ SerializeElement(PK) ‖ msg)."""
    if group_commitment.is_identity:
        raise InvalidInput("group commitment is the identity")
    suite = suite_for(public_key.group.name)
    return suite.H2(group_commitment.encode() + public_key.encode() + message)


class _SigningContext:
    """rho_i, R, c and lambda_i for one (key, commitment list, message); computed once."""

    def __init__(
        self, public_key: Point, commitments: Iterable[SigningCommitment], message: bytes
    ) -> None:
        self.group = public_key.group
        self.public_key = public_key
        self.commitments = {c.party: c for c in _sorted_commitments(commitments)}
        self.signers = list(self.commitments)
        self.binding_factors = compute_binding_factors(
            public_key, self.commitments.values(), message
        )
        self.group_commitment = compute_group_commitment(
            self.commitments.values(), self.binding_factors
        )
        self.challenge = compute_challenge(self.group_commitment, public_key, message)

    def lagrange(self, party: int) -> int:
        """lambda_i over the signer set (RFC 9591 §4.2 derive_interpolating_value)."""
        return lagrange_coefficient(self.group.order, party, self.signers)

    def share_is_valid(self, party: int, share: int, verifying_share: Point) -> bool:
        """z_i·G == D_i + rho_i·E_i + (c·lambda_i)·Y_i (RFC 9591 §5.4)."""
        c = self.commitments[party]
        order = self.group.order
        expected = (
            c.hiding
            + c.binding * self.binding_factors[party]
            + verifying_share * (self.challenge * self.lagrange(party) % order)
        )
        return self.group.base_mul(share) == expected

    def signature_is_valid(self, z: int) -> bool:
        """Cofactorless RFC 8032 check z·B == R + c·PK."""
        return self.group.base_mul(z) == self.group_commitment + self.public_key * self.challenge


# --------------------------------------------------------------------------------------------
# Round two, share verification, aggregation


def sign_share(
    key_share: KeyShare,
    nonces: SigningNonces,
    commitments: Sequence[SigningCommitment],
    message: bytes,
) -> int:
    """RFC 9591 §5.2 sign: z_i = d_i + e_i·rho_i + lambda_i·s_i·c.

    Checks that identifiers are unique, that there are at least t signers holding shares of
    this key, and that the signer's own commitment is in the list and matches its nonces.
    The caller must discard `nonces` afterwards (`FrostSignSession` does).
    """
    public = key_share.public
    group = key_share.group
    ordered = _sorted_commitments(commitments)
    _check_signer_set(public, [c.party for c in ordered])
    own = next((c for c in ordered if c.party == key_share.party), None)
    if own is None:
        raise InvalidInput("own commitment missing from the commitment list")
    if own.hiding != group.base_mul(nonces.hiding) or own.binding != group.base_mul(nonces.binding):
        raise InvalidInput("own commitment in the list does not match the nonces")
    ctx = _SigningContext(public.public_key, ordered, message)
    i = key_share.party
    return (
        nonces.hiding
        + nonces.binding * ctx.binding_factors[i]
        + ctx.lagrange(i) * key_share.secret_share * ctx.challenge
    ) % group.order


def verify_signature_share(
    party: int,
    verifying_share: Point,
    share: int,
    commitments: Sequence[SigningCommitment],
    public_key: Point,
    message: bytes,
) -> None:
    """RFC 9591 §5.4: raise `InvalidSignature` unless z_i is party's valid signature share."""
    if not 0 <= share < public_key.group.order:
        raise InvalidSignature(f"signature share of party {party} is not a canonical scalar")
    ctx = _SigningContext(public_key, commitments, message)
    if party not in ctx.commitments:
        raise InvalidInput(f"party {party} has no commitment in the list")
    if not ctx.share_is_valid(party, share, verifying_share):
        raise InvalidSignature(f"invalid signature share from party {party}")


def aggregate(
    public: PublicKeyPackage,
    commitments: Sequence[SigningCommitment],
    shares: Mapping[int, int],
    message: bytes,
) -> bytes:
    """RFC 9591 §5.3 aggregate, verifying the result; names the bad signers on failure.

    `shares` maps the authenticated sender to its z_i. The aggregate signature is checked
    first (one check instead of one per signer); only if it fails is every share checked,
    and the signers whose shares fail are reported in `ProtocolAborted.culprits`.
    """
    ordered = _sorted_commitments(commitments)
    signers = [c.party for c in ordered]
    _check_signer_set(public, signers)
    extra = sorted(set(shares) - set(signers))
    if extra:
        raise ProtocolAborted("signature share from a party outside the signer set", extra)
    missing = [p for p in signers if p not in shares]
    if missing:
        raise ProtocolAborted(f"missing signature shares from parties {missing}")
    group = public.group
    non_canonical = [p for p in signers if not 0 <= shares[p] < group.order]
    if non_canonical:
        raise ProtocolAborted("signature share is not a canonical scalar", non_canonical)
    ctx = _SigningContext(public.public_key, ordered, message)
    z = sum(shares[p] for p in signers) % group.order
    if ctx.signature_is_valid(z):
        return ctx.group_commitment.encode() + group.encode_scalar(z)
    culprits = [
        p for p in signers if not ctx.share_is_valid(p, shares[p], public.verifying_share(p))
    ]
    if culprits:
        raise ProtocolAborted("invalid signature share", culprits)
    raise InternalBug("aggregate signature invalid although every share verified")


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Verify an Ed25519 signature R ‖ z (cofactorless, RFC 8032 §5.1.7); raise `InvalidSignature`.

    Stricter than RFC 8032 in one way: R and the public key must be prime-order points.
    """
    group = ED25519
    size = group.point_size
    if len(signature) != size + group.scalar_size:
        raise InvalidSignature("signature has the wrong length")
    try:
        pk = group.decode_point(public_key)
        r = group.decode_point(signature[:size])
        z = group.decode_scalar(signature[size:])
    except InvalidInput as exc:
        raise InvalidSignature(f"malformed signature or public key: {exc}") from None
    c = ED25519_SHA512.H2(r.encode() + pk.encode() + message)
    if group.base_mul(z) != r + pk * c:
        raise InvalidSignature("signature does not verify")


# --------------------------------------------------------------------------------------------
# Sans-I/O session (one signer) and aggregator (coordinator)


class FrostSignSession(Session[bytes]):
    """One signer's FROST signing session over `message`.

    Round 1: broadcast the commitment D_i ‖ E_i. Then, on every other signer's commitment,
    compute z_i, delete the nonces and send SerializeScalar(z_i) to the coordinator; the
    session's output is that encoded share. The node signs the message it was started with,
    never one chosen later.
    """

    protocol = "frost-sign"

    def __init__(
        self,
        key_share: KeyShare,
        signers: Sequence[int],
        message: bytes,
        eid: bytes,
        randomness: RandomBytes | None = None,
    ) -> None:
        super().__init__()
        self._suite = suite_for(key_share.public.scheme)
        ordered = tuple(sorted(signers))
        _check_signer_set(key_share.public, ordered)
        if key_share.party not in ordered:
            raise InvalidInput("own party is not among the signers")
        self._key = key_share
        self.signers = ordered
        self.message = bytes(message)
        self.eid = bytes(eid)
        self._randomness = randomness
        self._nonces: SigningNonces | None = None
        self.commitment: SigningCommitment | None = None

    @property
    def party(self) -> int:
        return self._key.party

    def _random(self) -> bytes:
        if self._randomness is None:
            return secrets.token_bytes(NONCE_RANDOMNESS_SIZE)
        data = self._randomness(NONCE_RANDOMNESS_SIZE)
        if len(data) != NONCE_RANDOMNESS_SIZE:
            raise InvalidInput("nonce randomness source must return 32 bytes")
        return data

    def _start(self) -> list[Outgoing]:
        nonces, commitment = commit(
            self._key.secret_share,
            self._random(),
            self._random(),
            party=self.party,
            suite=self._suite,
        )
        self._nonces = nonces
        self.commitment = commitment
        return [Outgoing(1, BROADCAST, commitment.encode())]

    def _receive(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        # Whatever happens below, these nonces are never used again.
        nonces, self._nonces = self._nonces, None
        if nonces is None or self.commitment is None:
            raise InternalBug("signing nonces already used")
        stray = sorted({m.sender for m in messages if not m.broadcast})
        if stray:
            raise ProtocolAborted("unexpected point-to-point message", stray)
        others = [p for p in self.signers if p != self.party]
        payloads = self.by_sender(messages, others, broadcast=True)
        commitments = [self.commitment]
        culprits = []
        for sender, payload in payloads.items():
            try:
                commitments.append(SigningCommitment.decode(sender, payload, self._suite.group))
            except InvalidInput:
                culprits.append(sender)
        if culprits:
            raise ProtocolAborted("invalid signing commitment", culprits)
        try:
            z = sign_share(self._key, nonces, commitments, self.message)
        except InvalidInput as exc:
            raise ProtocolAborted(f"cannot sign: {exc}") from None
        share = self._suite.serialize_scalar(z)
        self._finish(share)
        return [Outgoing(2, COORDINATOR, share)]

    def __repr__(self) -> str:
        return (
            f"<FrostSignSession party={self.party} signers={list(self.signers)} "
            f"round={self.round} done={self.done}>"
        )


class FrostAggregator:
    """The coordinator's side of one signing session; handles public data only.

    Feed it every signer's round-1 commitment and round-2 share (sender from the
    authenticated envelope), then call `signature()`.
    """

    def __init__(self, public: PublicKeyPackage, signers: Sequence[int], message: bytes) -> None:
        self._suite = suite_for(public.scheme)
        ordered = tuple(sorted(signers))
        _check_signer_set(public, ordered)
        self.public = public
        self.signers = ordered
        self.message = bytes(message)
        self._commitment_payloads: dict[int, bytes] = {}
        self._commitments: dict[int, SigningCommitment] = {}
        self._share_payloads: dict[int, bytes] = {}
        self._shares: dict[int, int] = {}

    def _accept(self, party: int, payload: bytes, seen: dict[int, bytes]) -> bool:
        """False for an exact duplicate; raises for an outsider or a conflicting second payload."""
        if party not in self.signers:
            raise ProtocolAborted("message from a party outside the signer set", [party])
        if party in seen:
            if seen[party] == payload:
                return False
            raise ProtocolAborted("two different messages from one party", [party])
        return True

    def add_commitment(self, party: int, payload: bytes) -> None:
        if not self._accept(party, payload, self._commitment_payloads):
            return
        try:
            commitment = SigningCommitment.decode(party, payload, self._suite.group)
        except InvalidInput:
            raise ProtocolAborted("invalid signing commitment", [party]) from None
        self._commitment_payloads[party] = bytes(payload)
        self._commitments[party] = commitment

    def add_share(self, party: int, payload: bytes) -> None:
        if not self._accept(party, payload, self._share_payloads):
            return
        try:
            share = self._suite.group.decode_scalar(payload)
        except InvalidInput:
            raise ProtocolAborted("signature share is not a canonical scalar", [party]) from None
        self._share_payloads[party] = bytes(payload)
        self._shares[party] = share

    @property
    def commitments(self) -> tuple[SigningCommitment, ...]:
        return tuple(self._commitments[p] for p in self.signers if p in self._commitments)

    def missing_commitments(self) -> list[int]:
        return [p for p in self.signers if p not in self._commitments]

    def missing_shares(self) -> list[int]:
        return [p for p in self.signers if p not in self._shares]

    def signature(self) -> bytes:
        """The 64-byte Ed25519 signature; `ProtocolAborted` with culprits if a share is bad."""
        missing = self.missing_commitments()
        if missing:
            raise ProtocolAborted(f"missing signing commitments from parties {missing}")
        missing = self.missing_shares()
        if missing:
            raise ProtocolAborted(f"missing signature shares from parties {missing}")
        return aggregate(self.public, self.commitments, self._shares, self.message)

    def __repr__(self) -> str:
        return f"<FrostAggregator signers={list(self.signers)}>"
