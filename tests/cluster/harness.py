"""Shared harness of the real-process cluster tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import grpc

from protos.mpc.v1 import coordinator_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]


class LocalCluster:
    """A cluster of real processes in `directory`, driven through scripts/cluster and mpcctl."""

    def __init__(self, directory: Path, base_port: int) -> None:
        self.dir = directory
        self.base_port = base_port

    def run(self, *command: str) -> Any:
        """Run one scripts/cluster command; its JSON output."""
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "coordinator.devcluster",
                *command,
                "--dir",
                str(self.dir),
                "--base-port",
                str(self.base_port),
            ],
            check=True,
            cwd=ROOT,
            capture_output=True,
            timeout=120,
        )
        return json.loads(proc.stdout) if proc.stdout.strip() else None

    def mpcctl(self, *command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "coordinator.cli", "--cluster", str(self.dir), *command],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stub(self) -> tuple[grpc.Channel, Any]:
        info = json.loads((self.dir / "cluster.json").read_text())
        t = info["tls"]
        creds = grpc.ssl_channel_credentials(
            Path(t["ca"]).read_bytes(),
            Path(t["client_key"]).read_bytes(),
            Path(t["client_cert"]).read_bytes(),
        )
        channel = grpc.secure_channel(info["coordinator"]["address"], creds)
        return channel, coordinator_pb2_grpc.CoordinatorStub(channel)
