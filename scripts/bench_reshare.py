"""Resharing (LSS) benchmarks behind `scripts/bench --section reshare`. Measures; asserts no speed.

Over a local cluster, for a 3-of-5 key of each scheme: refresh reshares (same holders, same
threshold, new shares), and for ed25519 a move to 4-of-5 and back; then signing under the new
generation: FROST signatures for ed25519, and for secp256k1 the first signature after a
reshare (the old generation's presignatures are gone, so it presigns on demand) and the
second, taken once the background refill has a presignature ready (a pooled signature).
Every reshare must keep the public key and advance the generation by one.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PARTIES = [1, 2, 3, 4, 5]  # party numbers: node mpc-k is party k+1
SIGNATURES_AFTER_RESHARE = 20


class _Key:
    """A key's public key and generation, checked against every reshare's KeyInfo."""

    def __init__(self, info: Any) -> None:
        self.key_id: str = info.key_id
        self.public_key = bytes(info.public_key)
        self.generation = int(info.generation)

    def reshare(self, stub: Any, threshold: int = 0, parties: list[int] | None = None) -> float:
        """One Reshare call; its wall time after checking the KeyInfo it returned."""
        from protos.mpc.v1 import coordinator_pb2

        request = coordinator_pb2.ReshareRequest(
            key_id=self.key_id, parties=parties or [], threshold=threshold
        )
        started = time.perf_counter()
        info = stub.Reshare(request, timeout=900)
        elapsed = time.perf_counter() - started
        if bytes(info.public_key) != self.public_key:
            raise AssertionError(f"reshare of {self.key_id} changed the public key")
        if int(info.generation) != self.generation + 1:
            raise AssertionError(
                f"reshare of {self.key_id}: generation {info.generation}, "
                f"expected {self.generation + 1}"
            )
        if threshold and int(info.threshold) != threshold:
            raise AssertionError(f"reshare of {self.key_id}: threshold {info.threshold}")
        if parties and sorted(info.holder_parties) != sorted(parties):
            raise AssertionError(f"reshare of {self.key_id}: holders {list(info.holder_parties)}")
        self.generation += 1
        return elapsed


def _seconds(samples: list[float]) -> dict[str, float]:
    return {
        "count": len(samples),
        "p50_s": round(statistics.median(samples), 3),
        "max_s": round(max(samples), 3),
    }


def _bench_ed25519(stub: Any, runs: int) -> dict[str, Any]:
    from nacl.signing import VerifyKey

    from protos.mpc.v1 import coordinator_pb2

    info = stub.CreateKey(
        coordinator_pb2.CreateKeyRequest(scheme="ed25519", threshold=3, parties=5), timeout=120
    )
    key = _Key(info)
    verify_key = VerifyKey(key.public_key)
    refresh = [key.reshare(stub) for _ in range(runs)]
    to_4 = key.reshare(stub, threshold=4, parties=PARTIES)
    to_3 = key.reshare(stub, threshold=3, parties=PARTIES)
    signs: list[float] = []
    for _ in range(SIGNATURES_AFTER_RESHARE):
        message = os.urandom(48)
        started = time.perf_counter()
        response = stub.Sign(
            coordinator_pb2.SignRequest(key_id=key.key_id, message=message), timeout=60
        )
        signs.append(time.perf_counter() - started)
        verify_key.verify(message, bytes(response.signature))
    return {
        "refresh": _seconds(refresh),
        "to_4_of_5_seconds": round(to_4, 3),
        "to_3_of_5_seconds": round(to_3, 3),
        "generation": key.generation,
        "sign_after_reshare": {
            "count": len(signs),
            "p50_ms": round(statistics.median(signs) * 1000, 1),
        },
    }


def _aux_info(stub: Any) -> None:
    """The committee's aux-info (Paillier keys), as bench_ecdsa makes it; not timed here."""
    from protos.mpc.v1 import coordinator_pb2

    op = stub.StartAuxInfo(coordinator_pb2.StartAuxInfoRequest(), timeout=30)
    while op.state not in ("done", "failed"):
        time.sleep(0.2)
        op = stub.GetOperation(
            coordinator_pb2.GetOperationRequest(operation_id=op.operation_id), timeout=30
        )
    if op.state != "done":
        raise RuntimeError(f"aux-info failed: {op.error}")


