"""mpcnode.envelope: signed by the sender, sealed to the recipient, bound to its session.

The relay (coordinator) is the adversary here: every field it could alter, every
re-addressing and every replay must be refused.
"""

from __future__ import annotations

import os

import nacl.exceptions
import nacl.public
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from mpcnode.envelope import describe, open_envelope, seal, signing_input, verify_envelope
from mpcnode.errors import InvalidInput, InvalidSignature, ProtocolAborted
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.protocols.base import BROADCAST, COORDINATOR, Outgoing
from protos.mpc.v1 import envelope_pb2

SID = bytes.fromhex("00112233445566778899aabbccddeeff")
PROTOCOL = "frost-dkg"


@pytest.fixture(scope="module")
def nodes() -> dict[int, NodeIdentity]:
    return {k + 1: NodeIdentity.generate(f"mpc-{k}", k + 1) for k in range(5)}


@pytest.fixture(scope="module")
def roster(nodes: dict[int, NodeIdentity]) -> Roster:
    return Roster(n.public_entry() for n in nodes.values())


def _copy(env: envelope_pb2.Envelope) -> envelope_pb2.Envelope:
    out = envelope_pb2.Envelope()
    out.CopyFrom(env)
    return out


def _reference_input(env: envelope_pb2.Envelope) -> bytes:
    """The signed bytes, rebuilt from CONTRACTS.md without the module under test."""
    fields = [
        b"mpc.v1.envelope",
        env.session_id,
        env.protocol.encode(),
        env.round.to_bytes(4, "big"),
        env.sender.to_bytes(4, "big"),
        env.recipient.to_bytes(4, "big", signed=True),
        env.payload,
    ]
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def test_signing_input_is_the_contract_encoding() -> None:
    got = signing_input(b"sid", "p", 2, 3, COORDINATOR, b"xy")
    assert got == (
        b"\x00\x00\x00\x0fmpc.v1.envelope"
        b"\x00\x00\x00\x03sid"
        b"\x00\x00\x00\x01p"
        b"\x00\x00\x00\x04\x00\x00\x00\x02"
        b"\x00\x00\x00\x04\x00\x00\x00\x03"
        b"\x00\x00\x00\x04\xff\xff\xff\xff"
        b"\x00\x00\x00\x02xy"
    )
    with pytest.raises(InvalidInput):
        signing_input(b"sid", "p", -1, 3, 0, b"")
    with pytest.raises(InvalidInput):
        signing_input(b"sid", "p", 1, 3, 1 << 31, b"")


@pytest.mark.parametrize("recipient", [BROADCAST, COORDINATOR, 4])
def test_signature_verifies_under_independent_verifiers(
    nodes: dict[int, NodeIdentity], roster: Roster, recipient: int
) -> None:
    env = seal(nodes[2], roster, SID, PROTOCOL, Outgoing(1, recipient, b"payload bytes"))
    assert (env.session_id, env.protocol, env.round, env.sender, env.recipient) == (
        SID,
        PROTOCOL,
        1,
        2,
        recipient,
    )
    message = _reference_input(env)
    key = roster.by_party(2).signing_key
    VerifyKey(key).verify(message, env.signature)
    Ed25519PublicKey.from_public_bytes(key).verify(env.signature, message)
    verify_envelope(roster, env)
    # and it survives the wire
    verify_envelope(roster, envelope_pb2.Envelope.FromString(env.SerializeToString()))


def test_broadcast_opens_at_every_other_party(
    nodes: dict[int, NodeIdentity], roster: Roster
) -> None:
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(3, BROADCAST, b"commitments"))
    assert env.payload == b"commitments"  # broadcasts are public
    for party in (2, 3, 4, 5):
        msg = open_envelope(nodes[party], roster, env, SID, PROTOCOL)
        assert (msg.round, msg.sender, msg.broadcast, msg.payload) == (3, 1, True, b"commitments")


