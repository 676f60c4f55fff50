"""The coordinator relays DKG and signing traffic but can neither read shares nor forge results."""

from __future__ import annotations

import os
from typing import Any

import nacl.exceptions
import nacl.public
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from mpcnode.errors import ProtocolAborted
from mpcnode.protocols.frost.sign import FrostSignSession
from mpcnode.protocols.keys import KeyShare


def _shares(cluster: Any, key_id: str) -> dict[int, KeyShare]:
    out = {}
    for party, service in cluster.services.items():
        stored = service.store.get_active(key_id)
        assert stored is not None
        out[party] = KeyShare.decode(stored.secret())
    return out


async def test_relayed_dkg_payloads_reveal_no_share(cluster: Any) -> None:
    relayed = []

    def record(envelope):  # type: ignore[no-untyped-def]
        relayed.append(envelope)
        return envelope

    cluster.coordinator.tap = record
    info = await cluster.coordinator.create_key("ed25519", 3, 5)
    shares = _shares(cluster, info.key_id)
    wire = b"".join(e.SerializeToString() for e in relayed)
    assert relayed and len({e.round for e in relayed}) >= 4
    for share in shares.values():
        for encoding in (
            share.secret_share.to_bytes(32, "little"),
            share.secret_share.to_bytes(32, "big"),
        ):
            assert encoding not in wire

    p2p = [e for e in relayed if e.recipient > 0]
    assert len(p2p) == 5 * 4  # every party sends f_i(j) to every other party
    for env in p2p:
        sender_box = cluster.roster.by_party(env.sender).box_key
        for party, identity in cluster.identities.items():
            box = nacl.public.Box(identity.box_private, nacl.public.PublicKey(sender_box))
            if party == env.recipient:
                plaintext = box.decrypt(bytes(env.payload))
                assert plaintext not in wire  # the relay only ever saw ciphertext
            else:
                with pytest.raises(nacl.exceptions.CryptoError):
                    box.decrypt(bytes(env.payload))

    # The key works, and its signatures verify with two independent verifiers.
    message = os.urandom(40)
    signature, record_, _ = await cluster.coordinator.sign(info.key_id, message)
    VerifyKey(bytes(info.public_key)).verify(message, signature)
    Ed25519PublicKey.from_public_bytes(bytes(info.public_key)).verify(signature, message)


@pytest.mark.parametrize("target_round", [1, 2, 3, 4])
async def test_tampered_dkg_relay_fails_and_leaves_nothing(cluster: Any, target_round: int) -> None:
    def tamper(envelope):  # type: ignore[no-untyped-def]
        if envelope.round == target_round and envelope.sender == 2:
            payload = bytearray(envelope.payload)
            payload[-1] ^= 1
            envelope.payload = bytes(payload)
        return envelope

    cluster.coordinator.tap = tamper
    with pytest.raises(ProtocolAborted):
        await cluster.coordinator.create_key("ed25519", 3, 5)
    for party, service in cluster.services.items():
        assert service.sessions == {}
        if target_round == 4:
            # The relay broke the confirmation round itself. Party 2 saw four valid
            # confirmations and its own, so from where it stands the key is complete; the
            # others saw that every holder had confirmed and keep their share pending, never
            # active, rather than lose a share of a key that may be live.
            if party == 2:
                assert len(service.store.list_active()) == 1
            else:
                assert service.store.list_active() == []
                assert len(service.store.pending_keys()) == 1
            continue
        assert service.store.list_active() == []
        assert service.store.pending_keys() == []


async def test_tampered_sign_relay_gives_no_signature(cluster: Any) -> None:
    info = await cluster.coordinator.create_key("ed25519", 3, 5)

    def tamper(envelope):  # type: ignore[no-untyped-def]
        if envelope.protocol == "frost-sign" and envelope.round == 1 and envelope.sender == 1:
            payload = bytearray(envelope.payload)
            payload[0] ^= 1
            envelope.payload = bytes(payload)
        return envelope

    cluster.coordinator.tap = tamper
    with pytest.raises(ProtocolAborted):
        await cluster.coordinator.sign(info.key_id, b"pay 10 to alice")


async def test_faulty_signer_is_named_and_excluded(cluster: Any) -> None:
    info = await cluster.coordinator.create_key("ed25519", 3, 5)

    class LyingSigner(FrostSignSession):
        def _receive(self, messages):  # type: ignore[no-untyped-def]
            out = super()._receive(messages)
            bad = bytearray(out[0].payload)
            bad[0] ^= 1
            return [type(out[0])(out[0].round, out[0].recipient, bytes(bad))]

    cluster.services[2].sign_factory = LyingSigner
    message = b"transfer 1 BTC"
    signature, _, signers = await cluster.coordinator.sign(info.key_id, message)
    assert ("frost-sign", 2) in cluster.coordinator.blamed
    assert 2 not in signers
    VerifyKey(bytes(info.public_key)).verify(message, signature)
    Ed25519PublicKey.from_public_bytes(bytes(info.public_key)).verify(signature, message)


async def test_signer_dying_mid_session_is_replaced(cluster: Any) -> None:
    info = await cluster.coordinator.create_key("ed25519", 3, 5)
    stopped = []

    def kill_mpc_1_after_commitments(envelope):  # type: ignore[no-untyped-def]
        if envelope.protocol == "frost-sign" and envelope.round == 1 and not stopped:
            cluster.stop_node(2)  # mpc-1 dies after it committed, before it can sign
            stopped.append(2)
        return envelope

    cluster.coordinator.tap = kill_mpc_1_after_commitments
    message = b"retry me with another quorum"
    signature, _, signers = await cluster.coordinator.sign(info.key_id, message)
    assert stopped == [2]
    assert 2 not in signers and len(signers) == 3
    VerifyKey(bytes(info.public_key)).verify(message, signature)


async def test_node_handing_over_a_badly_signed_envelope_is_named(cluster: Any) -> None:
    service = cluster.services[3]
    honest_seal_all = service._seal_all

    def forge(session_id, protocol, outgoing):  # type: ignore[no-untyped-def]
        envelopes = honest_seal_all(session_id, protocol, outgoing)
        for env in envelopes:
            env.signature = bytes(64)
        return envelopes

    service._seal_all = forge
    with pytest.raises(ProtocolAborted) as caught:
        await cluster.coordinator.create_key("ed25519", 3, 5)
    assert caught.value.culprits == (3,)
    assert "mpc-2" in str(caught.value)
    for other in cluster.services.values():
        assert other.store.list_active() == [] and other.store.pending_keys() == []
