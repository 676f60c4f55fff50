"""The randomized chaos soak behind scripts/soak.

Runs a local cluster (`python -m coordinator.devcluster`, i.e. scripts/cluster) for a given
time with a mix of signing for both schemes, random SIGKILLs and restarts of nodes and of the
coordinator (and, optionally, refresh reshares of the ed25519 key), then prints counts:
requests, signatures verified, clean errors by gRPC status code, and anything else (which must
be 0). Every signature is verified here, independently of the service: Ed25519 with libsodium
and OpenSSL, secp256k1 with libsecp256k1 and OpenSSL, and its recovery id must recover the key.

"Anything else" is: a signature that does not verify, a response under another key, a status
that is not a clean refusal (INTERNAL, UNKNOWN, INVALID_ARGUMENT, ...), a Python exception in a
worker, a process that does not come back healthy. Counted apart, and also failing the run: a
call that outlived its deadline by more than 5 s (a hang), a nonce (ECDSA r, Ed25519 R) seen
twice, and a key that no longer signs or whose public key changed after the run ("lost keys").

Progress lines go to stderr every ~30 s; one JSON object goes to stdout at the end. Exit 0 iff
anything_else, hangs, reused_r and lost_keys are all 0 (2: setup failed, 130: interrupted).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

# gRPC's C core prints connection diagnostics to fd 2; they would drown the progress lines.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import coincurve  # noqa: E402
import grpc  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import (  # noqa: E402
    Prehashed,
    decode_dss_signature,
)
from nacl.exceptions import BadSignatureError  # noqa: E402
from nacl.signing import VerifyKey  # noqa: E402

from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TEST_PRIMES = ROOT / "tests" / "fixtures" / "safe_primes.json"

NODES = 5
THRESHOLD = 3
SIGN_DEADLINE = 60.0
HANG_SLACK = 5.0
RESHARE_DEADLINE = 180.0
KEYGEN_DEADLINE = 600.0
AUX_INFO_LIMIT = 3600.0
CLUSTER_TIMEOUT = 120.0  # devcluster --timeout: seconds to wait for health after a start
PROGRESS_EVERY = 30.0
MAX_DETAILS = 20
MAX_EXAMPLES = 5  # distinct status details kept per clean error code
FINAL_ATTEMPTS = 12
FINAL_RETRY_PAUSE = 5.0
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# Refusals a client can expect while nodes and the coordinator die and come back.
CLEAN_CODES = frozenset(
    {
        "UNAVAILABLE",
        "ABORTED",
        "DEADLINE_EXCEEDED",
        "FAILED_PRECONDITION",
        "NOT_FOUND",
        "RESOURCE_EXHAUSTED",
        "CANCELLED",
    }
)
RETRYABLE_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED", "ABORTED", "FAILED_PRECONDITION"})
CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]


def log(text: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[soak {stamp}] {text}", file=sys.stderr, flush=True)


def status_name(exc: Any) -> str:
    """The gRPC status name of a failed call (an RpcError from a call is also a grpc.Call)."""
    code = getattr(exc, "code", None)
    status = code() if callable(code) else None
    return status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"


def status_details(exc: Any) -> str:
    details = getattr(exc, "details", None)
    text = details() if callable(details) else None
    return text if isinstance(text, str) else str(exc)


@dataclass(frozen=True)
class Key:
    scheme: str
    key_id: str
    public: bytes


class SetupFailed(Exception):
    pass


# --------------------------------------------------------------------------- counters


class Stats:
    """Every counter of the run, behind one lock (workers, chaos and reshare threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.started = time.monotonic()
        self.requests = 0
        self.verified: Counter[str] = Counter()
        self.clean: Counter[str] = Counter()
        self.clean_examples: dict[str, list[str]] = {}
        self.anything_else = 0
        self.details: list[str] = []
        self.hangs = 0
        self.reused_r = 0
        self.kills: Counter[str] = Counter({"node": 0, "coordinator": 0})
        self.restarts = 0
        self.reshares: Counter[str] = Counter({"ok": 0, "error": 0})
        self.reshare_errors: Counter[str] = Counter()
        self.latencies: dict[str, list[float]] = {"ed25519": [], "secp256k1": []}
        self._nonces: set[tuple[str, bytes]] = set()

    def _detail(self, text: str) -> None:
        if len(self.details) < MAX_DETAILS:
            self.details.append(f"t+{time.monotonic() - self.started:.1f}s {text}")

    def request(self) -> None:
        with self.lock:
            self.requests += 1

    def bad(self, text: str) -> None:
        with self.lock:
            self.anything_else += 1
            self._detail(text)
        log(f"ANYTHING ELSE: {text}")

    def hang(self, text: str) -> None:
        with self.lock:
            self.hangs += 1
            self._detail(f"hang: {text}")
        log(f"HANG: {text}")

    def clean_error(self, code: str, details: str) -> None:
        with self.lock:
            self.clean[code] += 1
            examples = self.clean_examples.setdefault(code, [])
            if len(examples) < MAX_EXAMPLES and details[:200] not in examples:
                examples.append(details[:200])

    def ok(self, scheme: str, nonce: bytes, elapsed: float, what: str) -> None:
        """A verified signature; its nonce (ECDSA r, Ed25519 R) must never have been seen."""
        with self.lock:
            self.verified[scheme] += 1
            self.latencies[scheme].append(elapsed)
            if (scheme, nonce) in self._nonces:
                self.reused_r += 1
                self._detail(f"reused nonce {nonce.hex()} ({scheme}, {what})")
                reused = True
            else:
                self._nonces.add((scheme, nonce))
                reused = False
        if reused:
            log(f"REUSED NONCE {nonce.hex()} ({scheme}, {what})")

    def progress(self, down: list[int]) -> str:
        with self.lock:
            return (
                f"t+{time.monotonic() - self.started:.0f}s requests={self.requests} "
                f"verified={dict(self.verified)} clean={dict(self.clean)} "
                f"anything_else={self.anything_else} hangs={self.hangs} reused_r={self.reused_r} "
                f"kills={dict(self.kills)} restarts={self.restarts} "
                f"reshares={dict(self.reshares)} down={down}"
            )


def latency_summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {}
    ordered = sorted(samples)
    return {
        "p50": round(ordered[len(ordered) // 2], 3),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 3),
        "max": round(ordered[-1], 3),
    }


# --------------------------------------------------------------------------- verification


def check_signature(key: Key, payload: bytes, is_digest: bool, resp: Any) -> tuple[str, bytes]:
    """("", nonce) if `resp` is a valid signature of `payload` under `key`, else (problem, b"")."""
    signature = bytes(resp.signature)
    if resp.key_id != key.key_id:
        return f"response names key {resp.key_id!r}, asked {key.key_id!r}", b""
    if bytes(resp.public_key) != key.public:
        return (
            f"signed under another public key {bytes(resp.public_key).hex()} "
            f"(key {key.key_id} is {key.public.hex()})",
            b"",
        )
    if key.scheme == "ed25519":
        if len(signature) != 64:
            return f"ed25519 signature of {len(signature)} bytes", b""
        try:
            VerifyKey(key.public).verify(payload, signature)  # libsodium
        except BadSignatureError:
            return f"libsodium rejects ed25519 signature {signature.hex()}", b""
        try:
            Ed25519PublicKey.from_public_bytes(key.public).verify(signature, payload)  # OpenSSL
        except InvalidSignature:
            return f"OpenSSL rejects ed25519 signature {signature.hex()}", b""
        return "", signature[:32]
    digest = payload if is_digest else hashlib.sha256(payload).digest()
    if bytes(resp.digest) != digest:
        return f"response digest {bytes(resp.digest).hex()} is not {digest.hex()}", b""
    der = bytes(resp.signature_der)
    try:
        if not coincurve.PublicKey(key.public).verify(der, digest, hasher=None):
            return f"libsecp256k1 rejects DER signature {der.hex()}", b""
    except Exception as exc:  # malformed DER
        return f"libsecp256k1 cannot read DER {der.hex()}: {exc!r}", b""
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), key.public).verify(
            der, digest, ec.ECDSA(Prehashed(hashes.SHA256()))
        )
    except InvalidSignature:
        return f"OpenSSL rejects DER signature {der.hex()}", b""
    r, s = decode_dss_signature(der)
    compact = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if compact != signature:
        return f"r||s {signature.hex()} differs from the DER {der.hex()}", b""
    if s > SECP256K1_ORDER // 2:
        return f"high-S signature {signature.hex()} (documented low-S)", b""
    if resp.recovery_id > 3:
        return f"recovery id {resp.recovery_id}", b""
    try:
        recovered = coincurve.PublicKey.from_signature_and_message(
            signature + bytes([resp.recovery_id]), digest, hasher=None
        ).format()
    except Exception as exc:
        return f"recovery with id {resp.recovery_id} fails: {exc!r}", b""
    if recovered != key.public:
        return f"recovery id {resp.recovery_id} recovers {recovered.hex()}, not the key", b""
    return "", signature[:32]


# --------------------------------------------------------------------------- the cluster


class Harness:
    """Drives `python -m coordinator.devcluster` on one directory and opens client channels."""

    def __init__(self, directory: Path, base_port: int, up_args: list[str]) -> None:
        self.directory = directory
        self.base_port = base_port
        self.up_args = up_args
        self.down: set[int] = set()  # nodes this run killed and did not start yet
        self.cluster_lock = threading.Lock()

    def cluster(self, *command: str, timeout: float = CLUSTER_TIMEOUT + 60) -> dict[str, Any]:
        """Run one cluster command; its JSON result, or RuntimeError with its JSON error."""
        argv = [PY, "-m", "coordinator.devcluster", *command]
        argv += ["--dir", str(self.directory), "--base-port", str(self.base_port)]
        with self.cluster_lock:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                cwd=ROOT,
                timeout=timeout,
            )
        if proc.returncode != 0:
            raise RuntimeError(f"cluster {' '.join(command)}: {proc.stderr.strip()[-1500:]}")
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def up(self, first: bool = False) -> dict[str, Any]:
        extra = self.up_args if first else []
        return self.cluster("up", *extra, "--timeout", str(CLUSTER_TIMEOUT))

    def channel(self) -> Any:
        info = json.loads((self.directory / "cluster.json").read_text())
        t = info["tls"]
        creds = grpc.ssl_channel_credentials(
            Path(t["ca"]).read_bytes(),
            Path(t["client_key"]).read_bytes(),
            Path(t["client_cert"]).read_bytes(),
        )
        return grpc.secure_channel(info["coordinator"]["address"], creds, options=CHANNEL_OPTIONS)


