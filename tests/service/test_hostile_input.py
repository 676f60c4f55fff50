"""Hostile protocol input sent straight to a node, as the coordinator (its mTLS identity).

The coordinator is an untrusted relay: whatever it (or a cheating peer, whose identity keys the
tests hold) hands a node must end in a clean gRPC refusal, never INTERNAL/UNKNOWN, and must not
harm the node: its stored key stays byte-for-byte the same and it still takes part in a FROST
signature afterwards. Expected codes follow `mpcnode.rpc.status_of`:

* INVALID_ARGUMENT: a malformed request the node refuses before any session state changes
  (bad session id length, unknown protocol, oversized message, bad parties, bad path/ids);
* ABORTED: an envelope that fails authentication or the protocol (the session is dropped);
  `culprits` names a party only when a message that party signed proves it cheated;
* FAILED_PRECONDITION: a Step for a session the node does not run (`SessionUnknown`);
* NOT_FOUND: a key the node does not hold.

Valid envelopes are captured by driving sessions by hand (Start/Step on each party).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from nacl.signing import VerifyKey

from coordinator.server import NodeCallFailed, package_of
from mpcnode.crypto import hd
from mpcnode.envelope import signing_input
from mpcnode.protocols.base import BROADCAST, COORDINATOR
from mpcnode.protocols.frost.sign import FrostAggregator
from mpcnode.server import MAX_MESSAGE_BYTES
from protos.mpc.v1 import envelope_pb2, node_pb2
from tests.integration.conftest import InProcessCluster, open_cluster

VICTIM = 1
SIGNERS = [1, 2, 3]
CALL_TIMEOUT = 10.0
CLEAN_CODES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.NOT_FOUND,
}

Envelope = Any


@dataclass
class Setup:
    cluster: InProcessCluster
    key_id: str
    record: Any
    stored: Any
    """The victim's stored key (active generation) before any hostile input."""


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    async with open_cluster(tmp_path) as cluster:
        info = await cluster.coordinator.create_key("ed25519", 3, 5)
        record = await cluster.coordinator.get_record(info.key_id)
        stored = cluster.services[VICTIM].store.get_active(info.key_id)
        assert stored is not None
        yield Setup(cluster, info.key_id, record, stored)


# -- helpers ------------------------------------------------------------------------------------


async def call(s: Setup, party: int, method: str, request: Any) -> Any:
    return await s.cluster.coordinator._call(party, method, request, CALL_TIMEOUT)


async def refused(
    s: Setup, party: int, method: str, request: Any, expected: grpc.StatusCode
) -> NodeCallFailed:
    """The call must fail with exactly `expected` (one of the clean codes)."""
    assert expected in CLEAN_CODES
    with pytest.raises(NodeCallFailed) as info:
        await call(s, party, method, request)
    exc = info.value
    assert exc.code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), exc
    assert exc.code == expected, exc
    return exc


def check_store_intact(s: Setup) -> None:
    for party in s.cluster.services:
        stored = s.cluster.services[party].store.get_active(s.key_id)
        assert stored is not None
        if party == VICTIM:
            assert stored == s.stored  # same generation, public bytes, confirmations
            assert stored.public == s.stored.public
            assert stored.secret() == s.stored.secret()


async def check_still_signs(s: Setup, message: bytes = b"still signing") -> None:
    """The victim (party 1 is always among the first t live holders) signs afterwards."""
    check_store_intact(s)
    outcome = await s.cluster.coordinator.sign_request(s.key_id, message=message)
    assert VICTIM in outcome.signers
    VerifyKey(outcome.public_key).verify(message, outcome.signature)
    assert outcome.public_key == bytes(s.record.public_key)
    check_store_intact(s)


def sign_start(
    s: Setup, sid: bytes | None = None, message: bytes = b"hostile", parties: Sequence[int] = ()
) -> Any:
    """A frost-sign StartRequest as `Coordinator._sign_frost_once` builds it."""
    return node_pb2.StartRequest(
        session_id=os.urandom(16) if sid is None else sid,
        protocol="frost-sign",
        key_id=s.key_id,
        parties=list(parties or SIGNERS),
        message=message,
        path=[],
    )


async def start_all(s: Setup, start: Any, parties: Sequence[int]) -> dict[int, list[Envelope]]:
    """Start the session on every party; party -> its round-1 envelopes."""
    out = {}
    for p in parties:
        resp = await call(s, p, "Start", start)
        assert not resp.done
        out[p] = list(resp.envelopes)
    return out


