"""Presignature pools: which ready CGGMP presignatures the coordinator may hand out.

A pool belongs to one (key id, signer set): a presignature works only with exactly the
signers that made it. The coordinator knows presignature ids (= presign session ids),
signer sets and counters, nothing else: every secret part stays sealed on its node.

Invariants (tested in tests/coordinator/test_presign_pool.py):

* an id is handed out at most once: `take` removes it and remembers it as spent, and a
  spent id is never added again (not by a refill, not by a rebuild from the nodes), so
  once any PartialSign request for it was sent it can never come back;
* after a coordinator restart an id learned from the nodes (`rebuild`) counts as ready
  only if every signer of its set lists it as available.

Refill policy (`Refiller`): each key has one *preferred* signer set, the set signing
picks by default. Only the preferred set is topped up, to `target` ready presignatures,
one presign session at a time per key (a presign costs seconds of CPU on every signer;
one at a time leaves the cores to online signing), and at most `max_parallel` sessions
over all keys. The preferred set is the first `threshold` usable holders in party order
and changes only when one of its members is down or misbehaved; pools of other sets
(left from an earlier preferred set, or found on the nodes) are still used until empty
but not refilled. `target` 0 disables pooling: no rebuild from the nodes and no refill,
so every signature makes its presignature on demand (ids already in a pool are still
used: they are ready and would otherwise wait forever).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import trio

from mpcnode import logs
from mpcnode.errors import InvalidInput, MpcError

log = logging.getLogger("coordinator.presign")

DEFAULT_TARGET = 8
DEFAULT_MAX_PARALLEL = 2
MIN_BACKOFF = 1.0
MAX_BACKOFF = 60.0

SignerSet = tuple[int, ...]


@dataclass
class Pool:
    """The ready presignature ids of one (key, signer set) and its counters."""

    signers: SignerSet
    ready: deque[bytes] = field(default_factory=deque)
    in_flight: int = 0
    """Background presign sessions running for this pool."""
    made: int = 0
    """Presignatures added to this pool (by refills; not those found by a rebuild)."""
    used: int = 0
    """Presignatures taken out of this pool for signing."""


@dataclass
class _KeyPools:
    pools: dict[SignerSet, Pool] = field(default_factory=dict)
    preferred: SignerSet | None = None
    spent: set[bytes] = field(default_factory=set)
    known: set[bytes] = field(default_factory=set)
    changed: trio.Event = field(default_factory=trio.Event)


def _signer_set(signers: Iterable[int]) -> SignerSet:
    ordered = tuple(sorted(signers))
    if not ordered or len(set(ordered)) != len(ordered) or min(ordered) < 1:
        raise InvalidInput("a signer set is a non-empty set of positive party indices")
    return ordered


class PresignPools:
    """Bookkeeping of every key's pools (pure state: no I/O, no clock)."""

    def __init__(self, target: int = DEFAULT_TARGET) -> None:
        self._keys: dict[str, _KeyPools] = {}
        self._target = 0
        self.on_change: Callable[[], None] | None = None
        """Called after any pool changed (the coordinator updates its metrics)."""
        self.target = target

    @property
    def target(self) -> int:
        """Ready presignatures kept in each preferred pool; 0 disables pooling."""
        return self._target

    @target.setter
    def target(self, value: int) -> None:
        if value < 0:
            raise InvalidInput("presign pool target must be >= 0")
        self._target = value
        for state in self._keys.values():
            self._changed(state)  # wake the refillers: they may have work now

    @property
    def enabled(self) -> bool:
        return self.target > 0

    def loaded(self, key_id: str) -> bool:
        """Whether this key's pools were registered or rebuilt since the coordinator started."""
        return key_id in self._keys

    def keys(self) -> list[str]:
        return sorted(self._keys)

    def _key(self, key_id: str) -> _KeyPools:
        state = self._keys.get(key_id)
        if state is None:
            raise InvalidInput(f"presign pools of key {key_id!r} are not loaded")
        return state

    def _pool(self, state: _KeyPools, signers: SignerSet) -> Pool:
        pool = state.pools.get(signers)
        if pool is None:
            pool = state.pools[signers] = Pool(signers)
        return pool

    def _changed(self, state: _KeyPools) -> None:
        state.changed.set()
        state.changed = trio.Event()
        if self.on_change is not None:
            self.on_change()

    def ready_total(self) -> int:
        """Ready presignatures over every key and signer set."""
        return sum(len(p.ready) for s in self._keys.values() for p in s.pools.values())

    def register(self, key_id: str) -> None:
        """Start bookkeeping for a key known to have no presignature (a fresh key)."""
        self._keys.setdefault(key_id, _KeyPools())

    def reset(self, key_id: str) -> None:
        """Forget every pool of a key whose generation changed (its presignatures were erased
        with the old generation); ids already spent stay spent."""
        state = self._keys.get(key_id)
        if state is None:
            self._keys[key_id] = _KeyPools()
            return
        state.pools.clear()
        state.preferred = None
        self._changed(state)

    def rebuild(
        self, key_id: str, listings: Mapping[int, Iterable[tuple[bytes, Sequence[int]]]]
    ) -> int:
        """Load a key's pools from the nodes' lists of available presignatures.

        `listings` maps a node's party to the (id, signer set) pairs it holds unconsumed
        (of the key's current generation). An id becomes ready only if every signer of its
        set listed it with that same set; a node that did not answer lists nothing. Spent
        ids and ids already known stay as they are. Returns the number of ids added.
        """
        state = self._keys.setdefault(key_id, _KeyPools())
        seen: dict[bytes, SignerSet] = {}
        listed_by: dict[bytes, set[int]] = {}
        conflicting: set[bytes] = set()
        for party, entries in listings.items():
            for presignature_id, signers in entries:
                pid = bytes(presignature_id)
                try:
                    members = _signer_set(signers)
                except InvalidInput:
                    conflicting.add(pid)
                    continue
                if party not in members or seen.setdefault(pid, members) != members:
                    conflicting.add(pid)
                    continue
                listed_by.setdefault(pid, set()).add(party)
        added = 0
        for pid, members in sorted(seen.items()):
            if pid in conflicting or pid in state.spent or pid in state.known:
                continue
            if listed_by.get(pid) != set(members):
                continue  # a signer did not answer or no longer holds it: unusable
            self._pool(state, members).ready.append(pid)
            state.known.add(pid)
            added += 1
        self._changed(state)
        return added

    def add(self, key_id: str, signers: Sequence[int], presignature_id: bytes) -> bool:
        """Put a freshly made presignature into its pool; False if the id was ever seen."""
        state = self._key(key_id)
        pid = bytes(presignature_id)
        if pid in state.spent or pid in state.known:
            return False
        pool = self._pool(state, _signer_set(signers))
        pool.ready.append(pid)
        pool.made += 1
        state.known.add(pid)
        self._changed(state)
        return True

    def take(self, key_id: str, signers: Sequence[int]) -> bytes | None:
        """Remove and return the oldest ready id of this set (it is spent from now on)."""
        state = self._keys.get(key_id)
        if state is None:
            return None
        pool = state.pools.get(_signer_set(signers))
        if pool is None or not pool.ready:
            return None
        pid = pool.ready.popleft()
        state.spent.add(pid)
        pool.used += 1
        self._changed(state)
        return pid

    def began(self, key_id: str, signers: Sequence[int]) -> None:
        """A background presign session for this pool started."""
        self._pool(self._key(key_id), _signer_set(signers)).in_flight += 1

    def ended(self, key_id: str, signers: Sequence[int], presignature_id: bytes | None) -> None:
        """A background presign session ended, with its id on success or None on failure."""
        state = self._key(key_id)
        pool = self._pool(state, _signer_set(signers))
        pool.in_flight = max(0, pool.in_flight - 1)
        if presignature_id is not None:
            self.add(key_id, signers, presignature_id)
        else:
            self._changed(state)

    def pools(self, key_id: str) -> list[Pool]:
        """This key's pools in signer-set order (empty if not loaded)."""
        state = self._keys.get(key_id)
        return [] if state is None else [state.pools[s] for s in sorted(state.pools)]

    def ready_count(self, key_id: str, signers: Sequence[int]) -> int:
        state = self._keys.get(key_id)
        pool = None if state is None else state.pools.get(_signer_set(signers))
        return 0 if pool is None else len(pool.ready)

    def preferred(self, key_id: str) -> SignerSet | None:
        state = self._keys.get(key_id)
        return None if state is None else state.preferred

    def set_preferred(self, key_id: str, signers: Sequence[int]) -> None:
        state = self._key(key_id)
        members = _signer_set(signers)
        if state.preferred != members:
            state.preferred = members
            self._changed(state)

    def choose_signers(self, key_id: str, usable: Sequence[int], threshold: int) -> SignerSet:
        """The signer set for one signature among `usable` parties (live, not excluded).

        In order: the preferred set if it has a ready presignature; any other usable set
        with ready ones (the fullest first); the preferred set (presignature on demand);
        otherwise the first `threshold` usable parties, which become the preferred set.
        """
        members = sorted(set(usable))
        if len(members) < threshold:
            raise InvalidInput(f"need {threshold} usable signers, have {len(members)}")
        fallback = tuple(members[:threshold])
        state = self._keys.get(key_id)
        if state is None:
            return fallback
        usable_set = set(members)
        preferred = state.preferred
        preferred_ok = preferred is not None and set(preferred) <= usable_set
        if preferred_ok and preferred is not None and self.ready_count(key_id, preferred):
            return preferred
        stocked = [
            p
            for p in state.pools.values()
            if p.ready and len(p.signers) == threshold and set(p.signers) <= usable_set
        ]
        if stocked:
            return max(stocked, key=lambda p: (len(p.ready), [-s for s in p.signers])).signers
        if preferred_ok and preferred is not None:
            return preferred
        self.set_preferred(key_id, fallback)
        return fallback

    def refill_set(self, key_id: str, usable: Sequence[int], threshold: int) -> SignerSet | None:
        """The set to refill now (the preferred one, re-chosen if it lost a member), or None
        when it is already full or fewer than `threshold` parties are usable."""
        if not self.enabled or key_id not in self._keys:
            return None
        members = sorted(set(usable))
        preferred = self.preferred(key_id)
        if preferred is None or not set(preferred) <= set(members):
            if len(members) < threshold:
                return None
            preferred = tuple(members[:threshold])
            self.set_preferred(key_id, preferred)
        return preferred if self.needs_refill(key_id) else None

    def needs_refill(self, key_id: str) -> bool:
        """Whether the preferred pool (or an unchosen one) is below target."""
        state = self._keys.get(key_id)
        if state is None or not self.enabled:
            return False
        if state.preferred is None:
            return True
        pool = state.pools.get(state.preferred)
        return pool is None or len(pool.ready) + pool.in_flight < self.target

    async def wait_changed(self, key_id: str) -> None:
        """Sleep until this key's pools change (a take, an add, a new preferred set)."""
        await self._key(key_id).changed.wait()