def stub_of(channel: Any) -> Any:
    return coordinator_pb2_grpc.CoordinatorStub(channel)  # type: ignore[no-untyped-call]


def _proc_gone(pid: int) -> bool:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return raw[raw.rfind(")") + 2 :].split(" ", 1)[0] in ("Z", "X")


def kill_coordinator(harness: Harness) -> int | None:
    """SIGKILL the coordinator (its process group, as kill-node does for a node); its pid."""
    status = harness.cluster("status")
    proc = next(p for p in status["processes"] if p["name"] == "coordinator")
    pid = proc.get("pid")
    if not isinstance(pid, int) or not proc.get("alive"):
        return None
    config = str(harness.directory / "coordinator.json").encode()
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    if config not in argv:  # a recycled pid: never signal a stranger
        return None
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not _proc_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


# --------------------------------------------------------------------------- setup


def setup(harness: Harness, ecdsa: bool) -> list[Key]:
    log(f"starting 5 nodes and a coordinator in {harness.directory} (port {harness.base_port})")
    harness.up(first=True)
    channel = harness.channel()
    stub = stub_of(channel)
    try:
        keys = [create_key(stub, "ed25519")]
        if ecdsa:
            run_aux_info(stub)
            keys.append(create_key(stub, "secp256k1"))
    finally:
        channel.close()
    return keys


