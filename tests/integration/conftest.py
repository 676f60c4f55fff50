"""An in-process cluster: five real node services and a coordinator, over real gRPC with mTLS.

Everything runs in the test's trio loop, so tests can reach into a node's store
or swap a node's session factory to make it misbehave.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import trio

from coordinator.auth import AuthConfig, Authenticator
from coordinator.devcluster import CLIENT, DEV_CLIENT_PRINCIPAL
from coordinator.server import Coordinator, CoordinatorApi, NodeAddress, tls_channel_factory
from mpcnode import tls
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.rpc import SERVER_OPTIONS
from mpcnode.server import NodeService, node_handlers
from mpcnode.storage import KeyStore

NAMES = [f"mpc-{k}" for k in range(5)]


@dataclass(frozen=True)
class CallContext:
    """What `CoordinatorApi` reads of a grpc.ServicerContext: the call's metadata and the
    common name of its (verified) client certificate."""

    metadata: tuple[tuple[str, str], ...] = ()
    common_name: str | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def auth_context(self) -> dict[str, list[bytes]]:
        if self.common_name is None:
            return {}
        return {"x509_common_name": [self.common_name.encode()]}


CLIENT_CTX = CallContext(common_name=CLIENT)
"""A call from the dev cluster's `client` certificate: org "default" (the org of keys
`Coordinator.create_key` makes without an owner) with every role."""


def local_api(coordinator: Coordinator, auth: dict[str, object] | None = None) -> CoordinatorApi:
    """The public API over `coordinator`, authenticating as a dev cluster does (the `client`
    certificate, org-wide over org "default"), or with the given ``"auth"`` config."""
    config = auth if auth is not None else {"mtls_principals": {CLIENT: DEV_CLIENT_PRINCIPAL}}
    return CoordinatorApi(coordinator, Authenticator(AuthConfig.from_dict(config)))


@dataclass
class InProcessCluster:
    services: dict[int, NodeService]
    servers: dict[int, grpc.Server]
    coordinator: Coordinator
    roster: Roster
    identities: dict[int, NodeIdentity]
    keks: dict[int, bytes] = field(default_factory=dict)
    data_dirs: dict[int, Path] = field(default_factory=dict)
    pki: Path | None = None

    def stop_node(self, party: int) -> None:
        self.servers[party].stop(grace=None)

    def restart_node(self, party: int) -> None:
        """A stopped node comes back on its port with its store and a fresh session table (as
        after a process restart: sessions are in memory only)."""
        assert self.pki is not None
        old = self.services[party]
        service = NodeService(
            old.identity, old.roster, old.store, allow_test_primes=old.allow_test_primes
        )
        port = int(self.coordinator.nodes[party].address.rsplit(":", 1)[1])
        self.servers[party], _ = _serve(service, self.pki, old.identity.name, f"127.0.0.1:{port}")
        self.services[party] = service


def _serve(service: NodeService, pki: Path, name: str, address: str) -> tuple[grpc.Server, int]:
    token = trio.lowlevel.current_trio_token()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers((node_handlers(service, token, ["coordinator"]),))
    creds = tls.server_credentials(
        str(pki / "ca.pem"), str(pki / f"{name}.pem"), str(pki / f"{name}.key")
    )
    port = server.add_secure_port(address, creds)
    server.start()
    return server, port


@contextlib.asynccontextmanager
async def open_cluster(
    tmp_path: Path, allow_test_primes: bool = False
) -> AsyncIterator[InProcessCluster]:
    """Five node services (real gRPC, mTLS) and a coordinator; everything closed on exit.

    `allow_test_primes` (TEST ONLY) lets the nodes' prime pools and aux-info sessions accept
    the public fixture primes.
    """
    pki = tmp_path / "tls"
    tls.make_dev_pki(pki, [*NAMES, "coordinator"])
    identities = {k + 1: NodeIdentity.generate(NAMES[k], k + 1) for k in range(5)}
    roster = Roster([i.public_entry() for i in identities.values()])
    services: dict[int, NodeService] = {}
    servers: dict[int, grpc.Server] = {}
    keks: dict[int, bytes] = {}
    data_dirs: dict[int, Path] = {}
    addresses = []
    for party, identity in identities.items():
        name = identity.name
        keks[party] = os.urandom(32)
        data_dirs[party] = tmp_path / name
        store = KeyStore(data_dirs[party], name, keks[party])
        service = NodeService(identity, roster, store, allow_test_primes=allow_test_primes)
        server, port = _serve(service, pki, name, "127.0.0.1:0")
        services[party] = service
        servers[party] = server
        addresses.append(NodeAddress(name, party, f"localhost:{port}"))
    coordinator = Coordinator(
        roster,
        addresses,
        tls_channel_factory(pki / "ca.pem", pki / "coordinator.pem", pki / "coordinator.key"),
    )
    try:
        yield InProcessCluster(
            services, servers, coordinator, roster, identities, keks, data_dirs, pki
        )
    finally:
        coordinator.close()
        for server in servers.values():
            server.stop(grace=None)
        for service in services.values():
            service.store.close()


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[InProcessCluster]:
    async with open_cluster(tmp_path) as opened:
        yield opened
