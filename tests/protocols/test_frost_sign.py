"""FROST signing: sessions over DKG and dealer keys, blame, nonce hygiene, argument checks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from mpcnode.crypto.group import ED25519
from mpcnode.errors import InternalBug, InvalidInput, InvalidSignature, ProtocolAborted
from mpcnode.protocols.base import COORDINATOR, Incoming, Outgoing, execution_id
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
)
from mpcnode.protocols.keys import KeyShare, trusted_dealer_keygen
from mpcnode.protocols.simulation import Tamper, run_sessions

L = ED25519.order
MESSAGE = b"transfer 10 coins to alice"


def run_dkg(parties: Sequence[int], threshold: int) -> dict[int, KeyShare]:
    eid = execution_id("frost-dkg", b"sid", "key-1", parties, threshold)
    sessions = {p: FrostDkgSession(p, parties, threshold, eid) for p in parties}
    run_sessions(sessions)
    return {p: s.output for p, s in sessions.items()}


@pytest.fixture(scope="module")
def keys_3of5() -> dict[int, KeyShare]:
    return run_dkg([1, 2, 3, 4, 5], 3)


@pytest.fixture(scope="module")
def keys_2of3() -> dict[int, KeyShare]:
    return run_dkg([1, 2, 3], 2)


class Run:
    """One simulated signing run: sessions, relayed messages, coordinator-side aggregator."""

    def __init__(
        self,
        keys: dict[int, KeyShare],
        signers: Sequence[int],
        message: bytes = MESSAGE,
        tamper: Tamper | None = None,
    ) -> None:
        eid = execution_id("frost-sign", b"sid", "key-1", signers, 3, message)
        self.public = next(iter(keys.values())).public
        self.sessions = {p: FrostSignSession(keys[p], signers, message, eid) for p in signers}
        self.transcript: list[tuple[int, Outgoing]] = []
        self.collected = run_sessions(
            self.sessions,
            tamper=tamper,
            transcript=self.transcript,
        )
        self.aggregator = FrostAggregator(self.public, signers, message)

    def feed_commitments(self) -> None:
        for sender, message in self.transcript:
            if message.round == 1:
                self.aggregator.add_commitment(sender, message.payload)

    def feed_shares(self) -> None:
        for sender, messages in self.collected.items():
            for m in messages:
                assert m.recipient == COORDINATOR and m.round == 2
                self.aggregator.add_share(sender, m.payload)

    def signature(self) -> bytes:
        self.feed_commitments()
        self.feed_shares()
        return self.aggregator.signature()


def check_ed25519(public_key: bytes, message: bytes, sig: bytes) -> None:
    """Two verifiers that did not make the signature, plus ours."""
    assert len(sig) == 64
    VerifyKey(public_key).verify(message, sig)
    Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
    verify_signature(public_key, message, sig)


SUBSETS_3OF5 = [
    (1, 2, 3),
    (1, 3, 5),
    (2, 4, 5),
    (3, 4, 5),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (1, 2, 3, 4, 5),
]


@pytest.mark.parametrize("signers", SUBSETS_3OF5)
def test_dkg_3of5_then_sign(keys_3of5: dict[int, KeyShare], signers: tuple[int, ...]) -> None:
    run = Run(keys_3of5, signers)
    sig = run.signature()
    check_ed25519(run.public.public_key_bytes, MESSAGE, sig)
    with pytest.raises(BadSignatureError):
        VerifyKey(run.public.public_key_bytes).verify(MESSAGE + b"!", sig)
    with pytest.raises(CryptographyInvalidSignature):
        Ed25519PublicKey.from_public_bytes(run.public.public_key_bytes).verify(sig, b"other")
    for p in signers:
        assert run.sessions[p].done
        assert run.sessions[p].output == run.collected[p][0].payload


@pytest.mark.parametrize("signers", [(1, 2), (1, 3), (2, 3), (1, 2, 3)])
def test_dkg_2of3_then_sign(keys_2of3: dict[int, KeyShare], signers: tuple[int, ...]) -> None:
    run = Run(keys_2of3, signers)
    check_ed25519(run.public.public_key_bytes, MESSAGE, run.signature())


def test_dealer_keys_sign() -> None:
    keys = trusted_dealer_keygen("ed25519", 3, [1, 2, 3, 4, 5], secret=12345)
    run = Run(keys, (2, 3, 5), b"")
    sig = run.signature()
    check_ed25519(ED25519.base_mul(12345).encode(), b"", sig)


def test_too_few_signers_rejected(keys_3of5: dict[int, KeyShare]) -> None:
    with pytest.raises(InvalidInput):
        FrostSignSession(keys_3of5[1], [1, 2], MESSAGE, b"eid")
    with pytest.raises(InvalidInput):
        FrostAggregator(keys_3of5[1].public, [1, 2], MESSAGE)


def test_session_argument_checks(keys_3of5: dict[int, KeyShare]) -> None:
    key = keys_3of5[1]
    with pytest.raises(InvalidInput):  # own party not a signer
        FrostSignSession(key, [2, 3, 4], MESSAGE, b"eid")
    with pytest.raises(InvalidInput):  # party 6 holds no share
        FrostSignSession(key, [1, 2, 6], MESSAGE, b"eid")
    with pytest.raises(InvalidInput):  # duplicate
        FrostSignSession(key, [1, 2, 2, 3], MESSAGE, b"eid")
    with pytest.raises(InvalidInput):  # zero index
        FrostSignSession(key, [0, 1, 2, 3], MESSAGE, b"eid")
    session = FrostSignSession(key, [1, 2, 3], MESSAGE, b"eid", lambda n: b"short")
    with pytest.raises(InvalidInput):
        session.start()


def corrupt_share(victims: set[int]) -> Tamper:
    def tamper(sender: int, round_: int, m: Outgoing) -> Outgoing:
        if round_ == 2 and sender in victims:
            z = ED25519.decode_scalar(m.payload)
            return replace(m, payload=ED25519.encode_scalar(z + 1))
        return m

    return tamper


def test_faulty_signer_named(keys_3of5: dict[int, KeyShare]) -> None:
    run = Run(keys_3of5, (1, 2, 4), tamper=corrupt_share({4}))
    with pytest.raises(ProtocolAborted) as err:
        run.signature()
    assert err.value.culprits == (4,)
    assert "invalid signature share" in err.value.reason


def test_two_faulty_signers_named(keys_3of5: dict[int, KeyShare]) -> None:
    run = Run(keys_3of5, (1, 2, 3, 5), tamper=corrupt_share({2, 5}))
    with pytest.raises(ProtocolAborted) as err:
        run.signature()
    assert err.value.culprits == (2, 5)


def test_non_canonical_share_named(keys_3of5: dict[int, KeyShare]) -> None:
    run = Run(keys_3of5, (1, 2, 3))
    run.feed_commitments()
    z = ED25519.decode_scalar(run.collected[3][0].payload)
    with pytest.raises(ProtocolAborted) as err:
        run.aggregator.add_share(3, (z + L).to_bytes(32, "little"))
    assert err.value.culprits == (3,)
    with pytest.raises(ProtocolAborted) as err:
        run.aggregator.add_share(2, b"\x01" * 31)
    assert err.value.culprits == (2,)
    # The plain function blames an out-of-range share too.
    shares = {p: ED25519.decode_scalar(run.collected[p][0].payload) for p in (1, 2, 3)}
    shares[1] += L
    with pytest.raises(ProtocolAborted) as err:
        aggregate(run.public, run.aggregator.commitments, shares, MESSAGE)
    assert err.value.culprits == (1,)


def test_invalid_commitment_named_by_signers_and_aggregator(
    keys_3of5: dict[int, KeyShare],
) -> None:
    identity = b"\x01" + b"\x00" * 31

    def tamper(sender: int, round_: int, m: Outgoing) -> Outgoing:
        if round_ == 1 and sender == 2:
            return replace(m, payload=m.payload[:32] + identity)
        return m

    with pytest.raises(ProtocolAborted) as err:
        Run(keys_3of5, (1, 2, 3), tamper=tamper)
    assert err.value.culprits == (2,)

    aggregator = FrostAggregator(keys_3of5[1].public, (1, 2, 3), MESSAGE)
    _, good = commit(keys_3of5[2].secret_share, party=2)
    for bad in (good.encode()[:32] + identity, good.encode()[:63], b"\xff" * 64):
        with pytest.raises(ProtocolAborted) as err:
            aggregator.add_commitment(2, bad)
        assert err.value.culprits == (2,)


def test_swapped_commitment_named(keys_3of5: dict[int, KeyShare]) -> None:
    """A valid but different commitment relayed for party 5: its share fails and it is named."""

    def tamper(sender: int, round_: int, m: Outgoing) -> Outgoing:
        if round_ == 1 and sender == 5:
            return replace(m, payload=m.payload[32:] + m.payload[:32])
        return m

    run = Run(keys_3of5, (1, 3, 5), tamper=tamper)
    with pytest.raises(ProtocolAborted) as err:
        run.signature()
    assert err.value.culprits == (5,)


def test_aggregator_bookkeeping(keys_3of5: dict[int, KeyShare]) -> None:
    run = Run(keys_3of5, (1, 2, 3))
    agg = run.aggregator
    with pytest.raises(ProtocolAborted) as err:
        agg.signature()
    assert err.value.culprits == ()
    run.feed_commitments()
    run.feed_commitments()  # exact duplicates are ignored
    assert agg.missing_commitments() == []
    assert agg.missing_shares() == [1, 2, 3]
    with pytest.raises(ProtocolAborted) as err:
        agg.add_commitment(4, run.transcript[0][1].payload)
    assert err.value.culprits == (4,)
    _, other = commit(keys_3of5[1].secret_share, party=1)
    with pytest.raises(ProtocolAborted) as err:  # a second, different commitment
        agg.add_commitment(1, other.encode())
    assert err.value.culprits == (1,)
    agg.add_share(1, run.collected[1][0].payload)
    agg.add_share(2, run.collected[2][0].payload)
    with pytest.raises(ProtocolAborted) as err:
        agg.signature()
    assert err.value.culprits == () and "[3]" in err.value.reason
    agg.add_share(3, run.collected[3][0].payload)
    check_ed25519(run.public.public_key_bytes, MESSAGE, agg.signature())


def test_nonces_deleted_and_never_reused(keys_3of5: dict[int, KeyShare]) -> None:
    run = Run(keys_3of5, (1, 2, 3))
    session = run.sessions[1]
    assert session.done
    assert session._nonces is None  # the pair is gone once the share is out
    replay = [Incoming(1, s, True, m.payload) for s, m in run.transcript if s != 1 and m.round == 1]
    with pytest.raises(InternalBug):
        session.receive(replay)
    with pytest.raises(InternalBug):
        session.start()


def test_nonces_deleted_even_when_round_fails(keys_3of5: dict[int, KeyShare]) -> None:
    key = keys_3of5[1]
    session = FrostSignSession(key, (1, 2, 3), MESSAGE, b"eid")
    session.start()
    assert session._nonces is not None
    bad = [Incoming(1, 2, True, b"\x00" * 64), Incoming(1, 3, True, b"\x00" * 64)]
    with pytest.raises(ProtocolAborted) as err:
        session.receive(bad)
    assert err.value.culprits == (2, 3)
    assert session._nonces is None
    with pytest.raises(InternalBug):
        session.receive(bad)


def test_missing_or_extra_round_messages(keys_3of5: dict[int, KeyShare]) -> None:
    session = FrostSignSession(keys_3of5[1], (1, 2, 3), MESSAGE, b"eid")
    session.start()
    _, c2 = commit(keys_3of5[2].secret_share, party=2)
    with pytest.raises(ProtocolAborted):
        session.receive([Incoming(1, 2, True, c2.encode())])
    session = FrostSignSession(keys_3of5[1], (1, 2, 3), MESSAGE, b"eid")
    session.start()
    _, c3 = commit(keys_3of5[3].secret_share, party=3)
    with pytest.raises(ProtocolAborted) as err:
        session.receive(
            [
                Incoming(1, 2, True, c2.encode()),
                Incoming(1, 3, True, c3.encode()),
                Incoming(1, 4, True, c3.encode()),
            ]
        )
    # Party 4 is not in this session: the relay may have started one under this id with other
    # parties elsewhere, so its message proves nothing against it.
    assert err.value.culprits == ()


def test_sign_share_checks(keys_3of5: dict[int, KeyShare]) -> None:
    key = keys_3of5[1]
    nonces, own = commit(key.secret_share, party=1)
    others = [commit(keys_3of5[p].secret_share, party=p)[1] for p in (2, 3, 4)]
    with pytest.raises(InvalidInput):  # own commitment missing
        sign_share(key, nonces, others, MESSAGE)
    _, foreign = commit(key.secret_share, party=1)
    with pytest.raises(InvalidInput):  # own entry does not match the nonces
        sign_share(key, nonces, [foreign, *others], MESSAGE)
    with pytest.raises(InvalidInput):  # below threshold
        sign_share(key, nonces, [own, others[0]], MESSAGE)
    with pytest.raises(InvalidInput):  # duplicate identifier
        sign_share(key, nonces, [own, others[0], others[0]], MESSAGE)
    outsider = SigningCommitment(9, others[0].hiding, others[0].binding)
    with pytest.raises(InvalidInput):  # party without a share of this key
        sign_share(key, nonces, [own, others[0], outsider], MESSAGE)
    z = sign_share(key, nonces, [own, *others[:2]], MESSAGE)
    assert 0 <= z < L


def test_verify_signature_rejects(keys_3of5: dict[int, KeyShare]) -> None:
    run = Run(keys_3of5, (1, 2, 3))
    sig = run.signature()
    pk = run.public.public_key_bytes
    verify_signature(pk, MESSAGE, sig)
    r, z = sig[:32], int.from_bytes(sig[32:], "little")
    bad_sigs = [
        sig[:-1],
        r + (z + 1).to_bytes(32, "little"),
        r + (z + L).to_bytes(32, "little"),  # non-canonical s (RFC 8032 requires s < L)
        b"\x01" + b"\x00" * 31 + sig[32:],  # identity R
        ED25519.base_mul(7).encode() + sig[32:],
    ]
    for bad in bad_sigs:
        with pytest.raises(InvalidSignature):
            verify_signature(pk, MESSAGE, bad)
    with pytest.raises(InvalidSignature):
        verify_signature(pk, MESSAGE + b"x", sig)
    with pytest.raises(InvalidSignature):
        verify_signature(ED25519.base_mul(5).encode(), MESSAGE, sig)
    with pytest.raises(InvalidSignature):
        verify_signature(b"\x00" * 32, MESSAGE, sig)


def test_each_session_signs_its_own_message(keys_3of5: dict[int, KeyShare]) -> None:
    """Signers started with different messages give shares that cannot aggregate."""
    eid = b"eid"
    sessions = {
        1: FrostSignSession(keys_3of5[1], (1, 2, 3), MESSAGE, eid),
        2: FrostSignSession(keys_3of5[2], (1, 2, 3), MESSAGE, eid),
        3: FrostSignSession(keys_3of5[3], (1, 2, 3), b"something else", eid),
    }
    transcript: list[tuple[int, Outgoing]] = []
    collected = run_sessions(sessions, transcript=transcript)
    agg = FrostAggregator(keys_3of5[1].public, (1, 2, 3), MESSAGE)
    for sender, m in transcript:
        if m.round == 1:
            agg.add_commitment(sender, m.payload)
    for sender, ms in collected.items():
        agg.add_share(sender, ms[0].payload)
    with pytest.raises(ProtocolAborted) as err:
        agg.signature()
    assert err.value.culprits == (3,)


def secret_strings(value: int) -> list[str]:
    return [str(value), format(value, "x"), value.to_bytes(32, "little").hex()]


def test_reprs_hide_secrets(keys_3of5: dict[int, KeyShare]) -> None:
    key = keys_3of5[2]
    nonces, _ = commit(key.secret_share, party=2)
    session = FrostSignSession(key, (1, 2, 3), MESSAGE, b"eid")
    session.start()
    texts = [repr(key), str(key), repr(nonces), str(nonces), repr(session)]
    secrets_ = [key.secret_share, nonces.hiding, nonces.binding]
    assert session._nonces is not None
    secrets_ += [session._nonces.hiding, session._nonces.binding]
    for text in texts:
        for s in secrets_:
            for form in secret_strings(s):
                assert form not in text
    assert isinstance(nonces, SigningNonces) and "redacted" in repr(nonces)
