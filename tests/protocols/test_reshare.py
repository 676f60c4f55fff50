"""Resharing (Lagrange-weighted redistribution): refresh, threshold and membership changes for
both schemes, old/new generation mixing, and a misbehaving dealer per check."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from copy import copy
from itertools import combinations

import pytest
from nacl.signing import VerifyKey

from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.group import GROUPS
from mpcnode.crypto.sharing import interpolate_at_zero
from mpcnode.errors import InvalidInput, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, COORDINATOR, Outgoing, execution_id
from mpcnode.protocols.frost.ciphersuite import suite_for
from mpcnode.protocols.frost.sign import FrostAggregator, FrostSignSession
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage, trusted_dealer_keygen
from mpcnode.protocols.reshare import ReshareSession, reshare_execution_id
from mpcnode.protocols.simulation import Tamper, run_sessions

SCHEMES = ["ed25519", "secp256k1"]
OLD = [1, 2, 3, 4, 5]
MESSAGE = b"move 5 coins"


def make_sessions(
    old: dict[int, KeyShare],
    dealers: Sequence[int],
    new_parties: Sequence[int],
    new_threshold: int,
) -> dict[int, ReshareSession]:
    public = next(iter(old.values())).public
    eid = reshare_execution_id(b"sid", "key-1", public, dealers, new_parties, new_threshold)
    return {
        p: ReshareSession(
            p,
            public,
            dealers,
            new_parties,
            new_threshold,
            eid,
            old_share=old[p] if p in dealers else None,
        )
        for p in sorted(set(dealers) | set(new_parties))
    }


def reshare(
    old: dict[int, KeyShare],
    dealers: Sequence[int],
    new_parties: Sequence[int],
    new_threshold: int,
    tamper: Tamper | None = None,
) -> dict[int, KeyShare]:
    sessions = make_sessions(old, dealers, new_parties, new_threshold)
    run_sessions(sessions, tamper)
    out: dict[int, KeyShare] = {}
    for p, s in sessions.items():
        assert s.done
        if p in new_parties:
            share = s.output
            assert share is not None
            assert s.pending_share == share
            out[p] = share
        else:
            assert s.output is None and s.pending_share is None
    return out


def secret_of(shares: Sequence[KeyShare]) -> int:
    order = shares[0].group.order
    return interpolate_at_zero(order, {k.party: k.secret_share for k in shares})


def frost_sign(keys: Sequence[KeyShare], public: PublicKeyPackage) -> bytes:
    """Run FROST with these shares; the aggregator checks the result under `public`."""
    signers = sorted(k.party for k in keys)
    eid = execution_id("frost-sign", b"sid", "key-1", signers, len(signers), MESSAGE)
    sessions = {k.party: FrostSignSession(k, signers, MESSAGE, eid) for k in keys}
    transcript: list[tuple[int, Outgoing]] = []
    collected = run_sessions(sessions, transcript=transcript)
    aggregator = FrostAggregator(public, signers, MESSAGE)
    for sender, m in transcript:
        if m.round == 1:
            aggregator.add_commitment(sender, m.payload)
    for sender, messages in collected.items():
        for m in messages:
            assert m.recipient == COORDINATOR
            aggregator.add_share(sender, m.payload)
    return aggregator.signature()


def check_signature(public: PublicKeyPackage, sig: bytes) -> None:
    """Independent verifier for ed25519 (PyNaCl); the Schnorr equation for secp256k1."""
    pk = public.public_key_bytes
    if public.scheme == "ed25519":
        VerifyKey(pk).verify(MESSAGE, sig)
        return
    group = public.group
    suite = suite_for(public.scheme)
    size = group.point_size
    r = group.decode_point(sig[:size])
    z = group.decode_scalar(sig[size:])
    c = suite.H2(r.encode() + pk + MESSAGE)
    assert group.base_mul(z) == r + public.public_key * c


@pytest.fixture(params=SCHEMES)
def old(request: pytest.FixtureRequest) -> dict[int, KeyShare]:
    return trusted_dealer_keygen(request.param, 3, OLD, generation=4)


# ---------------------------------------------------------------------------------------------
# Successful reshares


def test_refresh_same_holders(old: dict[int, KeyShare]) -> None:
    new = reshare(old, [1, 3, 5], OLD, 3)
    old_public = old[1].public
    public = new[1].public
    assert all(k.public == public for k in new.values())
    assert public.public_key == old_public.public_key
    assert public.chain_code == old_public.chain_code
    assert public.generation == old_public.generation + 1 == 5
    assert public.threshold == 3 and public.parties == tuple(OLD)
    public.check_consistency()
    PublicKeyPackage.decode(public.encode())
    for p in OLD:
        assert new[p].secret_share != old[p].secret_share
        assert public.verifying_share(p) != old_public.verifying_share(p)
    secret = secret_of([old[1], old[2], old[3]])
    assert old_public.group.base_mul(secret) == old_public.public_key
    for subset in combinations(OLD, 3):
        assert secret_of([new[p] for p in subset]) == secret
    sig = frost_sign([new[2], new[4], new[5]], public)
    check_signature(old_public, sig)


def test_refresh_by_another_dealer_set_keeps_key(old: dict[int, KeyShare]) -> None:
    a = reshare(old, [2, 3, 4], OLD, 3)
    b = reshare(old, [1, 2, 5], OLD, 3)
    assert secret_of([a[1], a[2], a[3]]) == secret_of([b[3], b[4], b[5]])
    assert a[1].secret_share != b[1].secret_share


def test_threshold_up_and_back_down(old: dict[int, KeyShare]) -> None:
    secret = secret_of([old[1], old[2], old[3]])
    new = reshare(old, [1, 2, 3], OLD, 4)
    public = new[1].public
    assert public.threshold == 4 and public.public_key == old[1].public.public_key
    for subset in combinations(OLD, 3):
        assert secret_of([new[p] for p in subset]) != secret
    for quorum in combinations(OLD, 4):
        assert secret_of([new[p] for p in quorum]) == secret
    check_signature(public, frost_sign([new[1], new[3], new[4], new[5]], public))
    with pytest.raises(InvalidInput):  # three signers are not enough any more
        frost_sign([new[1], new[2], new[3]], public)
    back = reshare(new, [2, 3, 4, 5], OLD, 3)
    assert back[1].public.threshold == 3 and back[1].public.generation == 6
    assert secret_of([back[1], back[4], back[5]]) == secret
    check_signature(public, frost_sign([back[1], back[2], back[5]], back[1].public))


def test_membership_change(old: dict[int, KeyShare]) -> None:
    new_parties = [1, 2, 3, 4, 6]
    # dealers 1 and 5 are dealers; 5 is not a new holder, 6 is a new holder only
    sessions = make_sessions(old, [1, 4, 5], new_parties, 3)
    run_sessions(sessions)
    assert sessions[5].output is None
    assert sessions[5].new_public == sessions[6].new_public
    new = {p: sessions[p].output for p in new_parties}
    shares = [k for k in new.values() if k is not None]
    assert len(shares) == 5
    public = shares[0].public
    assert public.parties == (1, 2, 3, 4, 6)
    assert public.public_key == old[1].public.public_key
    with pytest.raises(InvalidInput):
        public.verifying_share(5)
    secret = secret_of([old[1], old[2], old[5]])
    by_party = {k.party: k for k in shares}
    for subset in combinations(new_parties, 3):
        assert secret_of([by_party[p] for p in subset]) == secret
    check_signature(old[1].public, frost_sign([by_party[2], by_party[4], by_party[6]], public))


def test_mixing_generations_fails(old: dict[int, KeyShare]) -> None:
    secret = secret_of([old[1], old[2], old[3]])
    new = reshare(old, [1, 2, 3], OLD, 3)
    for old_parties in ([1], [1, 2], [4, 5]):
        fresh = [new[p] for p in OLD if p not in old_parties]
        mixed = [old[p] for p in old_parties] + fresh[: 3 - len(old_parties)]
        assert secret_of(mixed) != secret
        with pytest.raises(ProtocolAborted) as err:  # no valid signature under either package
            frost_sign(mixed, new[1].public)
        assert set(err.value.culprits) == set(old_parties)
        with pytest.raises(ProtocolAborted):
            frost_sign(mixed, old[1].public)


# ---------------------------------------------------------------------------------------------
# A misbehaving dealer


def replace_commitment(message: Outgoing, edit: Callable[[list[bytes]], list[bytes]]) -> Outgoing:
    fields = edit(list(decode_fields(message.payload)))
    return Outgoing(message.round, message.recipient, encode_fields(fields))


def test_wrong_constant_term_names_dealer(old: dict[int, KeyShare]) -> None:
    """Dealer 2 deals 2·λ_2·s_2 consistently (shares match): only the C_0 check catches it."""
    group = old[1].group
    sessions = make_sessions(old, [1, 2, 3], OLD, 3)
    # Dealer 2 starts from a wrong old share (bypassing KeyShare validation).
    doubled = copy(old[2])
    object.__setattr__(doubled, "secret_share", 2 * old[2].secret_share % group.order)
    sessions[2]._old_share = doubled
    with pytest.raises(ProtocolAborted) as err:
        run_sessions(sessions)
    assert list(err.value.culprits) == [2]
    assert "constant term" in str(err.value)


def test_inconsistent_share_names_dealer(old: dict[int, KeyShare]) -> None:
    group = old[1].group

    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 3 and rnd == 1 and m.recipient == 4:
            bad = (group.decode_scalar(m.payload) + 1) % group.order
            return Outgoing(m.round, m.recipient, group.encode_scalar(bad))
        return m

    with pytest.raises(ProtocolAborted) as err:
        reshare(old, [1, 3, 5], OLD, 3, tamper)
    assert list(err.value.culprits) == [3]
    assert "does not match its commitments" in str(err.value)


@pytest.mark.parametrize("entries", [2, 4])
def test_wrong_commitment_length_names_dealer(old: dict[int, KeyShare], entries: int) -> None:
    group = old[1].group
    extra = group.base_mul(7).encode()

    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 5 and rnd == 1 and m.recipient == BROADCAST:
            return replace_commitment(m, lambda f: (f + [extra])[:entries])
        return m

    with pytest.raises(ProtocolAborted) as err:
        reshare(old, [1, 3, 5], OLD, 3, tamper)
    assert list(err.value.culprits) == [5]
    assert f"{entries} commitments instead of 3" in str(err.value)


def test_echo_mismatch_aborts_without_culprit(old: dict[int, KeyShare]) -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 4 and rnd == 2:
            return Outgoing(m.round, m.recipient, hashlib.sha256(b"other view").digest())
        return m

    with pytest.raises(ProtocolAborted) as err:
        reshare(old, [1, 2, 3], OLD, 3, tamper)
    assert not err.value.culprits
    assert "differ" in str(err.value)


def test_confirmation_mismatch_names_sender(old: dict[int, KeyShare]) -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 3:
            return Outgoing(m.round, m.recipient, bytes(32))
        return m

    sessions = make_sessions(old, [1, 2, 3], OLD, 3)
    with pytest.raises(ProtocolAborted) as err:
        run_sessions(sessions, tamper)
    assert list(err.value.culprits) == [2]
    # Every holder had its share ready to persist before sending its confirmation.
    assert all(s.pending_share is not None for s in sessions.values())


# ---------------------------------------------------------------------------------------------
# Setup


def test_bad_setup_refused(old: dict[int, KeyShare]) -> None:
    public = old[1].public
    eid = b"eid"
    with pytest.raises(InvalidInput):  # S not of size t_old
        ReshareSession(1, public, [1, 2], OLD, 3, eid, old_share=old[1])
    with pytest.raises(InvalidInput):
        ReshareSession(1, public, [1, 2, 3, 4], OLD, 3, eid, old_share=old[1])
    with pytest.raises(InvalidInput):  # dealer without its share
        ReshareSession(1, public, [1, 2, 3], OLD, 3, eid)
    with pytest.raises(InvalidInput):  # someone else's share
        ReshareSession(1, public, [1, 2, 3], OLD, 3, eid, old_share=old[2])
    with pytest.raises(InvalidInput):  # duplicate dealers
        ReshareSession(1, public, [1, 1, 2], OLD, 3, eid, old_share=old[1])
    with pytest.raises(InvalidInput):  # duplicate new parties
        ReshareSession(1, public, [1, 2, 3], [1, 2, 2, 4, 5], 3, eid, old_share=old[1])
    with pytest.raises(InvalidInput):  # dealer outside the old holders
        ReshareSession(6, public, [1, 2, 6], OLD, 3, eid)
    with pytest.raises(InvalidInput):  # party in neither set
        ReshareSession(6, public, [1, 2, 3], OLD, 3, eid)
    with pytest.raises(InvalidInput):  # new threshold too large
        ReshareSession(1, public, [1, 2, 3], OLD, 6, eid, old_share=old[1])
    with pytest.raises(InvalidInput):  # non-dealer given a share
        ReshareSession(4, public, [1, 2, 3], OLD, 3, eid, old_share=old[4])
    with pytest.raises(InvalidInput):  # empty eid
        ReshareSession(1, public, [1, 2, 3], OLD, 3, b"", old_share=old[1])


def test_repr_hides_secrets(old: dict[int, KeyShare]) -> None:
    sessions = make_sessions(old, [1, 2, 3], OLD, 3)
    run_sessions(sessions)
    for p in OLD:
        share = sessions[p].output
        assert share is not None
        text = repr(sessions[p]) + repr(share)
        assert str(share.secret_share) not in text
        assert GROUPS[share.public.scheme].encode_scalar(share.secret_share).hex() not in text


def test_pending_share_exposed_before_confirmation(old: dict[int, KeyShare]) -> None:
    """Step by hand: the share is ready exactly when the round-3 confirmation is returned."""
    sessions = make_sessions(old, [1, 4, 5], [1, 2, 3, 4, 6], 3)
    transcript: list[tuple[int, Outgoing]] = []

    def record(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if rnd == 2:  # before round 2 is delivered, no one has a share yet
            assert all(s.pending_share is None for s in sessions.values())
        return m

    run_sessions(sessions, record, transcript)
    confirmations = {s: m for s, m in transcript if m.round == 3}
    assert set(confirmations) == {1, 2, 3, 4, 6}  # pure dealer 5 sends no confirmation
    for p, m in confirmations.items():
        share = sessions[p].pending_share
        assert share is not None
        assert m.payload == share.public.confirmation_digest(sessions[p].eid)
    assert {s for s, m in transcript if m.round == 1} == {1, 4, 5}
