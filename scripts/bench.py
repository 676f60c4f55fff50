"""Benchmark behind scripts/bench. Measures; asserts nothing about speed."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from nacl.signing import VerifyKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from mpcnode.protocols.base import Incoming, execution_id  # noqa: E402
from mpcnode.protocols.frost.dkg import FrostDkgSession  # noqa: E402
from mpcnode.protocols.frost.sign import FrostAggregator, FrostSignSession  # noqa: E402
from mpcnode.protocols.simulation import run_sessions  # noqa: E402
from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc  # noqa: E402


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def summary(latencies: list[float], wall: float) -> dict[str, float]:
    return {
        "count": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 3),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 3),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 3),
        "throughput_per_s": round(len(latencies) / wall, 1),
    }


def bench_in_process(count: int) -> dict[str, float]:
    """The same FROST 3-of-5 signing, all parties and the aggregator in this one process."""
    parties = [1, 2, 3, 4, 5]
    eid = os.urandom(32)
    dkg = {p: FrostDkgSession(party=p, parties=parties, threshold=3, eid=eid) for p in parties}
    run_sessions(dkg)
    shares = {p: s.output for p, s in dkg.items()}
    public = shares[1].public
    signers = [1, 2, 3]
    latencies = []
    wall_start = time.perf_counter()
    for n in range(count):
        message = os.urandom(48)
        started = time.perf_counter()
        seid = execution_id("frost-sign", n.to_bytes(16, "big"), "bench", signers, 3, message)
        sessions = {
            p: FrostSignSession(key_share=shares[p], signers=signers, message=message, eid=seid)
            for p in signers
        }
        commitments = {p: s.start()[0].payload for p, s in sessions.items()}
        aggregator = FrostAggregator(public, signers, message)
        for p in sessions:
            aggregator.add_commitment(p, commitments[p])
        for p, s in sessions.items():
            incoming = [Incoming(1, q, True, commitments[q]) for q in signers if q != p]
            aggregator.add_share(p, s.receive(incoming)[0].payload)
        signature = aggregator.signature()
        latencies.append(time.perf_counter() - started)
        VerifyKey(public.public_key.encode()).verify(message, signature)
    return summary(latencies, time.perf_counter() - wall_start)


def bench_cluster(count: int, concurrency: int, base_port: int) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix="mpc-bench-")
    devcluster = [sys.executable, "-m", "coordinator.devcluster"]
    where = ["--dir", workdir, "--base-port", str(base_port)]
    subprocess.run(
        [*devcluster, "up", "--prime-pool", "0", *where],
        check=True,
        cwd=ROOT,
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
        started = time.perf_counter()
        key = stub.CreateKey(
            coordinator_pb2.CreateKeyRequest(scheme="ed25519", threshold=3, parties=5), timeout=120
        )
        keygen_s = time.perf_counter() - started
        verify_key = VerifyKey(bytes(key.public_key))

        child_path = "m/7/42/1000"

        def one(_: int, path: str = "") -> float:
            message = os.urandom(48)
            t0 = time.perf_counter()
            response = stub.Sign(
                coordinator_pb2.SignRequest(key_id=key.key_id, message=message, path=path),
                timeout=60,
            )
            elapsed = time.perf_counter() - t0
            signer_key = VerifyKey(bytes(response.public_key)) if path else verify_key
            signer_key.verify(message, bytes(response.signature))
            return elapsed

        for n in range(5):  # warm up connections
            one(n)
        # Root and child-key signatures interleaved, so both see the same machine conditions.
        sequential: list[float] = []
        child: list[float] = []
        for n in range(count):
            sequential.append(one(n))
            child.append(one(n, child_path))
        sequential_summary = summary(sequential, sum(sequential))
        child_summary = summary(child, sum(child))
        wall_start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            concurrent = list(pool.map(one, range(count)))
        concurrent_summary = summary(concurrent, time.perf_counter() - wall_start)
        channel.close()
        return {
            "keygen_seconds": round(keygen_s, 3),
            "sequential": sequential_summary,
            f"sequential_child_key_{child_path}": child_summary,
            f"concurrent_{concurrency}": concurrent_summary,
        }
    finally:
        subprocess.run(
            [*devcluster, "down", "--purge", *where], cwd=ROOT, stdout=subprocess.DEVNULL
        )


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
    }


def frost_markdown(frost: dict[str, Any]) -> list[str]:
    rows = [("in one process", frost["in_process"])]
    rows += [(f"cluster, {k}", v) for k, v in frost["cluster"].items() if isinstance(v, dict)]
    lines = [
        "## FROST(Ed25519) 3-of-5 signing",
        "",
        f"Cluster keygen (DKG, 5 nodes): {frost['cluster']['keygen_seconds']} s.",
        "",
        "| run | signatures | p50 ms | p95 ms | throughput /s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['count']} | {r['p50_ms']} | {r['p95_ms']} | {r['throughput_per_s']} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--section", choices=["all", "frost", "zk", "ecdsa", "reshare"], default="all"
    )
    parser.add_argument("--ecdsa-signatures", type=int, default=40)
    parser.add_argument("--signatures", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--proof-runs", type=int, default=3)
    parser.add_argument("--reshare-runs", type=int, default=5)
    parser.add_argument("--base-port", type=int, default=50150)
    parser.add_argument("--out", default=str(ROOT / "bench"))
    parser.add_argument(
        "--report-only", action="store_true", help="rewrite RESULTS.md from results.json"
    )
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(exist_ok=True)
    results_file = out / "results.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    if not args.report_only:
        results["machine"] = machine()
        results["date"] = time.strftime("%Y-%m-%d")
    if args.report_only:
        pass
    elif args.section in ("all", "frost"):
        results["frost_ed25519_3_of_5"] = {
            "in_process": bench_in_process(args.signatures),
            "cluster": bench_cluster(args.signatures, args.concurrency, args.base_port),
        }
    if args.section in ("all", "zk") and not args.report_only:
        from bench_zk import bench_proofs

        results["zk_proofs"] = bench_proofs(args.proof_runs)
    if args.section in ("all", "ecdsa") and not args.report_only:
        from bench_ecdsa import bench_ecdsa_cluster, bench_presign_in_process

        results["cggmp_ecdsa_3_of_5"] = {
            "in_process": bench_presign_in_process(args.proof_runs),
            "cluster": bench_ecdsa_cluster(
                args.ecdsa_signatures, args.concurrency // 2, args.base_port + 100
            ),
        }
    if args.section in ("all", "reshare") and not args.report_only:
        from bench_reshare import bench_reshare_cluster

        results["reshare"] = bench_reshare_cluster(args.reshare_runs, args.base_port + 200)
    results_file.write_text(json.dumps(results, indent=2) + "\n")
    m = results["machine"]
    lines = [
        f"# Benchmarks, measured {results['date']}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['system']}.",
        "",
    ]
    if "frost_ed25519_3_of_5" in results:
        lines += frost_markdown(results["frost_ed25519_3_of_5"]) + [""]
    if "zk_proofs" in results:
        from bench_zk import markdown

        lines += markdown(results["zk_proofs"]) + [""]
    if "cggmp_ecdsa_3_of_5" in results:
        from bench_ecdsa import markdown as ecdsa_markdown

        lines += ecdsa_markdown(results["cggmp_ecdsa_3_of_5"])
    if "reshare" in results:
        from bench_reshare import markdown as reshare_markdown

        lines += reshare_markdown(results["reshare"])
    (out / "RESULTS.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
