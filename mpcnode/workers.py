"""Worker processes for protocol arithmetic (Paillier, ZK proofs), bridged to trio.

A proof computed in the node's own process holds the GIL and stalls health checks and every
other session (DESIGN.md, Concurrency). So a session step runs in a worker process: the
session object is pickled to the worker, `start()` or `receive()` runs there, and the updated
session comes back with its outgoing messages. The trio loop only waits on a done-callback.

Two pools share the machinery here (`WorkerPool`):

- the proof pool of this module: ``WORKER_PROCESSES`` processes at normal priority, since a
  signing request waits for them;
- the prime pool of mpcnode/prime_pool.py: one process at idle priority for background
  safe-prime generation.

Workers are started with "spawn" (a fresh interpreter: forking a process that runs grpc
threads is unsafe), so nothing of the parent's state leaks in except the pickled job, and a
proof worker does not inherit the prime worker's SCHED_IDLE.

Errors raised in a worker reach the caller as the same exception type with the same
attributes (a ProtocolAborted keeps its culprits), whatever the class's ``__init__`` looks
like: the worker ships (class, args, attributes) and the caller rebuilds the exception
without calling ``__init__``. The worker's traceback text is attached as ``__cause__``.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import pickle
import threading
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar, cast

import trio

from mpcnode.errors import InternalBug
from mpcnode.protocols.base import Incoming, Outgoing, Session

__all__ = [
    "WORKER_PROCESSES",
    "RemoteTraceback",
    "WorkerPool",
    "await_future",
    "run_call",
    "run_receive",
    "run_start",
    "shutdown_proof_workers",
    "terminate_proof_workers",
]

_T = TypeVar("_T")
_S = TypeVar("_S", bound=Session[Any])

WORKER_PROCESSES = max(1, os.cpu_count() or 1)
"""Processes in the proof pool: one per core, so the sessions of one node use every core."""

_TERMINATE_JOIN_SECONDS = 2.0


# --------------------------------------------------------------------------- pickling
# Jobs and results travel as pickled bytes. Points compare their group by identity; the groups
# pickle by reference to their module-level instance (`Group.__reduce__`), so a session's
# points still mix with the points it decodes in the worker.


def _dumps(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


# --------------------------------------------------------------------------- error transport


class RemoteTraceback(Exception):
    """The formatted traceback of an exception raised in a worker (set as its ``__cause__``)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return self.text


def _portable_failure(exc: Exception) -> bytes:
    """Pickled (class, args, attributes, traceback) of `exc`, or of an InternalBug naming its
    type when they do not pickle (an unpicklable attribute, a class defined in a function)."""
    text = "".join(traceback.format_exception(exc))
    try:
        return _dumps((type(exc), exc.args, dict(vars(exc)), text))
    except Exception:
        bug = InternalBug(f"{type(exc).__qualname__} raised in a worker process (not transferable)")
        return _dumps((InternalBug, bug.args, {}, text))


def _rebuild_failure(data: bytes) -> BaseException:
    """Inverse of `_portable_failure`: the exception, built without calling its ``__init__``."""
    try:
        cls, args, state, text = pickle.loads(data)
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            raise TypeError("not an exception class")
        exc: BaseException = cls.__new__(cls, *args)
        exc.args = tuple(args)
        exc.__dict__.update(state)
    except Exception:
        return InternalBug("a worker process raised an exception that cannot be rebuilt here")
    exc.__cause__ = RemoteTraceback(str(text))
    return exc


def _call(job: bytes) -> tuple[bool, bytes]:
    """Runs in the worker: (True, pickled result) or (False, portable failure)."""
    try:
        fn, args = pickle.loads(job)
    except Exception as exc:
        return False, _portable_failure(exc)
    try:
        result = fn(*args)
    except Exception as exc:
        return False, _portable_failure(exc)
    try:
        return True, _dumps(result)
    except Exception as exc:
        bug = InternalBug(
            f"the result of {getattr(fn, '__qualname__', '?')} cannot be sent back "
            f"({type(exc).__name__}: {exc})"
        )
        return False, _portable_failure(bug)


# --------------------------------------------------------------------------- trio bridge


async def await_future(future: Future[_T]) -> _T:
    """Wait for a concurrent.futures future from trio without blocking a thread.

    A done-callback wakes the trio task through its trio token. If the waiting task is
    cancelled, the future is cancelled too: a job that has not started is dropped, one
    already running finishes and its result is discarded.
    """
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: Future[_T]) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:
            pass  # the trio run that waited is gone; nobody needs the result

    future.add_done_callback(wake)
    try:
        await done.wait()
    except BaseException:
        future.cancel()
        raise
    return future.result()