def inbox(produced: dict[int, list[Envelope]], party: int) -> list[Envelope]:
    return [
        e
        for p, envs in sorted(produced.items())
        for e in envs
        if p != party and e.recipient in (BROADCAST, party)
    ]


def step(sid: bytes, envelopes: Sequence[Envelope]) -> Any:
    return node_pb2.StepRequest(session_id=sid, envelopes=list(envelopes))


def resign(s: Setup, env: Envelope, **changes: Any) -> Envelope:
    """`env` with `changes`, signed again by its sender (a cheating peer's own message)."""
    new = envelope_pb2.Envelope()
    new.CopyFrom(env)
    for name, value in changes.items():
        setattr(new, name, value)
    identity = s.cluster.identities[new.sender]
    new.signature = identity.sign(
        signing_input(
            new.session_id, new.protocol, new.round, new.sender, new.recipient, new.payload
        )
    )
    return new


def altered(env: Envelope, **changes: Any) -> Envelope:
    """`env` with `changes` and its old signature (a relay's tampering)."""
    new = envelope_pb2.Envelope()
    new.CopyFrom(env)
    for name, value in changes.items():
        setattr(new, name, value)
    return new


async def finish_signing(
    s: Setup, start: Any, round1: dict[int, list[Envelope]], message: bytes
) -> None:
    """Drive a started frost-sign session to the end and check the aggregated signature."""
    sid = bytes(start.session_id)
    shares = {}
    for p in start.parties:
        resp = await call(s, p, "Step", step(sid, inbox(round1, p)))
        assert resp.done
        shares[p] = [e for e in resp.envelopes if e.recipient == COORDINATOR]
    package = package_of(s.record)
    aggregator = FrostAggregator(package, list(start.parties), message)
    for p in start.parties:
        for env in round1[p]:
            aggregator.add_commitment(p, bytes(env.payload))
        for env in shares[p]:
            aggregator.add_share(p, bytes(env.payload))
    signature = aggregator.signature()
    VerifyKey(bytes(s.record.public_key)).verify(message, bytes(signature))


async def abort_all(s: Setup, sid: bytes, parties: Sequence[int]) -> None:
    for p in parties:
        await call(s, p, "Abort", node_pb2.AbortRequest(session_id=sid))


HostileStep = Callable[[Setup, bytes, dict[int, list[Envelope]]], list[Envelope]]


async def hostile_step(
    s: Setup,
    envelopes: HostileStep,
    expected: grpc.StatusCode,
    culprits: tuple[int, ...] = (),
) -> NodeCallFailed:
    """Start a fresh frost-sign session on SIGNERS, feed the victim the hostile round-1 Step,
    check the refusal, that the victim dropped the session, and that it still signs."""
    start = sign_start(s)
    sid = bytes(start.session_id)
    round1 = await start_all(s, start, SIGNERS)
    exc = await refused(s, VICTIM, "Step", step(sid, envelopes(s, sid, round1)), expected)
    assert exc.culprits == culprits, exc
    assert sid not in s.cluster.services[VICTIM].sessions
    # The node says so on a later Step: the session is gone, nothing half-done remains.
    await refused(
        s, VICTIM, "Step", step(sid, inbox(round1, VICTIM)), grpc.StatusCode.FAILED_PRECONDITION
    )
    await abort_all(s, sid, SIGNERS)
    await check_still_signs(s)
    return exc


def others(round1: dict[int, list[Envelope]]) -> tuple[Envelope, Envelope]:
    return round1[2][0], round1[3][0]


# -- malformed envelopes ------------------------------------------------------------------------


