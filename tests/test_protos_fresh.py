"""The committed protobuf/gRPC code is exactly what scripts/gen-protos makes from the .proto files.

Fails when someone edits a .proto without regenerating (or edits generated code by hand);
the fix is to run scripts/gen-protos and commit the result.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = Path("protos/mpc/v1")
GENERATED = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")


def _generated_files(base: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes() for pattern in GENERATED for p in (base / PROTO_DIR).glob(pattern)
    }


def test_committed_protos_match_generator(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen-protos"), str(tmp_path)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    fresh = _generated_files(tmp_path)
    committed = _generated_files(ROOT)
    protos = sorted(p.stem for p in (ROOT / PROTO_DIR).glob("*.proto"))
    assert protos, "no .proto files found"
    for stem in protos:  # every .proto produced its three files
        assert {f"{stem}_pb2.py", f"{stem}_pb2.pyi", f"{stem}_pb2_grpc.py"} <= fresh.keys()
    assert sorted(committed) == sorted(fresh), "generated files missing or stale in the repo"
    stale = [name for name in sorted(fresh) if fresh[name] != committed[name]]
    assert not stale, f"out of date, run scripts/gen-protos: {stale}"
