"""mpcnode.metrics: the instruments, the exposition, the HTTP endpoint, what the services count."""

from __future__ import annotations

import math
import os
import socket
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from mpcnode.errors import InvalidInput, KeyNotFound, QuorumUnavailable
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.metrics import (
    NODE_PROTOCOLS,
    CoordinatorMetrics,
    Metrics,
    NodeMetrics,
    metrics_endpoint,
    parse_listen,
    serve_metrics,
)
from mpcnode.rpc import timed_handler
from mpcnode.server import SESSION_IDLE_SECONDS, NodeService
from mpcnode.storage import KeyStore
from protos.mpc.v1 import node_pb2


def families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_node_and_coordinator_instruments_are_exposed() -> None:
    node = families(NodeMetrics().exposition())
    assert {
        "mpc_rpc_duration_seconds",
        "mpc_rpc_errors",
        "mpc_blamed",
        "mpc_sessions",
        "mpc_sessions_live",
        "mpc_presignatures_stored",
        "mpc_prime_pool_ready",
    } <= set(node)
    assert "mpc_operations" not in node
    assert node["mpc_rpc_duration_seconds"].type == "histogram"
    assert node["mpc_sessions"].type == "counter"
    live = {s.labels["protocol"]: s.value for s in node["mpc_sessions_live"].samples}
    assert live == dict.fromkeys(NODE_PROTOCOLS, 0.0)

    coordinator = families(CoordinatorMetrics().exposition())
    assert {
        "mpc_rpc_duration_seconds",
        "mpc_rpc_errors",
        "mpc_blamed",
        "mpc_operations",
        "mpc_sign_duration_seconds",
        "mpc_presign_pool_ready",
    } <= set(coordinator)
    assert "mpc_sessions" not in coordinator


def test_registries_are_independent() -> None:
    one, two = NodeMetrics(), NodeMetrics()  # five nodes in one test process: no clash
    one.observe_rpc("mpc.v1.Node", "Start", "OK", 0.01)
    assert (
        value(
            one, "mpc_rpc_duration_seconds_count", service="mpc.v1.Node", method="Start", code="OK"
        )
        == 1
    )
    assert (
        value(
            two, "mpc_rpc_duration_seconds_count", service="mpc.v1.Node", method="Start", code="OK"
        )
        == 0
    )


def test_rpc_errors_and_blame() -> None:
    m = Metrics()
    m.observe_rpc("mpc.v1.Node", "Step", "OK", 0.2)
    m.observe_rpc("mpc.v1.Node", "Step", "ABORTED", 0.3)
    labels = {"service": "mpc.v1.Node", "method": "Step"}
    assert value(m, "mpc_rpc_errors_total", code="OK", **labels) == 0
    assert value(m, "mpc_rpc_errors_total", code="ABORTED", **labels) == 1
    assert value(m, "mpc_rpc_duration_seconds_sum", code="ABORTED", **labels) == pytest.approx(0.3)
    m.blame("frost-sign", [2, 4])
    m.blame("frost-sign", [2])
    assert value(m, "mpc_blamed_total", protocol="frost-sign", party="2") == 2
    assert value(m, "mpc_blamed_total", protocol="frost-sign", party="4") == 1


async def test_operations_by_outcome() -> None:
    m = CoordinatorMetrics()
    with m.operation("sign") as op:
        op.scheme = "ed25519"
    with pytest.raises(KeyNotFound), m.operation("sign"):
        raise KeyNotFound("no key")
    with pytest.raises(QuorumUnavailable), m.operation("keygen", "secp256k1"):
        raise QuorumUnavailable("two nodes down")
    with trio.move_on_after(0):
        with m.operation("reshare", "ed25519"):
            await trio.sleep(1)
    m.record_operation("aux-info", "secp256k1", None)
    assert value(m, "mpc_operations_total", operation="sign", scheme="ed25519", outcome="ok") == 1
    assert value(m, "mpc_operations_total", operation="sign", scheme="", outcome="not_found") == 1
    assert (
        value(
            m, "mpc_operations_total", operation="keygen", scheme="secp256k1", outcome="unavailable"
        )
        == 1
    )
    assert (
        value(m, "mpc_operations_total", operation="reshare", scheme="ed25519", outcome="cancelled")
        == 1
    )
    assert (
        value(m, "mpc_operations_total", operation="aux-info", scheme="secp256k1", outcome="ok")
        == 1
    )
    # Only successful signatures are timed.
    assert value(m, "mpc_sign_duration_seconds_count", scheme="ed25519") == 1
    assert value(m, "mpc_sign_duration_seconds_count", scheme="") == 0


def test_scrape_time_gauges_never_fail_the_scrape() -> None:
    m = NodeMetrics()

    def broken() -> int:
        raise InvalidInput("key store is closed")

    m.watch_store(lambda: 7, broken)
    assert value(m, "mpc_presignatures_stored") == 7
    assert math.isnan(value(m, "mpc_prime_pool_ready"))
    families(m.exposition())  # still parses


