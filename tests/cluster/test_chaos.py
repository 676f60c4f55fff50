"""Chaos on real processes (issue 7): SIGKILL nodes and the coordinator at random moments of
aux-info, keygen, presigning, signing and resharing, then restart them.

A pytest-trio test: trio drives the run and times the kills; each blocking gRPC call or cluster
command runs in a thread, and a trio deadline around every call catches a hang.

The random choices (which operation, which processes die, when) come from a fixed seed
(`MPC_CHAOS_SEED`, `MPC_CHAOS_ROUNDS` for a longer run; `scripts/soak` runs the open-ended
randomized version). Timing is real, so the moment a kill lands varies from run to run; the
properties checked must hold wherever it lands:

- every call ends before its deadline with a result that checks out (signatures verified by
  libsodium/OpenSSL or libsecp256k1, reshares keep the public key) or a clean gRPC error
  (UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, FAILED_PRECONDITION), never anything else;
- every key whose creation was acknowledged still signs after everything is restarted, and a
  restarted coordinator finds it again (its registry comes from the nodes);
- no two ECDSA signatures share r, and no presignature was consumed for two different requests
  (checked from the nodes' own databases: one request hash per presignature id across all of
  its signers, and no consumed presignature still holds its nonce share).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import coincurve
import grpc
import pytest
import trio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from protos.mpc.v1 import coordinator_pb2
from tests.cluster.harness import ROOT, LocalCluster

BASE_PORT = 53550
SEED = int(os.environ.get("MPC_CHAOS_SEED", "7"))
ROUNDS = int(os.environ.get("MPC_CHAOS_ROUNDS", "14"))
NODES = 5
MAX_DOWN = 2  # n - t for 3-of-5
DEADLINE = 60.0
CLEAN = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.FAILED_PRECONDITION,
}
pytestmark = pytest.mark.cluster


@dataclass
class Ledger:
    """What the chaos run saw; checked at the end."""

    keys: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # key id -> scheme, pk
    r_values: set[bytes] = field(default_factory=set)
    outcomes: dict[str, int] = field(default_factory=dict)
    signatures: int = 0

    def count(self, what: str) -> None:
        self.outcomes[what] = self.outcomes.get(what, 0) + 1


class Chaos:
    def __init__(self, cluster: LocalCluster, seed: int) -> None:
        self.cluster = cluster
        self.rng = random.Random(seed)
        self.channel, self.stub = cluster.stub()

    def close(self) -> None:
        self.channel.close()

    async def command(self, *argv: str) -> Any:
        """One scripts/cluster command (blocking, so in a thread)."""
        return await trio.to_thread.run_sync(lambda: self.cluster.run(*argv))

    async def kill_coordinator(self) -> None:
        status = await self.command("status")
        [coordinator] = [p for p in status["processes"] if p["name"] == "coordinator"]
        if coordinator["alive"]:
            # It runs in its own session: the process group takes its workers along.
            os.killpg(coordinator["pid"], signal.SIGKILL)

    async def kill_random(self, coordinator_chance: float = 0.2) -> list[str]:
        """SIGKILL 0..MAX_DOWN random nodes, and sometimes the coordinator."""
        victims = self.rng.sample(range(NODES), self.rng.randint(0, MAX_DOWN))
        killed = []
        for index in victims:
            await self.command("kill-node", str(index))
            killed.append(f"mpc-{index}")
        if self.rng.random() < coordinator_chance:
            await self.kill_coordinator()
            killed.append("coordinator")
        return killed

    async def restore(self) -> None:
        """Start whatever is down (`up` starts only what is not running) and wait healthy."""
        await self.command("up")

    async def during(self, call: Callable[[], Any], window: float) -> tuple[Any, list[str]]:
        """Run the blocking `call` in a thread and kill at a random moment within `window`
        seconds; a call that outlives its deadline (+10 s) fails the test as a hang."""
        outcome: list[Any] = []
        killed: list[str] = []

        async def run_call() -> None:
            outcome.append(await trio.to_thread.run_sync(call, abandon_on_cancel=True))

        async def kill_later() -> None:
            await trio.sleep(self.rng.uniform(0.0, window))  # the random moment of the kill
            killed.extend(await self.kill_random())

        try:
            with trio.fail_after(DEADLINE + 10):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(run_call)
                    nursery.start_soon(kill_later)
        except trio.TooSlowError:
            pytest.fail("a call hung past its deadline")
        return outcome[0], killed


def grpc_outcome(call: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap a stub call: its response, or the RpcError (so the main thread classifies it)."""

    def run() -> Any:
        started = time.monotonic()
        try:
            return call()
        except grpc.RpcError as err:
            return err
        finally:
            assert time.monotonic() - started < DEADLINE + 5, "a call outlived its deadline"

    return run


