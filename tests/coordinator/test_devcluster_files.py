"""coordinator.devcluster without real servers: the prepared files, pid handling, the CLI.

The processes started here are stand-ins (`sleep`-like Python processes whose command
line names a cluster config), so process control is tested without mpcnode.server;
only test_add_node_to_a_running_cluster (marked `cluster`) starts real processes.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from coordinator import devcluster
from coordinator.devcluster import Cluster, ClusterError
from mpcnode.audit import AuditSigner
from mpcnode.identity import NodeIdentity, Roster


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _free_base_port(nodes: int = 5) -> int:
    """A base port whose API, health and metrics ports are all free right now."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 100)
        api = [base + i for i in range(nodes + 1)]
        ports = api + [p + devcluster.HEALTH_OFFSET for p in api]
        ports += [p + devcluster.METRICS_OFFSET for p in api]
        if all(devcluster._port_free(p) for p in ports):
            return base
    raise RuntimeError("no free port block found")


@pytest.fixture
def prepared(tmp_path: Path) -> Cluster:
    cluster = Cluster(tmp_path / "c", base_port=_free_base_port())
    assert cluster.prepare() is True
    return cluster


def _cn(cert: Path) -> str:
    return x509.load_pem_x509_certificate(cert.read_bytes()).subject.rfc4514_string()


# --------------------------------------------------------------------------- files


def test_prepare_layout_and_modes(tmp_path: Path) -> None:
    d = tmp_path / "c"
    Cluster(d, base_port=52050).prepare()
    names = [f"mpc-{k}" for k in range(5)]
    assert {p.name for p in d.iterdir()} == {
        "tls",
        "nodes",
        "roster.json",
        "coordinator.json",
        "logs",
        "cluster.json",
        "coordinator",
    }
    assert {p.name for p in (d / "nodes").iterdir()} == set(names)
    assert {p.name for p in (d / "coordinator").iterdir()} == {"audit.key"}
    dirs = [d, d / "tls", d / "nodes", d / "logs", d / "coordinator"]
    for directory in [*dirs, *[d / "nodes" / n for n in names]]:
        assert _mode(directory) == 0o700, directory
    secrets = [d / "tls" / "ca.key", d / "tls" / "client.key", d / "tls" / "coordinator.key"]
    secrets.append(d / "coordinator" / "audit.key")
    for n in names:
        node = d / "nodes" / n
        assert {p.name for p in node.iterdir()} == {"identity.json", "kek", "node.json"}
        secrets += [node / "identity.json", node / "kek", d / "tls" / f"{n}.key"]
    for f in secrets:
        assert _mode(f) == 0o600, f
    assert len((d / "nodes" / "mpc-0" / "kek").read_bytes()) == 32
    for f in [d / "cluster.json", d / "coordinator.json"]:
        assert _mode(f) == 0o600


def test_roster_has_five_distinct_keys_matching_identities(prepared: Cluster) -> None:
    roster = Roster.load(prepared.roster_file)
    entries = list(roster)
    assert [e.name for e in entries] == [f"mpc-{k}" for k in range(5)]
    assert [e.party for e in entries] == [1, 2, 3, 4, 5]
    doc = json.loads(prepared.roster_file.read_text())
    assert len({n["signing_key"] for n in doc["nodes"]}) == 5
    assert len({n["box_key"] for n in doc["nodes"]}) == 5
    for k, entry in enumerate(entries):
        identity = NodeIdentity.load(prepared.node_dir(k) / "identity.json")
        assert identity.public_entry() == entry


