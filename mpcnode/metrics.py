"""Prometheus metrics of a node or of the coordinator, served on a plaintext `/metrics` port.

Every process (and every in-process service of the tests) owns its instruments in its own
`CollectorRegistry`, held by a `NodeMetrics` or `CoordinatorMetrics` object that is handed
to the service explicitly; the global default registry is not used. `serve_metrics` exposes
one registry over HTTP from a daemon thread (`metrics_listen` in the process config).

Label values are never secret and of bounded cardinality: service and method names, gRPC
status code names, protocol and operation names, outcomes, schemes and party indices. No
key id, session id, tenant or message appears in a label.

Instruments of both processes (`Metrics`):

* ``mpc_rpc_duration_seconds{service,method,code}`` histogram of served gRPC calls;
* ``mpc_rpc_errors_total{service,method,code}`` served calls that ended with a code other
  than OK (a refused peer, PERMISSION_DENIED, included);
* ``mpc_blamed_total{protocol,party}`` parties named as provable culprits.

Node only (`NodeMetrics`): ``mpc_sessions_total{protocol,outcome}``,
``mpc_sessions_live{protocol}``, ``mpc_presignatures_stored`` and ``mpc_prime_pool_ready``.
Coordinator only (`CoordinatorMetrics`): ``mpc_operations_total{operation,scheme,outcome}``,
``mpc_sign_duration_seconds{scheme}`` and ``mpc_presign_pool_ready``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

from mpcnode.errors import InvalidInput
from mpcnode.rpc import status_of

log = logging.getLogger("mpcnode.metrics")

RPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
"""Served calls: from a millisecond lookup to a CGGMP round (seconds) or a keygen (a minute)."""
SIGN_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""End-to-end Sign calls: FROST in tens of ms, pooled ECDSA well under a second, ECDSA over a
digest or without a pooled presignature several seconds, retries around a dead node longer."""

NODE_PROTOCOLS = (
    "frost-dkg",
    "frost-sign",
    "cggmp-aux-info",
    "cggmp-presign",
    "cggmp-sign-digest",
    "reshare",
)
"""Session protocols of a node (the values of `mpc_sessions_live{protocol}`)."""

SESSION_OUTCOMES = ("completed", "failed", "aborted", "expired", "idle", "superseded")
"""How a node session ends: finished; failed in a round (an error here, a culprit named or
not); aborted by the coordinator; past its lifetime; no Step for too long; replaced by a
newer reshare of the same key."""


class Metrics:
    """The instruments every process has: served RPCs and blamed parties."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        self.rpc_duration = Histogram(
            "mpc_rpc_duration_seconds",
            "Duration of served gRPC calls, by service, method and status code.",
            ["service", "method", "code"],
            buckets=RPC_BUCKETS,
            registry=self.registry,
        )
        self.rpc_errors = Counter(
            "mpc_rpc_errors_total",
            "Served gRPC calls that ended with a status code other than OK.",
            ["service", "method", "code"],
            registry=self.registry,
        )
        self.blamed = Counter(
            "mpc_blamed_total",
            "Parties named as provable culprits of a failed protocol run.",
            ["protocol", "party"],
            registry=self.registry,
        )

    def observe_rpc(self, service: str, method: str, code: str, seconds: float) -> None:
        self.rpc_duration.labels(service, method, code).observe(seconds)
        if code != "OK":
            self.rpc_errors.labels(service, method, code).inc()

    def blame(self, protocol: str, culprits: Iterable[int]) -> None:
        for party in culprits:
            self.blamed.labels(protocol, str(int(party))).inc()

    def exposition(self) -> str:
        """The registry in the Prometheus text format (what `/metrics` serves)."""
        return generate_latest(self.registry).decode()


def _safe(read: Callable[[], int]) -> Callable[[], float]:
    """A scrape-time reading that never fails the scrape (NaN when the store is closed)."""

    def value() -> float:
        try:
            return float(read())
        except Exception:  # a closed store during shutdown: report no value, not an error
            return math.nan

    return value


class NodeMetrics(Metrics):
    """A node's instruments."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.sessions = Counter(
            "mpc_sessions_total",
            "Protocol sessions that ended on this node, by protocol and outcome.",
            ["protocol", "outcome"],
            registry=self.registry,
        )
        self.sessions_live = Gauge(
            "mpc_sessions_live",
            "Protocol sessions running on this node, by protocol.",
            ["protocol"],
            registry=self.registry,
        )
        for protocol in NODE_PROTOCOLS:
            self.sessions_live.labels(protocol).set(0)
        self.presignatures_stored = Gauge(
            "mpc_presignatures_stored",
            "Unused CGGMP presignatures stored on this node (all keys).",
            registry=self.registry,
        )
        self.prime_pool_ready = Gauge(
            "mpc_prime_pool_ready",
            "Safe primes ready in this node's pool for CGGMP aux-info.",
            registry=self.registry,
        )

    def session_ended(self, protocol: str, outcome: str) -> None:
        self.sessions.labels(protocol, outcome).inc()

    def set_live(self, protocols: Iterable[str]) -> None:
        """Set the live-session gauge from the protocols of every live session."""
        counts = dict.fromkeys(NODE_PROTOCOLS, 0)
        for protocol in protocols:
            counts[protocol] = counts.get(protocol, 0) + 1
        for protocol, count in counts.items():
            self.sessions_live.labels(protocol).set(count)

    def watch_store(self, presignatures: Callable[[], int], primes: Callable[[], int]) -> None:
        """Read the stored presignatures and ready primes at scrape time (the key store is
        safe to use from the scrape thread: one connection behind a lock)."""
        self.presignatures_stored.set_function(_safe(presignatures))
        self.prime_pool_ready.set_function(_safe(primes))


