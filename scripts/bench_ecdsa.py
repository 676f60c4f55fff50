"""CGGMP ECDSA benchmarks behind `scripts/bench --section ecdsa`. Measures; asserts nothing.

In one process: a 3-of-5 presignature (all three signers' work, one core) with its modexp
count and arithmetic floor (the same modexps timed bare), and one-round signing.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from bench_zk import ModexpFloor

from mpcnode.crypto.bigint import ModexpCounter
from mpcnode.protocols.base import execution_id
from mpcnode.protocols.cggmp import sign
from mpcnode.protocols.cggmp.presign import CggmpPresignSession, Presignature
from mpcnode.protocols.keys import trusted_dealer_keygen
from mpcnode.protocols.simulation import run_sessions
from tests.fixtures.aux_info import load_test_aux_info

PARTIES = (1, 2, 3, 4, 5)
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
    sign_times = []
    public = presigs[1].public
    for n in range(20):
        digest = sign.message_digest(os.urandom(32))
        req = sign.SignRequest(
            "bench", b"p" * 16, n.to_bytes(16, "big"), SIGNERS, digest, sign.SIGN_HASH
        )
        started = time.perf_counter()
        partials = {p: sign.partial_sign(presigs[p], req) for p in SIGNERS}
        sign.combine(public, req, partials)
        sign_times.append(time.perf_counter() - started)
    cores = os.cpu_count() or 1
    return {
        "signers": len(SIGNERS),
        "presign_seconds": round(statistics.median(times), 3),
        "modexps": len(shapes),
        "floor_seconds": round(floor, 3),
        "floor_seconds_per_core": round(floor / cores, 3),
        "cores": cores,
        "sign_and_combine_ms": round(statistics.median(sign_times) * 1000, 3),
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
            f"verify): {ip['sign_and_combine_ms']} ms.",
            "",
        ]
    return lines
