"""A node's pool of ready safe primes, sealed in its key store and refilled in a worker process.

CGGMP24 aux-info needs four fresh 1536-bit safe primes per party (p, q for the Paillier key,
p̂, q̂ for the ring-Pedersen modulus), and one takes a few seconds of CPU. The node keeps
`target` of them ready so an aux-info session does not wait for them.

- Primes are sealed in the node's `KeyStore` (AES-256-GCM, AAD bound to node, "prime-pool" and
  record id; see the prime-pool section of mpcnode/storage.py).
- `PrimePool.take` removes the primes it returns in one durable transaction: a prime is handed
  out at most once, even across a crash or restart. A prime that was taken but never used is
  simply lost, which costs only time.
- `PrimePool.add` (and so `refill`) stores only checked safe primes of the pool's exact size, and
  never a public test-fixture prime unless the pool was built with ``allow_test_primes=True``.
- Generation runs in a separate process (`generate_in_worker`): in a thread it would hold the
  GIL for seconds and stall health checks and other sessions.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from mpcnode.crypto.primes import DEFAULT_BITS, check_safe_prime, generate_safe_prime, is_test_prime
from mpcnode.errors import InvalidInput, MpcError
from mpcnode.storage import KeyStore
from mpcnode.workers import WorkerPool

__all__ = [
    "WORKER_NICENESS",
    "WORKER_PROCESSES",
    "PrimePool",
    "PrimePoolExhausted",
    "generate_in_worker",
    "run_in_worker",
    "shutdown_workers",
    "terminate_workers",
]

_T = TypeVar("_T")

WORKER_PROCESSES = 1
"""Processes in the prime worker pool: one background generator per node, so five nodes on a
small machine leave cores for signing."""

WORKER_NICENESS = 19
"""Added to the worker's nice value: pool refills are background work and yield the CPU to
signing and proofs in the node's main process."""


class PrimePoolExhausted(MpcError):
    """Fewer ready primes than asked for: refill the pool (or wait for a refill) and retry."""


class PrimePool:
    """`target` ready safe primes of `bits` bits, sealed in `store`.

    `take` and `count` are synchronous (one short SQLite transaction each); `refill` is async
    and takes the generator from the node, normally ``lambda: generate_in_worker(bits)``.
    """

    def __init__(
        self,
        store: KeyStore,
        target: int,
        bits: int = DEFAULT_BITS,
        *,
        allow_test_primes: bool = False,
    ) -> None:
        if isinstance(target, bool) or not isinstance(target, int) or target < 0:
            raise InvalidInput("pool target must be a non-negative integer")
        if isinstance(bits, bool) or not isinstance(bits, int) or bits < 2:
            raise InvalidInput("prime bit length must be an integer of at least 2")
        self._store = store
        self._target = target
        self._bits = bits
        self._allow_test_primes = allow_test_primes
        self._refill_lock = trio.Lock()

    @property
    def target(self) -> int:
        return self._target

    @property
    def bits(self) -> int:
        return self._bits

    @property
    def allow_test_primes(self) -> bool:
        return self._allow_test_primes

    def count(self) -> int:
        """How many primes are ready."""
        return self._store.prime_pool_count(self._bits)

    def add(self, prime: int) -> None:
        """Check `prime` (safe, exactly `bits` bits, not a test prime unless allowed) and store it.

        The check costs two strong primality tests (tens of ms at 1536 bits); it guards the
        pool against a broken or substituted generator.
        """
        check_safe_prime(prime, self._bits, allow_test_primes=self._allow_test_primes)
        self._store.prime_pool_put(self._bits, prime)

    def take(self, n: int) -> list[int]:
        """Remove and return `n` distinct primes, durably, oldest first.

        Raises PrimePoolExhausted (taking nothing) when fewer than `n` are ready. In a pool
        built without ``allow_test_primes``, a test-fixture prime found in the store (a data
        directory once used by a test) raises InvalidInput; the primes of that take are gone.
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidInput("n must be a non-negative integer")
        primes = self._store.prime_pool_take(self._bits, n)
        if primes is None:
            raise PrimePoolExhausted(
                f"asked for {n} safe primes of {self._bits} bits, {self.count()} ready"
            )
        if not self._allow_test_primes and any(is_test_prime(p) for p in primes):
            raise InvalidInput(
                "the prime pool held a test-only fixture prime (this data directory was used "
                "by a test); the affected primes were discarded"
            )
        return primes

    async def refill(self, generate: Callable[[], Awaitable[int]]) -> int:
        """Call `generate` until `target` primes are ready; returns how many were added.

        Each prime is checked and stored (in a thread, off the event loop) as soon as it
        arrives, so a cancelled refill keeps what it finished. Concurrent refills of one pool
        run one after the other. A generator that returns a wrong number raises InvalidInput.
        """
        async with self._refill_lock:
            added = 0
            while self.count() < self._target:
                prime = await generate()
                await trio.to_thread.run_sync(self.add, prime)
                added += 1
            return added

    def __repr__(self) -> str:
        return (
            f"PrimePool(node={self._store.node_name!r}, bits={self._bits}, target={self._target})"
        )


# --------------------------------------------------------------------------- worker process


def _worker_init() -> None:
    """Runs once in each new worker process: lowest priority, and SCHED_IDLE where the OS
    has it, so background prime generation only uses CPU time nothing else wants."""
    os.nice(WORKER_NICENESS)
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            pass  # not permitted here; the nice value still applies


_pool = WorkerPool("prime", WORKER_PROCESSES, _worker_init)
"""The idle-priority pool, started on first use ("spawn", see mpcnode/workers.py)."""


async def run_in_worker(fn: Callable[..., _T], *args: object) -> _T:
    """Run ``fn(*args)`` in the worker process; the trio loop stays free meanwhile.

    `fn` and `args` must pickle (a module-level function, plain values). The wait uses a
    done-callback, not a blocked thread. On cancellation a job that has not started is
    dropped; one already running finishes in the worker and its result is discarded.
    An exception raised by `fn` is re-raised here with its type and attributes.
    """
    return await _pool.run(fn, *args)


async def generate_in_worker(bits: int = DEFAULT_BITS) -> int:
    """A fresh safe prime of exactly `bits` bits, generated in the worker process."""
    return await run_in_worker(generate_safe_prime, bits)


def shutdown_workers() -> None:
    """Stop the worker process (idempotent; the next `run_in_worker` starts a new one).

    Queued jobs are cancelled; a prime being generated is finished first (seconds at most),
    so from trio call it as ``await trio.to_thread.run_sync(shutdown_workers)``.
    """
    _pool.shutdown()


def terminate_workers() -> None:
    """Kill the worker process at once (node shutdown): a prime half-generated is only time lost.

    `ProcessPoolExecutor` has no public way to stop a running job before Python 3.14, so this
    kills its processes directly, then shuts the executor down without waiting.
    """
    _pool.terminate()
