"""Key resharing by Lagrange-weighted redistribution (Desmedt-Jajodia with Feldman checks, as in
Wong-Wang-Wing and tss-lib; "description B" of the LSS notes, shared/notes/lss-bip32.md §1.4-1.7).

The key s moves from the old holders to a new committee N' with threshold t' without ever
being reconstructed; the public key, the chain code and so every child key stay the same.
A qualified subset S of the old holders (exactly t_old of them, chosen by the coordinator)
deals: dealer i samples f_i of degree t'-1 with f_i(0) = λ_i·s_i, λ_i the Lagrange coefficient
of i in S at 0, so Σ_i f_i(0) = s and s'_j = Σ_i f_i(j) is a t'-of-|N'| Shamir sharing of s.

Session parties are S ∪ N' (a party can be a dealer, a new holder or both). Wire rounds of
`ReshareSession` (execution id `eid`, see `reshare_execution_id`):

1. every dealer i broadcasts C_i = (a_i0·G, ..., a_i,t'-1·G) and sends f_i(j) privately to each
   new holder j != i.
2. every party checks each C_i: exactly t' entries (the "threshold raising" fix), valid points,
   C_i0 == λ_i·Y_i with Y_i dealer i's old verifying share (else dealer i is named), and
   Σ_i C_i0 == PK. Every new holder broadcasts the echo SHA-256(eid, C_i for i in S).
3. every party checks the echoes it received (differing: abort with no culprit, the relay may
   have shown different broadcasts to different parties). A new holder j checks each f_i(j)
   against C_i (else dealer i is named), sets s'_j = Σ_i f_i(j), builds the new package (same
   PK and chain code, threshold t', parties N', Y'_k from Σ_i C_i, generation old+1), exposes it
   as `pending_share` (to be stored durably before sending) and broadcasts its confirmation
   digest `new_public.confirmation_digest(confirmation_eid)`. `confirmation_eid` is the
   execution id a key record is checked against (the service passes the DKG formula
   `execution_id("reshare", sid, key_id, N', t')`, so a record of a reshared generation
   verifies from its own fields); the echo of round 2 already bound the full setup. A dealer
   that is not a new holder computes the same package from the public
   commitments.
4. on every confirmation equal to its own, a new holder outputs its new `KeyShare`; a dealer
   that is not a new holder outputs None (differing confirmations name the sender).

Pure dealers send nothing after round 1 but stay to the end as witnesses of the echoes and
confirmations, so every party of the session finishes in the same round (what the lock-step
driver expects) and a dealer learns whether the new generation was confirmed.

Resharing keeps s: old shares stay usable until erased. Certifying the new generation and
erasing the old shares is the caller's job (issue 6, "Generations").
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from mpcnode.crypto.encoding import decode_fields, encode_fields, encode_uint
from mpcnode.crypto.group import Point, RandomBytes
from mpcnode.crypto.sharing import (
    Polynomial,
    check_indices,
    lagrange_coefficient,
    verify_share,
)
from mpcnode.errors import InternalBug, InvalidInput, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, Incoming, Outgoing, Session, echo_digest, execution_id
from mpcnode.protocols.frost.dkg import derive_public_shares
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage

PROTOCOL = "reshare"
_ECHO_TAG = b"mpc.v1.reshare.echo"
_SETUP_TAG = b"mpc.v1.reshare.setup"
_DIGEST_SIZE = 32


def reshare_execution_id(
    session_id: bytes,
    key_id: str,
    old_public: PublicKeyPackage,
    dealers: Sequence[int],
    new_parties: Sequence[int],
    new_threshold: int,
    owner: bytes = b"",
) -> bytes:
    """The eid of one reshare: binds the new committee and threshold (as `execution_id` does)
    plus the dealer set and the whole old public package (so its generation), and the key's
    owner (`base.owner_binding`; empty: no owner), so parties told different owners diverge."""
    fields = [
        _SETUP_TAG,
        b"".join(encode_uint(p) for p in sorted(dealers)),
        old_public.encode(),
    ]
    if owner:
        fields.append(owner)
    setup = encode_fields(fields)
    return execution_id(PROTOCOL, session_id, key_id, sorted(new_parties), new_threshold, setup)


class ReshareSession(Session[KeyShare | None]):
    """One party's run of the reshare; output is its new `KeyShare`, or None for a pure dealer."""

    protocol = PROTOCOL

    def __init__(
        self,
        party: int,
        old_public: PublicKeyPackage,
        dealers: Sequence[int],
        new_parties: Sequence[int],
        new_threshold: int,
        eid: bytes,
        old_share: KeyShare | None = None,
        randomness: RandomBytes | None = None,
        confirmation_eid: bytes | None = None,
    ) -> None:
        super().__init__()
        self._rng: RandomBytes = randomness if randomness is not None else secrets.token_bytes
        group = old_public.group
        dealer_set = tuple(sorted(dealers))
        holder_set = tuple(sorted(new_parties))
        for name, indices in (("dealer", dealer_set), ("new party", holder_set)):
            if any(not isinstance(p, int) or p <= 0 for p in indices):
                raise InvalidInput(f"{name} indices must be positive integers")
            check_indices(indices, group.order)
        if len(dealer_set) != old_public.threshold:
            raise InvalidInput(
                f"exactly {old_public.threshold} dealers are required, got {len(dealer_set)}"
            )
        unknown = [p for p in dealer_set if p not in old_public.parties]
        if unknown:
            raise InvalidInput(f"dealers {unknown} hold no share of the old key")
        if not 1 <= new_threshold <= len(holder_set):
            raise InvalidInput("new threshold must be between 1 and the number of new parties")
        if not eid:
            raise InvalidInput("execution id must not be empty")
        self.parties = tuple(sorted(set(dealer_set) | set(holder_set)))
        if party not in self.parties:
            raise InvalidInput("own party is neither a dealer nor a new party")
        self.is_dealer = party in dealer_set
        self.is_holder = party in holder_set
        if self.is_dealer:
            if old_share is None:
                raise InvalidInput("a dealer needs its old key share")
            if old_share.party != party or old_share.public != old_public:
                raise InvalidInput("old key share does not belong to this party and key")
        elif old_share is not None:
            raise InvalidInput("only a dealer takes an old key share")
        old_public.check_consistency()
        self.party = party
        self.old_public = old_public
        self.dealers = dealer_set
        self.new_parties = holder_set
        self.new_threshold = new_threshold
        self.eid = bytes(eid)
        self.confirmation_eid = (
            bytes(confirmation_eid) if confirmation_eid is not None else self.eid
        )
        self._finished = False
        # Secrets, dropped as soon as they have been used.
        self._old_share: KeyShare | None = old_share
        self._shares: dict[int, int] = {}  # dealer -> f_dealer(self.party)
        # Public transcript.
        self._round1: dict[int, bytes] = {}
        self._vss: dict[int, tuple[Point, ...]] = {}
        self._echo = b""
        self._new_public: PublicKeyPackage | None = None
        self._pending: KeyShare | None = None
        self._confirmation = b""

    # Output None is a valid result here, so "done" cannot be "output is not None".
    @property
    def done(self) -> bool:
        return self._finished

    @property
    def output(self) -> KeyShare | None:
        if not self._finished:
            raise InternalBug("session has no output yet")
        return self._output

    def _finish(self, output: KeyShare | None) -> None:
        self._output = output
        self._finished = True

    @property
    def pending_share(self) -> KeyShare | None:
        """A new holder's new key share once round 3 has been produced (store it before sending)."""
        return self._pending

    @property
    def new_public(self) -> PublicKeyPackage | None:
        """The new public key package, once built (after round 2)."""
        return self._new_public

    def lagrange(self, dealer: int) -> int:
        """λ_i of dealer i in S at 0."""
        return lagrange_coefficient(self.old_public.group.order, dealer, self.dealers, 0)

    # -- round 1 -----------------------------------------------------------------------------

    def _start(self) -> list[Outgoing]:
        if not self.is_dealer:
            return []
        old, self._old_share = self._old_share, None
        if old is None:
            raise InternalBug("old share already used")
        group = self.old_public.group
        constant = self.lagrange(self.party) * old.secret_share % group.order
        poly = Polynomial.random(group, self.new_threshold - 1, constant, rng=self._rng)
        del constant, old
        vss = poly.commit()
        payload = encode_fields([c.encode() for c in vss])
        self._round1[self.party] = payload
        self._vss[self.party] = vss
        out = [Outgoing(1, BROADCAST, payload)]
        for j in self.new_parties:
            if j == self.party:
                self._shares[self.party] = poly(j)
            else:
                out.append(Outgoing(1, j, group.encode_scalar(poly(j))))
        return out

    def _check_commitment(self, dealer: int, payload: bytes) -> str | None:
        """Validate one dealer's commitment vector and record it; the fault, or None if valid."""
        group = self.old_public.group
        try:
            fields = decode_fields(payload)
        except InvalidInput:
            return "malformed commitment"
        if len(fields) != self.new_threshold:
            return f"{len(fields)} commitments instead of {self.new_threshold}"
        try:
            vss = tuple(group.decode_point(c) for c in fields)
        except InvalidInput:
            return "invalid point in commitment"
        if vss[0] != self.old_public.verifying_share(dealer) * self.lagrange(dealer):
            return "constant term is not lambda_i times its old verifying share"
        self._round1[dealer] = payload
        self._vss[dealer] = vss
        return None

    # -- rounds 2..4 -------------------------------------------------------------------------

    def _receive(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        if self.round == 1:
            return self._after_round1(messages)
        if self.round == 2:
            return self._after_round2(messages)
        if self.round == 3:
            return self._after_round3(messages)
        raise InternalBug(f"unexpected round {self.round}")

    def _other_dealers(self) -> list[int]:
        return [p for p in self.dealers if p != self.party]

    def _other_holders(self) -> list[int]:
        return [p for p in self.new_parties if p != self.party]

    def _after_round1(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        others = self._other_dealers()
        if self.is_holder:
            commitments = self.by_sender(messages, others, broadcast=True)
            shares = self.by_sender(messages, others, broadcast=False)
        else:
            commitments = self.only(messages, others, broadcast=True)
            shares = {}
        faults = {}
        for dealer, payload in commitments.items():
            fault = self._check_commitment(dealer, payload)
            if fault is not None:
                faults[dealer] = fault
        self.raise_faults(faults)
        group = self.old_public.group
        total = group.sum_points(self._vss[i][0] for i in self.dealers)
        if total != self.old_public.public_key:
            # Unreachable with a consistent old package (checked at setup): no one to blame.
            raise ProtocolAborted("dealt constant terms do not sum to the public key")
        for dealer, payload in shares.items():
            try:
                self._shares[dealer] = group.decode_scalar(payload)
            except InvalidInput:
                faults[dealer] = "malformed secret share"
        self.raise_faults(faults)
        self._echo = echo_digest(_ECHO_TAG, self.eid, self._round1, self.dealers)
        return [Outgoing(2, BROADCAST, self._echo)] if self.is_holder else []

    def _after_round2(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        echoes = self.only(messages, self._other_holders(), broadcast=True)
        faults = {p: "malformed echo" for p, e in echoes.items() if len(e) != _DIGEST_SIZE}
        self.raise_faults(faults)
        if any(e != self._echo for e in echoes.values()):
            # The relay may have shown different broadcasts to different parties: no culprit.
            raise ProtocolAborted("round-1 broadcasts differ between parties")
        group = self.old_public.group
        if self.is_holder:
            for dealer in self.dealers:
                if not verify_share(self._vss[dealer], self.party, self._shares[dealer]):
                    faults[dealer] = "secret share does not match its commitments"
            self.raise_faults(faults)
        public_key, verifying = derive_public_shares(self._vss, self.new_parties)
        if public_key != self.old_public.public_key:
            raise InternalBug("reshared public key differs although every constant term checked")
        public = PublicKeyPackage(
            scheme=self.old_public.scheme,
            threshold=self.new_threshold,
            parties=self.new_parties,
            public_key=public_key,
            verifying_shares=tuple(verifying[p] for p in self.new_parties),
            chain_code=self.old_public.chain_code,
            generation=self.old_public.generation + 1,
        )
        self._new_public = public
        self._confirmation = public.confirmation_digest(self.confirmation_eid)
        if not self.is_holder:
            return []
        share = sum(self._shares.values()) % group.order
        self._shares = {}
        try:
            self._pending = KeyShare(public, self.party, share)
        except InvalidInput as exc:  # cannot happen after the share checks
            raise InternalBug(f"reshare produced an inconsistent share: {exc}") from None
        return [Outgoing(3, BROADCAST, self._confirmation)]

    def _after_round3(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        confirmations = self.only(messages, self._other_holders(), broadcast=True)
        differing = [p for p, c in confirmations.items() if c != self._confirmation]
        if differing:
            raise ProtocolAborted("key confirmation differs", differing)
        if self.is_holder and self._pending is None:
            raise InternalBug("no pending share in round 3")
        self._finish(self._pending)
        return []

    def __repr__(self) -> str:
        return (
            f"<ReshareSession party={self.party} dealers={list(self.dealers)} "
            f"new_parties={list(self.new_parties)} new_threshold={self.new_threshold} "
            f"round={self.round} done={self.done}>"
        )