def run_aux_info(stub: Any) -> None:
    log("aux-info (Paillier keys, ring-Pedersen parameters) for the committee")
    started = time.monotonic()
    op = stub.StartAuxInfo(coordinator_pb2.StartAuxInfoRequest(), timeout=60)
    shown = ""
    while op.state not in ("done", "failed"):
        if time.monotonic() - started > AUX_INFO_LIMIT:
            raise SetupFailed(f"aux-info not done after {AUX_INFO_LIMIT:g} s")
        line = f"aux-info: {op.state} {op.stage}".strip()
        if line != shown:
            log(line)
            shown = line
        time.sleep(0.5)
        op = stub.GetOperation(
            coordinator_pb2.GetOperationRequest(operation_id=op.operation_id), timeout=60
        )
    if op.state != "done":
        raise SetupFailed(f"aux-info failed: {op.error}")
    log(f"aux-info done in {time.monotonic() - started:.1f} s")


def create_key(stub: Any, scheme: str) -> Key:
    started = time.monotonic()
    info = stub.CreateKey(
        coordinator_pb2.CreateKeyRequest(scheme=scheme, threshold=THRESHOLD, parties=NODES),
        timeout=KEYGEN_DEADLINE,
    )
    key = Key(scheme, info.key_id, bytes(info.public_key))
    log(
        f"{scheme} {THRESHOLD}-of-{NODES} key {key.key_id}: {key.public.hex()} "
        f"({time.monotonic() - started:.1f} s)"
    )
    return key


