"""CGGMP ECDSA benchmarks behind `scripts/bench --section ecdsa`. Measures; asserts nothing.

In one process: a 3-of-5 presignature (all three signers' work, one core) with its modexp
count and arithmetic floor (the same modexps timed bare), and one-round signing.
Over a local cluster: aux-info (and a node's health-check latency while it runs), keygen,
interactive digest signing, the presignature pool's refill, online signing with the pool warm
and the sustained rate once the pool is drained.
"""

from __future__ import annotations

import hashlib
import os
import statistics
import threading
import time
from typing import Any

from bench_zk import ModexpFloor

from mpcnode.crypto.bigint import ModexpCounter
from mpcnode.crypto.group import SECP256K1
from mpcnode.protocols.base import execution_id
from mpcnode.protocols.cggmp import sign
from mpcnode.protocols.cggmp.presign import CggmpPresignSession, Presignature
from mpcnode.protocols.keys import trusted_dealer_keygen
from mpcnode.protocols.simulation import run_sessions
from tests.fixtures.aux_info import load_test_aux_info

PARTIES = (1, 2, 3, 4, 5)
_ORDER = SECP256K1.order
SIGNERS = (1, 2, 3)


def bench_presign_in_process(runs: int = 3) -> dict[str, Any]:
    """Median wall time of one 3-of-5 presignature computed by all signers in this process."""
    aux = load_test_aux_info()
    shares = trusted_dealer_keygen("secp256k1", 3, PARTIES)
    times: list[float] = []
    shapes: list[tuple[int, int]] = []
    presigs: dict[int, Presignature] = {}
    for run in range(runs):
        eid = execution_id("cggmp-presign", os.urandom(16), "bench", SIGNERS, 3)
        sessions = {p: CggmpPresignSession(shares[p], aux[p], SIGNERS, eid) for p in SIGNERS}
        shapes = []
        ModexpCounter.shapes = shapes
        started = time.perf_counter()
        try:
            run_sessions(sessions)
        finally:
            ModexpCounter.shapes = None
        times.append(time.perf_counter() - started)
        presigs = {p: s.output for p, s in sessions.items()}
        del run
    floor = ModexpFloor().of(shapes)
    public = presigs[1].public

    def sign_and_combine(n: int, tweak: int) -> float:
        digest = sign.message_digest(os.urandom(32))
        req = sign.SignRequest(
            "bench", b"p" * 16, n.to_bytes(16, "big"), SIGNERS, digest, sign.SIGN_HASH, tweak
        )
        started = time.perf_counter()
        partials = {p: sign.partial_sign(presigs[p], req) for p in SIGNERS}
        sign.combine(public, req, partials)
        return time.perf_counter() - started

    child_tweak = int.from_bytes(hashlib.sha256(b"a child key").digest(), "big") % _ORDER
    sign_times = [sign_and_combine(n, 0) for n in range(20)]
    child_times = [sign_and_combine(n, child_tweak) for n in range(20)]
    cores = os.cpu_count() or 1
    return {
        "signers": len(SIGNERS),
        "presign_seconds": round(statistics.median(times), 3),
        "modexps": len(shapes),
        "floor_seconds": round(floor, 3),
        "floor_seconds_per_core": round(floor / cores, 3),
        "cores": cores,
        "sign_and_combine_ms": round(statistics.median(sign_times) * 1000, 3),
        "sign_and_combine_child_key_ms": round(statistics.median(child_times) * 1000, 3),
    }


def markdown(results: dict[str, Any]) -> list[str]:
    ip = results.get("in_process")
    lines = ["## CGGMP24 ECDSA (secp256k1), 3-of-5", ""]
    if ip:
        lines += [
            f"One presignature, all {ip['signers']} signers' work in one process: "
            f"{ip['presign_seconds']} s; {ip['modexps']} modexps whose bare gmpy2 time (the "
            f"arithmetic floor) is {ip['floor_seconds']} s, i.e. "
            f"{ip['floor_seconds_per_core']} s spread over {ip['cores']} cores. "
            f"Signing from a presignature (3 partial signatures, per-signer checks, combine, "
            f"verify): {ip['sign_and_combine_ms']} ms under the root key, "
            f"{ip.get('sign_and_combine_child_key_ms', '-')} ms under a child key.",
            "",
        ]
    c = results.get("cluster")
    if c:
        idle, busy = c["health_idle"], c["health_during_aux_info"]
        lines += [
            f"Cluster (5 node processes and the coordinator on this machine): aux-info "
            f"{c['aux_info_seconds']} s; keygen {c['keygen_seconds']} s. Node mpc-0's gRPC health "
            f"check while it made aux-info: p50 {busy['p50_ms']} ms, p99 {busy['p99_ms']} ms, "
            f"max {busy['max_ms']} ms over {busy['checks']} checks (idle: p99 {idle['p99_ms']} "
            f"ms). The presignature pool (target {c['pool_target']}, refilled in the background "
            f"from keygen on) was full {c['pool_fill_seconds']} s after the interactive "
            f"signatures.",
            "",
        ]
        sustained = [v for k, v in c.items() if k.startswith("sustained_")]
        if sustained and ip:
            rate = sustained[0]["throughput_per_s"]
            lines += [
                f"Once the pool is drained, signing runs at the presigning rate: {rate} "
                f"signatures/s, i.e. {round(1 / rate, 2)} s of cluster time per presignature, "
                f"next to its arithmetic floor of {ip['floor_seconds_per_core']} s (the "
                f"{ip['modexps']} modexps of one presignature, timed bare, over "
                f"{ip['cores']} cores).",
                "",
                "| signing | signatures | p50 ms | p95 ms | throughput /s |",
                "|---|---:|---:|---:|---:|",
            ]
        rows = [
            ("digest, interactive (presign + sign)", c["interactive_sign"]),
            ("message, pool warm (online round only)", c["online_sign_pool_warm"]),
        ]
        rows += [
            (f"message, sustained ({k.rsplit('_', 1)[-1]} concurrent)", v)
            for k, v in c.items()
            if k.startswith("sustained_")
        ]
        for name, r in rows:
            lines.append(
                f"| {name} | {r['count']} | {r['p50_ms']} | {r['p95_ms']} | "
                f"{r['throughput_per_s']} |"
            )
        lines.append("")
    return lines


