"""Signed, sealed protocol envelopes between nodes (relayed by an untrusted coordinator).

Every `Outgoing` of a session becomes one `mpc.v1.Envelope`:

- a point-to-point payload (recipient > 0) is encrypted to the recipient with
  ``nacl.public.Box(sender X25519 sk, recipient X25519 pk)`` (XSalsa20-Poly1305,
  random nonce), so the coordinator cannot read it;
- the sender signs, with its Ed25519 identity key,
  ``encode_fields([b"mpc.v1.envelope", session_id, protocol, round(4B), sender(4B),
  recipient(4B signed), payload])``, so the coordinator cannot alter, re-address or
  move a message to another session.

The receiver takes the sender from the verified envelope, never from the payload.
Nothing here logs or prints payloads; use `describe` for log lines.

A `mpc.v1.KeyRecord` (the public description of one key generation) is trusted only with a
signed confirmation from every holder of exactly that package: `verify_key_record`, used by
the coordinator (its registry) and by nodes (certifying a reshared generation).
"""

from __future__ import annotations

import nacl.exceptions
import nacl.public
import nacl.signing

from mpcnode.crypto.encoding import decode_fields, encode_fields, encode_uint
from mpcnode.crypto.group import GROUPS
from mpcnode.errors import InvalidInput, InvalidSignature, ProtocolAborted
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.protocols.base import (
    BROADCAST,
    COORDINATOR,
    Incoming,
    Outgoing,
    execution_id,
    owner_binding,
)
from mpcnode.protocols.keys import PublicKeyPackage
from protos.mpc.v1 import envelope_pb2

__all__ = [
    "describe",
    "key_record",
    "open_envelope",
    "package_of",
    "seal",
    "signing_input",
    "verify_envelope",
    "verify_key_record",
]

_DOMAIN = b"mpc.v1.envelope"
_SIGNATURE_SIZE = 64


def signing_input(
    session_id: bytes, protocol: str, round: int, sender: int, recipient: int, payload: bytes
) -> bytes:
    """The exact bytes an envelope signature covers (CONTRACTS.md, ENVELOPES)."""
    try:
        recipient_bytes = recipient.to_bytes(4, "big", signed=True)
    except OverflowError:
        raise InvalidInput("recipient out of range") from None
    return encode_fields(
        [
            _DOMAIN,
            session_id,
            protocol.encode(),
            encode_uint(round),
            encode_uint(sender),
            recipient_bytes,
            payload,
        ]
    )


def _envelope_input(env: envelope_pb2.Envelope) -> bytes:
    return signing_input(
        env.session_id, env.protocol, env.round, env.sender, env.recipient, env.payload
    )


def _check_self(identity: NodeIdentity, roster: Roster) -> None:
    """This node's keys must be the ones the roster pins, or peers would blame the wrong party."""
    if identity.party not in roster or roster.by_party(identity.party) != identity.public_entry():
        raise InvalidInput(
            f"identity of {identity.name} (party {identity.party}) does not match the roster"
        )


def seal(
    identity: NodeIdentity,
    roster: Roster,
    session_id: bytes,
    protocol: str,
    outgoing: Outgoing,
) -> envelope_pb2.Envelope:
    """Turn one session message into a signed envelope, encrypting it if point-to-point."""
    _check_self(identity, roster)
    recipient = outgoing.recipient
    if recipient > 0:
        if recipient == identity.party:
            raise InvalidInput("a party does not send messages to itself")
        peer = roster.by_party(recipient)
        box = nacl.public.Box(identity.box_private, nacl.public.PublicKey(peer.box_key))
        payload = bytes(box.encrypt(outgoing.payload))
    elif recipient in (BROADCAST, COORDINATOR):
        payload = outgoing.payload
    else:
        raise InvalidInput(f"invalid recipient {recipient}")
    message = signing_input(
        session_id, protocol, outgoing.round, identity.party, recipient, payload
    )
    return envelope_pb2.Envelope(
        session_id=session_id,
        protocol=protocol,
        round=outgoing.round,
        sender=identity.party,
        recipient=recipient,
        payload=payload,
        signature=identity.sign(message),
    )


def verify_envelope(roster: Roster, env: envelope_pb2.Envelope) -> None:
    """Raise InvalidSignature unless `env` is signed by the roster key of `env.sender`."""
    if env.sender not in roster:
        raise InvalidSignature(f"envelope from unknown sender {env.sender}")
    if len(env.signature) != _SIGNATURE_SIZE:
        raise InvalidSignature(f"envelope signature from party {env.sender} has the wrong size")
    verify_key = nacl.signing.VerifyKey(roster.by_party(env.sender).signing_key)
    try:
        verify_key.verify(_envelope_input(env), env.signature)
    except nacl.exceptions.CryptoError:
        raise InvalidSignature(f"bad envelope signature from party {env.sender}") from None