def test_node_configs_point_to_existing_files(prepared: Cluster) -> None:
    base = prepared.base_port
    for k in range(5):
        cfg = json.loads((prepared.node_dir(k) / "node.json").read_text())
        assert cfg["name"] == f"mpc-{k}"
        assert cfg["party"] == k + 1
        assert cfg["listen"] == f"127.0.0.1:{base + 1 + k}"
        assert cfg["health_listen"] == f"127.0.0.1:{base + 11 + k}"
        assert cfg["metrics_listen"] == f"127.0.0.1:{base + 21 + k}"
        assert cfg["allowed_clients"] == ["coordinator"]
        assert Path(cfg["data_dir"]).is_dir()
        for key in ("kek_file", "identity_file", "roster_file"):
            assert Path(cfg[key]).is_absolute() and Path(cfg[key]).is_file(), key
        assert Path(cfg["roster_file"]) == prepared.roster_file
        assert all(Path(p).is_absolute() and Path(p).is_file() for p in cfg["tls"].values())
        assert _cn(Path(cfg["tls"]["cert"])) == f"CN=mpc-{k}"
        assert NodeIdentity.load(cfg["identity_file"]).name == f"mpc-{k}"

    coord = json.loads((prepared.directory / "coordinator.json").read_text())
    assert coord["listen"] == f"127.0.0.1:{base}"
    assert coord["health_listen"] == f"127.0.0.1:{base + 10}"
    assert coord["metrics_listen"] == f"127.0.0.1:{base + 20}"
    assert Path(coord["roster_file"]) == prepared.roster_file
    assert all(Path(p).is_file() for p in coord["tls"].values())
    assert _cn(Path(coord["tls"]["cert"])) == "CN=coordinator"
    assert coord["nodes"] == [
        {"name": f"mpc-{k}", "party": k + 1, "address": f"127.0.0.1:{base + 1 + k}"}
        for k in range(5)
    ]
    assert coord["audit_dir"] == str(prepared.directory / "coordinator" / "audit")
    assert coord["audit_key_file"] == str(prepared.directory / "coordinator" / "audit.key")
    signer = AuditSigner.load(coord["audit_key_file"])
    assert signer.name == "coordinator"
    doc = json.loads(prepared.cluster_file.read_text())
    assert doc["coordinator"]["audit_public_key"] == signer.public_key.hex()


def test_cluster_json_ports_follow_base_port(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "c", base_port=52050)
    cluster.prepare()
    doc = json.loads(cluster.cluster_file.read_text())
    d = str(cluster.directory)
    assert doc["dir"] == d
    assert doc["coordinator"] == {
        "address": "127.0.0.1:52050",
        "health": "127.0.0.1:52060",
        "pid": None,
        "config": f"{d}/coordinator.json",
        "log": f"{d}/logs/coordinator.log",
        "audit_log": f"{d}/coordinator/audit/audit.log",
        "audit_public_key": cluster.audit_public_key(),
    }
    assert doc["nodes"][3] == {
        "name": "mpc-3",
        "party": 4,
        "address": "127.0.0.1:52054",
        "health": "127.0.0.1:52064",
        "pid": None,
        "config": f"{d}/nodes/mpc-3/node.json",
        "log": f"{d}/logs/mpc-3.log",
        "audit_log": f"{d}/nodes/mpc-3/audit/audit.log",
    }
    assert [n["address"] for n in doc["nodes"]] == [f"127.0.0.1:{52051 + k}" for k in range(5)]
    assert [n["health"] for n in doc["nodes"]] == [f"127.0.0.1:{52061 + k}" for k in range(5)]
    assert doc["tls"] == {
        "ca": f"{d}/tls/ca.pem",
        "client_cert": f"{d}/tls/client.pem",
        "client_key": f"{d}/tls/client.key",
    }
    assert _cn(Path(doc["tls"]["client_cert"])) == "CN=client"
    assert cluster.client_tls() is not None


def test_default_ports_and_node_count(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "c")
    assert cluster.base_port == 50050 and cluster.nodes == 5
    assert [(p.name, p.port, p.health_port) for p in cluster.processes] == [
        ("coordinator", 50050, 50060),
        *[(f"mpc-{k}", 50051 + k, 50061 + k) for k in range(5)],
    ]
    three = Cluster(tmp_path / "d", base_port=41000, nodes=3)
    three.prepare()
    assert len(list(Roster.load(three.roster_file))) == 3