# --------------------------------------------------------------------------- the load


def sign_once(
    stub: Any, key: Key, payload: bytes, is_digest: bool, stats: Stats, what: str
) -> tuple[str, str]:
    """One Sign call, classified into stats: ("ok", "") | ("clean", CODE) | ("bad", text)."""
    if is_digest:
        request = coordinator_pb2.SignRequest(key_id=key.key_id, digest=payload)
    else:
        request = coordinator_pb2.SignRequest(key_id=key.key_id, message=payload)
    started = time.monotonic()
    try:
        resp = stub.Sign(request, timeout=SIGN_DEADLINE)
    except grpc.RpcError as exc:
        elapsed = time.monotonic() - started
        code = status_name(exc)
        if elapsed > SIGN_DEADLINE + HANG_SLACK:
            stats.hang(f"{what}: Sign {key.scheme} took {elapsed:.1f} s, then {code}")
        if code in CLEAN_CODES:
            stats.clean_error(code, status_details(exc))
            return "clean", code
        text = f"{what}: Sign {key.scheme} -> {code}: {status_details(exc)}"
        stats.bad(text)
        return "bad", text
    elapsed = time.monotonic() - started
    if elapsed > SIGN_DEADLINE + HANG_SLACK:
        stats.hang(f"{what}: Sign {key.scheme} took {elapsed:.1f} s (then succeeded)")
    problem, nonce = check_signature(key, payload, is_digest, resp)
    if problem:
        text = f"{what}: {key.scheme} {'digest' if is_digest else 'message'}: {problem}"
        stats.bad(text)
        return "bad", text
    stats.ok(key.scheme, nonce, elapsed, what)
    return "ok", ""


def worker(
    index: int, seed: int, keys: list[Key], harness: Harness, stats: Stats, stop: threading.Event
) -> None:
    rng = random.Random(f"soak-worker:{seed}:{index}")
    channel = None
    try:
        channel = harness.channel()
        stub = stub_of(channel)
        while not stop.is_set():
            key = rng.choice(keys)
            # secp256k1: mostly messages (pooled presignatures), sometimes a caller's digest
            # (an interactive presignature made for it).
            is_digest = key.scheme == "secp256k1" and rng.random() < 0.1
            payload = rng.randbytes(32 if is_digest else rng.randint(1, 256))
            stats.request()
            outcome, code = sign_once(stub, key, payload, is_digest, stats, f"worker {index}")
            if outcome == "clean" and code == "UNAVAILABLE":
                stop.wait(rng.uniform(0.2, 0.8))  # no hot loop while the quorum is down
    except Exception:
        stats.bad(f"worker {index} exception: {traceback.format_exc(limit=4)}")
    finally:
        if channel is not None:
            channel.close()


