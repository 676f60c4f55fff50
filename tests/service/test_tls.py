"""mpcnode.tls: certificates verify and carry the right extensions; mTLS refuses strangers."""

from __future__ import annotations

import ipaddress
import stat
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mpcnode import tls
from mpcnode.errors import InvalidInput


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def ca() -> tuple[bytes, bytes]:
    return tls.create_ca("test-ca", days=30)


def test_issued_cert_chains_to_ca_with_sans_and_eku(ca: tuple[bytes, bytes]) -> None:
    ca_pem, ca_key = ca
    cert_pem, _ = tls.issue_cert(
        ca_pem, ca_key, "mpc-2", ["localhost", "mpc-2.mpc"], ["127.0.0.1"], days=10
    )
    root = x509.load_pem_x509_certificate(ca_pem)
    leaf = x509.load_pem_x509_certificate(cert_pem)
    store = Store([root])
    now = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
    policy = PolicyBuilder().store(store).time(now)
    # A full path-building verification (CA/B-style policy), as a server and as a client.
    chain = policy.build_server_verifier(x509.DNSName("mpc-2.mpc")).verify(leaf, [])
    assert chain[-1] == root
    policy.build_server_verifier(x509.IPAddress(ipaddress.ip_address("127.0.0.1"))).verify(leaf, [])
    client = policy.build_client_verifier().verify(leaf, [])
    assert client.subjects is not None
    with pytest.raises(VerificationError):
        policy.build_server_verifier(x509.DNSName("mpc-3.mpc")).verify(leaf, [])

    assert leaf.subject.rfc4514_string() == "CN=mpc-2"
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey)
    assert isinstance(leaf.public_key().curve, ec.SECP256R1)  # type: ignore[union-attr]
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "mpc-2.mpc"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca is False
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign


def test_cert_from_another_ca_does_not_verify(ca: tuple[bytes, bytes]) -> None:
    other_pem, other_key = tls.create_ca("other-ca")
    cert_pem, _ = tls.issue_cert(other_pem, other_key, "mpc-0", ["localhost"], [])
    leaf = x509.load_pem_x509_certificate(cert_pem)
    policy = PolicyBuilder().store(Store([x509.load_pem_x509_certificate(ca[0])]))
    with pytest.raises(VerificationError):
        policy.build_server_verifier(x509.DNSName("localhost")).verify(leaf, [])


def test_issue_cert_rejects_mismatched_ca_key_and_empty_san(ca: tuple[bytes, bytes]) -> None:
    _, other_key = tls.create_ca("other-ca")
    with pytest.raises(InvalidInput):
        tls.issue_cert(ca[0], other_key, "x", ["localhost"], [])
    with pytest.raises(InvalidInput):
        tls.issue_cert(ca[0], ca[1], "x", [], [])
    with pytest.raises(InvalidInput):
        tls.issue_cert(ca[0], ca[1], "x", [], ["not-an-ip"])


def test_write_pem_modes(tmp_path: Path) -> None:
    key = tmp_path / "a.key"
    key.write_bytes(b"old")
    key.chmod(0o644)  # an existing readable file must not stay readable
    tls.write_pem(key, b"-----BEGIN PRIVATE KEY-----\n", private=True)
    assert _mode(key) == 0o600
    assert key.read_bytes() == b"-----BEGIN PRIVATE KEY-----\n"
    cert = tmp_path / "a.pem"
    tls.write_pem(cert, b"cert", private=False)
    assert _mode(cert) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.key", "a.pem"]  # no temp files left