def check_clean(ledger: Ledger, what: str, result: Any) -> bool:
    """True for a response; for an error, assert it is a clean one and count it."""
    if not isinstance(result, grpc.RpcError):
        ledger.count(f"{what}: ok")
        return True
    code = result.code()
    assert code in CLEAN, f"{what}: {code} {result.details()}"
    ledger.count(f"{what}: {code.name}")
    return False


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> None:
    VerifyKey(public_key).verify(message, signature)
    Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)


def verify_secp256k1(public_key: bytes, message: bytes, response: Any, ledger: Ledger) -> None:
    digest = hashlib.sha256(message).digest()
    assert bytes(response.digest) == digest
    assert coincurve.PublicKey(public_key).verify(bytes(response.signature_der), digest, None)
    recoverable = bytes(response.signature) + bytes([response.recovery_id])
    recovered = coincurve.PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    assert recovered.format() == public_key
    r = bytes(response.signature)[:32]
    assert r not in ledger.r_values, "two ECDSA signatures share r"
    ledger.r_values.add(r)


async def sign_and_check(
    chaos: Chaos, ledger: Ledger, key_id: str, window: float, digest: bool = False
) -> None:
    """Sign a message (or, secp256k1 with `digest`, its SHA-256 interactively: a presignature
    is made for it, so the kill lands in presigning) and check the outcome."""
    scheme, public_key = ledger.keys[key_id]
    message = chaos.rng.randbytes(48)
    if digest:
        request = coordinator_pb2.SignRequest(
            key_id=key_id, digest=hashlib.sha256(message).digest()
        )
    else:
        request = coordinator_pb2.SignRequest(key_id=key_id, message=message)
    result, _ = await chaos.during(
        grpc_outcome(lambda: chaos.stub.Sign(request, timeout=DEADLINE)), window
    )
    if not check_clean(ledger, f"sign {scheme}{' digest' if digest else ''}", result):
        return
    assert bytes(result.public_key) == public_key
    if scheme == "ed25519":
        verify_ed25519(public_key, message, bytes(result.signature))
    else:
        verify_secp256k1(public_key, message, result, ledger)
    ledger.signatures += 1


async def keygen(chaos: Chaos, ledger: Ledger, scheme: str, window: float) -> None:
    request = coordinator_pb2.CreateKeyRequest(scheme=scheme, threshold=3, parties=NODES)
    result, _ = await chaos.during(
        grpc_outcome(lambda: chaos.stub.CreateKey(request, timeout=DEADLINE)), window
    )
    if check_clean(ledger, f"keygen {scheme}", result):
        ledger.keys[result.key_id] = (scheme, bytes(result.public_key))  # acknowledged


async def reshare(chaos: Chaos, ledger: Ledger, key_id: str, window: float) -> None:
    request = coordinator_pb2.ReshareRequest(key_id=key_id)
    result, _ = await chaos.during(
        grpc_outcome(lambda: chaos.stub.Reshare(request, timeout=DEADLINE)), window
    )
    if check_clean(ledger, "reshare", result):
        assert bytes(result.public_key) == ledger.keys[key_id][1]


async def with_retries(call: Callable[[], Any], attempts: int = 40) -> Any:
    """A call right after restarts: UNAVAILABLE while channels reconnect is retried."""
    for _ in range(attempts):
        try:
            return await trio.to_thread.run_sync(call)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        await trio.sleep(0.5)
    return await trio.to_thread.run_sync(call)


def consumed_presignatures(cluster: LocalCluster) -> dict[bytes, set[bytes]]:
    """presignature id -> the request hashes its signers consumed it for (nodes' own records).

    Also asserts that every consumed presignature whose σ_i is recorded no longer holds its
    nonce share (a consumed one without σ_i keeps it, to answer the same request again)."""
    seen: dict[bytes, set[bytes]] = {}
    for index in range(NODES):
        path = Path(cluster.dir) / "nodes" / f"mpc-{index}" / "keys.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            try:
                rows = conn.execute(
                    "SELECT presignature_id, consumed_by, sealed_sigma IS NOT NULL,"
                    " sealed_secret IS NOT NULL FROM presignatures WHERE state = 'consumed'"
                ).fetchall()
            except sqlite3.OperationalError:  # no presignature table on this node yet
                rows = []
        for presignature_id, consumed_by, has_sigma, has_secret in rows:
            assert not (has_sigma and has_secret), "a used presignature kept its nonce share"
            seen.setdefault(bytes(presignature_id), set()).add(bytes(consumed_by))
    return seen


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("chaos"), BASE_PORT)
    primes = ROOT / "tests" / "fixtures" / "safe_primes.json"
    local.run("up", "--prime-pool", "0", "--test-primes", str(primes))
    # Two ready presignatures per signer set are enough here (refills cost CPU on 2 cores);
    # the coordinator reads this when it is restarted (the first test step restarts it).
    config_file = Path(local.dir) / "coordinator.json"
    config = json.loads(config_file.read_text())
    config["presign_pool_target"] = 2
    config_file.write_text(json.dumps(config))
    try:
        yield local
    finally:
        local.run("down", "--purge")


