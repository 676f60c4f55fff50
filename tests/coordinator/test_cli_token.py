"""mpcctl and caller credentials: ``--token`` / ``$MPCCTL_TOKEN`` go out as
``authorization: Bearer …`` on every call (aux-info's polling included) and are never printed;
``keygen --owner-tenant`` names the owner; KeyInfo output shows the owner."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from coordinator import cli
from mpcnode.tls import make_dev_pki, server_credentials
from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc
from tests.coordinator.test_cli import RecordingCoordinator

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXNlY3JldA"


class MetadataCoordinator(RecordingCoordinator):
    """Records each call's authorization metadata; answers keygen with the owner set."""

    def __init__(self) -> None:
        super().__init__()
        self.authorization: list[tuple[str, list[str]]] = []

    def _enter(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        values = [v for k, v in context.invocation_metadata() if k == "authorization"]
        self.authorization.append((method, [str(v) for v in values]))
        super()._enter(method, request, context)

    def CreateKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        info = super().CreateKey(request, context)
        info.org, info.owner_tenant = "acme", request.owner_tenant
        return info


@dataclass
class Env:
    servicer: MetadataCoordinator
    cluster: Path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.delenv(cli.CLUSTER_ENV, raising=False)
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)
    tls = tmp_path / "tls"
    make_dev_pki(tls, ["coordinator", "client"])
    servicer = MetadataCoordinator()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    creds = server_credentials(tls / "ca.pem", tls / "coordinator.pem", tls / "coordinator.key")
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    doc = {
        "dir": str(cluster),
        "coordinator": {
            "address": f"127.0.0.1:{port}",
            "health": "127.0.0.1:1",
            "pid": os.getpid(),
        },
        "nodes": [],
        "tls": {
            "ca": str(tls / "ca.pem"),
            "client_cert": str(tls / "client.pem"),
            "client_key": str(tls / "client.key"),
        },
    }
    (cluster / "cluster.json").write_text(json.dumps(doc))
    try:
        yield Env(servicer, cluster)
    finally:
        server.stop(grace=None).wait()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_flag_is_sent_and_never_printed(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys,
        "--cluster",
        str(env.cluster),
        "--token",
        TOKEN,
        "keygen",
        "--scheme",
        "ed25519",
        "--owner-tenant",
        "t1",
    )
    assert code == 0, err
    assert env.servicer.authorization == [("CreateKey", [f"Bearer {TOKEN}"])]
    method, request, _ = env.servicer.calls[0]
    assert (method, request.owner_tenant) == ("CreateKey", "t1")
    shown = json.loads(out)
    assert (shown["org"], shown["owner_tenant"]) == ("acme", "t1")
    assert TOKEN not in out + err


def test_token_from_the_environment_and_errors_do_not_echo_it(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.TOKEN_ENV, TOKEN)
    env.servicer.fail["ListKeys"] = (grpc.StatusCode.UNAUTHENTICATED, "bearer token has expired")
    code, out, err = run_cli(capsys, "--cluster", str(env.cluster), "keys")
    assert code == 1
    assert json.loads(err)["error"] == "UNAUTHENTICATED"
    assert env.servicer.authorization == [("ListKeys", [f"Bearer {TOKEN}"])]
    assert TOKEN not in out + err
    # a malformed token is refused locally, without repeating it
    bad = "abc def\nsecret"
    code, out, err = run_cli(capsys, "--cluster", str(env.cluster), "--token", bad, "keys")
    assert code == 1 and json.loads(err)["error"] == "INVALID_ARGUMENT"
    assert "secret" not in out + err
    assert len(env.servicer.authorization) == 1


def test_no_token_sends_no_authorization(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--cluster", str(env.cluster), "keys")
    assert code == 0
    assert env.servicer.authorization == [("ListKeys", [])]
    assert all("org" not in k for k in json.loads(out))  # a server without owners: omitted


def test_owner_tenant_must_be_a_tenant_id(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(
        capsys, "--cluster", str(env.cluster), "keygen", "--scheme", "ed25519",
        "--owner-tenant", "x" * 200,
    )  # fmt: skip
    assert code == 1 and json.loads(err)["error"] == "INVALID_ARGUMENT"
    assert env.servicer.calls == []
    assert coordinator_pb2.CreateKeyRequest().owner_tenant == ""