MakePresignature = Callable[[str, SignerSet], Awaitable[bytes]]
"""Run one presign session for (key id, signer set); returns the new presignature id."""
ChooseRefillSet = Callable[[str], Awaitable[SignerSet | None]]
"""Probe the key's holders and return `PresignPools.refill_set(...)` (None: nothing to do now)."""


class Refiller:
    """Keeps preferred pools at target in the background: one task per key, see the module doc."""

    def __init__(
        self,
        pools: PresignPools,
        make: MakePresignature,
        choose: ChooseRefillSet,
        max_parallel: int = DEFAULT_MAX_PARALLEL,
        min_backoff: float = MIN_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self.pools = pools
        self._make = make
        self._choose = choose
        self._limit = trio.Semaphore(max(1, max_parallel))
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._running: set[str] = set()
        self._nursery: trio.Nursery | None = None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the per-key refill tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None
                self._running.clear()

    def ensure(self, key_id: str) -> bool:
        """Start the refill task of a loaded key if it is not running; False if it cannot."""
        if not self.pools.enabled or self._nursery is None or not self.pools.loaded(key_id):
            return False
        if key_id not in self._running:
            self._running.add(key_id)
            self._nursery.start_soon(self._run_key, key_id)
        return True

    async def _run_key(self, key_id: str) -> None:
        # A long-lived task: drop the labels of the call that happened to start it.
        logs.bind(rpc=None, session_id=None, tenant=None, key_id=key_id, protocol="cggmp-presign")
        backoff = self._min_backoff
        while True:
            if not self.pools.needs_refill(key_id):
                await self.pools.wait_changed(key_id)
                continue
            try:
                signers = await self._choose(key_id)
            except Exception as exc:  # MpcError (no quorum, key gone) or a bug: retry later
                log.warning("presign refill for %s: cannot choose signers: %s", key_id, exc)
                await trio.sleep(backoff)
                backoff = min(2 * backoff, self._max_backoff)
                continue
            if signers is None:
                if self.pools.needs_refill(key_id):
                    await trio.sleep(backoff)  # too few live holders: look again later
                    backoff = min(2 * backoff, self._max_backoff)
                continue
            async with self._limit:
                self.pools.began(key_id, signers)
                presignature_id: bytes | None = None
                try:
                    presignature_id = await self._make(key_id, signers)
                except MpcError as exc:
                    log.warning("presign refill for %s with %s failed: %s", key_id, signers, exc)
                except Exception:  # a bug: log it and back off, never take the coordinator down
                    log.exception("presign refill for %s crashed", key_id)
                finally:
                    self.pools.ended(key_id, signers, presignature_id)
            if presignature_id is None:
                await trio.sleep(backoff)
                backoff = min(2 * backoff, self._max_backoff)
            else:
                backoff = self._min_backoff