def test_p2p_opens_only_at_the_recipient(nodes: dict[int, NodeIdentity], roster: Roster) -> None:
    secret = os.urandom(32)
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(2, 3, secret))
    wire = env.SerializeToString()
    assert secret not in wire
    assert secret[:8] not in wire

    msg = open_envelope(nodes[3], roster, env, SID, PROTOCOL)
    assert (msg.round, msg.sender, msg.broadcast, msg.payload) == (2, 1, False, secret)

    # Any other node's Box with the sender cannot open it.
    sender_box = nacl.public.PublicKey(roster.by_party(1).box_key)
    for party in (2, 4, 5):
        box = nacl.public.Box(nodes[party].box_private, sender_box)
        with pytest.raises(nacl.exceptions.CryptoError):
            box.decrypt(env.payload)
    # The recipient's own Box opens it (independent check of the sealing).
    box = nacl.public.Box(nodes[3].box_private, sender_box)
    assert box.decrypt(env.payload) == secret


def test_p2p_ciphertext_differs_each_time(nodes: dict[int, NodeIdentity], roster: Roster) -> None:
    a = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(2, 3, b"same"))
    b = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(2, 3, b"same"))
    assert a.payload != b.payload  # random nonces


_TAMPERS = {
    "session_id": lambda e: setattr(e, "session_id", b"\x01" + e.session_id[1:]),
    "protocol": lambda e: setattr(e, "protocol", "frost-sign"),
    "round": lambda e: setattr(e, "round", e.round + 1),
    "sender": lambda e: setattr(e, "sender", 4),
    "recipient_other_party": lambda e: setattr(e, "recipient", 5),
    "recipient_broadcast": lambda e: setattr(e, "recipient", BROADCAST),
    "recipient_coordinator": lambda e: setattr(e, "recipient", COORDINATOR),
    "payload_bit": lambda e: setattr(e, "payload", bytes([e.payload[0] ^ 1]) + e.payload[1:]),
    "payload_truncated": lambda e: setattr(e, "payload", e.payload[:-1]),
    "signature_bit": lambda e: setattr(
        e, "signature", e.signature[:-1] + bytes([e.signature[-1] ^ 1])
    ),
    "signature_short": lambda e: setattr(e, "signature", e.signature[:63]),
    "signature_empty": lambda e: setattr(e, "signature", b""),
    "signature_of_other_node": None,  # filled in the test
}


@pytest.mark.parametrize(
    ("field", "recipient"),
    [
        (field, recipient)
        for field in sorted(_TAMPERS)
        for recipient in (3, BROADCAST)
        if (field, recipient) != ("recipient_broadcast", BROADCAST)
    ],
)
def test_tampering_any_field_is_rejected(
    nodes: dict[int, NodeIdentity], roster: Roster, field: str, recipient: int
) -> None:
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(2, recipient, b"some payload"))
    bad = _copy(env)
    if field == "signature_of_other_node":
        bad.signature = nodes[4].sign(_reference_input(env))
    else:
        tamper = _TAMPERS[field]
        assert tamper is not None
        tamper(bad)
    assert bad != env
    with pytest.raises(InvalidSignature):
        verify_envelope(roster, bad)
    # The recipient refuses it too: a signature failure, or (for a session id or
    # protocol that no longer matches) a replay from another session.
    with pytest.raises((InvalidSignature, ProtocolAborted)) as info:
        open_envelope(nodes[3], roster, bad, SID, PROTOCOL)
    if isinstance(info.value, ProtocolAborted):
        assert info.value.culprits == ()
    # A relay that also claims the tampered session gets a signature failure.
    with pytest.raises(InvalidSignature):
        open_envelope(nodes[3], roster, bad, bad.session_id, bad.protocol)


def test_unknown_sender_is_rejected(nodes: dict[int, NodeIdentity], roster: Roster) -> None:
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(1, BROADCAST, b"x"))
    env.sender = 9
    with pytest.raises(InvalidSignature, match="unknown sender"):
        verify_envelope(roster, env)
    stranger = NodeIdentity.generate("mpc-9", 9)
    outsider_roster = Roster([*roster, stranger.public_entry()])
    forged = seal(stranger, outsider_roster, SID, PROTOCOL, Outgoing(1, BROADCAST, b"x"))
    with pytest.raises(InvalidSignature, match="unknown sender"):
        open_envelope(nodes[2], roster, forged, SID, PROTOCOL)


def test_wrong_recipient_is_rejected_without_blame(
    nodes: dict[int, NodeIdentity], roster: Roster
) -> None:
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(2, 3, b"for party 3"))
    for party in (2, 4, 5):
        with pytest.raises(ProtocolAborted, match="addressed to 3") as info:
            open_envelope(nodes[party], roster, env, SID, PROTOCOL)
        assert info.value.culprits == ()