def test_prepare_reuses_existing_state(prepared: Cluster) -> None:
    identity = prepared.node_dir(2) / "identity.json"
    before = identity.read_bytes(), prepared.roster_file.read_bytes()
    again = Cluster(prepared.directory)  # settings come from cluster.json
    assert again.base_port == prepared.base_port
    assert again.prepare() is False
    assert (identity.read_bytes(), prepared.roster_file.read_bytes()) == before
    with pytest.raises(ClusterError, match="base port"):
        Cluster(prepared.directory, base_port=prepared.base_port + 1000)
    with pytest.raises(ClusterError, match="nodes"):
        Cluster(prepared.directory, nodes=3)


def test_refuses_foreign_directory(tmp_path: Path) -> None:
    d = tmp_path / "mine"
    d.mkdir()
    (d / "precious.txt").write_text("keep me")
    with pytest.raises(ClusterError, match="holds no cluster"):
        Cluster(d).prepare()
    with pytest.raises(ClusterError, match="not deleting"):
        Cluster(d).down(purge=True)
    assert [p.name for p in d.iterdir()] == ["precious.txt"]


def test_bad_settings_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ClusterError):
        Cluster(tmp_path / "c", nodes=0)
    with pytest.raises(ClusterError):
        Cluster(tmp_path / "c", nodes=10)
    with pytest.raises(ClusterError):
        Cluster(tmp_path / "c", base_port=65530)
    with pytest.raises(ClusterError, match="no node 5"):
        Cluster(tmp_path / "c").node(5)


# --------------------------------------------------------------------------- processes


