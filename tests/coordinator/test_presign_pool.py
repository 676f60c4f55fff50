"""Presignature pool bookkeeping and the refill policy, with fakes instead of nodes."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing

from coordinator.presign_pool import PresignPools, Refiller, SignerSet
from mpcnode.errors import InvalidInput, ProtocolAborted

KEY = "key-1"
S123: SignerSet = (1, 2, 3)
S234: SignerSet = (2, 3, 4)


def ids(n: int) -> list[bytes]:
    return [os.urandom(16) for _ in range(n)]


# ------------------------------------------------------------------------ bookkeeping


def test_take_never_hands_out_an_id_twice() -> None:
    pools = PresignPools(target=4)
    pools.register(KEY)
    made = ids(5)
    for pid in made:
        assert pools.add(KEY, S123, pid)
    taken = [pools.take(KEY, S123) for _ in range(7)]
    assert taken[:5] == made  # oldest first
    assert taken[5:] == [None, None]
    # A spent id can never come back: not from a refill, not from a rebuild.
    assert not pools.add(KEY, S123, made[0])
    assert pools.rebuild(KEY, {p: [(pid, S123) for pid in made] for p in S123}) == 0
    assert pools.take(KEY, S123) is None
    # An id already in a pool is not added twice either.
    fresh = os.urandom(16)
    assert pools.add(KEY, S123, fresh)
    assert not pools.add(KEY, S123, fresh)
    assert pools.rebuild(KEY, {p: [(fresh, S123)] for p in S123}) == 0
    assert pools.take(KEY, S123) == fresh
    assert pools.take(KEY, S123) is None
    [pool] = pools.pools(KEY)
    assert (pool.made, pool.used, len(pool.ready)) == (6, 6, 0)


def test_take_is_per_signer_set_and_key() -> None:
    pools = PresignPools(target=2)
    pools.register(KEY)
    pools.register("other")
    a, b = ids(2)
    pools.add(KEY, S123, a)
    pools.add("other", S123, b)
    assert pools.take(KEY, S234) is None
    assert pools.take(KEY, (3, 2, 1)) == a  # order of the signers does not matter
    assert pools.take(KEY, S123) is None
    assert pools.take("other", S123) == b
    assert pools.take("unknown-key", S123) is None


def test_rebuild_requires_every_signer_to_list_an_id() -> None:
    pools = PresignPools(target=8)
    full, partial, wrong_set, foreign, poisoned = ids(5)
    listings = {
        1: [(full, S123), (partial, S123), (wrong_set, S123), (poisoned, S123)],
        2: [
            (full, S123),
            (partial, S123),
            (wrong_set, (1, 2, 4)),
            (foreign, S234),
            (poisoned, S123),
        ],
        3: [(full, S123), (wrong_set, S123), (foreign, S234), (poisoned, S123)],
        4: [(foreign, S234)],
        # Node 5 lists an id for a set it is not in: conflicting reports, the id is not used.
        5: [(poisoned, S123)],
    }
    assert pools.rebuild(KEY, listings) == 2
    assert pools.take(KEY, S123) == full
    # partial: 3 did not list it; wrong_set: the sets differ; poisoned: listed by an outsider.
    assert pools.take(KEY, S123) is None
    assert pools.take(KEY, S234) == foreign
    # A node that did not answer lists nothing: ids of its sets are not ready.
    again = PresignPools(target=8)
    pid = os.urandom(16)
    assert again.rebuild(KEY, {1: [(pid, S123)], 2: [(pid, S123)]}) == 0
    assert again.loaded(KEY) and again.take(KEY, S123) is None
    # Rebuilt ids are ready but were not made by this coordinator.
    [pool] = [p for p in pools.pools(KEY) if p.signers == S123]
    assert (pool.made, pool.used) == (0, 1)


def test_rebuild_ignores_malformed_signer_sets() -> None:
    pools = PresignPools(target=8)
    pid = os.urandom(16)
    assert pools.rebuild(KEY, {1: [(pid, (1, 1, 2))], 2: [(pid, (1, 1, 2))]}) == 0
    assert pools.rebuild(KEY, {1: [(pid, ())]}) == 0
    assert pools.pools(KEY) == []


def test_in_flight_and_counters() -> None:
    pools = PresignPools(target=2)
    pools.register(KEY)
    pools.began(KEY, S123)
    pools.began(KEY, S123)
    [pool] = pools.pools(KEY)
    assert pool.in_flight == 2
    pools.ended(KEY, S123, None)  # a failed presign adds nothing
    pid = os.urandom(16)
    pools.ended(KEY, S123, pid)
    assert (pool.in_flight, pool.made, list(pool.ready)) == (0, 1, [pid])


def test_choose_signers_prefers_a_stocked_set() -> None:
    pools = PresignPools(target=2)
    pools.register(KEY)
    everyone = [1, 2, 3, 4, 5]
    # Nothing ready, no preferred set yet: the first t usable parties become preferred.
    assert pools.choose_signers(KEY, everyone, 3) == S123
    assert pools.preferred(KEY) == S123
    # Another set with ready presignatures beats the empty preferred one.
    pools.add(KEY, S234, os.urandom(16))
    assert pools.choose_signers(KEY, everyone, 3) == S234
    assert pools.preferred(KEY) == S123  # ... without moving the preference
    pools.add(KEY, S123, os.urandom(16))
    assert pools.choose_signers(KEY, everyone, 3) == S123
    # Preferred set with a dead member: a stocked usable set, else a new preferred set.
    assert pools.choose_signers(KEY, [2, 3, 4, 5], 3) == S234
    pools.take(KEY, S234)
    assert pools.choose_signers(KEY, [2, 3, 4, 5], 3) == S234
    assert pools.preferred(KEY) == S234
    with pytest.raises(InvalidInput):
        pools.choose_signers(KEY, [1, 2], 3)
    # A key whose pools are not loaded gets the first t usable parties.
    assert pools.choose_signers("unloaded", [5, 4, 3, 2], 3) == S234


def test_refill_set_follows_the_preferred_set() -> None:
    pools = PresignPools(target=1)
    assert pools.refill_set(KEY, [1, 2, 3], 3) is None  # not loaded
    pools.register(KEY)
    assert pools.refill_set(KEY, [1, 2, 3, 4, 5], 3) == S123
    pools.add(KEY, S123, os.urandom(16))
    assert pools.refill_set(KEY, [1, 2, 3, 4, 5], 3) is None  # full
    assert pools.refill_set(KEY, [2, 3, 4, 5], 3) == S234  # a member died: new preferred
    assert pools.preferred(KEY) == S234
    assert pools.refill_set(KEY, [4, 5], 3) is None  # too few usable


def test_target_zero_disables_pooling() -> None:
    pools = PresignPools(target=0)
    assert not pools.enabled
    pools.register(KEY)
    assert not pools.needs_refill(KEY)
    assert pools.refill_set(KEY, [1, 2, 3], 3) is None
    with pytest.raises(InvalidInput):
        PresignPools(target=-1)


# ------------------------------------------------------------------------ refill policy


class FakePresigner:
    """Stands in for presign sessions: counts them and checks one at a time per key."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[str, SignerSet]] = []
        self.running: dict[str, int] = {}
        self.max_running: dict[str, int] = {}
        self.fail_first = fail_first
        self.release = trio.Event()
        self.hold = False

    async def make(self, key_id: str, signers: SignerSet) -> bytes:
        self.calls.append((key_id, signers))
        self.running[key_id] = self.running.get(key_id, 0) + 1
        self.max_running[key_id] = max(self.max_running.get(key_id, 0), self.running[key_id])
        try:
            if self.hold:
                await self.release.wait()
            await trio.sleep(0.01)
            if self.fail_first > 0:
                self.fail_first -= 1
                raise ProtocolAborted("bad proof", [2])
            return os.urandom(16)
        finally:
            self.running[key_id] -= 1