def test_coordinator_envelope_is_not_for_nodes(
    nodes: dict[int, NodeIdentity], roster: Roster
) -> None:
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(3, COORDINATOR, b"share"))
    assert env.payload == b"share"
    verify_envelope(roster, env)  # the coordinator can check it
    with pytest.raises(ProtocolAborted) as info:
        open_envelope(nodes[2], roster, env, SID, PROTOCOL)
    assert info.value.culprits == ()


@pytest.mark.parametrize(
    ("session_id", "protocol"),
    [(bytes(16), PROTOCOL), (SID, "frost-sign"), (SID + b"\x00", PROTOCOL)],
)
def test_replay_into_another_session_is_rejected(
    nodes: dict[int, NodeIdentity], roster: Roster, session_id: bytes, protocol: str
) -> None:
    for recipient in (BROADCAST, 2):
        env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(1, recipient, b"old message"))
        verify_envelope(roster, env)  # validly signed ...
        with pytest.raises(ProtocolAborted, match="another session") as info:
            open_envelope(nodes[2], roster, env, session_id, protocol)  # ... but not this session's
        assert info.value.culprits == ()


def test_own_envelope_relayed_back_is_rejected(
    nodes: dict[int, NodeIdentity], roster: Roster
) -> None:
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(1, BROADCAST, b"mine"))
    with pytest.raises(ProtocolAborted, match="own envelope"):
        open_envelope(nodes[1], roster, env, SID, PROTOCOL)


def test_undecryptable_p2p_payload_blames_the_signing_sender(
    nodes: dict[int, NodeIdentity], roster: Roster
) -> None:
    """The sender signed the ciphertext, so a ciphertext that does not open is its fault."""
    garbage = os.urandom(60)
    env = envelope_pb2.Envelope(
        session_id=SID, protocol=PROTOCOL, round=2, sender=4, recipient=3, payload=garbage
    )
    env.signature = nodes[4].sign(_reference_input(env))
    verify_envelope(roster, env)
    with pytest.raises(ProtocolAborted, match="does not decrypt") as info:
        open_envelope(nodes[3], roster, env, SID, PROTOCOL)
    assert info.value.culprits == (4,)

    # Sealed to the wrong node (party 5's key) but addressed to 3: also the sender's fault.
    wrong_box = nacl.public.Box(nodes[4].box_private, nodes[5].box_private.public_key)
    env.payload = bytes(wrong_box.encrypt(b"secret"))
    env.signature = nodes[4].sign(_reference_input(env))
    with pytest.raises(ProtocolAborted) as info:
        open_envelope(nodes[3], roster, env, SID, PROTOCOL)
    assert info.value.culprits == (4,)


def test_seal_rejects_bad_recipients(nodes: dict[int, NodeIdentity], roster: Roster) -> None:
    with pytest.raises(InvalidInput, match="itself"):
        seal(nodes[1], roster, SID, PROTOCOL, Outgoing(1, 1, b"x"))
    with pytest.raises(InvalidInput, match="unknown party"):
        seal(nodes[1], roster, SID, PROTOCOL, Outgoing(1, 6, b"x"))
    with pytest.raises(InvalidInput, match="invalid recipient"):
        seal(nodes[1], roster, SID, PROTOCOL, Outgoing(1, -2, b"x"))


def test_identity_must_match_the_roster(nodes: dict[int, NodeIdentity], roster: Roster) -> None:
    """A node whose keys are not the pinned ones must not seal, nor blame honest senders."""
    impostor = NodeIdentity.generate("mpc-0", 1)
    with pytest.raises(InvalidInput, match="does not match the roster"):
        seal(impostor, roster, SID, PROTOCOL, Outgoing(1, BROADCAST, b"x"))
    env = seal(nodes[2], roster, SID, PROTOCOL, Outgoing(1, 1, b"x"))
    with pytest.raises(InvalidInput, match="does not match the roster"):
        open_envelope(impostor, roster, env, SID, PROTOCOL)


def test_describe_never_shows_the_payload(nodes: dict[int, NodeIdentity], roster: Roster) -> None:
    payload = b"very-secret-share-bytes"
    env = seal(nodes[1], roster, SID, PROTOCOL, Outgoing(1, COORDINATOR, payload))
    text = describe(env)
    assert "very-secret" not in text and payload.hex() not in text
    assert f"{len(payload)} bytes" in text and SID.hex() in text
