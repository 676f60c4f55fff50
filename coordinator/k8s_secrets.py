"""Credentials for a Kubernetes deployment (statefulset/): one run makes every Secret.

Usage (through `scripts/k8s-secrets`):

    k8s-secrets --out DIR [--namespace NS] [--nodes N] [--service mpc]
                [--coordinator-service mpc-coordinator] [--cluster-domain cluster.local]

writes, into a new directory DIR (mode 0700):

    secrets.yaml   the Secrets and the ConfigMap the manifests mount (apply it with
                   `kubectl -n NS apply -f DIR/secrets.yaml`, then keep DIR offline)
    ca.pem ca.key  the cluster CA: its key is in no Secret; keep it offline, it signs
                   certificates for new nodes or clients
    client.pem client.key   an mTLS client certificate for `mpcctl`
    audit.pub      the coordinator's audit public key (hex; `mpcctl audit verify --public-key`)

The objects:

- Secret `mpc-node-tls`: `mpc-k.crt` / `mpc-k.key` per node;
- Secret `mpc-node-identity`: `mpc-k.json`, the node's Ed25519/X25519 identity keys;
- Secret `mpc-node-kek`: `mpc-k.kek`, 32 random bytes that seal the node's stored shares;
- Secret `mpc-coordinator-tls`: `tls.crt` / `tls.key` of the coordinator (CN `coordinator`);
- Secret `mpc-coordinator-audit`: `audit.key`, the coordinator's audit-log signing key (its
  public key is printed and written to audit.pub);
- ConfigMap `mpc-trust`: `ca.crt` and `roster.json` (public: every node's identity keys).

The StatefulSet mounts each node Secret with `subPathExpr: $(POD_NAME)`, so a node's
container sees only its own files. Certificates name every DNS name a node is dialled by:
`mpc-k`, `mpc-k.<service>`, `mpc-k.<service>.<ns>`, `…svc` and `…svc.<cluster domain>`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mpcnode import tls
from mpcnode.audit import AuditSigner
from mpcnode.errors import InvalidInput, MpcError
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.storage import KEK_SIZE, write_file_atomic

__all__ = [
    "NODE_TLS_SECRET",
    "NODE_IDENTITY_SECRET",
    "NODE_KEK_SECRET",
    "COORDINATOR_TLS_SECRET",
    "COORDINATOR_AUDIT_SECRET",
    "TRUST_CONFIGMAP",
    "COORDINATOR_NAME",
    "build_objects",
    "main",
]

NODE_TLS_SECRET = "mpc-node-tls"
NODE_IDENTITY_SECRET = "mpc-node-identity"
NODE_KEK_SECRET = "mpc-node-kek"
COORDINATOR_TLS_SECRET = "mpc-coordinator-tls"
COORDINATOR_AUDIT_SECRET = "mpc-coordinator-audit"
"""Holds `audit.key`: the coordinator's audit signing key (`mpcnode.audit.AuditSigner`)."""
TRUST_CONFIGMAP = "mpc-trust"
COORDINATOR_NAME = "coordinator"
"""Certificate CN of the coordinator: the only client the nodes accept (`allowed_clients`)."""
CLIENT_NAME = "client"

_LABELS = {"app.kubernetes.io/name": "mpc-cluster", "app.kubernetes.io/part-of": "mpc-cluster"}


def dns_names(host: str, service: str | None, namespace: str, domain: str) -> list[str]:
    """Every name a pod or Service `host` is dialled by inside the cluster."""
    base = f"{host}.{service}" if service else host
    return [
        host,
        *([base] if service else []),
        f"{base}.{namespace}",
        f"{base}.{namespace}.svc",
        f"{base}.{namespace}.svc.{domain}",
    ]


def _secret(name: str, files: dict[str, bytes]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": dict(_LABELS)},
        "type": "Opaque",
        # Not immutable: a KEK rotation adds `mpc-k.kek-next` entries, a certificate renewal
        # replaces entries (see the README's rotation steps).
        "data": {key: base64.b64encode(value).decode() for key, value in sorted(files.items())},
    }