async def test_chaos(cluster: LocalCluster) -> None:
    chaos = Chaos(cluster, SEED)
    ledger = Ledger()
    try:
        await run_chaos(chaos, ledger)
    finally:
        chaos.close()
    print(json.dumps({"seed": SEED, "rounds": ROUNDS, "outcomes": ledger.outcomes}, indent=2))


async def run_chaos(chaos: Chaos, ledger: Ledger) -> None:
    cluster = chaos.cluster
    # Aux-info with a node killed at a random moment of it: the operation ends cleanly (failed,
    # or done if the kill came after the last round); then, every node restarted (so the test
    # fixture tops their prime pools up again), a clean run.
    started = await trio.to_thread.run_sync(
        lambda: chaos.stub.StartAuxInfo(coordinator_pb2.StartAuxInfoRequest(), timeout=10)
    )
    assert started.state in ("waiting-for-primes", "running")
    await trio.sleep(chaos.rng.uniform(0.5, 8.0))  # the random moment of the kill
    await chaos.command("kill-node", str(chaos.rng.randrange(NODES)))
    request = coordinator_pb2.GetOperationRequest(operation_id=started.operation_id)
    with trio.fail_after(300):  # the operation must end (failed, or done) after a node died
        while True:  # as mpcctl aux-info follows it: GetOperation until it ends
            op = await trio.to_thread.run_sync(lambda: chaos.stub.GetOperation(request, timeout=10))
            if op.state in ("done", "failed"):
                break
            await trio.sleep(0.5)
    if op.state == "failed":
        assert op.error and "Traceback" not in op.error
    ledger.count(f"aux-info under a kill: {op.state}")
    await chaos.command("down")
    await chaos.command("up")
    proc = await trio.to_thread.run_sync(lambda: cluster.mpcctl("aux-info", timeout=900))
    assert proc.returncode == 0, proc.stderr

    # One key of each scheme made in quiet conditions, then everything under fire.
    for scheme in ("ed25519", "secp256k1"):
        request = coordinator_pb2.CreateKeyRequest(scheme=scheme, threshold=3, parties=NODES)
        info = await with_retries(lambda r=request: chaos.stub.CreateKey(r, timeout=DEADLINE))
        ledger.keys[info.key_id] = (scheme, bytes(info.public_key))
    ed_key, secp_key = list(ledger.keys)

    # Kill windows about as long as each operation takes, so kills land inside them.
    operations = ["sign-ed25519", "sign-secp256k1", "sign-digest", "keygen-ed25519", "reshare"]
    for _ in range(ROUNDS):
        operation = chaos.rng.choice(operations)
        if operation == "sign-ed25519":
            await sign_and_check(chaos, ledger, ed_key, window=0.04)
        elif operation == "sign-secp256k1":
            await sign_and_check(chaos, ledger, secp_key, window=1.0)
        elif operation == "sign-digest":
            await sign_and_check(chaos, ledger, secp_key, window=6.0, digest=True)
        elif operation == "keygen-ed25519":
            await keygen(chaos, ledger, "ed25519", window=0.15)
        else:
            await reshare(chaos, ledger, ed_key, window=0.3)
        await chaos.restore()

    # Everything back: every acknowledged key signs, found by a coordinator that was restarted.
    await chaos.kill_coordinator()
    await chaos.restore()
    for key_id, (scheme, public_key) in ledger.keys.items():
        info = await with_retries(
            lambda k=key_id: chaos.stub.GetKey(coordinator_pb2.GetKeyRequest(key_id=k), timeout=30)
        )
        assert bytes(info.public_key) == public_key
        message = f"after the storm {key_id}".encode()
        response = await with_retries(
            lambda k=key_id, m=message: chaos.stub.Sign(
                coordinator_pb2.SignRequest(key_id=k, message=m), timeout=DEADLINE
            )
        )
        assert bytes(response.public_key) == public_key
        if scheme == "ed25519":
            verify_ed25519(public_key, message, bytes(response.signature))
        else:
            verify_secp256k1(public_key, message, response, ledger)

    # No presignature was ever consumed for two different requests (nodes' own records).
    for presignature_id, hashes in consumed_presignatures(cluster).items():
        assert len(hashes) == 1, f"presignature {presignature_id.hex()} used for two requests"