def test_http_endpoint_serves_the_registry() -> None:
    m = NodeMetrics()
    m.session_ended("frost-sign", "completed")
    server = serve_metrics("127.0.0.1:0", m)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=10) as r:
            assert r.status == 200
            text = r.read().decode()
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
        }
        key = ("mpc_sessions_total", (("outcome", "completed"), ("protocol", "frost-sign")))
        assert samples[key] == 1
        # The port is taken: a clear error, no traceback from the HTTP server.
        with pytest.raises(InvalidInput, match="metrics address"):
            serve_metrics(f"127.0.0.1:{server.port}", NodeMetrics())
    finally:
        server.close()
    with socket.socket() as s:  # closed: the port is free again (TIME_WAIT aside)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", server.port))


def test_no_endpoint_without_an_address() -> None:
    with metrics_endpoint(None, Metrics()) as server:
        assert server is None


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::]:9100", ("::", 9100)),
        (":9100", ("0.0.0.0", 9100)),
    ],
)
def test_parse_listen(address: str, parsed: tuple[str, int]) -> None:
    assert parse_listen(address) == parsed


@pytest.mark.parametrize("address", ["9100", "host:", "host:port", "host:70000"])
def test_parse_listen_refuses(address: str) -> None:
    with pytest.raises(InvalidInput):
        parse_listen(address)


class FakeContext:
    """The part of grpc.ServicerContext a timed handler reads."""

    def __init__(self) -> None:
        self._code: grpc.StatusCode | None = None

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        self._code = code
        raise Exception(details)  # what grpcio's abort does

    def code(self) -> grpc.StatusCode | None:
        return self._code


def test_timed_handler_records_codes() -> None:
    m = Metrics()

    def ok(request: Any, context: Any) -> str:
        return "fine"

    def refused(request: Any, context: Any) -> None:
        context.abort(grpc.StatusCode.PERMISSION_DENIED, "not the coordinator")

    def crashed(request: Any, context: Any) -> None:
        raise RuntimeError("bug")

    assert timed_handler(ok, m, "svc", "Ok")(None, FakeContext()) == "fine"
    for handler, method in ((refused, "Refused"), (crashed, "Crashed")):
        with pytest.raises(Exception):  # noqa: B017
            timed_handler(handler, m, "svc", method)(None, FakeContext())
    assert value(m, "mpc_rpc_duration_seconds_count", service="svc", method="Ok", code="OK") == 1
    assert (
        value(m, "mpc_rpc_errors_total", service="svc", method="Refused", code="PERMISSION_DENIED")
        == 1
    )
    assert value(m, "mpc_rpc_errors_total", service="svc", method="Crashed", code="UNKNOWN") == 1


@pytest.fixture
def service(tmp_path: Path) -> NodeService:
    identities = [NodeIdentity.generate(f"mpc-{k}", k + 1) for k in range(3)]
    roster = Roster([i.public_entry() for i in identities])
    return NodeService(identities[0], roster, KeyStore(tmp_path / "node", "mpc-0", os.urandom(32)))


async def start_dkg(service: NodeService) -> bytes:
    sid = os.urandom(16)
    request = node_pb2.StartRequest(
        session_id=sid,
        protocol="frost-dkg",
        key_id=sid.hex(),
        threshold=2,
        parties=[1, 2, 3],
        scheme="ed25519",
    )
    await service.start(request, None)  # type: ignore[arg-type]
    return sid


async def test_node_counts_sessions_by_outcome(
    service: NodeService, autojump_clock: trio.testing.MockClock
) -> None:
    m = service.metrics
    first = await start_dkg(service)
    second = await start_dkg(service)
    assert value(m, "mpc_sessions_live", protocol="frost-dkg") == 2
    await service.abort(node_pb2.AbortRequest(session_id=first), None)  # type: ignore[arg-type]
    assert value(m, "mpc_sessions_live", protocol="frost-dkg") == 1
    await trio.sleep(SESSION_IDLE_SECONDS + 1)
    service._expire_sessions()
    assert second not in service.sessions
    assert value(m, "mpc_sessions_live", protocol="frost-dkg") == 0
    assert value(m, "mpc_sessions_total", protocol="frost-dkg", outcome="aborted") == 1
    assert value(m, "mpc_sessions_total", protocol="frost-dkg", outcome="idle") == 1
    # A Step with garbage fails the session here.
    third = await start_dkg(service)
    bad = node_pb2.StepRequest(session_id=third, envelopes=[node_pb2.StepRequest().envelopes.add()])
    with pytest.raises(Exception):  # noqa: B017
        await service.step(bad, None)  # type: ignore[arg-type]
    assert value(m, "mpc_sessions_total", protocol="frost-dkg", outcome="failed") == 1
    # Scrape-time readings from the store: nothing stored, the default pool is empty.
    assert value(m, "mpc_presignatures_stored") == 0
    assert value(m, "mpc_prime_pool_ready") == 0
    service.store.close()
    assert math.isnan(value(m, "mpc_presignatures_stored"))
