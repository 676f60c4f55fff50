"""Real processes: the Prometheus endpoints of a running node and coordinator, scraped over HTTP
after a keygen, a signature and a few refused calls."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from nacl.signing import VerifyKey
from prometheus_client.parser import text_string_to_metric_families

from coordinator import devcluster
from protos.mpc.v1 import coordinator_pb2, node_pb2, node_pb2_grpc
from tests.cluster.harness import LocalCluster

BASE_PORT = 53650
pytestmark = pytest.mark.cluster

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metrics_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("metrics-cluster"), BASE_PORT)
    cluster.run("up", "--prime-pool", "0")
    try:
        yield cluster
    finally:
        cluster.run("down", "--purge")


def scrape(port: int) -> Samples:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_node_and_coordinator_metrics(metrics_cluster: LocalCluster) -> None:
    status = metrics_cluster.run("status")
    ports = {p["name"]: p["metrics_port"] for p in status["processes"]}
    assert ports["coordinator"] == BASE_PORT + devcluster.METRICS_OFFSET
    assert ports["mpc-0"] == BASE_PORT + 1 + devcluster.METRICS_OFFSET

    proc = metrics_cluster.mpcctl("keygen", "--scheme", "ed25519", "--threshold", "3")
    assert proc.returncode == 0, proc.stderr
    key = json.loads(proc.stdout)
    channel, stub = metrics_cluster.stub()
    try:
        message = b"metrics test"
        response = stub.Sign(
            coordinator_pb2.SignRequest(key_id=key["key_id"], message=message), timeout=60
        )
        VerifyKey(bytes.fromhex(key["public_key"])).verify(message, bytes(response.signature))
        with pytest.raises(grpc.RpcError) as caught:
            stub.Sign(coordinator_pb2.SignRequest(key_id="no-such-key", message=b"x"), timeout=60)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        channel.close()

    # A client that is not the coordinator calls a node: refused, and counted.
    info = json.loads((metrics_cluster.dir / "cluster.json").read_text())
    t = info["tls"]
    creds = grpc.ssl_channel_credentials(
        Path(t["ca"]).read_bytes(),
        Path(t["client_key"]).read_bytes(),
        Path(t["client_cert"]).read_bytes(),
    )
    with grpc.secure_channel(info["nodes"][0]["address"], creds) as node_channel:
        with pytest.raises(grpc.RpcError) as caught:
            node_pb2_grpc.NodeStub(node_channel).Identity(node_pb2.IdentityRequest(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # mpc-0 (party 1) is among the first three live holders, so it signed.
    node = scrape(ports["mpc-0"])
    rpc = {"service": "mpc.v1.Node", "code": "OK"}
    assert sample(node, "mpc_rpc_duration_seconds_count", method="Start", **rpc) >= 2
    assert sample(node, "mpc_rpc_duration_seconds_count", method="Step", **rpc) >= 2
    assert sample(node, "mpc_rpc_duration_seconds_sum", method="Step", **rpc) > 0
    assert sample(node, "mpc_rpc_errors_total", method="Start", **rpc) == 0
    assert (
        sample(
            node,
            "mpc_rpc_errors_total",
            service="mpc.v1.Node",
            method="Identity",
            code="PERMISSION_DENIED",
        )
        == 1
    )
    assert (
        sample(
            node,
            "mpc_rpc_errors_total",
            service="mpc.v1.Node",
            method="GetKeyRecord",
            code="NOT_FOUND",
        )
        >= 1
    )
    assert sample(node, "mpc_sessions_total", protocol="frost-dkg", outcome="completed") == 1
    assert sample(node, "mpc_sessions_total", protocol="frost-sign", outcome="completed") >= 1
    assert sample(node, "mpc_sessions_total", protocol="frost-sign", outcome="failed") == 0
    assert sample(node, "mpc_sessions_live", protocol="frost-sign") == 0
    assert sample(node, "mpc_presignatures_stored") == 0
    assert sample(node, "mpc_prime_pool_ready") == 0  # --prime-pool 0: none made

    coordinator = scrape(ports["coordinator"])
    api = {"service": "mpc.v1.Coordinator", "method": "Sign"}
    assert sample(coordinator, "mpc_rpc_duration_seconds_count", code="OK", **api) == 1
    assert sample(coordinator, "mpc_rpc_errors_total", code="NOT_FOUND", **api) == 1
    assert sample(coordinator, "mpc_rpc_errors_total", code="OK", **api) == 0
    ops = "mpc_operations_total"
    assert sample(coordinator, ops, operation="keygen", scheme="ed25519", outcome="ok") == 1
    assert sample(coordinator, ops, operation="sign", scheme="ed25519", outcome="ok") == 1
    # An unknown key is refused while the caller is authorized (the key's owner is looked up
    # first), before a signing operation starts: it shows as the RPC's NOT_FOUND above only.
    assert sample(coordinator, ops, operation="sign", scheme="", outcome="not_found") == 0
    assert sample(coordinator, "mpc_sign_duration_seconds_count", scheme="ed25519") == 1
    assert sample(coordinator, "mpc_sign_duration_seconds_sum", scheme="ed25519") > 0
    assert sample(coordinator, "mpc_presign_pool_ready") == 0
    assert not [k for k in coordinator if k[0] == "mpc_blamed_total"]  # nobody misbehaved