def open_envelope(
    identity: NodeIdentity,
    roster: Roster,
    env: envelope_pb2.Envelope,
    session_id: bytes,
    protocol: str,
) -> Incoming:
    """Authenticate an envelope for this node's session and return the session message.

    Raises:
        ProtocolAborted: no culprit when the relay delivered an envelope of another
            session, this node's own envelope, or one addressed elsewhere; culprit = the
            sender when its signed p2p payload does not decrypt.
        InvalidSignature: the signature does not verify or the sender is unknown.
    """
    if env.session_id != session_id or env.protocol != protocol:
        raise ProtocolAborted("envelope from another session")
    verify_envelope(roster, env)
    _check_self(identity, roster)
    sender = env.sender
    if sender == identity.party:
        raise ProtocolAborted("this node's own envelope was relayed back to it")
    if env.recipient == BROADCAST:
        return Incoming(round=env.round, sender=sender, broadcast=True, payload=env.payload)
    if env.recipient != identity.party:
        raise ProtocolAborted(
            f"envelope addressed to {env.recipient} delivered to {identity.party}"
        )
    box = nacl.public.Box(
        identity.box_private, nacl.public.PublicKey(roster.by_party(sender).box_key)
    )
    try:
        payload = bytes(box.decrypt(env.payload))
    except nacl.exceptions.CryptoError:
        raise ProtocolAborted("point-to-point payload does not decrypt", [sender]) from None
    return Incoming(round=env.round, sender=sender, broadcast=False, payload=payload)


def describe(env: envelope_pb2.Envelope) -> str:
    """A log-safe one-line summary: header fields and payload length, never the payload."""
    return (
        f"Envelope(session={env.session_id.hex()}, protocol={env.protocol}, round={env.round}, "
        f"sender={env.sender}, recipient={env.recipient}, {len(env.payload)} bytes)"
    )


# -- key records ------------------------------------------------------------------------------


def key_record(
    key_id: str,
    public: PublicKeyPackage,
    confirmations: bytes,
    org: str = "",
    tenant: str = "",
) -> envelope_pb2.KeyRecord:
    """The KeyRecord of a stored generation (`confirmations`: the stored field-encoded list of
    serialized confirmation envelopes; `org`, `tenant`: the owner the node stored with it)."""
    return envelope_pb2.KeyRecord(
        key_id=key_id,
        org=org,
        tenant=tenant,
        scheme=public.scheme,
        threshold=public.threshold,
        parties=list(public.parties),
        public_key=public.public_key.encode(),
        verifying_shares=[y.encode() for y in public.verifying_shares],
        chain_code=public.chain_code,
        generation=public.generation,
        confirmations=[
            envelope_pb2.Envelope.FromString(raw) for raw in decode_fields(confirmations)
        ],
    )


def package_of(record: envelope_pb2.KeyRecord) -> PublicKeyPackage:
    """Decode and validate the public key package carried in a key record."""
    group = GROUPS.get(record.scheme)
    if group is None:
        raise ProtocolAborted(f"key record has unknown scheme {record.scheme!r}")
    package = PublicKeyPackage(
        scheme=record.scheme,
        threshold=record.threshold,
        parties=tuple(record.parties),
        public_key=group.decode_point(bytes(record.public_key)),
        verifying_shares=tuple(group.decode_point(bytes(v)) for v in record.verifying_shares),
        chain_code=bytes(record.chain_code),
        generation=record.generation,
    )
    return PublicKeyPackage.decode(package.encode())  # decode runs every consistency check


def verify_key_record(roster: Roster, record: envelope_pb2.KeyRecord) -> PublicKeyPackage:
    """The record's package, if every holder confirmed exactly it; else raise.

    Each confirmation is a broadcast envelope of one key session (a DKG or a reshare) signed by
    a holder, whose payload is `package.confirmation_digest(eid)` with
    eid = execution_id(protocol, session id, key id, parties, threshold,
    owner_binding(org, tenant)) — so the record's owner is certified too. All come from one
    session, and together from exactly the holders.
    """
    package = package_of(record)
    confirmed = set()
    sessions = {(bytes(env.session_id), env.protocol) for env in record.confirmations}
    if len(sessions) > 1:
        raise ProtocolAborted("key record confirmations come from different sessions")
    owner = owner_binding(str(record.org), str(record.tenant))
    for env in record.confirmations:
        verify_envelope(roster, env)
        eid = execution_id(
            env.protocol,
            bytes(env.session_id),
            record.key_id,
            package.parties,
            package.threshold,
            owner,
        )
        if env.recipient != BROADCAST or bytes(env.payload) != package.confirmation_digest(eid):
            raise ProtocolAborted("key record confirmation does not match", [env.sender])
        confirmed.add(env.sender)
    if confirmed != set(package.parties):
        raise ProtocolAborted("key record is not confirmed by every holder")
    return package
