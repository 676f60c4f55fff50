"""mTLS material for the cluster: a development CA, leaf certificates, and gRPC credentials.

Every process (node, coordinator, client) has one EC P-256 certificate that is good
for both TLS server and client authentication, signed by one CA. The API port of a
node or the coordinator requires a client certificate from that CA; the handler then
reads the peer's certificate common name (`peer_common_name`) to decide what the peer
may call. Handshake failures (no client certificate, a certificate from another CA)
reach a client as gRPC UNAVAILABLE.

Private keys are written with mode 0600 from the moment the file exists.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mpcnode.errors import InvalidInput

__all__ = [
    "create_ca",
    "issue_cert",
    "write_pem",
    "read_pem",
    "server_credentials",
    "channel_credentials",
    "peer_common_name",
    "dev_dns_names",
    "make_dev_pki",
]

# Backdate notBefore a little so a peer whose clock is slightly behind accepts new certs.
_CLOCK_SKEW = datetime.timedelta(minutes=5)
_NODE_NAME = re.compile(r"mpc-[0-9]+")
_K8S_NAMESPACE = "default"


def _name(common_name: str) -> x509.Name:
    if not common_name:
        raise InvalidInput("certificate common name must not be empty")
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _validity(days: int) -> tuple[datetime.datetime, datetime.datetime]:
    if days <= 0:
        raise InvalidInput(f"certificate validity must be positive, got {days} days")
    now = datetime.datetime.now(datetime.UTC)
    return now - _CLOCK_SKEW, now + datetime.timedelta(days=days)


def create_ca(common_name: str = "mpc-dev-ca", days: int = 3650) -> tuple[bytes, bytes]:
    """Create a self-signed EC P-256 CA that may sign leaf certificates only.

    Returns (cert_pem, key_pem). path_length=0: the CA cannot sign other CAs.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    not_before, not_after = _validity(days)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def issue_cert(
    ca_cert_pem: bytes,
    ca_key_pem: bytes,
    common_name: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    days: int = 825,
) -> tuple[bytes, bytes]:
    """Issue an EC P-256 leaf certificate for `common_name`, signed by the CA.

    The certificate serves both TLS ends (serverAuth + clientAuth) because nodes
    and the coordinator are servers and clients. The SAN lists `dns_names` and
    `ip_addresses`, which must cover every name a peer dials. Returns (cert_pem, key_pem).
    """
    if not dns_names and not ip_addresses:
        raise InvalidInput(f"certificate for {common_name!r} needs at least one SAN")
    try:
        ips = [ipaddress.ip_address(a) for a in ip_addresses]
    except ValueError as exc:
        raise InvalidInput(f"bad IP address in SAN list: {exc}") from None
    ca_cert = x509.load_pem_x509_certificate(ca_cert_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise InvalidInput("CA key must be an EC private key")
    if ca_key.public_key().public_numbers() != _ec_public(ca_cert).public_numbers():
        raise InvalidInput("CA key does not match the CA certificate")

    key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = _validity(days)
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    san += [x509.IPAddress(ip) for ip in ips]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(min(not_after, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _ec_public(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise InvalidInput("CA certificate must carry an EC public key")
    return public


def write_pem(path: str | os.PathLike[str], data: bytes, private: bool) -> None:
    """Write PEM data atomically; a private key file has mode 0600 from its creation.

    The data goes to a temporary file in the same directory (created 0600 by
    mkstemp), is fsynced, then renamed over `path`, so a reader never sees a
    half-written key and a key is never briefly world-readable. Public files end as 0644.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600 if private else 0o644)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_pem(path: str | os.PathLike[str]) -> bytes:
    """Read a PEM file; errors name the file, never its contents."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read TLS file {os.fspath(path)!r}: {exc.strerror}") from None


def server_credentials(
    ca_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> grpc.ServerCredentials:
    """Server credentials that demand a client certificate signed by the CA (mTLS)."""
    ca, cert, key = read_pem(ca_path), read_pem(cert_path), read_pem(key_path)
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )


def channel_credentials(
    ca_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    key_path: str | os.PathLike[str],
) -> grpc.ChannelCredentials:
    """Channel credentials that trust only the CA and present our own certificate."""
    ca, cert, key = read_pem(ca_path), read_pem(cert_path), read_pem(key_path)
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=cert
    )


def peer_common_name(context: grpc.ServicerContext) -> str | None:
    """The common name of the peer's verified client certificate, or None if there is none.

    gRPC fills `x509_common_name` only after the handshake verified the peer's
    chain against our CA, so the name can be trusted for authorization.
    """
    values = context.auth_context().get("x509_common_name")
    if not values:
        return None
    value = values[0]
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def dev_dns_names(name: str) -> list[str]:
    """The DNS SANs of a development certificate for process `name`.

    Always `localhost`; a node `mpc-k` also gets its Kubernetes names (headless
    service `mpc`, namespace `default`), the coordinator its service names.
    """
    names = ["localhost"]
    if _NODE_NAME.fullmatch(name):
        names += [f"{name}.mpc", f"{name}.mpc.{_K8S_NAMESPACE}.svc.cluster.local"]
    elif name == "coordinator":
        names += ["coordinator", "coordinator.mpc"]
    return names


def make_dev_pki(directory: str | os.PathLike[str], names: Sequence[str]) -> None:
    """Write a fresh development CA and one certificate per name into `directory`.

    Files: ca.pem, ca.key, and <name>.pem / <name>.key for each name (keys 0600,
    directory 0700). Every certificate has the SANs of `dev_dns_names(name)` plus
    IP 127.0.0.1. An existing CA in the directory is replaced, so call this once
    per cluster.
    """
    if len(set(names)) != len(names):
        raise InvalidInput("duplicate names in the PKI name list")
    for name in names:
        if not name or name == "ca" or "/" in name or name.startswith("."):
            raise InvalidInput(f"bad certificate name {name!r}")
    out = Path(directory)
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    ca_cert, ca_key = create_ca()
    write_pem(out / "ca.key", ca_key, private=True)
    write_pem(out / "ca.pem", ca_cert, private=False)
    for name in names:
        cert, key = issue_cert(ca_cert, ca_key, name, dev_dns_names(name), ["127.0.0.1"])
        write_pem(out / f"{name}.key", key, private=True)
        write_pem(out / f"{name}.pem", cert, private=False)
