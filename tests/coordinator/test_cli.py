"""mpcctl against an in-process Coordinator test double over real mutual TLS.

The double records every request (and the verified client certificate name) so
each test checks both what mpcctl printed and what actually reached the server.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import coincurve
import grpc
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import SigningKey

from coordinator import cli
from mpcnode.crypto.hd import format_path, tenant_path
from mpcnode.tls import make_dev_pki, peer_common_name, server_credentials
from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
SIGNING_KEY = SigningKey(bytes(range(32)))
PUBLIC_KEY = bytes(SIGNING_KEY.verify_key)
CHAIN_CODE = bytes(range(100, 132))
SIGNERS = ["mpc-0", "mpc-2", "mpc-4"]
ECDSA_KEY = coincurve.PrivateKey(bytes(range(1, 33)))
ECDSA_PUBLIC = ECDSA_KEY.public_key.format(compressed=True)


def _key_info(key_id: str, threshold: int = 3, parties: int = 5, generation: int = 1) -> Any:
    return coordinator_pb2.KeyInfo(
        key_id=key_id,
        scheme="ed25519",
        public_key=PUBLIC_KEY,
        threshold=threshold,
        parties=parties,
        chain_code=CHAIN_CODE,
        generation=generation,
    )


def _key_json(key_id: str, threshold: int = 3, parties: int = 5, generation: int = 1) -> Any:
    return {
        "key_id": key_id,
        "scheme": "ed25519",
        "public_key": PUBLIC_KEY.hex(),
        "threshold": threshold,
        "parties": parties,
        "chain_code": CHAIN_CODE.hex(),
        "generation": generation,
    }


class RecordingCoordinator(coordinator_pb2_grpc.CoordinatorServicer):
    """Test double: answers from a fixed key table, records calls, fails on request."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, str | None]] = []
        self.fail: dict[str, tuple[grpc.StatusCode, str]] = {}
        self.block = threading.Event()  # set => Sign waits until released
        self.release = threading.Event()
        self.keys = {"key-a": _key_info("key-a"), "key-b": _key_info("key-b", 2, 3, 4)}
        self.operations: list[Any] = []  # StartAuxInfo returns the first, GetOperation the rest

    def _enter(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        self.calls.append((method, request, peer_common_name(context)))
        if method in self.fail:
            code, message = self.fail[method]
            context.abort(code, message)

    def CreateKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("CreateKey", request, context)
        return _key_info("key-new", request.threshold, request.parties)

    def GetKey(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("GetKey", request, context)
        if request.key_id not in self.keys:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no key {request.key_id}")
        info = coordinator_pb2.KeyInfo()
        info.CopyFrom(self.keys[request.key_id])
        if request.path or request.tenant:  # a child key: echo what the real server sets
            info.path = request.path or format_path(tenant_path(request.tenant))
            info.tenant = request.tenant
        return info

    def ListKeys(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("ListKeys", request, context)
        return coordinator_pb2.ListKeysResponse(keys=list(self.keys.values()))

    def Sign(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("Sign", request, context)
        if self.block.is_set():
            self.release.wait(10)
        path = request.path or (format_path(tenant_path(request.tenant)) if request.tenant else "")
        if request.key_id == "key-k1":
            digest = request.digest or hashlib.sha256(request.message).digest()
            recoverable = ECDSA_KEY.sign_recoverable(digest, hasher=None)
            r, s = recoverable[:32], recoverable[32:64]
            der = utils.encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
            return coordinator_pb2.SignResponse(
                key_id=request.key_id,
                signature=r + s,
                public_key=ECDSA_PUBLIC,
                signers=SIGNERS,
                scheme="secp256k1",
                signature_der=der,
                recovery_id=recoverable[64],
                digest=digest,
                path=path,
            )
        signature = SIGNING_KEY.sign(request.message).signature
        return coordinator_pb2.SignResponse(
            key_id=request.key_id,
            signature=signature,
            public_key=PUBLIC_KEY,
            signers=SIGNERS,
            scheme="ed25519",
            path=path,
        )

    def StartAuxInfo(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("StartAuxInfo", request, context)
        return self.operations[0]

    def GetOperation(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("GetOperation", request, context)
        if len(self.operations) > 1:
            self.operations.pop(0)
        op = self.operations[0]
        if request.operation_id != op.operation_id:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no operation {request.operation_id}")
        return op

    def Reshare(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("Reshare", request, context)
        parties = list(request.parties) or [1, 2, 3, 4, 5]
        info = _key_info(request.key_id, request.threshold or 3, len(parties), generation=2)
        info.holder_parties.extend(parties)
        info.holders.extend(f"mpc-{p - 1}" for p in parties)
        return info

    def PresignStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._enter("PresignStatus", request, context)
        return coordinator_pb2.PresignStatusResponse(
            key_id=request.key_id,
            target=8,
            pools=[
                coordinator_pb2.PresignPool(signers=SIGNERS, ready=5, in_flight=1, made=12, used=7)
            ],
        )


@dataclass
class Env:
    servicer: RecordingCoordinator
    address: str
    cluster: Path
    tls: Path


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.delenv(cli.CLUSTER_ENV, raising=False)
    tls = tmp_path / "tls"
    make_dev_pki(tls, ["coordinator", "client"])
    servicer = RecordingCoordinator()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    creds = server_credentials(tls / "ca.pem", tls / "coordinator.pem", tls / "coordinator.key")
    port = server.add_secure_port("127.0.0.1:0", creds)
    assert port > 0
    server.start()
    address = f"127.0.0.1:{port}"
    cluster = tmp_path / "cluster"
    cluster.mkdir()
    doc = {
        "dir": str(cluster),
        "coordinator": {"address": address, "health": "127.0.0.1:1", "pid": os.getpid()},
        "nodes": [],
        "tls": {
            "ca": str(tls / "ca.pem"),
            "client_cert": str(tls / "client.pem"),
            "client_key": str(tls / "client.key"),
        },
    }
    (cluster / "cluster.json").write_text(json.dumps(doc))
    try:
        yield Env(servicer, address, cluster, tls)
    finally:
        servicer.release.set()
        server.stop(grace=None).wait()


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Call cli.main in-process; returns (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run_cli(capsys, *argv)
    assert (code, err) == (0, ""), err
    return json.loads(out)


def failed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, str]:
    """Assert the error contract: exit 1, nothing on stdout, exactly one JSON object on stderr."""
    code, out, err = run_cli(capsys, *argv)
    assert code == 1
    assert out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    obj = json.loads(err)
    assert set(obj) == {"error", "message"}
    assert isinstance(obj["message"], str) and obj["message"]
    return dict(obj)


# ---------------------------------------------------------------- subcommands


def test_keygen_prints_key_and_sends_request(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(
        capsys,
        *("--cluster", str(env.cluster), "keygen", "--scheme", "ed25519"),
        *("--threshold", "2", "--parties", "4"),
    )
    assert out == _key_json("key-new", 2, 4)
    [(method, request, peer)] = env.servicer.calls
    assert method == "CreateKey"
    assert (request.scheme, request.threshold, request.parties) == ("ed25519", 2, 4)
    assert peer == "client"  # the call went over mTLS with the client certificate


def test_keygen_defaults_to_3_of_5(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "keygen", "--scheme", "ed25519")
    assert (out["threshold"], out["parties"]) == (3, 5)
    [(_, request, _)] = env.servicer.calls
    assert (request.threshold, request.parties) == (3, 5)


def test_sign_message_hex(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    message = b"pay 10 to bob\x00\xff"
    out = ok(
        capsys,
        *("--cluster", str(env.cluster), "sign", "--key-id", "key-a"),
        *("--message-hex", message.hex().upper()),
    )
    assert set(out) == {"key_id", "signature", "public_key", "signers"}
    assert out["key_id"] == "key-a"
    assert out["public_key"] == PUBLIC_KEY.hex()
    assert out["signers"] == SIGNERS
    # The printed hex must be the exact signature bytes: an independent verifier accepts it.
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(out["public_key"])).verify(
        bytes.fromhex(out["signature"]), message
    )
    [(method, request, _)] = env.servicer.calls
    assert (method, request.key_id, request.message) == ("Sign", "key-a", message)


def test_sign_message_file_sends_raw_bytes(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    message = bytes(range(256)) + b"\r\n\n\r\x00 trailing\n"
    path = tmp_path / "msg.bin"
    path.write_bytes(message)
    out = ok(
        capsys,
        *("--cluster", str(env.cluster), "sign", "--key-id", "key-b"),
        *("--message-file", str(path)),
    )
    [(_, request, _)] = env.servicer.calls
    assert request.message == message
    Ed25519PublicKey.from_public_bytes(PUBLIC_KEY).verify(bytes.fromhex(out["signature"]), message)


def test_sign_message_from_stdin(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    message = b"\x00\xffstdin\r\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(message)))
    ok(capsys, "--cluster", str(env.cluster), "sign", "--key-id", "k", "--message-file", "-")
    [(_, request, _)] = env.servicer.calls
    assert request.message == message


def test_sign_empty_message(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    ok(capsys, "--cluster", str(env.cluster), "sign", "--key-id", "k", "--message-hex", "")
    [(_, request, _)] = env.servicer.calls
    assert request.message == b""


def _check_ecdsa_output(out: dict[str, Any], digest: bytes) -> None:
    """The printed hex is exactly the signature: independent verifiers and recovery accept it."""
    assert out["public_key"] == ECDSA_PUBLIC.hex() and len(ECDSA_PUBLIC) == 33
    assert out["digest"] == digest.hex()
    compact = bytes.fromhex(out["signature"])
    der = bytes.fromhex(out["signature_der"])
    assert len(compact) == 64
    r, s = utils.decode_dss_signature(der)
    assert compact == r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert coincurve.PublicKey(ECDSA_PUBLIC).verify(der, digest, hasher=None)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), ECDSA_PUBLIC)
    key.verify(der, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
    recovered = coincurve.PublicKey.from_signature_and_message(
        compact + bytes([out["recovery_id"]]), digest, hasher=None
    )
    assert recovered.format(compressed=True) == ECDSA_PUBLIC


def test_sign_secp256k1_message_prints_ecdsa_fields(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    message = b"pay 10 to bob"
    out = ok(
        capsys,
        *("--cluster", str(env.cluster), "sign", "--key-id", "key-k1"),
        *("--message-hex", "0x" + message.hex()),
    )
    assert set(out) == {
        "key_id",
        "scheme",
        "signature",
        "signature_der",
        "recovery_id",
        "public_key",
        "digest",
        "signers",
    }
    assert (out["key_id"], out["scheme"], out["signers"]) == ("key-k1", "secp256k1", SIGNERS)
    _check_ecdsa_output(out, hashlib.sha256(message).digest())
    [(_, request, _)] = env.servicer.calls
    assert (request.message, request.digest) == (message, b"")


def test_sign_message_text_is_utf8(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(
        capsys, "--cluster", str(env.cluster), "sign", "--key-id", "key-k1", "--message", "héllo"
    )
    [(_, request, _)] = env.servicer.calls
    assert request.message == "héllo".encode()
    _check_ecdsa_output(out, hashlib.sha256("héllo".encode()).digest())


def test_sign_digest_sends_the_digest_not_a_message(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = hashlib.sha256(b"prehashed elsewhere").digest()
    out = ok(
        capsys,
        *("--cluster", str(env.cluster), "sign", "--key-id", "key-k1"),
        *("--digest-hex", digest.hex().upper()),
    )
    _check_ecdsa_output(out, digest)
    [(_, request, _)] = env.servicer.calls
    assert (request.digest, request.message) == (digest, b"")


def test_sign_help_says_digests_never_use_the_pool(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["sign", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--digest-hex" in text
    assert "never from the presignature pool" in text
    assert "CVE-2025-66017" in text


def test_presign_status(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "presign-status", "--key-id", "key-k1")
    assert out == {
        "key_id": "key-k1",
        "target": 8,
        "pools": [{"signers": SIGNERS, "ready": 5, "in_flight": 1, "made": 12, "used": 7}],
    }
    [(method, request, _)] = env.servicer.calls
    assert (method, request.key_id) == ("PresignStatus", "key-k1")


def _op(state: str, stage: str = "", **fields: Any) -> Any:
    return coordinator_pb2.Operation(
        operation_id="op-1", kind="aux-info", state=state, stage=stage, rounds=4, **fields
    )


def test_aux_info_follows_the_operation_until_done(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "POLL_INTERVAL", 0.0)
    env.servicer.operations = [
        _op("waiting-for-primes", "waiting for safe primes: mpc-1 2/4", primes_ready={"mpc-1": 2}),
        _op("waiting-for-primes", "waiting for safe primes: mpc-1 2/4", primes_ready={"mpc-1": 2}),
        _op("running", "round 1 of 4", round=1),
        _op("running", "round 4 of 4", round=4),
        _op("done", "done", round=4),
    ]
    code, out, err = run_cli(capsys, "--cluster", str(env.cluster), "aux-info")
    assert code == 0
    assert json.loads(out) == {
        "operation_id": "op-1",
        "kind": "aux-info",
        "state": "done",
        "stage": "done",
        "round": 4,
        "rounds": 4,
        "error": "",
        "culprits": [],
        "primes_ready": {},
    }
    assert err.splitlines() == [  # one line per change, none repeated
        "aux-info op-1: waiting-for-primes, waiting for safe primes: mpc-1 2/4",
        "aux-info op-1: running, round 1 of 4",
        "aux-info op-1: running, round 4 of 4",
        "aux-info op-1: done",
    ]
    methods = [c[0] for c in env.servicer.calls]
    assert methods == ["StartAuxInfo"] + ["GetOperation"] * 4
    assert all(c[1].operation_id == "op-1" for c in env.servicer.calls[1:])


def test_aux_info_failure_exits_non_zero_with_culprits(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "POLL_INTERVAL", 0.0)
    env.servicer.operations = [
        _op("running", "round 2 of 4", round=2),
        _op("failed", "failed", error="invalid Π-mod proof", culprits=["mpc-3"]),
    ]
    code, out, err = run_cli(capsys, "--cluster", str(env.cluster), "aux-info")
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[0] == "aux-info op-1: running, round 2 of 4"
    assert json.loads(lines[-1]) == {
        "error": "ABORTED",
        "message": "invalid Π-mod proof (culprits: mpc-3)",
    }


def test_aux_info_no_wait_prints_the_operation(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.servicer.operations = [_op("waiting-for-primes", primes_ready={"mpc-0": 1, "mpc-1": 4})]
    out = ok(capsys, "--cluster", str(env.cluster), "aux-info", "--no-wait")
    assert (out["operation_id"], out["state"]) == ("op-1", "waiting-for-primes")
    assert out["primes_ready"] == {"mpc-0": 1, "mpc-1": 4}
    assert [c[0] for c in env.servicer.calls] == ["StartAuxInfo"]


def test_keygen_secp256k1_waits_longer_by_default(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    parse = cli.build_parser().parse_args
    assert cli._timeout(parse(["keygen", "--scheme", "secp256k1"])) == cli.KEYGEN_ECDSA_TIMEOUT
    assert cli._timeout(parse(["keygen", "--scheme", "ed25519"])) == cli.DEFAULT_TIMEOUT
    assert cli._timeout(parse(["keygen", "--scheme", "secp256k1", "--timeout", "5"])) == 5.0
    assert cli._timeout(parse(["--timeout", "7", "keys"])) == 7.0
    ok(capsys, "--cluster", str(env.cluster), "keygen", "--scheme", "secp256k1")
    [(method, request, _)] = env.servicer.calls
    assert (method, request.scheme) == ("CreateKey", "secp256k1")


def test_pubkey(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "pubkey", "--key-id", "key-b")
    assert out == _key_json("key-b", 2, 3, 4)
    [(method, request, _)] = env.servicer.calls
    assert (method, request.key_id) == ("GetKey", "key-b")


def test_keys_lists_all(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "keys")
    assert out == [_key_json("key-a"), _key_json("key-b", 2, 3, 4)]
    env.servicer.keys.clear()
    assert ok(capsys, "--cluster", str(env.cluster), "keys") == []
    assert [c[0] for c in env.servicer.calls] == ["ListKeys", "ListKeys"]


# ---------------------------------------------------------------- connection options


def test_explicit_tls_flags_after_subcommand(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    out = ok(
        capsys,
        *("pubkey", "--key-id", "key-a", "--coordinator", env.address),
        *("--cacert", str(env.tls / "ca.pem"), "--cert", str(env.tls / "client.pem")),
        *("--key", str(env.tls / "client.key"), "--timeout", "30"),
    )
    assert out["key_id"] == "key-a"
    assert env.servicer.calls[0][2] == "client"


def test_cluster_from_environment(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cli.CLUSTER_ENV, str(env.cluster))
    assert len(ok(capsys, "keys")) == 2


def test_explicit_address_overrides_cluster_file(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    doc = json.loads((env.cluster / "cluster.json").read_text())
    doc["coordinator"]["address"] = "127.0.0.1:1"  # nothing listens there
    (env.cluster / "cluster.json").write_text(json.dumps(doc))
    assert failed(capsys, "--cluster", str(env.cluster), "keys")["error"] == "UNAVAILABLE"
    out = ok(capsys, "--cluster", str(env.cluster), "--coordinator", env.address, "keys")
    assert len(out) == 2


def test_server_name_override(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    base = ("--cluster", str(env.cluster), "--server-name")
    assert len(ok(capsys, *base, "coordinator.mpc", "keys")) == 2  # a SAN of the server cert
    err = failed(capsys, *base, "evil.example", "keys")  # not a SAN: refused
    assert err["error"] == "UNAVAILABLE"
    assert len(env.servicer.calls) == 1


def test_client_cert_from_another_ca_is_refused(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "other"
    make_dev_pki(other, ["client"])
    err = failed(
        capsys,
        *("--coordinator", env.address, "--ca", str(env.tls / "ca.pem")),
        *("--cert", str(other / "client.pem"), "--key", str(other / "client.key"), "keys"),
    )
    assert err["error"] == "UNAVAILABLE"
    assert env.servicer.calls == []


# ---------------------------------------------------------------- server errors


@pytest.mark.parametrize(
    ("method", "argv"),
    [
        ("CreateKey", ["keygen", "--scheme", "ed25519"]),
        ("Sign", ["sign", "--key-id", "key-a", "--message-hex", "00"]),
        ("GetKey", ["pubkey", "--key-id", "key-a"]),
        ("ListKeys", ["keys"]),
        ("PresignStatus", ["presign-status", "--key-id", "key-a"]),
        ("StartAuxInfo", ["aux-info"]),
    ],
)
@pytest.mark.parametrize(
    ("code", "message"),
    [
        (grpc.StatusCode.NOT_FOUND, "no key key-a"),
        (grpc.StatusCode.UNAVAILABLE, "2 of 3 needed nodes answered; not answering: mpc-1, mpc-3"),
        (grpc.StatusCode.INVALID_ARGUMENT, "unknown scheme 'rsa'"),
        (grpc.StatusCode.ABORTED, "bad share (culprits: [2])"),
        (grpc.StatusCode.PERMISSION_DENIED, "key belongs to another tenant"),
    ],
)
def test_server_status_becomes_json_error(
    env: Env,
    capsys: pytest.CaptureFixture[str],
    method: str,
    argv: list[str],
    code: grpc.StatusCode,
    message: str,
) -> None:
    env.servicer.fail[method] = (code, message)
    err = failed(capsys, "--cluster", str(env.cluster), *argv)
    assert err == {"error": code.name, "message": message}
    assert [c[0] for c in env.servicer.calls] == [method]


@pytest.mark.parametrize("timeout_first", [True, False])
def test_deadline_exceeded(
    env: Env, capsys: pytest.CaptureFixture[str], timeout_first: bool
) -> None:
    env.servicer.block.set()
    sign = ["sign", "--key-id", "key-a", "--message-hex", "00"]
    timeout = ["--timeout", "0.3"]
    argv = timeout + sign if timeout_first else sign + timeout
    err = failed(capsys, "--cluster", str(env.cluster), *argv)
    assert err["error"] == "DEADLINE_EXCEEDED"
    assert [c[0] for c in env.servicer.calls] == ["Sign"]


def test_unreachable_coordinator_is_unavailable(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    err = failed(
        capsys,
        *("--coordinator", "127.0.0.1:1", "--ca", str(env.tls / "ca.pem")),
        *("--cert", str(env.tls / "client.pem"), "--key", str(env.tls / "client.key"), "keys"),
    )
    assert err["error"] == "UNAVAILABLE"


def test_unexpected_exception_is_internal_without_traceback(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(channel: Any) -> Any:
        raise RuntimeError("stub exploded")

    monkeypatch.setattr(coordinator_pb2_grpc, "CoordinatorStub", broken)
    err = failed(capsys, "--cluster", str(env.cluster), "keys")
    assert err == {"error": "INTERNAL", "message": "RuntimeError: stub exploded"}


# ---------------------------------------------------------------- child keys (issue 5)

XPUB = (  # opaque to mpcctl: printed as the server sent it
    "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265"
    "TMg7usUDFdp6W1EGMcet8"
)
TENANT = "acme/payments"


def test_pubkey_child_path_adds_path_chain_code_and_xpub(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    env.servicer.keys["key-k1"] = coordinator_pb2.KeyInfo(
        key_id="key-k1",
        scheme="secp256k1",
        public_key=ECDSA_PUBLIC,
        threshold=3,
        parties=5,
        chain_code=CHAIN_CODE,
        generation=1,
        xpub=XPUB,
    )
    argv = ("--cluster", str(env.cluster), "pubkey", "--key-id", "key-k1")
    out = ok(capsys, *argv, "--path", "m/0/1/2")
    assert out == {
        "key_id": "key-k1",
        "scheme": "secp256k1",
        "public_key": ECDSA_PUBLIC.hex(),
        "threshold": 3,
        "parties": 5,
        "chain_code": CHAIN_CODE.hex(),
        "generation": 1,
        "path": "m/0/1/2",
        "xpub": XPUB,
    }
    out = ok(capsys, *argv, "--tenant", TENANT)
    assert out["tenant"] == TENANT
    assert out["path"] == format_path(tenant_path(TENANT))
    assert out["path"].startswith("m/5522766/") and out["path"].count("/") == 9
    [(_, first, _), (_, second, _)] = env.servicer.calls
    assert (first.key_id, first.path, first.tenant) == ("key-k1", "m/0/1/2", "")
    assert (second.key_id, second.path, second.tenant) == ("key-k1", "", TENANT)


def test_pubkey_root_ed25519_has_no_xpub(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    env.servicer.keys["key-a"].path = "m"
    out = ok(capsys, "--cluster", str(env.cluster), "pubkey", "--key-id", "key-a")
    assert out == {**_key_json("key-a"), "path": "m"}
    [(_, request, _)] = env.servicer.calls
    assert (request.path, request.tenant) == ("", "")


def test_sign_with_path_or_tenant_prints_the_path(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("--cluster", str(env.cluster), "sign")
    out = ok(capsys, *base, "--key-id", "key-a", "--message", "hi", "--path", "m/7/8")
    assert set(out) == {"key_id", "signature", "public_key", "signers", "path"}
    assert out["path"] == "m/7/8"
    digest = hashlib.sha256(b"doc").digest()
    out = ok(capsys, *base, "--key-id", "key-k1", "--digest-hex", digest.hex(), "--tenant", TENANT)
    assert out["path"] == format_path(tenant_path(TENANT))
    _check_ecdsa_output(out, digest)
    [(_, first, _), (_, second, _)] = env.servicer.calls
    assert (first.path, first.tenant, first.message) == ("m/7/8", "", b"hi")
    assert (second.path, second.tenant, second.digest) == ("", TENANT, digest)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["pubkey", "--key-id", "k", "--path", "m/0'/1"], "hardened derivation needs the whole"),
        (["pubkey", "--key-id", "k", "--path", "m/2147483648"], "hardened"),
        (["sign", "--key-id", "k", "--message", "x", "--path", "m/1/2h"], "hardened"),
        (["sign", "--key-id", "k", "--message", "x", "--path", "0/1"], "m/"),
        (["pubkey", "--key-id", "k", "--path", "m/1", "--tenant", "t"], "not allowed"),
        (
            ["sign", "--key-id", "k", "--message", "x", "--path", "m/1", "--tenant", "t"],
            "not allowed",
        ),
        (["pubkey", "--key-id", "k", "--tenant", ""], "tenant"),
        (["pubkey", "--key-id", "k", "--tenant", "a\nb"], "control"),
    ],
)
def test_bad_child_path_is_invalid_argument_without_server_call(
    env: Env, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    err = failed(capsys, "--cluster", str(env.cluster), *argv)
    assert err["error"] == "INVALID_ARGUMENT"
    assert needle in err["message"]
    assert env.servicer.calls == []


# ---------------------------------------------------------------- local input errors


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["sign", "--key-id", "k", "--message-hex", "zz"], "hex"),
        (["sign", "--key-id", "k", "--message-hex", "abc"], "hex"),
        (
            ["sign", "--key-id", "k", "--message-hex", "00", "--message-file", "/etc/hostname"],
            "not allowed",
        ),
        (["sign", "--key-id", "k"], "required"),
        (["sign", "--key-id", "k", "--digest-hex", "00" * 31], "32 bytes"),
        (["sign", "--key-id", "k", "--digest-hex", "zz" * 32], "--digest-hex"),
        (["sign", "--key-id", "k", "--digest-hex", "00" * 32, "--message", "x"], "not allowed"),
        (["presign-status"], "--key-id"),
        (["aux-info", "--wait"], "--wait"),
        (["sign", "--key-id", "k", "--message-file", "/nonexistent/msg"], "/nonexistent/msg"),
        (["pubkey"], "--key-id"),
        (["keygen"], "--scheme"),
        (["keygen", "--scheme", "ed25519", "--threshold", "0"], "--threshold"),
        (["keygen", "--scheme", "ed25519", "--threshold", "x"], "--threshold"),
        (["keygen", "--scheme", "ed25519", "--threshold", "6", "--parties", "5"], "exceeds"),
        (["keys", "--timeout", "-1"], "--timeout"),
        (["reshare", "--key-id", "k", "--parties", "0,1,1"], "distinct"),
        (["reshare", "--key-id", "k", "--parties", "0,-1,2"], ">= 0"),
        (["reshare", "--key-id", "k", "--parties", "0,a"], "node indices"),
        (["reshare", "--key-id", "k", "--parties", "0,1", "--threshold", "3"], "exceeds"),
        (["reshare", "--parties", "0,1,2"], "--key-id"),
        (["frobnicate"], "frobnicate"),
        ([], "COMMAND"),
    ],
)
def test_bad_local_input_is_invalid_argument_without_server_call(
    env: Env, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    err = failed(capsys, "--cluster", str(env.cluster), *argv)
    assert err["error"] == "INVALID_ARGUMENT"
    assert needle in err["message"]
    assert env.servicer.calls == []


def test_missing_cluster_is_invalid_argument(
    env: Env, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    err = failed(capsys, "--cluster", str(empty), "keys")
    assert err["error"] == "INVALID_ARGUMENT"
    assert str(empty / "cluster.json") in err["message"]
    monkeypatch.setenv(cli.CLUSTER_ENV, str(tmp_path / "nowhere"))
    assert failed(capsys, "keys")["error"] == "INVALID_ARGUMENT"
    (empty / "cluster.json").write_text('{"coordinator": {}}')
    err = failed(capsys, "--cluster", str(empty), "keys")
    assert (err["error"], "malformed" in err["message"]) == ("INVALID_ARGUMENT", True)
    assert env.servicer.calls == []


def test_no_connection_options_is_invalid_argument(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    err = failed(capsys, "keys")
    assert err["error"] == "INVALID_ARGUMENT"
    assert "--cluster" in err["message"]
    err = failed(capsys, "--coordinator", env.address, "--ca", str(env.tls / "ca.pem"), "keys")
    assert err["error"] == "INVALID_ARGUMENT"
    assert "--cert, --key" in err["message"]
    err = failed(
        capsys,
        *("--coordinator", env.address, "--ca", str(env.tls / "missing.pem")),
        *("--cert", str(env.tls / "client.pem"), "--key", str(env.tls / "client.key"), "keys"),
    )
    assert err["error"] == "INVALID_ARGUMENT"
    assert "missing.pem" in err["message"]
    assert env.servicer.calls == []


# ---------------------------------------------------------------- the real process


def _mpcctl(*argv: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("GRPC_VERBOSITY", cli.CLUSTER_ENV)}
    return subprocess.run(
        [sys.executable, "-m", "coordinator.cli", *argv],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_process_success_and_errors_keep_streams_clean(env: Env, tmp_path: Path) -> None:
    """As a process: JSON on stdout; on failure exactly one JSON line on stderr (fd level)."""
    proc = _mpcctl("--cluster", str(env.cluster), "pubkey", "--key-id", "key-a")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == _key_json("key-a")

    proc = _mpcctl("--cluster", str(env.cluster), "pubkey", "--key-id", "nope")
    assert (proc.returncode, proc.stdout) == (1, "")
    assert json.loads(proc.stderr) == {"error": "NOT_FOUND", "message": "no key nope"}
    assert proc.stderr.count("\n") == 1

    # Failed TLS handshakes (server refuses our cert; we refuse the server's) must not
    # leak gRPC's own log lines onto stderr.
    other = tmp_path / "other"
    make_dev_pki(other, ["client"])
    for ca, cert in [(env.tls, other), (other, env.tls)]:
        proc = _mpcctl(
            *("--coordinator", env.address, "--ca", str(ca / "ca.pem")),
            *("--cert", str(cert / "client.pem"), "--key", str(cert / "client.key"), "keys"),
        )
        assert (proc.returncode, proc.stdout) == (1, "")
        assert proc.stderr.count("\n") == 1, proc.stderr
        assert json.loads(proc.stderr)["error"] == "UNAVAILABLE"

    proc = _mpcctl("sign", "--key-id", "k")
    assert proc.returncode == 1
    assert json.loads(proc.stderr)["error"] == "INVALID_ARGUMENT"


def test_reshare_sends_party_numbers_and_prints_the_new_generation(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ok(
        capsys,
        *("--cluster", str(env.cluster), "reshare", "--key-id", "key-a"),
        *("--parties", "0,1,2,3,5", "--threshold", "4"),
    )
    [(method, request, peer)] = env.servicer.calls
    assert (method, peer) == ("Reshare", "client")
    assert (request.key_id, list(request.parties), request.threshold) == (
        "key-a",
        [1, 2, 3, 4, 6],  # node mpc-k is party k+1
        4,
    )
    assert (out["generation"], out["threshold"], out["parties"]) == (2, 4, [0, 1, 2, 3, 5])
    assert out["holders"] == ["mpc-0", "mpc-1", "mpc-2", "mpc-3", "mpc-5"]
    assert out["public_key"] == PUBLIC_KEY.hex()


def test_reshare_defaults_keep_holders_and_threshold(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ok(capsys, "--cluster", str(env.cluster), "reshare", "--key-id", "key-a")
    [(_, request, _)] = env.servicer.calls
    assert (list(request.parties), request.threshold) == ([], 0)  # the server keeps them
    assert out["parties"] == [0, 1, 2, 3, 4]
    assert cli._timeout(cli.build_parser().parse_args(["reshare", "--key-id", "k"])) == (
        cli.KEYGEN_ECDSA_TIMEOUT
    )
