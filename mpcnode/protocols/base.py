"""The shape every sans-I/O protocol session has.

A session runs in lock-step rounds. `start()` returns the messages of round 1;
each `receive(round_messages)` takes *all* messages addressed to this party in
the current round (exactly one from each expected sender) and returns the next
round's messages. When the last round has been consumed, `done` is True and
`output` holds the result.

Senders on `Incoming` come from the authenticated channel (the envelope
signature checked by the service layer), never from the payload.
After any exception the session is dead: every later call raises.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mpcnode.crypto.encoding import encode_fields, encode_uint
from mpcnode.errors import InternalBug, ProtocolAborted

BROADCAST = 0
"""`Outgoing.recipient` for a message to every other party (and the coordinator)."""

COORDINATOR = -1
"""`Outgoing.recipient` for a message only the coordinator consumes (e.g. a signature share)."""


@dataclass(frozen=True)
class Outgoing:
    round: int
    recipient: int  # a party index, BROADCAST, or COORDINATOR
    payload: bytes

    def __repr__(self) -> str:  # payloads may be secret before sealing
        return (
            f"Outgoing(round={self.round}, recipient={self.recipient}, {len(self.payload)} bytes)"
        )


@dataclass(frozen=True)
class Incoming:
    round: int
    sender: int
    broadcast: bool
    payload: bytes

    def __repr__(self) -> str:
        kind = "broadcast" if self.broadcast else "p2p"
        return (
            f"Incoming(round={self.round}, sender={self.sender}, {kind}, {len(self.payload)} bytes)"
        )


def execution_id(
    protocol: str,
    session_id: bytes,
    key_id: str,
    parties: Sequence[int],
    threshold: int,
    message: bytes = b"",
) -> bytes:
    """32-byte id of one protocol execution, bound into every hash and proof of the session.

    Two executions share it only if they agree on protocol, coordinator-chosen session id,
    key, party set, threshold and message, so messages cannot be replayed across them.
    """
    fields = [
        b"mpc.v1.execution",
        protocol.encode(),
        session_id,
        key_id.encode(),
        b"".join(encode_uint(p) for p in parties),
        encode_uint(threshold),
        message,
    ]
    return hashlib.sha256(encode_fields(fields)).digest()


_OWNER_TAG = b"mpc.v1.owner"


def owner_binding(org: str, tenant: str) -> bytes:
    """What a key session's execution id binds (its `message`) about the key's owner, so every
    holder's signed confirmation of the key covers who owns it.

    No owner (org and tenant both empty: keys made before owners existed) binds nothing, so
    their records keep verifying; any other owner binds ``(tag, org, tenant)``.
    """
    if not org and not tenant:
        return b""
    return encode_fields([_OWNER_TAG, org.encode(), tenant.encode()])


def echo_digest(
    tag: bytes, eid: bytes, broadcasts: Mapping[int, bytes], parties: Sequence[int]
) -> bytes:
    """SHA-256 over every party's broadcast in party order, bound to the execution: what each
    party echoes, so a relay that showed different broadcasts to different parties is caught."""
    return hashlib.sha256(
        encode_fields(
            [tag, eid] + [encode_fields([encode_uint(p), broadcasts[p]]) for p in parties]
        )
    ).digest()


_PATH_TAG = b"mpc.v1.child-key-path"


def session_message(message: bytes, path: Sequence[int]) -> bytes:
    """What a signing session's execution id binds: the message (or digest) and, for a child
    key, its path, so one session id cannot be replayed under another key of the tree.

    The root key (empty path) binds the message alone, as before child keys existed. Node and
    coordinator compute it identically (the coordinator for `cggmp-sign-digest`'s request).
    """
    if not path:
        return message
    return encode_fields([_PATH_TAG, message, b"".join(encode_uint(i) for i in path)])


T = TypeVar("T")


class Session(ABC, Generic[T]):
    """Base class: tracks the round, enforces one message per expected sender, dies on error."""

    protocol: str = ""

    def __init__(self) -> None:
        self.round = 0
        self._dead = False
        self._output: T | None = None

    @property
    def done(self) -> bool:
        return self._output is not None

    @property
    def output(self) -> T:
        if self._output is None:
            raise InternalBug("session has no output yet")
        return self._output

    def start(self) -> list[Outgoing]:
        if self.round != 0 or self._dead:
            raise InternalBug("session already started")
        self.round = 1
        return self._guard(self._start)

    def receive(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        """Consume every message of the current round addressed to this party."""
        if self._dead:
            raise InternalBug("session is dead after an earlier error")
        if self.done or self.round == 0:
            raise InternalBug("session is not expecting messages")
        for m in messages:
            if m.round != self.round:
                # The sender signed it for that round; delivering it now is the relay's doing.
                self._dead = True
                raise ProtocolAborted(
                    f"message for round {m.round} delivered in round {self.round}"
                )
        out = self._guard(lambda: self._receive(messages))
        if not self.done:
            self.round += 1
        return out

    def _guard(self, step: object) -> list[Outgoing]:
        try:
            assert callable(step)
            result: list[Outgoing] = step()
            return result
        except BaseException:
            self._dead = True
            raise

    def _finish(self, output: T) -> None:
        self._output = output

    @staticmethod
    def by_sender(
        messages: Sequence[Incoming], expected: Sequence[int], *, broadcast: bool
    ) -> dict[int, bytes]:
        """Map sender -> payload: exactly one message of the given kind per expected sender.

        Only what a sender's own signatures prove is blamed on it: two *different* messages of
        one kind for one round (equivocation). A copy delivered twice, or a message of a party
        this session does not expect (the relay may have started it with other parties
        elsewhere), is the relay's doing and aborts without a culprit.
        """
        found: dict[int, bytes] = {}
        for m in messages:
            if m.broadcast != broadcast:
                continue
            if m.sender not in expected:
                raise ProtocolAborted(f"message from party {m.sender}, not expected here")
            if m.sender in found:
                if found[m.sender] == m.payload:
                    raise ProtocolAborted(f"message of party {m.sender} delivered twice")
                raise ProtocolAborted(
                    "two different messages from one party in one round", [m.sender]
                )
            found[m.sender] = m.payload
        missing = [j for j in expected if j not in found]
        if missing:
            raise ProtocolAborted(f"missing round messages from parties {missing}")
        return found

    def only(
        self, messages: Sequence[Incoming], expected: Sequence[int], *, broadcast: bool
    ) -> dict[int, bytes]:
        """`by_sender` for a round whose messages are all of one kind; another kind is a fault."""
        stray = sorted({m.sender for m in messages if m.broadcast != broadcast})
        if stray:
            kind = "point-to-point" if broadcast else "broadcast"
            raise ProtocolAborted(f"unexpected {kind} message", stray)
        return self.by_sender(messages, expected, broadcast=broadcast)

    def raise_faults(self, faults: Mapping[int, str]) -> None:
        """Abort naming every party in `faults` (party -> what it did wrong), if any."""
        if faults:
            detail = "; ".join(f"party {p}: {why}" for p, why in sorted(faults.items()))
            raise ProtocolAborted(f"invalid {self.protocol} message ({detail})", faults)

    @abstractmethod
    def _start(self) -> list[Outgoing]: ...

    @abstractmethod
    def _receive(self, messages: Sequence[Incoming]) -> list[Outgoing]: ...