# --------------------------------------------------------------------------- over the cluster


class HealthSampler:
    """Calls a node's gRPC health check back to back in a thread, recording each latency."""

    def __init__(self, address: str) -> None:
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        self._channel = grpc.insecure_channel(address)
        self._stub = health_pb2_grpc.HealthStub(self._channel)
        self._request = health_pb2.HealthCheckRequest(service="")
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            self._stub.Check(self._request, timeout=30)
            self.latencies.append(time.perf_counter() - started)
            self._stop.wait(0.01)

    def __enter__(self) -> HealthSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._channel.close()

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.latencies)
        return {
            "checks": len(ordered),
            "p50_ms": round(ordered[len(ordered) // 2] * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2),
        }


def _latencies(samples: list[float], wall: float) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "count": len(ordered),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
        "throughput_per_s": round(len(ordered) / wall, 2),
    }


def bench_ecdsa_cluster(signatures: int, concurrency: int, base_port: int) -> dict[str, Any]:
    """Aux-info (with a node's health-check latency meanwhile), keygen, presigning, signing."""
    import json
    import subprocess
    import sys
    import tempfile
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    import coincurve
    import grpc

    from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc

    root = Path(__file__).resolve().parent.parent
    workdir = tempfile.mkdtemp(prefix="mpc-bench-ecdsa-")
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
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        out: dict[str, Any] = {}

        with HealthSampler(info["nodes"][0]["health"]) as idle:
            time.sleep(2.0)
        out["health_idle"] = idle.summary()

        with HealthSampler(info["nodes"][0]["health"]) as busy:
            started = time.perf_counter()
            op = stub.StartAuxInfo(coordinator_pb2.StartAuxInfoRequest(), timeout=30)
            while op.state not in ("done", "failed"):
                time.sleep(0.2)
                op = stub.GetOperation(
                    coordinator_pb2.GetOperationRequest(operation_id=op.operation_id), timeout=30
                )
            out["aux_info_seconds"] = round(time.perf_counter() - started, 2)
        if op.state != "done":
            raise RuntimeError(f"aux-info failed: {op.error}")
        out["health_during_aux_info"] = busy.summary()

        started = time.perf_counter()
        key = stub.CreateKey(
            coordinator_pb2.CreateKeyRequest(scheme="secp256k1", threshold=3, parties=5),
            timeout=600,
        )
        out["keygen_seconds"] = round(time.perf_counter() - started, 3)
        public = coincurve.PublicKey(bytes(key.public_key))

        def sign_message(_: int) -> float:
            message = os.urandom(48)
            t0 = time.perf_counter()
            response = stub.Sign(
                coordinator_pb2.SignRequest(key_id=key.key_id, message=message), timeout=600
            )
            elapsed = time.perf_counter() - t0
            digest = hashlib.sha256(message).digest()
            assert public.verify(bytes(response.signature_der), digest, hasher=None)
            return elapsed

        def sign_digest() -> float:
            digest = os.urandom(32)
            t0 = time.perf_counter()
            response = stub.Sign(
                coordinator_pb2.SignRequest(key_id=key.key_id, digest=digest), timeout=600
            )
            elapsed = time.perf_counter() - t0
            assert public.verify(bytes(response.signature_der), digest, hasher=None)
            return elapsed

        # Interactive (digest) signing: a presignature made on demand plus the signing round.
        interactive = [sign_digest() for _ in range(3)]
        out["interactive_sign"] = _latencies(interactive, sum(interactive))

        # Warm pool: wait until the background refill reached its target, time the refill.
        def ready() -> tuple[int, int]:
            status = stub.PresignStatus(
                coordinator_pb2.PresignStatusRequest(key_id=key.key_id), timeout=30
            )
            return sum(p.ready for p in status.pools), status.target

        started = time.perf_counter()
        have, target = ready()
        while target and have < target:
            time.sleep(0.5)
            have, target = ready()
        fill = time.perf_counter() - started
        out["pool_target"] = target
        out["pool_fill_seconds"] = round(fill, 2)
        warm = [sign_message(n) for n in range(max(1, target))]
        out["online_sign_pool_warm"] = _latencies(warm, sum(warm))

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            sustained = list(pool.map(sign_message, range(signatures)))
        out[f"sustained_concurrency_{concurrency}"] = _latencies(
            sustained, time.perf_counter() - started
        )
        channel.close()
        return out
    finally:
        subprocess.run(
            [*devcluster, "down", "--purge", *where], cwd=root, stdout=subprocess.DEVNULL
        )
