"""mpcnode.workers: protocol steps in worker processes, errors intact, the trio loop kept free."""

from __future__ import annotations

import os
import pickle
import random
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import trio

from mpcnode import errors
from mpcnode.crypto.group import ED25519
from mpcnode.crypto.sharing import interpolate_at_zero
from mpcnode.crypto.zk import pi_sch
from mpcnode.crypto.zk._common import ProofContext
from mpcnode.errors import InternalBug, InvalidProof, MpcError, ProtocolAborted
from mpcnode.prime_pool import run_in_worker, terminate_workers
from mpcnode.protocols.base import BROADCAST, COORDINATOR, Incoming, Outgoing, execution_id
from mpcnode.protocols.frost.dkg import FrostDkgSession
from mpcnode.protocols.keys import KeyShare
from mpcnode.protocols.simulation import run_sessions
from mpcnode.workers import (
    WORKER_PROCESSES,
    RemoteTraceback,
    run_call,
    run_receive,
    run_start,
    terminate_proof_workers,
)

PARTIES = (1, 2, 3)
THRESHOLD = 2


@pytest.fixture(autouse=True)
def _fresh_pool() -> Iterator[None]:
    """Each test starts and ends without proof workers (no state leaks between tests)."""
    terminate_proof_workers()
    yield
    terminate_proof_workers()


# --------------------------------------------------------------------------- worker-side jobs
# Module-level so they pickle by reference into the spawned workers.


class TwoPartError(MpcError):
    """An error whose __init__ does not accept its own args back (breaks default pickling)."""

    def __init__(self, what: str, parties: list[int]) -> None:
        self.what = what
        self.parties = tuple(parties)
        super().__init__(f"{what}: parties {self.parties}")


class UnpicklableError(MpcError):
    def __init__(self) -> None:
        super().__init__("carries a lock")
        self.lock = threading.Lock()


def raise_error(name: str, *args: Any) -> None:
    raise getattr(errors, name)(*args)


def raise_two_part() -> None:
    raise TwoPartError("bad share", [4, 2])


def raise_unpicklable() -> None:
    raise UnpicklableError()


def burn_cpu(seconds: float) -> tuple[int, float]:
    """Spin on the CPU for `seconds` of CPU time; returns (pid, CPU seconds used)."""
    start = time.process_time()
    while time.process_time() - start < seconds:
        pass
    return os.getpid(), time.process_time() - start


def report_then_sleep(port: int, seconds: float) -> None:
    """Tell the test (over a local TCP connection) that the job runs, and in which process."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(str(os.getpid()).encode())
    time.sleep(seconds)


def sched_info() -> tuple[int, int, int]:
    """(pid, scheduling policy, nice value) of the calling worker."""
    return os.getpid(), os.sched_getscheduler(0), os.nice(0)


# --------------------------------------------------------------------------- helpers


def _dkg_sessions(seed: int, sid: bytes = b"sid") -> dict[int, FrostDkgSession]:
    """Deterministic sessions: their randomness (a seeded `random.Random`) pickles with them."""
    eid = execution_id("frost-dkg", sid, "key-w", PARTIES, THRESHOLD)
    return {
        p: FrostDkgSession(p, PARTIES, THRESHOLD, eid, randomness=random.Random(seed + p).randbytes)
        for p in PARTIES
    }


def _route(pending: Mapping[int, list[Outgoing]]) -> dict[int, list[Incoming]]:
    inbox: dict[int, list[Incoming]] = {p: [] for p in PARTIES}
    for sender, messages in pending.items():
        for m in messages:
            assert m.recipient != COORDINATOR
            targets = (
                [p for p in PARTIES if p != sender] if m.recipient == BROADCAST else [m.recipient]
            )
            for p in targets:
                inbox[p].append(Incoming(m.round, sender, m.recipient == BROADCAST, m.payload))
    return inbox


async def _run_dkg_in_workers(
    sessions: dict[int, FrostDkgSession],
) -> dict[int, FrostDkgSession]:
    """Drive every party's session through the proof workers, all parties concurrently."""
    current = dict(sessions)
    pending: dict[int, list[Outgoing]] = {}

    async def step(party: int, incoming: list[Incoming] | None) -> None:
        if incoming is None:
            current[party], pending[party] = await run_start(current[party])
        else:
            current[party], pending[party] = await run_receive(current[party], incoming)

    async with trio.open_nursery() as nursery:
        for p in PARTIES:
            nursery.start_soon(step, p, None)
    while not all(s.done for s in current.values()):
        inbox = _route(pending)
        pending = {}
        async with trio.open_nursery() as nursery:
            for p in PARTIES:
                nursery.start_soon(step, p, inbox[p])
    return current