def chaos(
    seed: int,
    harness: Harness,
    stats: Stats,
    stop: threading.Event,
    kill_every: float,
    max_down: int,
) -> None:
    rng = random.Random(f"soak-chaos:{seed}")
    while not stop.wait(kill_every * rng.uniform(0.5, 1.5)):
        live = [i for i in range(NODES) if i not in harness.down]
        choices: list[tuple[str, float]] = [("coordinator", 1.0)]
        if live and len(harness.down) < max_down:
            choices.append(("kill", 4.0))
        if harness.down:
            choices.append(("start", 3.0))
        action = rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]
        try:
            if action == "kill":
                index = rng.choice(live)
                harness.cluster("kill-node", str(index))
                harness.down.add(index)
                with stats.lock:
                    stats.kills["node"] += 1
                log(f"chaos: SIGKILL mpc-{index} (down: {sorted(harness.down)})")
            elif action == "start":
                index = rng.choice(sorted(harness.down))
                log(f"chaos: starting mpc-{index}")
                harness.cluster("start-node", str(index), "--timeout", str(CLUSTER_TIMEOUT))
                harness.down.discard(index)
                with stats.lock:
                    stats.restarts += 1
                log(f"chaos: mpc-{index} is back (down: {sorted(harness.down)})")
            else:
                pid = kill_coordinator(harness)
                if pid is None:
                    log("chaos: the coordinator is not running; `up` brings it back")
                else:
                    with stats.lock:
                        stats.kills["coordinator"] += 1
                    log(f"chaos: SIGKILL the coordinator (pid {pid})")
                time.sleep(rng.uniform(0.5, 3.0))
                back = sorted(harness.down)
                harness.up()  # starts what is not running: the coordinator and any down node
                harness.down.clear()
                with stats.lock:
                    stats.restarts += 1 + len(back)
                log(f"chaos: `cluster up` brought back the coordinator and nodes {back}")
        except Exception as exc:
            if '"interrupted"' in str(exc):  # Ctrl-C reached the cluster command too
                log(f"chaos {action}: interrupted")
            else:
                stats.bad(f"chaos {action}: {exc}")


def resharer(every: float, key: Key, harness: Harness, stats: Stats, stop: threading.Event) -> None:
    channel = harness.channel()
    stub = stub_of(channel)
    try:
        while not stop.wait(every):
            started = time.monotonic()
            try:
                info = stub.Reshare(
                    coordinator_pb2.ReshareRequest(key_id=key.key_id), timeout=RESHARE_DEADLINE
                )
            except grpc.RpcError as exc:
                elapsed = time.monotonic() - started
                code = status_name(exc)
                if elapsed > RESHARE_DEADLINE + HANG_SLACK:
                    stats.hang(f"Reshare took {elapsed:.1f} s, then {code}")
                with stats.lock:
                    stats.reshares["error"] += 1
                    stats.reshare_errors[code] += 1
                log(f"reshare: {code}: {status_details(exc)[:200]}")
                if code not in CLEAN_CODES:
                    stats.bad(f"Reshare -> {code}: {status_details(exc)}")
                continue
            elapsed = time.monotonic() - started
            if elapsed > RESHARE_DEADLINE + HANG_SLACK:
                stats.hang(f"Reshare took {elapsed:.1f} s (then succeeded)")
            if bytes(info.public_key) != key.public:
                stats.bad(f"Reshare changed the public key to {bytes(info.public_key).hex()}")
                with stats.lock:
                    stats.reshares["error"] += 1
                continue
            with stats.lock:
                stats.reshares["ok"] += 1
            log(f"reshare: ok, generation {info.generation} ({elapsed:.1f} s)")
    except Exception:
        stats.bad(f"resharer exception: {traceback.format_exc(limit=4)}")
    finally:
        channel.close()


# --------------------------------------------------------------------------- the end


def retrying(call: Callable[[], Any], what: str) -> tuple[Any, str]:
    """(reply, "") or (None, last error); retries retryable statuses FINAL_ATTEMPTS times."""
    last = ""
    for attempt in range(FINAL_ATTEMPTS):
        try:
            return call(), ""
        except grpc.RpcError as exc:
            code = status_name(exc)
            last = f"{code}: {status_details(exc)}"
            if code not in RETRYABLE_CODES:
                break
            log(f"final check: {what}: {last[:160]} (attempt {attempt + 1}, retrying)")
            time.sleep(FINAL_RETRY_PAUSE)
    return None, last


