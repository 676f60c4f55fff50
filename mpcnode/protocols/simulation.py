"""In-memory lock-step router for sans-I/O sessions (tests and benchmarks).

Plays the relay: each round, every broadcast goes to every other session, every p2p message
to its recipient, and COORDINATOR messages are kept and returned. An optional `tamper` hook
rewrites any message before delivery, to inject a misbehaving party.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mpcnode.errors import InternalBug
from mpcnode.protocols.base import BROADCAST, COORDINATOR, Incoming, Outgoing, Session

Tamper = Callable[[int, int, Outgoing], Outgoing]
"""tamper(sender, round, message) -> the message to deliver instead."""


def run_sessions(
    sessions: Mapping[int, Session[Any]],
    tamper: Tamper | None = None,
    transcript: list[tuple[int, Outgoing]] | None = None,
) -> dict[int, list[Outgoing]]:
    """Run `sessions` (party -> session) to completion; return each sender's COORDINATOR messages.

    Exceptions from a session (e.g. `ProtocolAborted` with culprits) propagate unchanged.
    If `transcript` is given, every delivered (sender, message) is appended to it, so a
    test can also see what the coordinator relays (e.g. signing commitments).
    """
    collected: dict[int, list[Outgoing]] = {p: [] for p in sessions}
    pending = {p: s.start() for p, s in sessions.items()}
    while True:
        inbox: dict[int, list[Incoming]] = {p: [] for p in sessions}
        for sender, messages in pending.items():
            for message in messages:
                if tamper is not None:
                    message = tamper(sender, message.round, message)
                if transcript is not None:
                    transcript.append((sender, message))
                if message.recipient == COORDINATOR:
                    collected[sender].append(message)
                elif message.recipient == BROADCAST:
                    for p in sessions:
                        if p != sender:
                            inbox[p].append(Incoming(message.round, sender, True, message.payload))
                elif message.recipient in sessions and message.recipient != sender:
                    inbox[message.recipient].append(
                        Incoming(message.round, sender, False, message.payload)
                    )
                else:
                    raise InternalBug(f"message to unknown recipient {message.recipient}")
        active = [p for p, s in sessions.items() if not s.done]
        if not active:
            if any(inbox.values()):
                raise InternalBug("messages sent after every session finished")
            return collected
        if len(active) != len(sessions):
            raise InternalBug("sessions finished in different rounds")
        pending = {p: sessions[p].receive(inbox[p]) for p in active}