@dataclass
class _Operation:
    """What an operation records when it ends; the caller may fill in the scheme late."""

    scheme: str = ""


class CoordinatorMetrics(Metrics):
    """The coordinator's instruments."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry)
        self.operations = Counter(
            "mpc_operations_total",
            "Coordinator operations (keygen, sign, aux-info, presign, reshare) by scheme and "
            "outcome (ok, or the lower-case gRPC status code name of the failure).",
            ["operation", "scheme", "outcome"],
            registry=self.registry,
        )
        self.sign_duration = Histogram(
            "mpc_sign_duration_seconds",
            "End-to-end latency of successful signing requests, by scheme.",
            ["scheme"],
            buckets=SIGN_BUCKETS,
            registry=self.registry,
        )
        self.presign_pool_ready = Gauge(
            "mpc_presign_pool_ready",
            "Ready presignatures in the coordinator's pools (all keys and signer sets).",
            registry=self.registry,
        )

    @contextlib.contextmanager
    def operation(self, name: str, scheme: str = "") -> Iterator[_Operation]:
        """Count one operation by its outcome; a `sign` also feeds the latency histogram."""
        op = _Operation(scheme)
        began = time.perf_counter()
        try:
            yield op
        except BaseException as exc:
            self.record_operation(name, op.scheme, exc)
            raise
        self.record_operation(name, op.scheme, None)
        if name == "sign":
            self.sign_duration.labels(op.scheme).observe(time.perf_counter() - began)

    def record_operation(self, name: str, scheme: str, error: BaseException | None) -> None:
        """Count one finished operation: ok without `error`, else the error's status."""
        if error is None:
            outcome = "ok"
        elif isinstance(error, Exception):
            outcome = status_of(error)[0].name.lower()
        else:  # trio.Cancelled, KeyboardInterrupt: the caller or the process went away
            outcome = "cancelled"
        self.operations.labels(name, scheme, outcome).inc()


def parse_listen(address: str) -> tuple[str, int]:
    """(host, port) of a ``host:port`` listen address (``[::]:9100`` for IPv6)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InvalidInput(f"bad metrics address {address!r}: expected host:port")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


class MetricsServer:
    """The plaintext HTTP `/metrics` endpoint of one registry, in a daemon thread."""

    def __init__(self, httpd: Any, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve_metrics(address: str, metrics: Metrics) -> MetricsServer:
    """Start serving `metrics` on `address` (host:port; port 0 picks a free one)."""
    host, port = parse_listen(address)
    try:
        httpd, thread = start_http_server(port, host, registry=metrics.registry)
    except OSError as exc:
        raise InvalidInput(f"cannot listen on metrics address {address}: {exc.strerror}") from None
    server = MetricsServer(httpd, thread)
    log.info("metrics on http://%s:%d/metrics", host, server.port)
    return server


@contextlib.contextmanager
def metrics_endpoint(address: str | None, metrics: Metrics) -> Iterator[MetricsServer | None]:
    """Serve `metrics` on `address` while the block runs (nothing when `address` is None)."""
    if address is None:
        yield None
        return
    server = serve_metrics(address, metrics)
    try:
        yield server
    finally:
        server.close()