def build_objects(
    namespace: str,
    nodes: int = 5,
    service: str = "mpc",
    coordinator_service: str = "mpc-coordinator",
    domain: str = "cluster.local",
) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The Kubernetes objects, and the files kept outside the cluster (CA and client)."""
    if not 1 <= nodes <= 64:
        raise InvalidInput("--nodes must be between 1 and 64")
    for label, value in (("namespace", namespace), ("service", service)):
        if not value or not value.replace("-", "").isalnum() or value != value.lower():
            raise InvalidInput(f"{label} {value!r} is not a DNS label")
    ca_cert, ca_key = tls.create_ca("mpc-cluster-ca")
    node_tls: dict[str, bytes] = {}
    node_identity: dict[str, bytes] = {}
    node_kek: dict[str, bytes] = {}
    entries = []
    for index in range(nodes):
        name = f"mpc-{index}"
        cert, key = tls.issue_cert(
            ca_cert, ca_key, name, dns_names(name, service, namespace, domain), []
        )
        node_tls[f"{name}.crt"], node_tls[f"{name}.key"] = cert, key
        identity = NodeIdentity.generate(name, index + 1)
        node_identity[f"{name}.json"] = identity.secret_file_bytes()
        node_kek[f"{name}.kek"] = secrets.token_bytes(KEK_SIZE)
        entries.append(identity.public_entry())
    coordinator_cert, coordinator_key = tls.issue_cert(
        ca_cert,
        ca_key,
        COORDINATOR_NAME,
        dns_names(coordinator_service, None, namespace, domain),
        [],
    )
    client_cert, client_key = tls.issue_cert(ca_cert, ca_key, CLIENT_NAME, [CLIENT_NAME], [])
    roster = json.dumps(Roster(entries).to_json(), indent=2) + "\n"
    audit_signer = AuditSigner.generate(COORDINATOR_NAME)
    objects = [
        _secret(NODE_TLS_SECRET, node_tls),
        _secret(NODE_IDENTITY_SECRET, node_identity),
        _secret(NODE_KEK_SECRET, node_kek),
        _secret(COORDINATOR_TLS_SECRET, {"tls.crt": coordinator_cert, "tls.key": coordinator_key}),
        _secret(COORDINATOR_AUDIT_SECRET, {"audit.key": audit_signer.secret_file_bytes()}),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": TRUST_CONFIGMAP, "labels": dict(_LABELS)},
            "data": {"ca.crt": ca_cert.decode(), "roster.json": roster},
        },
    ]
    offline = {
        "ca.pem": ca_cert,
        "ca.key": ca_key,
        "client.pem": client_cert,
        "client.key": client_key,
        "audit.pub": audit_signer.public_key.hex().encode() + b"\n",
    }
    return objects, offline


def write_bundle(out: Path, objects: list[dict[str, Any]], offline: dict[str, bytes]) -> None:
    """Write secrets.yaml (JSON documents are valid YAML) and the offline files, all 0600."""
    out.mkdir(mode=0o700, parents=True)
    os.chmod(out, 0o700)
    stream = "".join("---\n" + json.dumps(obj, indent=2) + "\n" for obj in objects)
    write_file_atomic(out / "secrets.yaml", stream.encode(), 0o600)
    for name, content in offline.items():
        private = name.endswith(".key")
        write_file_atomic(out / name, content, 0o600 if private else 0o644)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="k8s-secrets", description="Make the Secrets of a Kubernetes deployment."
    )
    parser.add_argument("--out", required=True, help="new directory for the bundle")
    parser.add_argument("--namespace", default="mpc")
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--service", default="mpc", help="the nodes' headless Service")
    parser.add_argument("--coordinator-service", default="mpc-coordinator")
    parser.add_argument("--cluster-domain", default="cluster.local")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        if out.exists():
            raise InvalidInput(f"{out} exists; choose a new directory (nothing is overwritten)")
        objects, offline = build_objects(
            args.namespace, args.nodes, args.service, args.coordinator_service, args.cluster_domain
        )
        write_bundle(out, objects, offline)
    except MpcError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "secrets": str(out / "secrets.yaml"),
                "namespace": args.namespace,
                "nodes": args.nodes,
                "apply": f"kubectl -n {args.namespace} apply -f {out / 'secrets.yaml'}",
                "offline": sorted(str(out / name) for name in offline),
                "audit_public_key": offline["audit.pub"].decode().strip(),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