def _fake(cluster: Cluster, index: int, ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """A stand-in for node `index`: its command line names the node's config."""
    code = "import signal, time\n"
    if ignore_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(120)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(cluster.node(index).config)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # signal handler installed
    return proc


def _set_pid(cluster: Cluster, name: str, pid: int | None) -> None:
    doc = json.loads(cluster.cluster_file.read_text())
    entries = [doc["coordinator"]] if name == "coordinator" else doc["nodes"]
    for e in entries:
        if name == "coordinator" or e["name"] == name:
            e["pid"] = pid
    cluster.cluster_file.write_text(json.dumps(doc))


def _pids(cluster: Cluster) -> dict[str, Any]:
    doc = json.loads(cluster.cluster_file.read_text())
    return {"coordinator": doc["coordinator"]["pid"], **{n["name"]: n["pid"] for n in doc["nodes"]}}


@pytest.fixture
def fakes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()


def test_kill_node_sigkills_and_clears_pid(
    prepared: Cluster, fakes: list[subprocess.Popen[bytes]]
) -> None:
    proc = _fake(prepared, 1, ignore_term=True)
    fakes.append(proc)
    _set_pid(prepared, "mpc-1", proc.pid)
    assert prepared.status()["processes"][2]["alive"] is True
    result = prepared.kill_node(1)
    assert result == {"name": "mpc-1", "killed_pid": proc.pid}
    assert proc.wait(timeout=5) == -signal.SIGKILL
    assert _pids(prepared)["mpc-1"] is None
    assert prepared.status()["processes"][2]["alive"] is False


def test_kill_node_takes_the_process_group_down(
    prepared: Cluster, fakes: list[subprocess.Popen[bytes]]
) -> None:
    """A crash kills the node's worker processes too, as a pod kill would."""
    code = (
        "import subprocess, sys, time\n"
        "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        "print(w.pid, flush=True)\ntime.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--config", str(prepared.node(0).config)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    fakes.append(proc)
    assert proc.stdout is not None
    worker = int(proc.stdout.readline())
    _set_pid(prepared, "mpc-0", proc.pid)
    prepared.kill_node(0)
    assert proc.wait(timeout=5) == -signal.SIGKILL
    deadline = time.monotonic() + 5
    while devcluster._proc_state(worker) == "alive" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert devcluster._proc_state(worker) != "alive"


def test_down_never_signals_a_recycled_pid(
    prepared: Cluster, fakes: list[subprocess.Popen[bytes]]
) -> None:
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    fakes.append(stranger)
    _set_pid(prepared, "mpc-0", stranger.pid)  # pid recorded, but not our node's command line
    status = prepared.status()
    assert status["processes"][1]["alive"] is False
    prepared.down()
    prepared.kill_node(0)
    time.sleep(0.1)
    assert stranger.poll() is None
    assert _pids(prepared)["mpc-0"] is None


def test_down_terms_then_kills_and_keeps_state(
    prepared: Cluster, fakes: list[subprocess.Popen[bytes]]
) -> None:
    polite, stubborn = _fake(prepared, 0), _fake(prepared, 4, ignore_term=True)
    fakes += [polite, stubborn]
    _set_pid(prepared, "mpc-0", polite.pid)
    _set_pid(prepared, "mpc-4", stubborn.pid)
    prepared.down(grace=0.5)
    assert polite.wait(timeout=5) == -signal.SIGTERM
    assert stubborn.wait(timeout=5) == -signal.SIGKILL
    assert set(_pids(prepared).values()) == {None}
    assert prepared.is_prepared()  # files kept for a restart with the same keys
    prepared.down(purge=True)
    assert not prepared.directory.exists()


def test_start_refuses_a_taken_port(prepared: Cluster) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", prepared.node(2).health_port))
        s.listen()
        try:
            with pytest.raises(ClusterError, match=str(prepared.node(2).health_port)) as info:
                prepared.start_node(2, timeout=1)
        finally:
            prepared.down(grace=1)  # stops whatever a broken port check started
    assert info.value.details["taken"] == [
        {"process": "mpc-2", "port": prepared.node(2).health_port, "use": "health"}
    ]
    assert _pids(prepared)["mpc-2"] is None
    assert not prepared.node(2).log.exists()  # nothing was started


@pytest.fixture
def health_server(prepared: Cluster) -> Iterator[health.HealthServicer]:
    servicer = health.HealthServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    assert server.add_insecure_port(prepared.node(3).health_address) > 0
    server.start()
    yield servicer
    server.stop(None)


def test_status_and_wait_read_readiness(
    prepared: Cluster,
    fakes: list[subprocess.Popen[bytes]],
    health_server: health.HealthServicer,
) -> None:
    proc = _fake(prepared, 3)
    fakes.append(proc)
    _set_pid(prepared, "mpc-3", proc.pid)
    node3 = prepared.status()["processes"][4]
    assert node3["name"] == "mpc-3" and node3["alive"] is True
    assert node3["health"] == "NOT_SERVING"  # readiness unknown to the server yet
    with pytest.raises(ClusterError, match="not healthy after") as info:
        prepared.wait_healthy(["mpc-3"], timeout=0.5)
    assert info.value.details["unhealthy"][0]["health"] == "NOT_SERVING"

    health_server.set("readiness", health_pb2.HealthCheckResponse.SERVING)
    prepared.wait_healthy(["mpc-3"], timeout=5)
    status = prepared.status()
    assert [p["health"] for p in status["processes"]] == ["UNREACHABLE"] * 4 + ["SERVING"] + [
        "UNREACHABLE"
    ]
    assert status["healthy"] is False

    proc.kill()
    proc.wait()
    with pytest.raises(ClusterError, match="exited before becoming healthy"):
        prepared.wait_healthy(["mpc-3"], timeout=30)


def test_wait_reports_log_tail_of_a_dead_process(prepared: Cluster) -> None:
    node = prepared.node(0)
    node.log.write_bytes(
        b"old run\n" + devcluster._LOG_MARKER + b"mpc-0 ---\nTraceback\nBoom: bad config\n"
    )
    _set_pid(prepared, "mpc-0", None)
    with pytest.raises(ClusterError) as info:
        prepared.wait_healthy(["mpc-0"], timeout=10)
    (entry,) = info.value.details["unhealthy"]
    assert entry["name"] == "mpc-0" and entry["alive"] is False
    assert entry["log_tail"] == "Traceback\nBoom: bad config"


# --------------------------------------------------------------------------- CLI


def test_cli_status_prints_json(prepared: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert devcluster.main(["status", "--dir", str(prepared.directory)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dir"] == str(prepared.directory)
    assert [p["port"] for p in out["processes"]] == [prepared.base_port + i for i in range(6)]
    assert {p["health"] for p in out["processes"]} == {"UNREACHABLE"}


def test_cli_errors_are_json_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _free_base_port()
    d = tmp_path / "c"
    with socket.socket() as s:
        s.bind(("127.0.0.1", base))
        s.listen()
        try:
            code = devcluster.main(
                ["up", "--dir", str(d), "--base-port", str(base), "--timeout", "1"]
            )
        finally:
            Cluster(d).down(grace=1)  # stops whatever a broken port check started
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    err = json.loads(captured.err)
    assert str(base) in err["error"] and err["taken"][0]["process"] == "coordinator"
    assert set(_pids(Cluster(d)).values()) == {None}

    assert devcluster.main(["kill-node", "7", "--dir", str(d)]) == 1
    assert "no node 7" in json.loads(capsys.readouterr().err)["error"]
    assert devcluster.main(["start-node", "1", "--dir", str(tmp_path / "nothing")]) == 1
    assert "run `up` first" in json.loads(capsys.readouterr().err)["error"]


def test_cli_down_purge(prepared: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert devcluster.main(["down", "--purge", "--dir", str(prepared.directory)]) == 0
    assert json.loads(capsys.readouterr().out)["purged"] is True
    assert not prepared.directory.exists()


def test_scripts_cluster_is_executable() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "cluster"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash")
    assert "-m coordinator.devcluster" in text


# --------------------------------------------------------------------------- add-node

FIXTURE_PRIMES = Path(__file__).resolve().parents[1] / "fixtures" / "safe_primes.json"


def _tls_files(cluster: Cluster) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in cluster.tls_dir.iterdir()}


def test_add_node_extends_a_prepared_cluster(tmp_path: Path) -> None:
    base = _free_base_port(6)
    made = Cluster(tmp_path / "c", base_port=base, prime_pool=2, test_primes=FIXTURE_PRIMES)
    made.prepare()
    tls_before = _tls_files(made)
    roster_before = list(Roster.load(made.roster_file))

    cluster = Cluster(made.directory)  # no settings: all come from the directory
    result = cluster.add_node(timeout=5)

    assert result["added"] == {"name": "mpc-5", "party": 6}
    assert cluster.nodes == 6 and Cluster(made.directory).nodes == 6
    assert [p["name"] for p in result["processes"]] == ["coordinator"] + [
        f"mpc-{k}" for k in range(6)
    ]
    assert {p["pid"] for p in result["processes"]} == {None}  # a stopped cluster stays down
    assert result["processes"][6]["port"] == base + 6
    assert result["processes"][6]["health_port"] == base + 16

    # TLS: same CA, every existing file unchanged, a new certificate signed by that CA.
    tls_after = _tls_files(cluster)
    assert {k: v for k, v in tls_after.items() if k in tls_before} == tls_before
    assert set(tls_after) - set(tls_before) == {"mpc-5.pem", "mpc-5.key"}
    assert _mode(cluster.tls_dir / "mpc-5.key") == 0o600
    ca = x509.load_pem_x509_certificate(tls_before["ca.pem"])
    cert = x509.load_pem_x509_certificate(tls_after["mpc-5.pem"])
    assert cert.subject.rfc4514_string() == "CN=mpc-5"
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)  # raises unless the CA key signed it
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mpc-5.mpc" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]

    # Identity, KEK and the roster.
    node_dir = cluster.node_dir(5)
    assert _mode(node_dir) == 0o700
    assert {p.name for p in node_dir.iterdir()} == {"identity.json", "kek", "node.json"}
    assert _mode(node_dir / "identity.json") == 0o600 and _mode(node_dir / "kek") == 0o600
    assert len((node_dir / "kek").read_bytes()) == 32
    identity = NodeIdentity.load(node_dir / "identity.json")
    assert (identity.name, identity.party) == ("mpc-5", 6)
    roster = list(Roster.load(cluster.roster_file))
    assert roster[:5] == roster_before
    assert roster[5] == identity.public_entry()
    assert len({e.signing_key for e in roster}) == 6
    assert len({e.box_key for e in roster}) == 6

    # node.json: the same fields as the others, its own ports, mpc-0's prime settings.
    config = json.loads((node_dir / "node.json").read_text())
    config0 = json.loads(cluster.node(0).config.read_text())
    assert config.keys() == config0.keys()
    assert config["name"] == "mpc-5" and config["party"] == 6
    assert config["listen"] == f"127.0.0.1:{base + 6}"
    assert config["health_listen"] == f"127.0.0.1:{base + 16}"
    assert config["metrics_listen"] == f"127.0.0.1:{base + 26}"
    assert config["data_dir"] == str(node_dir)
    assert config["tls"] == {
        "ca": str(cluster.tls_dir / "ca.pem"),
        "cert": str(cluster.tls_dir / "mpc-5.pem"),
        "key": str(cluster.tls_dir / "mpc-5.key"),
    }
    assert config["prime_pool_target"] == 2  # from mpc-0, not the Cluster default (4)
    assert config["allow_test_primes"] is True
    assert config["test_primes_file"] == str(FIXTURE_PRIMES)
    for key in ("kek_file", "identity_file", "roster_file"):
        assert Path(config[key]).is_file(), key

    coord = json.loads(cluster.coordinator.config.read_text())
    assert coord["nodes"] == [
        {"name": f"mpc-{k}", "party": k + 1, "address": f"127.0.0.1:{base + 1 + k}"}
        for k in range(6)
    ]
    doc = json.loads(cluster.cluster_file.read_text())
    assert [n["name"] for n in doc["nodes"]] == [f"mpc-{k}" for k in range(6)]
    assert doc["nodes"][5]["config"] == str(node_dir / "node.json")


def test_add_node_without_test_primes_copies_none(prepared: Cluster) -> None:
    prepared.add_node()
    config = json.loads(prepared.node(5).config.read_text())
    assert "allow_test_primes" not in config and "test_primes_file" not in config
    assert config["prime_pool_target"] == devcluster.DEFAULT_PRIME_POOL


def test_add_node_refuses_at_max_nodes(tmp_path: Path) -> None:
    full = Cluster(tmp_path / "c", base_port=_free_base_port(9), nodes=devcluster.MAX_NODES)
    full.prepare()
    before = full.roster_file.read_bytes(), full.cluster_file.read_bytes()
    with pytest.raises(ClusterError, match="already has 9 nodes"):
        full.add_node()
    assert (full.roster_file.read_bytes(), full.cluster_file.read_bytes()) == before
    assert Cluster(full.directory).nodes == 9
    with pytest.raises(ClusterError, match="run `up` first"):
        Cluster(tmp_path / "nothing").add_node()


def test_add_node_grows_one_at_a_time(prepared: Cluster) -> None:
    stale = Cluster(prepared.directory)
    prepared.add_node()
    with pytest.raises(ClusterError, match="changed meanwhile"):
        stale.add_node()  # still believes in 5 nodes
    assert prepared.add_node()["added"] == {"name": "mpc-6", "party": 7}
    assert len(Roster.load(prepared.roster_file)) == 7


def test_add_node_failure_leaves_the_cluster_as_it_was(
    prepared: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {
        f: f.read_bytes()
        for f in (prepared.roster_file, prepared.coordinator.config, prepared.cluster_file)
    }
    write_json = devcluster._write_json

    def failing(path: Path, doc: dict[str, Any]) -> None:
        if path == prepared.coordinator.config:
            raise OSError("disk full")
        write_json(path, doc)

    monkeypatch.setattr(devcluster, "_write_json", failing)
    with pytest.raises(OSError, match="disk full"):
        prepared.add_node()
    assert {f: f.read_bytes() for f in before} == before
    assert prepared.nodes == 5 and Cluster(prepared.directory).nodes == 5
    assert not prepared.node_dir(5).exists()
    assert not (prepared.tls_dir / "mpc-5.pem").exists()
    assert not (prepared.tls_dir / "mpc-5.key").exists()

    monkeypatch.undo()
    prepared.add_node()
    assert len(Roster.load(prepared.roster_file)) == 6


def test_add_node_replaces_leftovers_of_an_interrupted_add(prepared: Cluster) -> None:
    """A crash before cluster.json counted the node leaves files no process ever used."""
    leftover = prepared.node_dir(5)
    leftover.mkdir(mode=0o700)
    (leftover / "kek").write_bytes(b"k" * 32)
    ghost = NodeIdentity.generate("mpc-5", 6)
    Roster([*Roster.load(prepared.roster_file), ghost.public_entry()]).save(prepared.roster_file)

    prepared.add_node()
    roster = list(Roster.load(prepared.roster_file))
    identity = NodeIdentity.load(leftover / "identity.json")
    assert len(roster) == 6 and roster[5] == identity.public_entry() != ghost.public_entry()
    assert (leftover / "kek").read_bytes() != b"k" * 32


def test_cli_add_node_prints_json(prepared: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert devcluster.main(["add-node", "--dir", str(prepared.directory)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == {"name": "mpc-5", "party": 6}
    assert [p["port"] for p in out["processes"]] == [prepared.base_port + i for i in range(7)]
    assert devcluster.main(["status", "--dir", str(prepared.directory)]) == 0
    assert len(json.loads(capsys.readouterr().out)["processes"]) == 7


REAL_BASE_PORT = 53350


def _cli(directory: Path, *command: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "coordinator.devcluster", *command, "--dir", str(directory)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.cluster
def test_add_node_to_a_running_cluster(tmp_path: Path) -> None:
    """Real processes: the new node starts, the running ones restart, a stopped one stays down."""
    ports = [REAL_BASE_PORT + i for i in range(7)]
    if not all(devcluster._port_free(p) for p in ports + [p + 10 for p in ports]):
        pytest.skip(f"ports {REAL_BASE_PORT}.. are in use")
    d = tmp_path / "c"
    try:
        up = _cli(d, "up", "--base-port", str(REAL_BASE_PORT), "--prime-pool", "0")
        assert up["healthy"] is True
        before = {p["name"]: p["pid"] for p in up["processes"]}
        _cli(d, "kill-node", "2")

        added = _cli(d, "add-node", "--timeout", "30")
        assert added["added"] == {"name": "mpc-5", "party": 6}
        procs = {p["name"]: p for p in added["processes"]}
        assert list(procs) == ["coordinator"] + [f"mpc-{k}" for k in range(6)]
        assert procs["mpc-2"]["alive"] is False and procs["mpc-2"]["pid"] is None
        for name, p in procs.items():
            if name != "mpc-2":
                assert p["health"] == "SERVING", name
                assert p["pid"] != before.get(name), f"{name} was not restarted"

        status = _cli(d, "start-node", "2", "--timeout", "30")
        assert status["healthy"] is True
        assert len(status["processes"]) == 7
        assert {p["health"] for p in status["processes"]} == {"SERVING"}

        # Every process loaded the 6-node roster: a key over all six parties works. The
        # coordinator met mpc-2 down at its restart, so its channel may still be in
        # reconnect backoff for a moment.
        deadline = time.monotonic() + 20
        while True:
            keygen = subprocess.run(
                [sys.executable, "-m", "coordinator.cli", "--cluster", str(d), "keygen"]
                + ["--scheme", "ed25519", "--threshold", "3", "--parties", "6"],
                cwd=Path(__file__).resolve().parents[2],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if keygen.returncode == 0 or time.monotonic() > deadline:
                break
            assert json.loads(keygen.stderr)["error"] == "UNAVAILABLE", keygen.stderr
            time.sleep(0.5)
        assert keygen.returncode == 0, keygen.stderr
        assert len(bytes.fromhex(json.loads(keygen.stdout)["public_key"])) == 32
    finally:
        subprocess.run(
            [sys.executable, "-m", "coordinator.devcluster", "down", "--purge", "--dir", str(d)],
            cwd=Path(__file__).resolve().parents[2],
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert not d.exists()