# --------------------------------------------------------------------------- sessions


async def test_frost_dkg_through_workers_matches_in_process() -> None:
    originals = _dkg_sessions(seed=7)
    finished = await _run_dkg_in_workers(originals)
    shares: dict[int, KeyShare] = {p: s.output for p, s in finished.items()}

    # The work happened elsewhere: the objects passed in were never started.
    for p in PARTIES:
        assert finished[p] is not originals[p] and originals[p].round == 0

    # A valid key: every pair of shares recombines to the secret of the public key.
    public = shares[1].public
    assert all(s.public == public for s in shares.values())
    for subset in ([1, 2], [1, 3], [2, 3]):
        secret = interpolate_at_zero(ED25519.order, {p: shares[p].secret_share for p in subset})
        assert ED25519.base_mul(secret) == public.public_key

    # The same seeds in-process give the same shares: the session state (randomness included)
    # round-trips through the workers.
    in_process = _dkg_sessions(seed=7)
    run_sessions(in_process)
    assert {p: s.output.encode() for p, s in in_process.items()} == {
        p: s.encode() for p, s in shares.items()
    }


async def test_protocol_abort_keeps_type_and_culprits_and_kills_the_session() -> None:
    sessions = _dkg_sessions(seed=11)
    forged = _dkg_sessions(seed=12, sid=b"other execution")[2].start()[0].payload
    round1 = {}
    for p in PARTIES:
        sessions[p], round1[p] = await run_start(sessions[p])
    round1[2] = [Outgoing(1, BROADCAST, forged)]  # party 2's PoK is for another execution
    incoming = _route(round1)[1]

    expected_session = pickle.loads(pickle.dumps(sessions[1]))
    with pytest.raises(ProtocolAborted) as in_process:
        expected_session.receive(incoming)

    victim = sessions[1]
    with pytest.raises(ProtocolAborted) as remote:
        await run_receive(victim, incoming)
    assert type(remote.value) is ProtocolAborted
    assert remote.value.culprits == in_process.value.culprits == (2,)
    assert remote.value.reason == in_process.value.reason
    assert str(remote.value) == str(in_process.value)
    assert isinstance(remote.value.__cause__, RemoteTraceback)
    assert "_after_round1" in str(remote.value.__cause__)  # the worker's traceback
    # As in-process, a session that raised is dead.
    with pytest.raises(InternalBug, match="dead"):
        victim.receive(incoming)


async def test_invalid_proof_propagates() -> None:
    group = ED25519
    x = group.random_scalar()
    X = group.base_mul(x)
    proof = pi_sch.prove_simple(ProofContext(b"sid", 1), X, x)
    await run_call(pi_sch.verify_simple, ProofContext(b"sid", 1), X, proof)  # accepted
    with pytest.raises(InvalidProof) as in_process:
        pi_sch.verify_simple(ProofContext(b"sid", 2), X, proof)
    with pytest.raises(InvalidProof) as remote:
        await run_call(pi_sch.verify_simple, ProofContext(b"sid", 2), X, proof)
    assert type(remote.value) is InvalidProof
    assert remote.value.args == in_process.value.args


@pytest.mark.parametrize(
    ("name", "args", "attributes"),
    [
        ("ProtocolAborted", ("bad echo", [3, 1, 3]), {"reason": "bad echo", "culprits": (1, 3)}),
        ("ProtocolAborted", ("no blame",), {"reason": "no blame", "culprits": ()}),
        ("QuorumUnavailable", ("too few", ["mpc-3"]), {"missing": ("mpc-3",)}),
        ("InvalidInput", ("bad point",), {}),
        ("KeyNotFound", ("no key k",), {}),
        ("InternalBug", ("broken",), {}),
    ],
)
async def test_every_error_class_round_trips(
    name: str, args: tuple[Any, ...], attributes: dict[str, Any]
) -> None:
    local = getattr(errors, name)(*args)
    with pytest.raises(MpcError) as remote:
        await run_call(raise_error, name, *args)
    assert type(remote.value) is type(local)
    assert remote.value.args == local.args and str(remote.value) == str(local)
    for attr, value in attributes.items():
        assert getattr(remote.value, attr) == value