MALFORMED: dict[str, tuple[HostileStep, grpc.StatusCode, tuple[int, ...]]] = {
    # A cheating peer's own signed garbage: provably its fault.
    "garbage payload signed by its sender": (
        lambda s, sid, r: [resign(s, r[2][0], payload=os.urandom(40)), r[3][0]],
        grpc.StatusCode.ABORTED,
        (2,),
    ),
    "empty payload signed by its sender": (
        lambda s, sid, r: [resign(s, r[2][0], payload=b""), r[3][0]],
        grpc.StatusCode.ABORTED,
        (2,),
    ),
    "truncated payload signed by its sender": (
        lambda s, sid, r: [r[2][0], resign(s, r[3][0], payload=r[3][0].payload[:-1])],
        grpc.StatusCode.ABORTED,
        (3,),
    ),
    # Relay tampering: the signature no longer verifies, nobody provably cheated.
    "garbage payload, old signature": (
        lambda s, sid, r: [altered(r[2][0], payload=os.urandom(64)), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "truncated payload, old signature": (
        lambda s, sid, r: [altered(r[2][0], payload=r[2][0].payload[:-1]), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "random signature": (
        lambda s, sid, r: [altered(r[2][0], signature=os.urandom(64)), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "truncated signature": (
        lambda s, sid, r: [altered(r[2][0], signature=r[2][0].signature[:63]), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "empty signature": (
        lambda s, sid, r: [altered(r[2][0], signature=b""), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "signature by another party": (
        lambda s, sid, r: [r[2][0], altered(r[3][0], signature=r[2][0].signature)],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "sender field changed": (
        lambda s, sid, r: [altered(r[2][0], sender=4), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "unknown sender": (
        lambda s, sid, r: [altered(r[2][0], sender=9), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "sender 0": (
        lambda s, sid, r: [altered(r[2][0], sender=0), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "huge sender": (
        lambda s, sid, r: [altered(r[2][0], sender=2**32 - 1), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "truncated session id": (
        lambda s, sid, r: [altered(r[2][0], session_id=sid[:15]), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "empty protocol": (
        lambda s, sid, r: [altered(r[2][0], protocol=""), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "completely empty envelope": (
        lambda s, sid, r: [envelope_pb2.Envelope(), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "round changed, old signature": (
        lambda s, sid, r: [altered(r[2][0], round=2), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "recipient changed, old signature": (
        lambda s, sid, r: [altered(r[2][0], recipient=VICTIM), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "extreme recipient, old signature": (
        lambda s, sid, r: [altered(r[2][0], recipient=-(2**31)), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    # Correctly signed by a party outside the session (4): the relay may have started a
    # session under this id with other parties elsewhere, so nothing proves 4's fault.
    "sender outside the session": (
        lambda s, sid, r: [r[2][0], r[3][0], resign(s, r[3][0], sender=4)],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "the victim's own envelope relayed back": (
        lambda s, sid, r: [r[1][0], r[2][0], r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "a message missing": (
        lambda s, sid, r: [r[2][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "no messages at all": (
        lambda s, sid, r: [],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "point-to-point payload that does not decrypt (signed by sender)": (
        lambda s, sid, r: [resign(s, r[2][0], recipient=VICTIM, payload=os.urandom(80)), r[3][0]],
        grpc.StatusCode.ABORTED,
        (2,),
    ),
    "message addressed to the coordinator": (
        lambda s, sid, r: [resign(s, r[2][0], recipient=COORDINATOR), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
    "message addressed to another party": (
        lambda s, sid, r: [resign(s, r[2][0], recipient=3), r[3][0]],
        grpc.StatusCode.ABORTED,
        (),
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_envelope(setup: Setup, case: str) -> None:
    envelopes, expected, culprits = MALFORMED[case]
    await hostile_step(setup, envelopes, expected, culprits)


async def test_step_for_unknown_session_leaves_live_session_alone(setup: Setup) -> None:
    """FAILED_PRECONDITION (SessionUnknown): the node runs no such session. The real session
    with the same parties is untouched and still produces a valid signature."""
    s = setup
    message = b"survives strangers"
    start = sign_start(s, message=message)
    round1 = await start_all(s, start, SIGNERS)
    for bogus in (os.urandom(16), b"", os.urandom(15), os.urandom(4096)):
        await refused(
            s,
            VICTIM,
            "Step",
            step(bogus, inbox(round1, VICTIM)),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
    await finish_signing(s, start, round1, message)
    await check_still_signs(s)


# -- malformed Start ----------------------------------------------------------------------------


def start_cases(s: Setup) -> dict[str, tuple[Any, grpc.StatusCode]]:
    def start(**changes: Any) -> Any:
        req = sign_start(s)
        for name, value in changes.items():
            if isinstance(value, list):
                req.ClearField(name)
                getattr(req, name).extend(value)
            else:
                setattr(req, name, value)
        return req

    package = package_of(s.record)
    return {
        # Refused before any state changes: INVALID_ARGUMENT.
        "empty session id": (start(session_id=b""), grpc.StatusCode.INVALID_ARGUMENT),
        "15-byte session id": (start(session_id=os.urandom(15)), grpc.StatusCode.INVALID_ARGUMENT),
        "17-byte session id": (start(session_id=os.urandom(17)), grpc.StatusCode.INVALID_ARGUMENT),
        "4 KiB session id": (start(session_id=os.urandom(4096)), grpc.StatusCode.INVALID_ARGUMENT),
        "unknown protocol": (start(protocol="frost-sign2"), grpc.StatusCode.INVALID_ARGUMENT),
        "empty protocol": (start(protocol=""), grpc.StatusCode.INVALID_ARGUMENT),
        "message too long": (
            start(message=os.urandom(MAX_MESSAGE_BYTES + 1)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "party not in roster": (start(parties=[1, 2, 9]), grpc.StatusCode.INVALID_ARGUMENT),
        "party 0": (start(parties=[0, 1, 2]), grpc.StatusCode.INVALID_ARGUMENT),
        "huge party": (start(parties=[1, 2, 2**32 - 1]), grpc.StatusCode.INVALID_ARGUMENT),
        "duplicate parties": (start(parties=[1, 1, 2, 3]), grpc.StatusCode.INVALID_ARGUMENT),
        "no parties": (start(parties=[]), grpc.StatusCode.INVALID_ARGUMENT),
        "victim not among the parties": (
            start(parties=[2, 3, 4]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "fewer signers than the threshold": (
            start(parties=[1, 2]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "empty key id": (start(key_id=""), grpc.StatusCode.INVALID_ARGUMENT),
        "key id over 128 characters": (start(key_id="k" * 129), grpc.StatusCode.INVALID_ARGUMENT),
        "hardened path": (start(path=[2**31]), grpc.StatusCode.INVALID_ARGUMENT),
        "path too deep": (start(path=[1] * 256), grpc.StatusCode.INVALID_ARGUMENT),
        "dkg for an existing key id": (
            start(protocol="frost-dkg", parties=[1, 2, 3, 4, 5], threshold=3, scheme="ed25519"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "dkg with unknown scheme": (
            start(protocol="frost-dkg", key_id="new", parties=[1, 2, 3], scheme="rsa"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "dkg with threshold 1": (
            start(protocol="frost-dkg", key_id="new", threshold=1, scheme="ed25519"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "dkg with threshold above parties": (
            start(protocol="frost-dkg", key_id="new", threshold=9, scheme="ed25519"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "presign on an ed25519 key": (
            start(protocol="cggmp-presign"),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "digest sign on an ed25519 key": (
            start(protocol="cggmp-sign-digest", message=os.urandom(32)),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "aux-info with a key id": (
            start(protocol="cggmp-aux-info", parties=[1, 2, 3, 4, 5]),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "aux-info for part of the committee": (
            start(protocol="cggmp-aux-info", key_id=""),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        # No safe primes in the pool of a test node: the node lacks state the call needs.
        "aux-info with an empty prime pool": (
            start(protocol="cggmp-aux-info", key_id="", parties=[1, 2, 3, 4, 5]),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        "reshare with a garbage old package": (
            start(
                protocol="reshare",
                threshold=3,
                dealers=[1, 2, 3],
                new_parties=[1, 2, 3],
                old_public=os.urandom(100),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "reshare whose parties are not dealers and holders": (
            start(
                protocol="reshare",
                threshold=2,
                dealers=[2, 3, 4],
                new_parties=[2, 3],
                old_public=package.encode(),
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
        ),
        "reshare from a generation this dealer does not hold": (
            start(
                protocol="reshare",
                threshold=3,
                dealers=[1, 2, 3],
                new_parties=[1, 2, 3],
                old_public=package.__class__(
                    package.scheme,
                    package.threshold,
                    package.parties,
                    package.public_key,
                    package.verifying_shares,
                    package.chain_code,
                    package.generation + 1,
                ).encode(),
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
        ),
        # The node holds no such key.
        "unknown key": (start(key_id="no-such-key"), grpc.StatusCode.NOT_FOUND),
    }


async def test_malformed_start(setup: Setup) -> None:
    s = setup
    cases = start_cases(s)
    before = set(s.cluster.services[VICTIM].sessions)
    for name, (request, expected) in cases.items():
        try:
            await refused(s, VICTIM, "Start", request, expected)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None
        # Nothing half-made is left behind.
        assert set(s.cluster.services[VICTIM].sessions) == before, name
        pending = [k for k in s.cluster.services[VICTIM].store.pending_keys()]
        assert pending == [], name
    await check_still_signs(s)


async def test_duplicate_session_id_keeps_the_first_session(setup: Setup) -> None:
    """INVALID_ARGUMENT ("session id already in use"); the first session is untouched: it still
    finishes with the message it was started with, not the duplicate's."""
    s = setup
    message = b"first"
    start = sign_start(s, message=message)
    round1 = await start_all(s, start, SIGNERS)
    duplicate = sign_start(s, sid=bytes(start.session_id), message=b"second")
    await refused(s, VICTIM, "Start", duplicate, grpc.StatusCode.INVALID_ARGUMENT)
    await refused(s, VICTIM, "Start", start, grpc.StatusCode.INVALID_ARGUMENT)
    await finish_signing(s, start, round1, message)
    await check_still_signs(s)


# -- replayed and out-of-order envelopes ----------------------------------------------------------


async def test_duplicate_envelope_in_one_step(setup: Setup) -> None:
    """ABORTED without a culprit: the same signed envelope twice is the relay's doing, not its
    sender's (only two different signed messages for one round would prove equivocation)."""
    exc = await hostile_step(
        setup,
        lambda s, sid, r: [r[2][0], r[2][0], r[3][0]],
        grpc.StatusCode.ABORTED,
        culprits=(),
    )
    assert "delivered twice" in exc.details


async def test_envelope_of_a_finished_session(setup: Setup) -> None:
    """ABORTED without culprits: a valid envelope of another (finished) session is refused
    by its session id binding ("envelope from another session")."""
    s = setup
    message = b"finished"
    old_start = sign_start(s, message=message)
    old_round1 = await start_all(s, old_start, SIGNERS)
    await finish_signing(s, old_start, old_round1, message)
    await hostile_step(
        s,
        lambda s, sid, r: [old_round1[2][0], r[3][0]],
        grpc.StatusCode.ABORTED,
    )


async def test_envelope_of_session_a_in_session_b(setup: Setup) -> None:
    """ABORTED without culprits: both sessions live on the same signers; A's envelope, valid
    and signed by a session party, delivered to B. Session A is not harmed and finishes."""
    s = setup
    message = b"session A"
    start_a = sign_start(s, message=message)
    round1_a = await start_all(s, start_a, SIGNERS)
    await hostile_step(
        s,
        lambda s, sid, r: [round1_a[2][0], r[3][0]],
        grpc.StatusCode.ABORTED,
    )
    await finish_signing(s, start_a, round1_a, message)


async def test_envelope_of_another_protocol(setup: Setup) -> None:
    """ABORTED without culprits: a party's envelope of a DKG session with the same id."""
    s = setup

    def dkg_envelope(s: Setup, sid: bytes, r: dict[int, list[Envelope]]) -> list[Envelope]:
        return [resign(s, r[2][0], protocol="frost-dkg"), r[3][0]]

    await hostile_step(s, dkg_envelope, grpc.StatusCode.ABORTED)


async def test_round_two_share_delivered_as_round_one(setup: Setup) -> None:
    """Out of order: a signer's round-2 share (addressed to the coordinator) fed to the victim
    in its round-1 Step. ABORTED without culprits: it is addressed elsewhere."""
    s = setup
    start_b = sign_start(s, message=b"other")
    round1_b = await start_all(s, start_b, SIGNERS)
    # Party 2 finishes its round in the hostile session's twin; the share is for the coordinator.
    resp = await call(s, 2, "Step", step(bytes(start_b.session_id), inbox(round1_b, 2)))
    share = next(e for e in resp.envelopes if e.recipient == COORDINATOR)

    def later_round(s: Setup, sid: bytes, r: dict[int, list[Envelope]]) -> list[Envelope]:
        # A share of this very session, as party 2 would sign it in round 2.
        return [resign(s, share, session_id=sid), r[3][0]]

    await hostile_step(s, later_round, grpc.StatusCode.ABORTED)
    await abort_all(s, bytes(start_b.session_id), SIGNERS)


async def test_step_after_session_finished(setup: Setup) -> None:
    """FAILED_PRECONDITION: the session is gone once done; its envelopes delivered again (a
    replay of the last Step) change nothing."""
    s = setup
    message = b"once"
    start = sign_start(s, message=message)
    round1 = await start_all(s, start, SIGNERS)
    await finish_signing(s, start, round1, message)
    for p in SIGNERS:
        await refused(
            s,
            p,
            "Step",
            step(bytes(start.session_id), inbox(round1, p)),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
    await check_still_signs(s)


async def test_reused_session_id_does_not_accept_old_envelopes(setup: Setup) -> None:
    """INVALID_ARGUMENT: a Start reusing the id of a finished session is refused."""
    s = setup
    old_start = sign_start(s, message=b"message A")
    sid = bytes(old_start.session_id)
    old_round1 = await start_all(s, old_start, SIGNERS)
    await finish_signing(s, old_start, old_round1, b"message A")
    try:
        # A node never runs two sessions under one id (recorded durably), so A's envelopes
        # can never be fed to another session.
        exc = await refused(
            s,
            VICTIM,
            "Start",
            sign_start(s, sid=sid, message=b"message B"),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        assert "already used" in exc.details
    finally:
        await abort_all(s, sid, SIGNERS)
        await check_still_signs(s)


# -- a DKG session: tampering, replays, rounds out of order ------------------------------------


async def run_dkg_rounds(
    s: Setup, start: Any, parties: Sequence[int], rounds: int
) -> list[dict[int, list[Envelope]]]:
    """Run `rounds` fan-outs (Start, then Steps) of a session by hand; the envelopes of each."""
    sid = bytes(start.session_id)
    produced = [await start_all(s, start, parties)]
    while len(produced) < rounds:
        last = produced[-1]
        nxt = {}
        for p in parties:
            resp = await call(s, p, "Step", step(sid, inbox(last, p)))
            assert not resp.done
            nxt[p] = list(resp.envelopes)
        produced.append(nxt)
    return produced


def dkg_start() -> Any:
    return node_pb2.StartRequest(
        session_id=os.urandom(16),
        protocol="frost-dkg",
        key_id=f"hostile-{os.urandom(4).hex()}",
        threshold=3,
        parties=[1, 2, 3, 4, 5],
        scheme="ed25519",
    )


def tamper(payload: bytes) -> bytes:
    data = bytearray(payload)
    data[len(data) // 2] ^= 0x01
    return bytes(data)


DKG_CASES: dict[str, tuple[int, Callable[[Setup, list[dict[int, list[Envelope]]]], list[Envelope]]]]
DKG_CASES = {
    # (round of the victim's Step that gets the hostile inbox, inbox builder)
    "round-1 broadcast tampered and re-signed by its sender": (
        1,
        lambda s, r: [
            resign(s, e, payload=tamper(e.payload)) if e.sender == 2 else e
            for e in inbox(r[0], VICTIM)
        ],
    ),
    "round-1 broadcast tampered by the relay": (
        1,
        lambda s, r: [
            altered(e, payload=tamper(e.payload)) if e.sender == 2 else e
            for e in inbox(r[0], VICTIM)
        ],
    ),
    "a round-2 message in the round-1 Step": (
        1,
        lambda s, r: (
            [e for e in inbox(r[0], VICTIM) if e.sender != 2]
            + [e for e in inbox(r[1], VICTIM) if e.sender == 2]
        ),
    ),
    "a round-1 message replayed in the round-2 Step": (
        2,
        lambda s, r: (
            [e for e in inbox(r[1], VICTIM) if e.sender != 2]
            + [e for e in inbox(r[0], VICTIM) if e.sender == 2]
        ),
    ),
}
DKG_EXPECTED_CULPRITS = {
    "round-1 broadcast tampered and re-signed by its sender": (2,),
    "round-1 broadcast tampered by the relay": (),
    # The round is in the sender's signature: a misplaced message is the relay's doing.
    "a round-2 message in the round-1 Step": (),
    "a round-1 message replayed in the round-2 Step": (),
}


async def dkg_hostile(s: Setup, case: str) -> NodeCallFailed:
    """A 5-party DKG driven by hand; the victim's Step of the chosen round gets the hostile
    inbox. ABORTED; the victim stores nothing for the new key, and still signs."""
    victim_round, build = DKG_CASES[case]
    start = dkg_start()
    sid = bytes(start.session_id)
    parties = list(start.parties)
    # Capture one round beyond the victim's (the other parties' later messages).
    rounds = await run_dkg_rounds_except_victim(s, start, parties, victim_round)
    exc = await refused(s, VICTIM, "Step", step(sid, build(s, rounds)), grpc.StatusCode.ABORTED)
    assert sid not in s.cluster.services[VICTIM].sessions
    assert s.cluster.services[VICTIM].store.get_active(start.key_id) is None
    assert s.cluster.services[VICTIM].store.pending_keys() == []
    await abort_all(s, sid, parties)
    await check_still_signs(s)
    return exc


async def run_dkg_rounds_except_victim(
    s: Setup, start: Any, parties: Sequence[int], victim_round: int
) -> list[dict[int, list[Envelope]]]:
    """Everyone runs Start and victim_round - 1 Steps; the others one Step more (the victim
    is held back), so later-round messages exist while the victim still waits."""
    sid = bytes(start.session_id)
    produced = await run_dkg_rounds(s, start, parties, victim_round)
    ahead = {}
    for p in parties:
        if p == VICTIM:
            continue
        resp = await call(s, p, "Step", step(sid, inbox(produced[-1], p)))
        ahead[p] = list(resp.envelopes)
    produced.append(ahead)
    return produced


@pytest.mark.parametrize("case", sorted(DKG_CASES))
async def test_dkg_hostile_round(setup: Setup, case: str) -> None:
    exc = await dkg_hostile(setup, case)
    assert exc.culprits == DKG_EXPECTED_CULPRITS[case], exc


# -- PartialSign and CertifyGeneration --------------------------------------------------------


async def test_partial_sign_garbage(setup: Setup) -> None:
    s = setup

    def partial(**changes: Any) -> Any:
        req = node_pb2.PartialSignRequest(
            key_id="no-such-key",
            presignature_id=os.urandom(16),
            request_id=os.urandom(16),
            signers=[1, 2, 3],
            message=b"m",
        )
        for name, value in changes.items():
            if isinstance(value, list):
                req.ClearField(name)
                getattr(req, name).extend(value)
            else:
                setattr(req, name, value)
        return req

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = {
        "empty presignature id": (partial(presignature_id=b""), invalid),
        "15-byte presignature id": (partial(presignature_id=os.urandom(15)), invalid),
        "17-byte presignature id": (partial(presignature_id=os.urandom(17)), invalid),
        "64 KiB presignature id": (partial(presignature_id=os.urandom(65536)), invalid),
        "empty request id": (partial(request_id=b""), invalid),
        "15-byte request id": (partial(request_id=os.urandom(15)), invalid),
        "1 KiB request id": (partial(request_id=os.urandom(1024)), invalid),
        "empty key id": (partial(key_id=""), invalid),
        "long key id": (partial(key_id="x" * 129), invalid),
        "message too long": (partial(message=os.urandom(MAX_MESSAGE_BYTES + 1)), invalid),
        "signers without this node": (partial(signers=[2, 3, 4]), invalid),
        "duplicate signers": (partial(signers=[1, 1, 2]), invalid),
        "no signers": (partial(signers=[]), invalid),
        "hardened path": (partial(path=[2**31 + 5]), invalid),
        # Well-formed, but the node holds no such key: NOT_FOUND.
        "unknown key": (partial(), grpc.StatusCode.NOT_FOUND),
        # An ed25519 key has no presignatures.
        "ed25519 key": (partial(key_id=s.key_id), invalid),
    }
    for name, (request, expected) in cases.items():
        try:
            await refused(s, VICTIM, "PartialSign", request, expected)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None
    await check_still_signs(s)


async def test_certify_generation_garbage(setup: Setup) -> None:
    """INVALID_ARGUMENT for every record that is empty, malformed or not certified by every
    holder; the genuine record is accepted ("current") and changes nothing."""
    s = setup
    real = s.record

    def record(**changes: Any) -> Any:
        rec = envelope_pb2.KeyRecord()
        rec.CopyFrom(real)
        for name, value in changes.items():
            if isinstance(value, list):
                rec.ClearField(name)
                getattr(rec, name).extend(value)
            else:
                setattr(rec, name, value)
        return rec

    bogus_confirmation = envelope_pb2.Envelope(
        session_id=os.urandom(16), protocol="frost-dkg", sender=1, signature=os.urandom(64)
    )
    cases = {
        "empty record": node_pb2.CertifyGenerationRequest(),
        "key id only": node_pb2.CertifyGenerationRequest(
            record=envelope_pb2.KeyRecord(key_id=s.key_id)
        ),
        "unknown scheme": node_pb2.CertifyGenerationRequest(record=record(scheme="rsa")),
        "garbage public key": node_pb2.CertifyGenerationRequest(
            record=record(public_key=os.urandom(31))
        ),
        "no confirmations": node_pb2.CertifyGenerationRequest(record=record(confirmations=[])),
        "one forged confirmation": node_pb2.CertifyGenerationRequest(
            record=record(confirmations=[*real.confirmations[:-1], bogus_confirmation])
        ),
        "next generation, old confirmations": node_pb2.CertifyGenerationRequest(
            record=record(generation=real.generation + 1)
        ),
        "threshold changed": node_pb2.CertifyGenerationRequest(record=record(threshold=2)),
        "threshold zero": node_pb2.CertifyGenerationRequest(record=record(threshold=0)),
        "parties missing": node_pb2.CertifyGenerationRequest(record=record(parties=[])),
        "party 0": node_pb2.CertifyGenerationRequest(record=record(parties=[0, 1, 2, 3, 4])),
        "unsorted parties": node_pb2.CertifyGenerationRequest(
            record=record(parties=[5, 4, 3, 2, 1])
        ),
        "verifying shares missing": node_pb2.CertifyGenerationRequest(
            record=record(verifying_shares=[])
        ),
        "short chain code": node_pb2.CertifyGenerationRequest(record=record(chain_code=b"c")),
        "another key id": node_pb2.CertifyGenerationRequest(record=record(key_id="other")),
    }
    for name, request in cases.items():
        try:
            await refused(s, VICTIM, "CertifyGeneration", request, grpc.StatusCode.INVALID_ARGUMENT)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None
    resp = await call(
        s, VICTIM, "CertifyGeneration", node_pb2.CertifyGenerationRequest(record=real)
    )
    assert resp.outcome == "current"
    await check_still_signs(s)


async def test_abort_of_unknown_or_garbage_session_is_harmless(setup: Setup) -> None:
    """Abort is idempotent and never fails; a live session with another id survives it."""
    s = setup
    message = b"not aborted"
    start = sign_start(s, message=message)
    round1 = await start_all(s, start, SIGNERS)
    for bogus in (b"", os.urandom(16), os.urandom(1000)):
        await call(s, VICTIM, "Abort", node_pb2.AbortRequest(session_id=bogus))
    await finish_signing(s, start, round1, message)
    await check_still_signs(s)


async def test_tenant_label_must_match_the_path(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """A request's `tenant` (a log label) is refused unless its path is that tenant's path, so
    no log line can name a tenant whose child key was not the one used; a refusal burns nothing."""
    s = setup
    acme = list(hd.tenant_path("acme"))
    other = list(hd.tenant_path("other"))
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    sid = os.urandom(16)

    def start(tenant: str, path: list[int]) -> Any:
        req = sign_start(s, sid=sid, message=b"tenant")
        req.tenant = tenant
        req.ClearField("path")
        req.path.extend(path)
        return req

    def partial(tenant: str, path: list[int]) -> Any:
        return node_pb2.PartialSignRequest(
            key_id="no-such-key",
            presignature_id=os.urandom(16),
            request_id=os.urandom(16),
            signers=[1, 2, 3],
            message=b"m",
            path=path,
            tenant=tenant,
        )

    with caplog.at_level(logging.WARNING, logger="mpcnode"):
        for name, method, request in (
            ("Start: root path", "Start", start("acme", [])),
            ("Start: another tenant's path", "Start", start("acme", other)),
            ("Start: a plain path", "Start", start("acme", [0, 1])),
            ("Start: a prefix of the path", "Start", start("acme", acme[:-1])),
            ("Start: a bad tenant id", "Start", start("\x00", acme)),
            ("PartialSign: root path", "PartialSign", partial("acme", [])),
            ("PartialSign: another tenant's path", "PartialSign", partial("other", acme)),
        ):
            try:
                await refused(s, VICTIM, method, request, invalid)
            except AssertionError as exc:
                raise AssertionError(f"case {name!r}: {exc}") from None
    assert any("tenant 'acme'" in r.getMessage() for r in caplog.records)
    # The refusals claimed no session id: the same id with the tenant's own path signs.
    round1 = await start_all(s, start("acme", acme), SIGNERS)
    for p in SIGNERS:
        await call(s, p, "Abort", node_pb2.AbortRequest(session_id=sid))
    assert round1
    # And through the coordinator, which sets the label itself.
    outcome = await s.cluster.coordinator.sign_request(s.key_id, message=b"t", tenant="acme")
    assert outcome.path == hd.format_path(hd.tenant_path("acme"))
    check_store_intact(s)
