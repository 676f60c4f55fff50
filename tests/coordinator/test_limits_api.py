"""Rate limits and request sizes at the coordinator's public API, over real gRPC with mTLS.

The API runs as `serve` runs it (`running_server` with the configured request cap, the
handlers of `CoordinatorApi`) over an in-process cluster; two clients, alice and bob, call it
with their own certificates. Every node call of the coordinator goes through
`Coordinator._call`, which is counted: a refused call must make none (no probe, no session, so
no presignature either). The limiter's clock is fake, so no token comes back mid-test.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from nacl.signing import VerifyKey

from coordinator.auth import AuthConfig, Authenticator
from coordinator.limits import Limits, Rate, RateLimiter
from coordinator.server import CoordinatorApi
from mpcnode import tls
from mpcnode.rpc import RETRY_AFTER_METADATA, running_server
from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc
from tests.integration.conftest import InProcessCluster, open_cluster

SIGNER = {"org": "default", "roles": ["org:admin", "tenant:signer"]}
CLIENTS = ("alice", "bob")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    cluster: InProcessCluster
    clock: FakeClock
    stubs: dict[str, Any]
    node_calls: list[str]
    key_id: str
    public_key: bytes

    async def call(self, client: str, method: str, request: Any) -> Any:
        stub = self.stubs[client]
        return await trio.to_thread.run_sync(lambda: getattr(stub, method)(request, timeout=30))

    async def sign(self, client: str, key_id: str | None = None, **fields: Any) -> Any:
        fields.setdefault("message", os.urandom(16))
        request = coordinator_pb2.SignRequest(key_id=key_id or self.key_id, **fields)
        response = await self.call(client, "Sign", request)
        if request.message:
            VerifyKey(bytes(response.public_key)).verify(bytes(request.message), response.signature)
        return response

    async def refused(
        self, code: grpc.StatusCode, client: str, method: str, request: Any
    ) -> grpc.RpcError:
        """The call fails with `code` and the coordinator makes no node call for it."""
        before = len(self.node_calls)
        with pytest.raises(grpc.RpcError) as info:
            await self.call(client, method, request)
        err: Any = info.value
        assert err.code() == code, (err.code(), err.details())
        assert self.node_calls[before:] == [], "a refused call reached the nodes"
        return info.value


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_api(tmp_path: Path, limits: Limits) -> AsyncIterator[Api]:
    async with open_cluster(tmp_path / "cluster") as cluster:
        info = await cluster.coordinator.create_key("ed25519", 3, 5)
        calls: list[str] = []
        real_call = cluster.coordinator._call

        async def counted(party: int, method: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(f"{method}@{party}")
            return await real_call(party, method, *args, **kwargs)

        cluster.coordinator._call = counted  # type: ignore[method-assign]
        pki = tmp_path / "api-pki"
        tls.make_dev_pki(pki, ["coordinator", *CLIENTS])
        clock = FakeClock()
        authenticator = Authenticator(
            AuthConfig.from_dict({"mtls_principals": {c: SIGNER for c in CLIENTS}})
        )
        api = CoordinatorApi(cluster.coordinator, authenticator, RateLimiter(limits, clock=clock))
        handler = api.handlers(trio.lowlevel.current_trio_token())
        port = _free_port()
        creds = tls.server_credentials(
            str(pki / "ca.pem"), str(pki / "coordinator.pem"), str(pki / "coordinator.key")
        )
        channels = {
            c: grpc.secure_channel(
                f"localhost:{port}",
                tls.channel_credentials(
                    str(pki / "ca.pem"), str(pki / f"{c}.pem"), str(pki / f"{c}.key")
                ),
                options=[("grpc.max_send_message_length", 8 * 1024 * 1024)],
            )
            for c in CLIENTS
        }
        with running_server(
            f"127.0.0.1:{port}",
            f"127.0.0.1:{_free_port()}",
            handler,
            creds,
            max_workers=8,
            max_receive_bytes=limits.max_message_bytes,
        ):
            try:
                yield Api(
                    cluster,
                    clock,
                    {
                        c: coordinator_pb2_grpc.CoordinatorStub(ch)  # type: ignore[no-untyped-call]
                        for c, ch in channels.items()
                    },
                    calls,
                    info.key_id,
                    bytes(info.public_key),
                )
            finally:
                for ch in channels.values():
                    ch.close()


def retry_after(err: Any) -> str | None:
    for key, value in err.trailing_metadata() or ():
        if key == RETRY_AFTER_METADATA:
            return str(value)
    return None


async def test_client_over_its_sign_rate_is_refused_and_others_are_not(tmp_path: Path) -> None:
    limits = Limits(sign_per_client=Rate(0.5, 3.0), sign_per_key=Rate(100.0, 100.0))
    async with serve_api(tmp_path, limits) as api:
        for _ in range(3):
            await api.sign("alice")
        err: Any = await api.refused(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "alice",
            "Sign",
            coordinator_pb2.SignRequest(key_id=api.key_id, message=b"one too many"),
        )
        assert "sign_per_client" in err.details() and "retry after 2.00 s" in err.details()
        assert retry_after(err) == "2"
        await api.sign("bob")  # another client is unaffected
        api.clock.now += 2.0  # one token back
        await api.sign("alice")
        await api.refused(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "alice",
            "Sign",
            coordinator_pb2.SignRequest(key_id=api.key_id, message=b"again"),
        )


async def test_per_key_limit_counts_every_client(tmp_path: Path) -> None:
    limits = Limits(sign_per_client=Rate(100.0, 100.0), sign_per_key=Rate(0.25, 3.0))
    async with serve_api(tmp_path, limits) as api:
        other = await api.cluster.coordinator.create_key("ed25519", 3, 5)
        await api.sign("alice")
        await api.sign("bob")
        await api.sign("alice", path="m/1")  # a child key is the same key
        for client in CLIENTS:
            err: Any = await api.refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                client,
                "Sign",
                coordinator_pb2.SignRequest(key_id=api.key_id, message=b"m"),
            )
            assert "sign_per_key" in err.details()
            assert retry_after(err) == "4"
        await api.sign("bob", key_id=other.key_id)  # another key is unaffected
        # nobody drains the bucket of a key by naming one that does not exist
        for _ in range(5):
            with pytest.raises(grpc.RpcError) as info:
                await api.sign("alice", key_id="no-such-key")
            assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


async def test_create_key_limit(tmp_path: Path) -> None:
    limits = Limits(create_key_per_client=Rate(0.1, 1.0))
    async with serve_api(tmp_path, limits) as api:
        request = coordinator_pb2.CreateKeyRequest(scheme="ed25519", threshold=3, parties=5)
        made = await api.call("alice", "CreateKey", request)
        assert len(made.public_key) == 32
        err: Any = await api.refused(
            grpc.StatusCode.RESOURCE_EXHAUSTED, "alice", "CreateKey", request
        )
        assert "create_key_per_client" in err.details()
        assert retry_after(err) == "10"
        # the refusal comes first, even for a request that would be invalid
        await api.refused(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "alice",
            "CreateKey",
            coordinator_pb2.CreateKeyRequest(scheme="x" * 100),
        )
        assert len((await api.call("bob", "CreateKey", request)).public_key) == 32
        await api.sign("alice")  # signing has its own buckets


async def test_oversize_requests_are_refused_before_any_node_call(tmp_path: Path) -> None:
    async with serve_api(tmp_path, Limits()) as api:
        biggest = b"x" * (64 * 1024)
        await api.sign("alice", message=biggest)
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        for request in (
            coordinator_pb2.SignRequest(key_id=api.key_id, message=biggest + b"x"),
            coordinator_pb2.SignRequest(key_id=api.key_id, digest=b"d" * 31),
            coordinator_pb2.SignRequest(key_id=api.key_id, digest=b"d" * 33),
            coordinator_pb2.SignRequest(key_id="k" * 129, message=b"m"),
            coordinator_pb2.SignRequest(key_id="", message=b"m"),
            coordinator_pb2.SignRequest(key_id=api.key_id, message=b"m", path="m" + "/1" * 3000),
            coordinator_pb2.SignRequest(key_id=api.key_id, message=b"m", tenant="t" * 129),
        ):
            err: Any = await api.refused(invalid, "alice", "Sign", request)
            assert "internal" not in err.details()
        await api.refused(
            invalid, "alice", "GetKey", coordinator_pb2.GetKeyRequest(key_id="k" * 129)
        )
        await api.refused(
            invalid, "alice", "CreateKey", coordinator_pb2.CreateKeyRequest(scheme="e" * 33)
        )
        # Above the server's request cap (1 MiB) gRPC refuses the message itself.
        await api.refused(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "alice",
            "Sign",
            coordinator_pb2.SignRequest(key_id=api.key_id, message=b"x" * (2 * 1024 * 1024)),
        )
        await api.sign("alice")  # and the service is fine


async def test_request_cap_is_configurable(tmp_path: Path) -> None:
    limits = Limits(max_message_bytes=96 * 1024, max_sign_message_bytes=32 * 1024)
    async with serve_api(tmp_path, limits) as api:
        await api.sign("alice", message=b"x" * (32 * 1024))
        err: Any = await api.refused(
            grpc.StatusCode.INVALID_ARGUMENT,
            "alice",
            "Sign",
            coordinator_pb2.SignRequest(key_id=api.key_id, message=b"x" * (64 * 1024)),
        )
        assert "32768" in err.details()
        await api.refused(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "alice",
            "Sign",
            coordinator_pb2.SignRequest(key_id=api.key_id, message=b"x" * (100 * 1024)),
        )