async def test_error_with_a_custom_init_round_trips() -> None:
    local = TwoPartError("bad share", [4, 2])
    with pytest.raises(TypeError):  # what plain pickling (the executor's own path) would do
        pickle.loads(pickle.dumps(local))
    with pytest.raises(TwoPartError) as remote:
        await run_call(raise_two_part)
    assert (remote.value.what, remote.value.parties, str(remote.value)) == (
        "bad share",
        (4, 2),
        str(local),
    )
    # An error that cannot travel at all still arrives, as InternalBug naming its type.
    with pytest.raises(InternalBug, match="UnpicklableError"):
        await run_call(raise_unpicklable)
    assert await run_call(os.getpid) != os.getpid()  # the pool survived all of it


# --------------------------------------------------------------------------- the trio loop


async def test_trio_stays_responsive_while_a_worker_computes() -> None:
    await run_call(os.getpid)  # start a worker first: measure the job, not process start-up
    gaps: list[float] = []
    ticking = trio.Event()

    async def ticker() -> None:
        last = trio.current_time()
        while True:
            await trio.sleep(0.01)
            now = trio.current_time()
            gaps.append(now - last)
            last = now
            ticking.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await ticking.wait()
        gaps.clear()
        pid, cpu = await run_call(burn_cpu, 1.0)
        nursery.cancel_scope.cancel()
    assert pid != os.getpid() and cpu >= 1.0
    assert len(gaps) >= 40  # the ticker ran all along (about 100 ticks in 1 s)
    assert max(gaps) < 0.2, f"the trio loop stalled for {max(gaps):.3f} s"


async def test_cancelling_a_wait_leaves_the_pool_usable() -> None:
    await run_call(os.getpid)
    with trio.move_on_after(0.2) as scope:
        await run_call(burn_cpu, 0.5)
    assert scope.cancelled_caught
    assert await run_call(os.getpid) != os.getpid()


async def test_terminate_kills_running_jobs_and_reaps_the_processes() -> None:
    assert WORKER_PROCESSES == max(1, os.cpu_count() or 1)
    outcome: list[BaseException] = []
    finished = trio.Event()

    async def long_job(port: int) -> None:
        try:
            await run_call(report_then_sleep, port, 60.0)
        except InternalBug as exc:
            outcome.append(exc)
        finished.set()  # also set if the job ended some other way, so the test cannot hang

    with trio.fail_after(30):
        [listener] = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listener.socket.getsockname()[1]
        async with listener, trio.open_nursery() as nursery:
            nursery.start_soon(long_job, port)
            stream = await listener.accept()  # the job is running in its worker
            async with stream:
                busy_pid = int((await stream.receive_some()).decode())
            assert _alive(busy_pid)
            terminate_proof_workers()
            assert not _alive(busy_pid)
            await finished.wait()
    assert len(outcome) == 1 and "exited unexpectedly" in str(outcome[0])
    fresh = await run_call(os.getpid)  # a new pool starts on demand
    assert fresh not in (busy_pid, os.getpid())
    terminate_proof_workers()
    assert not _alive(fresh)
    terminate_proof_workers()  # idempotent


def _alive(pid: int) -> bool:
    """True while `pid` runs (not gone, not a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# --------------------------------------------------------------------------- priority


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="needs Linux scheduling policies")
async def test_proof_workers_run_at_normal_priority_next_to_idle_prime_workers() -> None:
    try:
        prime_pid = await run_in_worker(os.getpid)
        assert await run_in_worker(os.sched_getscheduler, 0) == os.SCHED_IDLE
        pid, policy, nice = await run_call(sched_info)
        assert pid not in (prime_pid, os.getpid())
        assert policy == os.SCHED_OTHER
        assert nice == os.nice(0)
    finally:
        terminate_workers()


@pytest.mark.skipif(
    not hasattr(os, "SCHED_IDLE") or os.geteuid() != 0,
    reason="leaving SCHED_IDLE needs CAP_SYS_NICE (or RLIMIT_NICE) on Linux",
)
def test_proof_workers_leave_an_inherited_idle_policy() -> None:
    """Started from a SCHED_IDLE thread, a proof worker still runs at SCHED_OTHER."""
    result: list[object] = []

    def idle_thread() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread only
        try:
            assert os.sched_getscheduler(0) == os.SCHED_IDLE
            result.append(trio.run(run_call, sched_info))
        except BaseException as exc:
            result.append(exc)
        finally:
            terminate_proof_workers()

    thread = threading.Thread(target=idle_thread)
    thread.start()
    thread.join(60)
    assert len(result) == 1 and isinstance(result[0], tuple), result
    _, policy, _ = result[0]
    assert policy == os.SCHED_OTHER