def final_checks(
    keys: list[Key], harness: Harness, stats: Stats, seed: int
) -> tuple[int, list[str]]:
    """Each key must still sign (verified) and GetKey must show its original public key."""
    lost = 0
    problems: list[str] = []
    rng = random.Random(f"soak-final:{seed}")
    channel = harness.channel()
    stub = stub_of(channel)
    try:
        for key in keys:
            payload = b"soak final check " + rng.randbytes(16)
            request = coordinator_pb2.SignRequest(key_id=key.key_id, message=payload)
            started = time.monotonic()
            resp, error = retrying(
                functools.partial(stub.Sign, request, timeout=SIGN_DEADLINE), f"Sign {key.scheme}"
            )
            ok = resp is not None
            if resp is None:
                problems.append(f"{key.scheme} {key.key_id} does not sign: {error}")
            else:
                problem, nonce = check_signature(key, payload, False, resp)
                if problem:
                    ok = False
                    problems.append(f"{key.scheme} {key.key_id} final signature: {problem}")
                    stats.bad(f"final check: {problem}")
                else:
                    stats.ok(key.scheme, nonce, time.monotonic() - started, "final check")
            info, error = retrying(
                functools.partial(
                    stub.GetKey,
                    coordinator_pb2.GetKeyRequest(key_id=key.key_id),
                    timeout=SIGN_DEADLINE,
                ),
                f"GetKey {key.scheme}",
            )
            if info is None:
                ok = False
                problems.append(f"{key.scheme} {key.key_id}: GetKey fails: {error}")
            elif bytes(info.public_key) != key.public:
                ok = False
                problems.append(
                    f"{key.scheme} {key.key_id}: GetKey shows {bytes(info.public_key).hex()}, "
                    f"created as {key.public.hex()}"
                )
            else:
                log(
                    f"final check: {key.scheme} key signs and verifies; GetKey: same public "
                    f"key, generation {info.generation}, holders {list(info.holders)}"
                )
            if not ok:
                lost += 1
    finally:
        channel.close()
    for problem in problems:
        log(f"LOST KEY: {problem}")
    return lost, problems


def presignature_report(directory: Path) -> dict[str, Any]:
    """Per node: presignatures available / consumed, read from its database file directly.

    The schema makes presignature_id UNIQUE with one consumed_by, so a node can never hold an
    id under two request hashes; checked anyway (`same_id_twice`). Across nodes, against the
    signer set each row names (party p is node mpc-(p-1)): ids that only some of their signers
    store (a signer killed before it stored its share of the presignature, or one that
    discarded it), ids consumed by some signers only, and ids consumed for different requests
    on different nodes (each node still gave out at most one partial signature per id).
    """
    per_node: dict[str, Any] = {}
    consumed_by: dict[bytes, dict[str, bytes]] = {}
    stored_on: dict[bytes, set[str]] = {}
    signers_of: dict[bytes, set[str]] = {}
    same_id_twice = 0
    for db in sorted((directory / "nodes").glob("mpc-*/keys.sqlite3")):
        name = db.parent.name
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            table = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'presignatures'"
            ).fetchone()
            if table is None:
                per_node[name] = {"available": 0, "consumed": 0}
                continue
            counts = dict(
                conn.execute("SELECT state, COUNT(*) FROM presignatures GROUP BY state").fetchall()
            )
            (twice,) = conn.execute(
                "SELECT COUNT(*) FROM (SELECT presignature_id FROM presignatures"
                " GROUP BY presignature_id"
                " HAVING COUNT(*) > 1 OR COUNT(DISTINCT consumed_by) > 1)"
            ).fetchone()
            same_id_twice += int(twice)
            for pid, signers, by, state in conn.execute(
                "SELECT presignature_id, signers, consumed_by, state FROM presignatures"
            ):
                key = bytes(pid)
                stored_on.setdefault(key, set()).add(name)
                named = {f"mpc-{int(p) - 1}" for p in str(signers).split(",") if p.strip()}
                signers_of.setdefault(key, set()).update(named)
                if state == "consumed":
                    consumed_by.setdefault(key, {})[name] = bytes(by)
        per_node[name] = {
            "available": int(counts.get("available", 0)),
            "consumed": int(counts.get("consumed", 0)),
        }
    stored_partly = sum(1 for pid, nodes in stored_on.items() if nodes != signers_of[pid])
    consumed_partly = sum(1 for pid, nodes in consumed_by.items() if set(nodes) != signers_of[pid])
    different = sum(1 for nodes in consumed_by.values() if len(set(nodes.values())) > 1)
    return {
        "per_node": per_node,
        "ids": len(stored_on),
        "consumed_ids": len(consumed_by),
        "same_id_twice": same_id_twice,
        "stored_on_some_signers_only": stored_partly,
        "consumed_on_some_signers_only": consumed_partly,
        "consumed_for_different_requests_across_nodes": different,
    }


