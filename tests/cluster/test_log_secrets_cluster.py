"""Real processes: a full protocol run at DEBUG logs no secret, and every line is labelled JSON.

A local cluster (scripts/cluster, MPC_LOG_LEVEL=DEBUG inherited by every process) runs
aux-info (public TEST fixture primes), ed25519 keygen and signing (root and a tenant's child
key), secp256k1 keygen, pooled and digest signing (presignatures made in the background), then
a reshare of both keys and more signing. Between the phases the cluster is stopped and every
secret read back from each node's files: key shares of each generation and presignatures
(opened with the node's KEK from a copy of its store), its aux-info (Paillier p, q, φ), its
KEK and identity keys, and every fixture safe prime. No log line may contain any of them in
any encoding (tests/log_secrets.py). FROST nonces never leave a node's memory: the in-process
test (tests/integration/test_log_secrets.py) records those as they are drawn.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mpcnode.identity import NodeIdentity
from mpcnode.logs import LINE_KEYS
from mpcnode.protocols.cggmp.aux_info import AuxInfo
from mpcnode.protocols.cggmp.presign import Presignature
from mpcnode.protocols.keys import KeyShare
from mpcnode.storage import KeyStore, load_kek
from tests.cluster.harness import ROOT, LocalCluster
from tests.fixtures.primes import load_test_primes
from tests.log_secrets import Secrets, parse_lines

BASE_PORT = 53750
TENANT = "tenant-7"
COMMITTEE = (1, 2, 3, 4, 5)
MARKER = "--- devcluster: starting "
pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("log-secrets-cluster"), BASE_PORT)
    previous = os.environ.get("MPC_LOG_LEVEL")
    os.environ["MPC_LOG_LEVEL"] = "DEBUG"  # inherited by scripts/cluster and every process
    try:
        primes = ROOT / "tests" / "fixtures" / "safe_primes.json"
        local.run("up", "--prime-pool", "0", "--test-primes", str(primes))
        yield local
    finally:
        try:
            local.run("down", "--purge")
        finally:
            if previous is None:
                os.environ.pop("MPC_LOG_LEVEL", None)
            else:
                os.environ["MPC_LOG_LEVEL"] = previous


def mpcctl(cluster: LocalCluster, *args: str, timeout: float = 600) -> dict[str, Any]:
    proc = cluster.mpcctl(*args, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, Any] = json.loads(proc.stdout)
    return doc


def restart(cluster: LocalCluster) -> None:
    """`up` again, and wait until the fresh coordinator reaches its nodes (right after a
    restart its first node calls can fail while the channels connect)."""
    cluster.run("up")
    for _ in range(60):
        if cluster.mpcctl("keys").returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError("the restarted coordinator does not reach its nodes")


def collect_stored_secrets(cluster: LocalCluster, found: Secrets, scratch: Path) -> int:
    """Every secret in the stopped cluster's node files; returns how many shares were read."""
    shares = 0
    for node_dir in sorted((cluster.dir / "nodes").iterdir()):
        config = json.loads((node_dir / "node.json").read_text())
        kek = load_kek(config["kek_file"])
        found.add(kek, "KEK")
        identity = NodeIdentity.load(config["identity_file"])
        found.add(bytes(identity.signing_private), "identity signing seed")
        found.add(bytes(identity.box_private), "identity box secret")
        copy = scratch / f"{node_dir.name}-{len(list(scratch.iterdir()))}"
        shutil.copytree(config["data_dir"], copy)
        store = KeyStore(copy, config["name"], kek)
        try:
            for stored in [*store.list_active(), *store.pending_keys()]:
                secret = stored.secret()
                found.add(secret, "key share plaintext")
                found.add(KeyShare.decode(secret).secret_share, "key share")
                shares += 1
                for info in store.list_presignatures(stored.key_id):
                    consumed = store.consume_presignature(
                        info.presignature_id, stored.key_id, os.urandom(32)
                    )
                    if consumed.secret is not None:
                        found.add(consumed.secret, "presignature plaintext")
                        presig = Presignature.decode(consumed.secret)
                        found.add(presig.k, "presignature k")
                        found.add(presig.chi, "presignature chi")
            blob = store.get_aux_info(COMMITTEE)
            assert blob is not None
            found.add(blob, "aux-info plaintext")
            sk = AuxInfo.decode(blob).secret_key
            for what in ("p", "q", "phi"):
                found.add(getattr(sk, what), f"Paillier {what}")
        finally:
            store.close()
    return shares


