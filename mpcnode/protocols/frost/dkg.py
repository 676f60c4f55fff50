"""FROST key generation: Pedersen DKG with a Schnorr proof of knowledge (RFC 9591 App. C, ZF frost).

Wire rounds of `FrostDkgSession` (n parties, threshold t, execution id `eid`):

1. broadcast  C_i = (a_i0·G, ..., a_i,t-1·G), PoK (R_i, mu_i) of a_i0, and a commitment h_i to
   a fresh 32-byte chain-code contribution cc_i.
2. after checking every other package (exactly t commitments - the "threshold raising" fix -,
   valid points, valid PoK): broadcast an echo SHA-256(eid, all n round-1 packages) and send
   f_i(j) privately to each j.
3. after checking echoes (equal to ours, else the broadcast was not consistent) and each
   received f_j(i) against C_j: s_i = sum_j f_j(i), PK = sum_j C_j0, Y_k for every k;
   broadcast cc_i.
4. after checking each cc_j against h_j: chain code = SHA-256(eid, cc_1..cc_n); the key
   share is complete (`pending_share`, to be stored before sending); broadcast the
   confirmation digest of the public key package.
5. on every confirmation equal to ours, the output is the `KeyShare`.

The PoK challenge is c = HDKG(context ‖ SerializeScalar(i) ‖ C_i0 ‖ R_i) with the context set
to the eid; with an empty context it is ZF frost's and reproduces its vectors.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence

from mpcnode.crypto.encoding import decode_fields, encode_fields, encode_uint
from mpcnode.crypto.group import Point, RandomBytes
from mpcnode.crypto.sharing import Polynomial, check_indices, evaluate_commitment, verify_share
from mpcnode.errors import InternalBug, InvalidInput, InvalidSignature, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, Incoming, Outgoing, Session, echo_digest
from mpcnode.protocols.frost.ciphersuite import ED25519_SHA512, Ciphersuite, suite_for
from mpcnode.protocols.keys import CHAIN_CODE_SIZE, KeyShare, PublicKeyPackage

_CHAINCODE_TAG = b"mpc.v1.frost-dkg.chaincode"
_CHAINCODE_FINAL_TAG = b"mpc.v1.frost-dkg.chaincode-final"
_ECHO_TAG = b"mpc.v1.frost-dkg.echo"
_DIGEST_SIZE = 32


# --------------------------------------------------------------------------------------------
# Standalone pieces (also checked against ZF frost's DKG vectors)


def pok_challenge(
    context: bytes,
    party: int,
    constant_commitment: Point,
    nonce_commitment: Point,
    suite: Ciphersuite = ED25519_SHA512,
) -> int:
    """c = HDKG(context ‖ SerializeScalar(i) ‖ C_i0 ‖ R_i)."""
    return suite.HDKG(
        context
        + suite.serialize_scalar(party)
        + constant_commitment.encode()
        + nonce_commitment.encode()
    )


def prove_pok(
    context: bytes,
    party: int,
    secret: int,
    suite: Ciphersuite = ED25519_SHA512,
    rng: RandomBytes | None = None,
) -> tuple[Point, int]:
    """Schnorr proof of knowledge of a_i0: (R_i = k·G, mu_i = k + a_i0·c)."""
    group = suite.group
    k = group.random_scalar(rng)
    nonce_commitment = group.base_mul(k)
    c = pok_challenge(context, party, group.base_mul(secret), nonce_commitment, suite)
    return nonce_commitment, (k + secret * c) % group.order


def verify_pok(
    context: bytes,
    party: int,
    constant_commitment: Point,
    nonce_commitment: Point,
    response: int,
    suite: Ciphersuite = ED25519_SHA512,
) -> None:
    """Raise `InvalidSignature` unless R_i == mu_i·G - c·C_i0."""
    group = suite.group
    if not 0 <= response < group.order:
        raise InvalidSignature(f"proof of knowledge of party {party} is malformed")
    c = pok_challenge(context, party, constant_commitment, nonce_commitment, suite)
    if nonce_commitment != group.base_mul(response) - constant_commitment * c:
        raise InvalidSignature(f"invalid proof of knowledge from party {party}")


def derive_public_shares(
    commitments: Mapping[int, Sequence[Point]], parties: Sequence[int]
) -> tuple[Point, dict[int, Point]]:
    """PK = sum_j C_j0 and Y_k = sum_j sum_l C_jl·k^l for every k in `parties`.

    The commitment vectors are summed first, so this costs t multiplications per party.
    """
    vectors = list(commitments.values())
    if not vectors or any(len(v) != len(vectors[0]) for v in vectors) or not vectors[0]:
        raise InvalidInput("commitment vectors must be non-empty and of equal length")
    group = vectors[0][0].group
    summed = [group.sum_points(v[k] for v in vectors) for k in range(len(vectors[0]))]
    return summed[0], {p: evaluate_commitment(summed, p) for p in parties}


def chain_code_commitment(eid: bytes, party: int, contribution: bytes) -> bytes:
    """h_i = SHA-256(tag, eid, i, cc_i): binds party i to its chain-code contribution."""
    return hashlib.sha256(
        encode_fields([_CHAINCODE_TAG, eid, encode_uint(party), contribution])
    ).digest()


# --------------------------------------------------------------------------------------------
# Session


class FrostDkgSession(Session[KeyShare]):
    """One party's run of the FROST DKG; output is its `KeyShare`."""

    protocol = "frost-dkg"

    def __init__(
        self,
        party: int,
        parties: Sequence[int],
        threshold: int,
        eid: bytes,
        scheme: str = "ed25519",
        generation: int = 0,
        randomness: RandomBytes | None = None,
    ) -> None:
        super().__init__()
        self._rng: RandomBytes = randomness if randomness is not None else secrets.token_bytes
        self._suite = suite_for(scheme)
        group = self._suite.group
        ordered = tuple(sorted(parties))
        if any(p <= 0 for p in ordered):
            raise InvalidInput("party indices must be positive")
        check_indices(ordered, group.order)
        if party not in ordered:
            raise InvalidInput("own party is not among the parties")
        if not 1 <= threshold <= len(ordered):
            raise InvalidInput("threshold must be between 1 and the number of parties")
        if not eid:
            raise InvalidInput("execution id must not be empty")
        if generation < 0:
            raise InvalidInput("generation must be non-negative")
        self.party = party
        self.parties = ordered
        self.threshold = threshold
        self.eid = bytes(eid)
        self.scheme = scheme
        self.generation = generation
        self._others = [p for p in ordered if p != party]
        # Secrets, dropped as soon as they have been used.
        self._poly: Polynomial | None = None
        self._own_share: int | None = None
        self._chain_contribution: bytes | None = None
        # Public transcript.
        self._round1: dict[int, bytes] = {}
        self._vss: dict[int, tuple[Point, ...]] = {}
        self._cc_commitments: dict[int, bytes] = {}
        self._echo = b""
        self._public_key: Point | None = None
        self._verifying: dict[int, Point] = {}
        self._secret_share: int | None = None
        self._pending: KeyShare | None = None
        self._confirmation = b""

    @property
    def pending_share(self) -> KeyShare | None:
        """The finished key share once round 4 has been produced (store it before sending)."""
        return self._pending

    # -- round 1 -----------------------------------------------------------------------------

    def _start(self) -> list[Outgoing]:
        group = self._suite.group
        self._poly = Polynomial.random(group, self.threshold - 1, rng=self._rng)
        vss = self._poly.commit()
        nonce_commitment, response = prove_pok(
            self.eid, self.party, self._poly.coefficients[0], self._suite, self._rng
        )
        self._chain_contribution = self._rng(CHAIN_CODE_SIZE)
        h = chain_code_commitment(self.eid, self.party, self._chain_contribution)
        payload = encode_fields(
            [
                encode_fields([c.encode() for c in vss]),
                nonce_commitment.encode() + group.encode_scalar(response),
                h,
            ]
        )
        self._round1[self.party] = payload
        self._vss[self.party] = vss
        self._cc_commitments[self.party] = h
        return [Outgoing(1, BROADCAST, payload)]

    def _check_round1(self, sender: int, payload: bytes) -> str | None:
        """Validate one round-1 package and record it; return the fault, or None if valid."""
        group = self._suite.group
        try:
            vss_raw, pok_raw, h = decode_fields(payload, count=3)
            vss_fields = decode_fields(vss_raw)
        except InvalidInput:
            return "malformed round-1 package"
        if len(vss_fields) != self.threshold:
            return f"{len(vss_fields)} commitments instead of {self.threshold}"
        size = group.point_size
        if len(pok_raw) != size + group.scalar_size or len(h) != _DIGEST_SIZE:
            return "malformed round-1 package"
        try:
            vss = tuple(group.decode_point(c) for c in vss_fields)
            nonce_commitment = group.decode_point(pok_raw[:size])
            response = group.decode_scalar(pok_raw[size:])
        except InvalidInput:
            return "invalid point or scalar in round-1 package"
        try:
            verify_pok(self.eid, sender, vss[0], nonce_commitment, response, self._suite)
        except InvalidSignature:
            return "invalid proof of knowledge"
        self._round1[sender] = payload
        self._vss[sender] = vss
        self._cc_commitments[sender] = h
        return None

    # -- rounds 2..5 -------------------------------------------------------------------------

    def _receive(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        if self.round == 1:
            return self._after_round1(messages)
        if self.round == 2:
            return self._after_round2(messages)
        if self.round == 3:
            return self._after_round3(messages)
        if self.round == 4:
            return self._after_round4(messages)
        raise InternalBug(f"unexpected round {self.round}")

    def _after_round1(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        packages = self.only(messages, self._others, broadcast=True)
        faults = {}
        for sender, payload in packages.items():
            fault = self._check_round1(sender, payload)
            if fault is not None:
                faults[sender] = fault
        self.raise_faults(faults)
        self._echo = echo_digest(_ECHO_TAG, self.eid, self._round1, self.parties)
        poly, self._poly = self._poly, None
        if poly is None:
            raise InternalBug("polynomial already used")
        group = self._suite.group
        out = [Outgoing(2, BROADCAST, self._echo)]
        out += [Outgoing(2, j, group.encode_scalar(poly(j))) for j in self._others]
        self._own_share = poly(self.party)
        return out

    def _after_round2(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        echoes = self.by_sender(messages, self._others, broadcast=True)
        shares = self.by_sender(messages, self._others, broadcast=False)
        faults = {p: "malformed echo" for p, e in echoes.items() if len(e) != _DIGEST_SIZE}
        self.raise_faults(faults)
        differing = [p for p, e in echoes.items() if e != self._echo]
        if differing:
            # The relay may have shown different broadcasts to different parties: no culprit.
            raise ProtocolAborted("round-1 broadcasts differ between parties")
        group = self._suite.group
        received: dict[int, int] = {}
        for sender, payload in shares.items():
            try:
                share = group.decode_scalar(payload)
            except InvalidInput:
                faults[sender] = "malformed secret share"
                continue
            if not verify_share(self._vss[sender], self.party, share):
                faults[sender] = "secret share does not match its commitments"
                continue
            received[sender] = share
        self.raise_faults(faults)
        own, self._own_share = self._own_share, None
        if own is None:
            raise InternalBug("own share already used")
        self._secret_share = (own + sum(received.values())) % group.order
        self._public_key, self._verifying = derive_public_shares(self._vss, self.parties)
        contribution = self._chain_contribution
        if contribution is None:
            raise InternalBug("chain-code contribution missing")
        return [Outgoing(3, BROADCAST, contribution)]

    def _after_round3(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        reveals = self.only(messages, self._others, broadcast=True)
        faults = {
            p: "chain-code reveal does not match its commitment"
            for p, cc in reveals.items()
            if len(cc) != CHAIN_CODE_SIZE
            or chain_code_commitment(self.eid, p, cc) != self._cc_commitments[p]
        }
        self.raise_faults(faults)
        own, self._chain_contribution = self._chain_contribution, None
        if own is None or self._public_key is None or self._secret_share is None:
            raise InternalBug("DKG state missing in round 3")
        reveals[self.party] = own
        chain_code = hashlib.sha256(
            encode_fields([_CHAINCODE_FINAL_TAG, self.eid] + [reveals[p] for p in self.parties])
        ).digest()
        public = PublicKeyPackage(
            scheme=self.scheme,
            threshold=self.threshold,
            parties=self.parties,
            public_key=self._public_key,
            verifying_shares=tuple(self._verifying[p] for p in self.parties),
            chain_code=chain_code,
            generation=self.generation,
        )
        try:
            self._pending = KeyShare(public, self.party, self._secret_share)
        except InvalidInput as exc:  # s_i·G != Y_i cannot happen after the share checks
            raise InternalBug(f"DKG produced an inconsistent share: {exc}") from None
        self._secret_share = None
        self._confirmation = public.confirmation_digest(self.eid)
        return [Outgoing(4, BROADCAST, self._confirmation)]

    def _after_round4(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        confirmations = self.only(messages, self._others, broadcast=True)
        differing = [p for p, c in confirmations.items() if c != self._confirmation]
        if differing:
            raise ProtocolAborted("key confirmation differs", differing)
        if self._pending is None:
            raise InternalBug("no pending share in round 4")
        self._finish(self._pending)
        return []

    def __repr__(self) -> str:
        return (
            f"<FrostDkgSession party={self.party} parties={list(self.parties)} "
            f"threshold={self.threshold} round={self.round} done={self.done}>"
        )