# --------------------------------------------------------------------------- main


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/soak",
        description="Randomized chaos soak on a local cluster: signing with both schemes, "
        "random kills and restarts; prints counts as JSON. Exit 0 iff nothing unexpected.",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="load time (default 10)")
    parser.add_argument("--seed", type=int, default=None, help="default: random, printed")
    parser.add_argument(
        "--dir",
        default=None,
        help="cluster directory, kept afterwards (default: a temp dir, purged)",
    )
    parser.add_argument("--base-port", type=int, default=50450)
    parser.add_argument("--workers", type=int, default=4, help="signing threads (default 4)")
    parser.add_argument(
        "--kill-every",
        type=float,
        default=8.0,
        help="seconds between chaos actions, jittered (default 8; 0: no chaos)",
    )
    parser.add_argument(
        "--max-down", type=int, default=NODES - THRESHOLD, help="most nodes down at once (2)"
    )
    parser.add_argument("--no-ecdsa", action="store_true", help="ed25519 only (no aux-info)")
    parser.add_argument(
        "--real-primes",
        action="store_true",
        help="nodes make real safe primes (slow) instead of the TEST ONLY fixture primes",
    )
    parser.add_argument(
        "--reshare-every",
        type=float,
        default=0.0,
        help="seconds between refresh reshares of the ed25519 key (default 0: none)",
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.workers < 1 or args.kill_every < 0 or args.reshare_every < 0:
        parser.error("--minutes and --workers must be positive, intervals not negative")
    if not 0 <= args.max_down <= NODES:
        parser.error(f"--max-down must be between 0 and {NODES}")
    if args.seed is None:
        args.seed = int.from_bytes(os.urandom(4), "big")
    return args


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _sigterm)
    if args.dir is None:
        directory = Path(tempfile.mkdtemp(prefix="mpc-soak-"))
        purge = True
    else:
        directory = Path(args.dir).absolute()
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            sys.exit(f"--dir {directory} exists and is not empty; the soak needs a fresh cluster")
        purge = False
    up_args: list[str] = []
    if not args.real_primes:
        up_args = ["--prime-pool", "0", "--test-primes", str(TEST_PRIMES)]
        log(
            "!!! TEST ONLY: the nodes take their safe primes from the public fixture "
            f"{TEST_PRIMES.relative_to(ROOT)}; Paillier keys made from them are broken. "
            "Never use this cluster's keys for anything. (--real-primes makes real ones.) !!!"
        )
    harness = Harness(directory, args.base_port, up_args)
    stats = Stats()
    stop = threading.Event()
    result: dict[str, Any] = {}
    code = 0
    threads: list[threading.Thread] = []
    interrupted = False
    load_seconds = 0.0
    total_started = time.monotonic()
    try:
        try:
            keys = setup(harness, not args.no_ecdsa)
        except (SetupFailed, RuntimeError, subprocess.TimeoutExpired, grpc.RpcError) as exc:
            message = (
                f"{status_name(exc)}: {status_details(exc)}"
                if isinstance(exc, grpc.RpcError)
                else str(exc)
            )
            log(f"setup failed: {message}")
            print(json.dumps({"error": f"setup failed: {message}", "seed": args.seed}))
            return 2
        log(
            f"soak: {args.minutes:g} min, seed {args.seed}, {args.workers} workers, chaos every "
            f"~{args.kill_every:g} s (max {args.max_down} nodes down), reshare every "
            f"{args.reshare_every:g} s"
        )
        stats.started = load_started = time.monotonic()
        for index in range(args.workers):
            threads.append(
                threading.Thread(
                    target=worker,
                    args=(index, args.seed, keys, harness, stats, stop),
                    name=f"worker-{index}",
                    daemon=True,
                )
            )
        if args.kill_every > 0:
            threads.append(
                threading.Thread(
                    target=chaos,
                    args=(args.seed, harness, stats, stop, args.kill_every, args.max_down),
                    name="chaos",
                    daemon=True,
                )
            )
        if args.reshare_every > 0:
            threads.append(
                threading.Thread(
                    target=resharer,
                    args=(args.reshare_every, keys[0], harness, stats, stop),
                    name="reshare",
                    daemon=True,
                )
            )
        for thread in threads:
            thread.start()
        end = load_started + args.minutes * 60
        while (left := end - time.monotonic()) > 0:
            if not stop.wait(min(left, PROGRESS_EVERY)):
                log(stats.progress(sorted(harness.down)))
        stop.set()
        load_seconds = time.monotonic() - load_started
        log("time is up: stopping the load and the chaos, waiting for calls in flight")
        for thread in threads:
            thread.join(RESHARE_DEADLINE + CLUSTER_TIMEOUT + 60)
            if thread.is_alive():
                stats.bad(f"thread {thread.name} did not stop")
        log("restarting everything (`cluster up`)")
        try:
            harness.up()
            harness.down.clear()
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            stats.bad(f"final `cluster up`: {exc}")
        lost, lost_details = final_checks(keys, harness, stats, args.seed)
        try:
            presignatures: dict[str, Any] = presignature_report(directory)
        except sqlite3.Error as exc:
            presignatures = {"error": repr(exc)}
            stats.bad(f"reading the node databases: {exc!r}")
        result = {"lost_keys": lost, "lost_key_details": lost_details}
        result["presignatures"] = presignatures
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        load_seconds = time.monotonic() - stats.started
        log("interrupted: tearing the cluster down")
    finally:
        stop.set()
        try:
            harness.cluster("down", *(["--purge"] if purge else []), timeout=120)
            if not purge:
                log(f"cluster stopped; its files and logs stay in {directory}")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"`cluster down` failed: {exc}")
    with stats.lock:
        out: dict[str, Any] = {
            "seconds": round(load_seconds, 1),
            "seed": args.seed,
            "requests": stats.requests,
            "signatures_verified": {s: stats.verified[s] for s in ("ed25519", "secp256k1")},
            "clean_errors": dict(sorted(stats.clean.items())),
            "clean_error_examples": dict(sorted(stats.clean_examples.items())),
            "anything_else": stats.anything_else,
            "anything_else_details": list(stats.details),
            "hangs": stats.hangs,
            "reused_r": stats.reused_r,
            "lost_keys": result.get("lost_keys", 0),
            "kills": dict(stats.kills),
            "restarts": stats.restarts,
            "reshares": dict(stats.reshares),
            "reshare_errors": dict(sorted(stats.reshare_errors.items())),
            "latency_seconds": {s: latency_summary(v) for s, v in stats.latencies.items()},
            "total_seconds": round(time.monotonic() - total_started, 1),
            "test_primes": not args.real_primes,
            "dir": None if purge else str(directory),
        }
    out.update({k: v for k, v in result.items() if k != "lost_keys"})
    if interrupted:
        out["interrupted"] = True
    print(json.dumps(out, indent=2), flush=True)
    if interrupted:
        return 130
    failed = out["anything_else"] or out["hangs"] or out["reused_r"] or out["lost_keys"]
    code = 1 if failed else 0
    return code


if __name__ == "__main__":
    sys.exit(main())
