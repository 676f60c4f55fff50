"""mpcnode.prime_pool: a sealed, durable, take-once pool of safe primes, refilled in a worker."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from mpcnode.crypto.primes import generate_safe_prime, is_safe_prime, is_test_prime
from mpcnode.errors import InvalidInput
from mpcnode.prime_pool import (
    WORKER_NICENESS,
    PrimePool,
    PrimePoolExhausted,
    generate_in_worker,
    run_in_worker,
    shutdown_workers,
)
from mpcnode.storage import DB_NAME, KeyStore
from tests.fixtures.primes import load_test_primes

NODE = "mpc-0"
BITS = 256


@pytest.fixture(scope="module")
def fresh_primes() -> list[int]:
    """Freshly generated (so production-acceptable) 256-bit safe primes, shared by the module."""
    return [generate_safe_prime(BITS) for _ in range(8)]


@pytest.fixture
def kek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


@pytest.fixture
def store(data_dir: Path, kek: bytes) -> Iterator[KeyStore]:
    with KeyStore(data_dir, NODE, kek) as s:
        yield s


class FakeGenerator:
    """Hands out the given primes in order and counts calls (yields to trio like a real one)."""

    def __init__(self, primes: list[int]) -> None:
        self.primes = list(primes)
        self.calls = 0

    async def __call__(self) -> int:
        await trio.lowlevel.checkpoint()
        self.calls += 1
        return self.primes.pop(0)


def _filled(store: KeyStore, primes: list[int]) -> PrimePool:
    pool = PrimePool(store, target=len(primes), bits=BITS)
    for p in primes:
        pool.add(p)
    return pool


# --------------------------------------------------------------------------- take / count


def test_take_returns_distinct_stored_primes_and_removes_them(
    store: KeyStore, fresh_primes: list[int]
) -> None:
    pool = _filled(store, fresh_primes[:5])
    assert pool.count() == 5
    first = pool.take(2)
    assert pool.count() == 3
    rest = pool.take(3)
    assert pool.count() == 0
    taken = first + rest
    assert len(set(taken)) == 5
    assert taken == fresh_primes[:5]  # oldest first
    assert all(is_safe_prime(p) and p.bit_length() == BITS for p in taken)
    assert pool.take(0) == []


def test_take_more_than_ready_raises_and_takes_nothing(
    store: KeyStore, fresh_primes: list[int]
) -> None:
    pool = _filled(store, fresh_primes[:2])
    with pytest.raises(PrimePoolExhausted, match="2 ready"):
        pool.take(3)
    assert pool.count() == 2
    assert sorted(pool.take(2)) == sorted(fresh_primes[:2])
    with pytest.raises(PrimePoolExhausted):
        pool.take(1)


@pytest.mark.parametrize("n", [-1, True, 1.0])
def test_take_rejects_bad_counts(store: KeyStore, n: object) -> None:
    with pytest.raises(InvalidInput):
        PrimePool(store, target=1, bits=BITS).take(n)  # type: ignore[arg-type]


def test_pool_survives_reopen_and_a_taken_prime_is_gone(
    data_dir: Path, kek: bytes, fresh_primes: list[int]
) -> None:
    with KeyStore(data_dir, NODE, kek) as s:
        pool = _filled(s, fresh_primes[:4])
        taken = pool.take(1)
    with KeyStore(data_dir, NODE, kek) as s:
        pool = PrimePool(s, target=4, bits=BITS)
        assert pool.count() == 3
        rest = pool.take(3)
    assert set(rest) == set(fresh_primes[:4]) - set(taken)
    assert not set(rest) & set(taken)
    with KeyStore(data_dir, NODE, kek) as s:
        assert PrimePool(s, target=4, bits=BITS).count() == 0


def test_pools_of_different_sizes_are_separate(store: KeyStore, fresh_primes: list[int]) -> None:
    small = generate_safe_prime(64)
    PrimePool(store, target=1, bits=64).add(small)
    big = _filled(store, fresh_primes[:1])
    assert big.count() == 1
    assert PrimePool(store, target=1, bits=64).take(1) == [small]
    assert big.take(1) == fresh_primes[:1]


# --------------------------------------------------------------------------- sealing


def _encodings(p: int) -> list[bytes]:
    size = (p.bit_length() + 7) // 8
    big = p.to_bytes(size, "big")
    return [
        big,
        p.to_bytes(size, "little"),
        big[:16],  # any long chunk would do; catches a partial plaintext copy
        big[-16:],
        format(p, "x").encode(),
        format(p, "X").encode(),
        str(p).encode(),
    ]


def _data_dir_bytes(data_dir: Path) -> list[tuple[Path, bytes]]:
    files = [(path, path.read_bytes()) for path in sorted(data_dir.rglob("*")) if path.is_file()]
    assert any(path.name == DB_NAME for path, _ in files)
    return files


def test_primes_are_sealed_in_every_file_of_the_data_dir(
    data_dir: Path, kek: bytes, fresh_primes: list[int]
) -> None:
    primes = fresh_primes[:4]
    with KeyStore(data_dir, NODE, kek) as s:
        pool = _filled(s, primes)
        taken = pool.take(1)
        # While open (records partly still in the WAL) ...
        for path, content in _data_dir_bytes(data_dir):
            for p in primes:
                for needle in _encodings(p):
                    assert needle not in content, (path.name, "prime in plaintext")
    # ... and after close (checkpointed into the database file).
    for path, content in _data_dir_bytes(data_dir):
        for p in primes:
            for needle in _encodings(p):
                assert needle not in content, (path.name, "prime in plaintext")
    with KeyStore(data_dir, NODE, kek) as s:
        assert sorted(PrimePool(s, target=4, bits=BITS).take(3)) == sorted(set(primes) - set(taken))


def test_sealed_records_are_bound_to_their_record_id(
    data_dir: Path, kek: bytes, fresh_primes: list[int]
) -> None:
    with KeyStore(data_dir, NODE, kek) as s:
        _filled(s, fresh_primes[:2])
    conn = sqlite3.connect(data_dir / DB_NAME)
    rows = conn.execute("SELECT seq, sealed FROM prime_pool ORDER BY seq").fetchall()
    assert len(rows) == 2
    (seq_a, sealed_a), (seq_b, sealed_b) = rows
    with conn:
        conn.execute("UPDATE prime_pool SET sealed = ? WHERE seq = ?", (sealed_b, seq_a))
        conn.execute("UPDATE prime_pool SET sealed = ? WHERE seq = ?", (sealed_a, seq_b))
    conn.close()
    with KeyStore(data_dir, NODE, kek) as s:
        pool = PrimePool(s, target=2, bits=BITS)
        with pytest.raises(InvalidInput, match="authentication"):
            pool.take(1)
        assert pool.count() == 2  # the failed take removed nothing


# --------------------------------------------------------------------------- what gets stored


def test_add_refuses_test_primes_unless_allowed(store: KeyStore) -> None:
    fixture = load_test_primes(BITS)
    production = PrimePool(store, target=2, bits=BITS)
    with pytest.raises(InvalidInput, match="test-only"):
        production.add(fixture[0])
    assert production.count() == 0
    testing = PrimePool(store, target=2, bits=BITS, allow_test_primes=True)
    testing.add(fixture[0])
    testing.add(fixture[1])
    assert testing.count() == 2
    # A production pool on a data dir a test has filled refuses to hand those primes out.
    with pytest.raises(InvalidInput, match="test-only"):
        production.take(1)
    assert testing.take(1) == [fixture[1]]


def test_add_refuses_non_safe_and_wrong_size_primes(store: KeyStore) -> None:
    pool = PrimePool(store, target=3, bits=BITS, allow_test_primes=True)
    p = load_test_primes(BITS)[0]
    for bad in (p + 2, p * 3, (p - 1) // 2, load_test_primes(1024)[0], -p, 0):
        with pytest.raises(InvalidInput):
            pool.add(bad)
    with pytest.raises(InvalidInput):
        pool.add(str(p))  # type: ignore[arg-type]
    assert pool.count() == 0


# --------------------------------------------------------------------------- refill


async def test_refill_reaches_target_and_stops(store: KeyStore, fresh_primes: list[int]) -> None:
    pool = PrimePool(store, target=3, bits=BITS)
    pool.add(fresh_primes[0])
    generate = FakeGenerator(fresh_primes[1:])
    assert await pool.refill(generate) == 2
    assert pool.count() == 3
    assert generate.calls == 2
    assert await pool.refill(generate) == 0
    assert generate.calls == 2
    assert pool.take(3) == fresh_primes[:3]


async def test_concurrent_refills_do_not_overshoot(
    store: KeyStore, fresh_primes: list[int]
) -> None:
    pool = PrimePool(store, target=4, bits=BITS)
    generate = FakeGenerator(fresh_primes)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pool.refill, generate)
        nursery.start_soon(pool.refill, generate)
    assert pool.count() == 4
    assert generate.calls == 4


async def test_refill_rejects_a_bad_generator(store: KeyStore, fresh_primes: list[int]) -> None:
    pool = PrimePool(store, target=3, bits=BITS)
    with pytest.raises(InvalidInput):
        await pool.refill(FakeGenerator([fresh_primes[0], fresh_primes[1] + 2]))
    assert pool.count() == 1  # what arrived before the bad one is kept
    with pytest.raises(InvalidInput, match="test-only"):
        await pool.refill(FakeGenerator(load_test_primes(BITS)))
    assert pool.count() == 1


async def test_cancelled_refill_keeps_finished_primes(
    store: KeyStore, fresh_primes: list[int]
) -> None:
    pool = PrimePool(store, target=5, bits=BITS)
    ready = FakeGenerator(fresh_primes[:2])

    async def generate() -> int:
        if ready.primes:
            return await ready()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    with trio.move_on_after(0.5) as scope:
        await pool.refill(generate)
    assert scope.cancelled_caught
    assert pool.count() == 2


# --------------------------------------------------------------------------- worker process


async def test_worker_runs_in_another_process_and_generates() -> None:
    try:
        worker_pid = await run_in_worker(os.getpid)
        assert worker_pid != os.getpid()
        p = await generate_in_worker(64)
        assert p.bit_length() == 64 and is_safe_prime(p) and not is_test_prime(p)
        assert await run_in_worker(os.getpid) == worker_pid  # one lazily created worker, reused
        # Background work: the worker runs at a lower priority than the node.
        assert await run_in_worker(os.nice, 0) == min(19, os.nice(0) + WORKER_NICENESS)
    finally:
        await trio.to_thread.run_sync(shutdown_workers)
    # After shutdown the next call starts a new worker.
    try:
        assert await run_in_worker(os.getpid) not in (os.getpid(), worker_pid)
    finally:
        await trio.to_thread.run_sync(shutdown_workers)


async def test_worker_errors_propagate() -> None:
    try:
        with pytest.raises(InvalidInput):
            await generate_in_worker(8)  # below MIN_BITS, raised inside the worker
    finally:
        await trio.to_thread.run_sync(shutdown_workers)


async def test_waiting_for_the_worker_is_cancellable_and_keeps_trio_free(
    store: KeyStore,
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await trio.sleep(0.01)
            ticks += 1

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            with trio.move_on_after(0.3) as scope:
                await run_in_worker(time.sleep, 0.8)
            nursery.cancel_scope.cancel()
        assert scope.cancelled_caught
        assert ticks > 0  # the loop ran while the worker was busy
        # Refill through the real worker: end to end.
        pool = PrimePool(store, target=2, bits=64)
        assert await pool.refill(lambda: generate_in_worker(64)) == 2
        assert len(set(pool.take(2))) == 2
    finally:
        await trio.to_thread.run_sync(shutdown_workers)