def read_logs(cluster: LocalCluster) -> list[str]:
    lines = []
    for log in sorted((cluster.dir / "logs").glob("*.log")):
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith(MARKER) or not line.strip():
                continue
            lines.append(line)
    return lines


def test_full_run_logs_no_secret(cluster: LocalCluster, tmp_path: Path) -> None:
    found = Secrets()
    for prime in load_test_primes(1536):
        found.add(prime, "fixture safe prime")

    mpcctl(cluster, "aux-info", timeout=900)
    ed = mpcctl(cluster, "keygen", "--scheme", "ed25519")
    mpcctl(cluster, "sign", "--key-id", ed["key_id"], "--message", "root")
    mpcctl(cluster, "sign", "--key-id", ed["key_id"], "--message", "child", "--tenant", TENANT)
    secp = mpcctl(cluster, "keygen", "--scheme", "secp256k1")
    mpcctl(cluster, "sign", "--key-id", secp["key_id"], "--message", "pooled")
    digest = hashlib.sha256(b"the caller's digest").hexdigest()
    mpcctl(cluster, "sign", "--key-id", secp["key_id"], "--digest-hex", digest, "--tenant", TENANT)
    cluster.run("down")
    assert collect_stored_secrets(cluster, found, tmp_path) == 10  # 2 keys x 5 nodes

    restart(cluster)
    mpcctl(cluster, "reshare", "--key-id", ed["key_id"])
    mpcctl(cluster, "reshare", "--key-id", secp["key_id"], "--threshold", "2")
    mpcctl(cluster, "sign", "--key-id", ed["key_id"], "--message", "after", "--tenant", TENANT)
    mpcctl(cluster, "sign", "--key-id", secp["key_id"], "--message", "after reshare")
    cluster.run("down")
    assert collect_stored_secrets(cluster, found, tmp_path) == 10

    lines = read_logs(cluster)
    json_lines = [line for line in lines if line.startswith("{")]
    # Every line a process writes is one JSON object (nothing else reaches the log files).
    assert json_lines == lines, [line for line in lines if not line.startswith("{")][:5]
    docs = parse_lines(json_lines)
    assert len(docs) > 200
    assert all(set(LINE_KEYS) <= d.keys() for d in docs)
    assert any(d["level"] == "DEBUG" for d in docs)
    assert {d["process"] for d in docs} == {"coordinator", *(f"mpc-{k}" for k in range(5))}
    protocols = {d["protocol"] for d in docs}
    assert {"cggmp-aux-info", "frost-dkg", "frost-sign", "cggmp-presign", "reshare"} <= protocols
    assert {"cggmp-sign", "cggmp-sign-digest"} <= protocols
    tenant_sessions = {
        d["session_id"] for d in docs if d["tenant"] == TENANT and d["protocol"] == "frost-sign"
    }
    assert len(tenant_sessions) == 2
    for sid in tenant_sessions:
        labelled = [d for d in docs if d["session_id"] == sid]
        assert {d["process"] for d in labelled} >= {"coordinator", "mpc-0", "mpc-1", "mpc-2"}
        for d in labelled:
            assert (d["key_id"], d["protocol"], d["tenant"]) == (ed["key_id"], "frost-sign", TENANT)
    requested = [d for d in docs if d["msg"].startswith("sign requested")]
    assert len(requested) == 6 and all(d["rpc"] == "Sign" for d in requested)
    assert any(digest in d["msg"] and d["tenant"] == TENANT for d in requested)

    assert len(found) > 500
    hits = found.find(json_lines)
    assert not hits, json.dumps(hits[:20], indent=1)
    # The search is not blind: a logged share would have been found.
    for share in found.values["key share"][:3]:
        for shown in (f"{share}", f"{share:#x}", f"{share:X}"[:16]):
            assert found.find([json.dumps({"msg": f"oops {shown}"})]), shown