async def until_ready(pools: PresignPools, key_id: str, signers: SignerSet, n: int) -> None:
    """Wait (at most 5 s) until the pool of (key, signers) holds n ready ids."""
    with trio.fail_after(5):
        while pools.ready_count(key_id, signers) < n:
            await pools.wait_changed(key_id)


def chooser(pools: PresignPools, usable: list[int], threshold: int = 3):  # type: ignore[no-untyped-def]
    async def choose(key_id: str) -> SignerSet | None:
        return pools.refill_set(key_id, usable, threshold)

    return choose


async def test_refill_tops_up_to_target_one_at_a_time() -> None:
    pools = PresignPools(target=3)
    fake = FakePresigner()
    refiller = Refiller(pools, fake.make, chooser(pools, [1, 2, 3, 4, 5]), min_backoff=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(refiller.run)
        assert not refiller.ensure(KEY)  # not loaded yet: nothing to refill
        pools.register(KEY)
        assert refiller.ensure(KEY)
        assert refiller.ensure(KEY)  # idempotent: still one task
        await until_ready(pools, KEY, S123, 3)
        await trio.sleep(0.1)
        assert len(fake.calls) == 3  # stops at target
        assert fake.max_running[KEY] == 1
        # Taking one wakes the refiller, which makes exactly one more.
        taken = pools.take(KEY, S123)
        await until_ready(pools, KEY, S123, 3)
        await trio.sleep(0.1)
        assert len(fake.calls) == 4
        assert taken not in pools.pools(KEY)[0].ready
        [pool] = pools.pools(KEY)
        assert (pool.made, pool.used, pool.in_flight) == (4, 1, 0)
        nursery.cancel_scope.cancel()


async def test_refill_counts_in_flight_and_limits_parallel_keys() -> None:
    pools = PresignPools(target=2)
    fake = FakePresigner()
    fake.hold = True
    refiller = Refiller(pools, fake.make, chooser(pools, [1, 2, 3]), max_parallel=2)
    async with trio.open_nursery() as nursery:
        await nursery.start(refiller.run)
        for key in ("k1", "k2", "k3"):
            pools.register(key)
            refiller.ensure(key)
        await trio.testing.wait_all_tasks_blocked()
        assert sum(fake.running.values()) == 2  # global limit
        assert all(n <= 1 for n in fake.running.values())  # one per key
        busy = [k for k, n in fake.running.items() if n]
        assert [pools.pools(k)[0].in_flight for k in busy] == [1, 1]
        fake.release.set()
        for key in ("k1", "k2", "k3"):
            await until_ready(pools, key, S123, 2)
        assert len(fake.calls) == 6
        assert max(fake.max_running.values()) == 1
        nursery.cancel_scope.cancel()


async def test_refill_backs_off_after_a_failure_and_recovers() -> None:
    pools = PresignPools(target=1)
    fake = FakePresigner(fail_first=2)
    refiller = Refiller(pools, fake.make, chooser(pools, [1, 2, 3]), min_backoff=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(refiller.run)
        pools.register(KEY)
        refiller.ensure(KEY)
        await until_ready(pools, KEY, S123, 1)
        assert len(fake.calls) == 3
        [pool] = pools.pools(KEY)
        assert (pool.made, pool.in_flight) == (1, 0)
        nursery.cancel_scope.cancel()


async def test_refill_waits_while_too_few_holders_are_usable() -> None:
    pools = PresignPools(target=1)
    fake = FakePresigner()
    usable = [1, 2]
    refiller = Refiller(pools, fake.make, chooser(pools, usable), min_backoff=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(refiller.run)
        pools.register(KEY)
        refiller.ensure(KEY)
        await trio.sleep(0.1)
        assert fake.calls == []
        usable.append(4)  # a third holder is back
        await until_ready(pools, KEY, (1, 2, 4), 1)
        assert fake.calls == [(KEY, (1, 2, 4))]
        nursery.cancel_scope.cancel()


async def test_target_zero_never_refills() -> None:
    pools = PresignPools(target=0)
    fake = FakePresigner()
    refiller = Refiller(pools, fake.make, chooser(pools, [1, 2, 3]))
    async with trio.open_nursery() as nursery:
        await nursery.start(refiller.run)
        pools.register(KEY)
        assert not refiller.ensure(KEY)
        await trio.sleep(0.05)
        assert fake.calls == []
        nursery.cancel_scope.cancel()


async def test_refill_survives_a_crashing_presign() -> None:
    pools = PresignPools(target=1)
    calls = []

    async def make(key_id: str, signers: SignerSet) -> bytes:
        calls.append(signers)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return os.urandom(16)

    refiller = Refiller(pools, make, chooser(pools, [1, 2, 3]), min_backoff=0.01)
    async with trio.open_nursery() as nursery:
        await nursery.start(refiller.run)
        pools.register(KEY)
        refiller.ensure(KEY)
        await until_ready(pools, KEY, S123, 1)
        assert len(calls) == 2
        assert pools.pools(KEY)[0].in_flight == 0
        nursery.cancel_scope.cancel()