def _bench_secp256k1(stub: Any, runs: int) -> dict[str, Any]:
    import coincurve

    from protos.mpc.v1 import coordinator_pb2

    info = stub.CreateKey(
        coordinator_pb2.CreateKeyRequest(scheme="secp256k1", threshold=3, parties=5),
        timeout=900,
    )
    key = _Key(info)
    public = coincurve.PublicKey(key.public_key)
    refresh = [key.reshare(stub) for _ in range(runs)]

    def sign() -> float:
        message = os.urandom(48)
        started = time.perf_counter()
        response = stub.Sign(
            coordinator_pb2.SignRequest(key_id=key.key_id, message=message), timeout=900
        )
        elapsed = time.perf_counter() - started
        digest = bytes(response.digest)
        if digest != hashlib.sha256(message).digest():
            raise AssertionError("the signed digest is not SHA-256 of the message")
        if not public.verify(bytes(response.signature_der), digest, hasher=None):
            raise AssertionError("ECDSA signature after reshare does not verify")
        return elapsed

    first = sign()
    # The pool refills in the background; time the second signature once it has one ready.
    deadline = time.monotonic() + 300
    pool_ready = 0
    while time.monotonic() < deadline:
        status = stub.PresignStatus(
            coordinator_pb2.PresignStatusRequest(key_id=key.key_id), timeout=30
        )
        pool_ready = sum(p.ready for p in status.pools)
        if pool_ready:
            break
        time.sleep(1.0)
    second = sign()
    return {
        "refresh": _seconds(refresh),
        "generation": key.generation,
        "first_sign_after_reshare_seconds": round(first, 3),
        "pool_ready_before_second_sign": pool_ready,
        "second_sign_after_reshare_ms": round(second * 1000, 1),
    }


def bench_reshare_cluster(runs: int, base_port: int) -> dict[str, Any]:
    """Refresh and threshold-changing reshares of 3-of-5 keys over a local cluster."""
    import grpc

    from protos.mpc.v1 import coordinator_pb2_grpc

    root = Path(__file__).resolve().parent.parent
    workdir = tempfile.mkdtemp(prefix="mpc-bench-reshare-")
    devcluster = [sys.executable, "-m", "coordinator.devcluster"]
    where = ["--dir", workdir, "--base-port", str(base_port)]
    primes = root / "tests" / "fixtures" / "safe_primes.json"
    subprocess.run(
        [*devcluster, "up", "--prime-pool", "0", "--test-primes", str(primes), *where],
        check=True,
        cwd=root,
        stdout=subprocess.DEVNULL,
    )
    try:
        info = json.loads((Path(workdir) / "cluster.json").read_text())
        t = info["tls"]
        creds = grpc.ssl_channel_credentials(
            Path(t["ca"]).read_bytes(),
            Path(t["client_key"]).read_bytes(),
            Path(t["client_cert"]).read_bytes(),
        )
        channel = grpc.secure_channel(info["coordinator"]["address"], creds)
        stub: Any = coordinator_pb2_grpc.CoordinatorStub(channel)  # type: ignore[no-untyped-call]
        out = {"runs": runs, "ed25519": _bench_ed25519(stub, runs)}
        _aux_info(stub)
        out["secp256k1"] = _bench_secp256k1(stub, runs)
        channel.close()
        return out
    finally:
        subprocess.run(
            [*devcluster, "down", "--purge", *where], cwd=root, stdout=subprocess.DEVNULL
        )


def markdown(results: dict[str, Any]) -> list[str]:
    ed, ec = results["ed25519"], results["secp256k1"]
    return [
        "## Resharing (LSS, 3-of-5)",
        "",
        f"Refresh reshares (same holders and threshold, new shares): {results['runs']} per key, "
        "over the local cluster.",
        "",
        "| scheme | refresh p50 s | refresh max s | 3→4 s | 4→3 s | signing after reshare |",
        "|---|---:|---:|---:|---:|---|",
        f"| ed25519 (FROST) | {ed['refresh']['p50_s']} | {ed['refresh']['max_s']} | "
        f"{ed['to_4_of_5_seconds']} | {ed['to_3_of_5_seconds']} | "
        f"p50 {ed['sign_after_reshare']['p50_ms']} ms |",
        f"| secp256k1 (CGGMP) | {ec['refresh']['p50_s']} | {ec['refresh']['max_s']} | - | - | "
        f"first {ec['first_sign_after_reshare_seconds']} s, "
        f"second {ec['second_sign_after_reshare_ms']} ms |",
        "",
        "Resharing moves no Paillier keys (aux-info stays per committee), and the first ECDSA "
        "signature after a reshare pays for a presignature because the old generation's "
        "presignatures are discarded.",
        "",
    ]
