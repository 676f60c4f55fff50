"""mpcctl delete-key, delete-tenant and rotate-kek against a recording coordinator double."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from protos.mpc.v1 import coordinator_pb2
from tests.coordinator.test_cli import Env, RecordingCoordinator, env, failed, ok

__all__ = ["env"]  # the fixture, re-used


def _nodes(outcome: str, fingerprint: str = "") -> list[Any]:
    return [
        coordinator_pb2.NodeOutcome(node=f"mpc-{k}", outcome=outcome, kek_fingerprint=fingerprint)
        for k in range(2)
    ]


@pytest.fixture
def shred_methods(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give the double the three methods (before the `env` fixture registers it)."""

    def delete_key(self: RecordingCoordinator, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("DeleteKey", request, context)
        return coordinator_pb2.DeleteResponse(key_ids=[request.key_id], nodes=_nodes("deleted"))

    def delete_tenant(
        self: RecordingCoordinator, request: Any, context: grpc.ServicerContext
    ) -> Any:
        self._enter("DeleteTenant", request, context)
        return coordinator_pb2.DeleteResponse(key_ids=["k1", "k2"], nodes=_nodes("deleted"))

    def rotate(self: RecordingCoordinator, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("RotateNodeKeks", request, context)
        return coordinator_pb2.RotateNodeKeksResponse(nodes=_nodes("rotated", "ab12cd34ef560789"))

    monkeypatch.setattr(RecordingCoordinator, "DeleteKey", delete_key, raising=False)
    monkeypatch.setattr(RecordingCoordinator, "DeleteTenant", delete_tenant, raising=False)
    monkeypatch.setattr(RecordingCoordinator, "RotateNodeKeks", rotate, raising=False)


def test_delete_key(shred_methods: None, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "delete-key", "--key-id", "key-a")
    assert out == {
        "key_ids": ["key-a"],
        "nodes": [{"node": "mpc-0", "outcome": "deleted"}, {"node": "mpc-1", "outcome": "deleted"}],
    }
    [(method, request, _)] = env.servicer.calls
    assert (method, request.key_id) == ("DeleteKey", "key-a")


def test_delete_key_with_a_node_down_fails_naming_it(
    shred_methods: None, env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.servicer.fail["DeleteKey"] = (
        grpc.StatusCode.UNAVAILABLE,
        "INCOMPLETE; not answering: mpc-2",
    )
    err = failed(capsys, "--cluster", str(env.cluster), "delete-key", "--key-id", "key-a")
    assert err["error"] == "UNAVAILABLE" and "mpc-2" in err["message"]


def test_delete_tenant(shred_methods: None, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "delete-tenant", "--tenant", "acme")
    assert out["key_ids"] == ["k1", "k2"]
    [(method, request, _)] = env.servicer.calls
    assert (method, request.tenant) == ("DeleteTenant", "acme")


def test_rotate_kek(shred_methods: None, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "rotate-kek", "--node", "mpc-1")
    assert out["nodes"][0] == {
        "node": "mpc-0",
        "outcome": "rotated",
        "kek_fingerprint": "ab12cd34ef560789",
    }
    [(method, request, _)] = env.servicer.calls
    assert (method, list(request.nodes)) == ("RotateNodeKeks", ["mpc-1"])