def test_make_dev_pki_layout(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    tls.make_dev_pki(out, ["mpc-0", "mpc-4", "coordinator", "client"])
    assert _mode(out) == 0o700
    expected = {"ca.pem", "ca.key"}
    for name in ["mpc-0", "mpc-4", "coordinator", "client"]:
        expected |= {f"{name}.pem", f"{name}.key"}
    assert {p.name for p in out.iterdir()} == expected
    for p in out.iterdir():
        assert _mode(p) == (0o600 if p.suffix == ".key" else 0o644), p.name

    root = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    assert root.subject.rfc4514_string() == "CN=mpc-dev-ca"
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    def dns(name: str) -> list[str]:
        leaf = x509.load_pem_x509_certificate((out / f"{name}.pem").read_bytes())
        leaf.verify_directly_issued_by(root)
        assert leaf.subject.rfc4514_string() == f"CN={name}"
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        return sorted(san.get_values_for_type(x509.DNSName))

    assert dns("mpc-4") == sorted(["localhost", "mpc-4.mpc", "mpc-4.mpc.default.svc.cluster.local"])
    assert dns("coordinator") == sorted(["localhost", "coordinator", "coordinator.mpc"])
    assert dns("client") == ["localhost"]


def test_make_dev_pki_rejects_bad_names(tmp_path: Path) -> None:
    for names in (["a", "a"], ["ca"], ["../x"], [""]):
        with pytest.raises(InvalidInput):
            tls.make_dev_pki(tmp_path / "tls", names)


# --- mTLS over real gRPC ---------------------------------------------------------------


class _RecordingHealth(health.HealthServicer):  # type: ignore[misc]
    """A health servicer that records the peer common name of every Check."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[str | None] = []

    def Check(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.peers.append(tls.peer_common_name(context))
        return super().Check(request, context)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pki")
    tls.make_dev_pki(out, ["mpc-0", "coordinator"])
    other = out / "other"
    tls.make_dev_pki(other, ["coordinator"])  # same CN, foreign CA
    return out


@pytest.fixture
def server(pki: Path) -> Iterator[tuple[int, _RecordingHealth]]:
    servicer = _RecordingHealth()
    servicer.set("readiness", health_pb2.HealthCheckResponse.SERVING)
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, srv)
    creds = tls.server_credentials(pki / "ca.pem", pki / "mpc-0.pem", pki / "mpc-0.key")
    port = srv.add_secure_port("127.0.0.1:0", creds)
    assert port > 0
    srv.start()
    yield port, servicer
    srv.stop(None)


def _check(port: int, creds: grpc.ChannelCredentials, target: str = "127.0.0.1") -> int:
    with grpc.secure_channel(f"{target}:{port}", creds) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=10)
        return int(reply.status)


def test_mtls_accepts_client_with_ca_issued_cert(
    pki: Path, server: tuple[int, _RecordingHealth]
) -> None:
    port, servicer = server
    creds = tls.channel_credentials(
        pki / "ca.pem", pki / "coordinator.pem", pki / "coordinator.key"
    )
    assert _check(port, creds) == health_pb2.HealthCheckResponse.SERVING
    assert _check(port, creds, target="localhost") == health_pb2.HealthCheckResponse.SERVING
    assert servicer.peers == ["coordinator", "coordinator"]


def test_mtls_refuses_client_without_cert(pki: Path, server: tuple[int, _RecordingHealth]) -> None:
    port, servicer = server
    creds = grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())
    with pytest.raises(grpc.RpcError) as info:
        _check(port, creds)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.peers == []


def test_mtls_refuses_client_cert_from_another_ca(
    pki: Path, server: tuple[int, _RecordingHealth]
) -> None:
    port, servicer = server
    other = pki / "other"
    # The client trusts the server's CA but presents a certificate from its own CA.
    creds = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(other / "coordinator.key").read_bytes(),
        certificate_chain=(other / "coordinator.pem").read_bytes(),
    )
    with pytest.raises(grpc.RpcError) as info:
        _check(port, creds)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.peers == []


def test_client_refuses_server_from_another_ca(
    pki: Path, server: tuple[int, _RecordingHealth]
) -> None:
    port, servicer = server
    other = pki / "other"
    creds = tls.channel_credentials(
        other / "ca.pem", other / "coordinator.pem", other / "coordinator.key"
    )
    with pytest.raises(grpc.RpcError) as info:
        _check(port, creds)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert servicer.peers == []


def test_peer_common_name_none_without_client_cert() -> None:
    class _Context:
        def auth_context(self) -> dict[str, list[bytes]]:
            return {"transport_security_type": [b"insecure"]}

    assert tls.peer_common_name(_Context()) is None


def test_missing_tls_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="missing.pem"):
        tls.server_credentials(tmp_path / "missing.pem", tmp_path / "a", tmp_path / "b")