class WorkerPool:
    """A lazily started ``ProcessPoolExecutor`` ("spawn") whose jobs are awaited from trio.

    `initializer` runs once in each new worker process (e.g. to set its priority). A pool
    whose process died is replaced on the next call; `shutdown` and `terminate` stop it
    (the next call starts a new one).
    """

    def __init__(
        self,
        name: str,
        max_workers: int,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError("max_workers must be a positive integer")
        self.name = name
        self.max_workers = max_workers
        self._initializer = initializer
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get_executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.max_workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=self._initializer,
                )
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is executor:
                self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., _T], *args: object) -> _T:
        """``fn(*args)`` in a worker process; the trio loop stays free meanwhile.

        `fn` must pickle by reference (a module-level function) and `args` by value. An
        exception raised by `fn` is re-raised here with its type and attributes. A worker
        that dies, or a pool stopped while the job waits, raises InternalBug.
        """
        try:
            job = _dumps((fn, args))
        except Exception as exc:
            raise InternalBug(
                f"cannot send {getattr(fn, '__qualname__', '?')} to the {self.name} worker "
                f"({type(exc).__name__}: {exc})"
            ) from None
        executor = self._get_executor()
        try:
            future = executor.submit(_call, job)
        except RuntimeError:  # broken (a worker died), or stopped between the two lines
            self._discard(executor)
            executor = self._get_executor()
            future = executor.submit(_call, job)
        try:
            ok, data = await await_future(future)
        except BrokenProcessPool:
            self._discard(executor)
            raise InternalBug(f"the {self.name} worker process exited unexpectedly") from None
        except concurrent.futures.CancelledError:
            raise InternalBug(f"the {self.name} worker pool was stopped") from None
        except Exception as exc:  # `_call` returns every error of `fn`: this is transport
            raise InternalBug(
                f"cannot run {getattr(fn, '__qualname__', '?')} in the {self.name} worker "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if not ok:
            raise _rebuild_failure(data)
        try:
            return cast(_T, pickle.loads(data))
        except Exception as exc:
            raise InternalBug(
                f"cannot load the result of {getattr(fn, '__qualname__', '?')} from the "
                f"{self.name} worker ({type(exc).__name__})"
            ) from None

    def shutdown(self) -> None:
        """Stop the pool, letting running jobs finish (blocks; call it from a thread)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def terminate(self) -> None:
        """Kill the pool's processes at once (node shutdown) and reap them.

        `ProcessPoolExecutor` has no public way to stop a running job before Python 3.14, so
        this kills its processes directly, then shuts the executor down without waiting.
        Jobs that were waiting raise InternalBug in their callers.
        """
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        processes = list((getattr(executor, "_processes", None) or {}).values())
        for process in processes:
            process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(_TERMINATE_JOIN_SECONDS)

    def __repr__(self) -> str:
        return f"WorkerPool({self.name!r}, max_workers={self.max_workers})"


# --------------------------------------------------------------------------- proof pool


def _normal_priority_init() -> None:
    """Runs once in each proof worker: make sure it is not at idle scheduling priority.

    A spawned process inherits its parent thread's policy; should the pool ever be started
    from a SCHED_IDLE thread, the worker moves itself back to SCHED_OTHER (allowed when the
    process may lower its nice value; otherwise it stays as it is).
    """
    if hasattr(os, "sched_getscheduler") and hasattr(os, "SCHED_OTHER"):
        try:
            if os.sched_getscheduler(0) != os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


_PROOF_POOL = WorkerPool("proof", WORKER_PROCESSES, _normal_priority_init)


def _session_start(session: _S) -> tuple[_S, list[Outgoing]]:
    """Runs in the worker."""
    outgoing = session.start()
    return session, outgoing


def _session_receive(session: _S, incoming: list[Incoming]) -> tuple[_S, list[Outgoing]]:
    """Runs in the worker."""
    outgoing = session.receive(incoming)
    return session, outgoing


def _mark_dead(session: Session[Any]) -> None:
    """Mirror the in-process rule "after any exception the session is dead" on the caller's copy
    (the worker's copy, which died, is not sent back)."""
    session._dead = True


async def run_start(session: _S) -> tuple[_S, list[Outgoing]]:
    """``session.start()`` in a proof worker: returns the started session and round 1.

    The returned session replaces the one passed in; do not use the old object again (if
    the step raises, it is marked dead, as the session in the worker is).
    """
    try:
        return await _PROOF_POOL.run(_session_start, session)
    except BaseException:  # also cancellation: the step's outcome is unknown
        _mark_dead(session)
        raise


async def run_receive(session: _S, incoming: Sequence[Incoming]) -> tuple[_S, list[Outgoing]]:
    """``session.receive(incoming)`` in a proof worker: returns the advanced session and the
    next round's messages. Same replacement rule as `run_start`."""
    try:
        return await _PROOF_POOL.run(_session_receive, session, list(incoming))
    except BaseException:  # also cancellation: the step's outcome is unknown
        _mark_dead(session)
        raise


async def run_call(fn: Callable[..., _T], *args: object) -> _T:
    """``fn(*args)`` in a proof worker (a module-level function and picklable arguments)."""
    return await _PROOF_POOL.run(fn, *args)


def shutdown_proof_workers() -> None:
    """Stop the proof pool after its running jobs (blocks: from trio, use a thread)."""
    _PROOF_POOL.shutdown()


def terminate_proof_workers() -> None:
    """Kill the proof pool's processes at once (node shutdown); the next call starts new ones."""
    _PROOF_POOL.terminate()
