"""A local development cluster: `mpc-node` processes and one `mpc-coordinator` in one directory.

Usage (through `scripts/cluster`):

    cluster up|down [--purge]|status|kill-node I|start-node I|add-node
            [--dir DIR] [--base-port P] [--nodes N] [--timeout S]
            [--prime-pool N] [--test-primes FILE]     (up only; --test-primes is TEST ONLY)

`add-node` grows a prepared cluster by one node, mpc-N (N the current node count),
up to 9: a certificate from the existing dev CA, a fresh identity, KEK and node.json,
the roster and coordinator.json extended. If the cluster runs, the new node is started
and every process alive at that moment is restarted so that it loads the new roster
(processes that are down stay down; they read it when they start).

The directory (default ./.cluster, mode 0700) holds everything a cluster needs:

    tls/                 dev CA, one certificate per node, the coordinator and `client`
    nodes/mpc-k/         identity.json, kek (0600) and node.json; the node's data lives here
                         (its audit trail in nodes/mpc-k/audit/)
    coordinator/         audit.key (0600, the coordinator's audit signing key) and audit/,
                         its audit trail (public key in cluster.json: audit_public_key)
    roster.json          the nodes' public identity keys, pinned by every config
    coordinator.json
    logs/<name>.log      stdout and stderr of each process (appended across restarts)
    cluster.json         addresses, configs, logs and pids (format in CONTRACTS.md)

Ports: the coordinator listens on P, node mpc-k on P+1+k; health (plaintext
grpc.health.v1) on the API port + 10, Prometheus metrics (plaintext HTTP `/metrics`) on
the API port + 20. `up` creates the files once and later reuses
them, so a restart keeps every key. Processes run detached (own session) so they
outlive the command; pids are recorded in cluster.json, and every pid is checked
against its command line before it is signalled, so a recycled pid is never killed.

`Cluster` is the same thing as a small Python API for integration tests.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mpcnode import tls
from mpcnode.audit import LOG_NAME, AuditSigner
from mpcnode.errors import MpcError
from mpcnode.identity import NodeIdentity, Roster, RosterEntry
from mpcnode.storage import create_kek_file, write_file_atomic

__all__ = [
    "Cluster",
    "ClusterError",
    "Process",
    "main",
    "DEFAULT_BASE_PORT",
    "DEFAULT_DIR",
    "DEFAULT_NODES",
]

DEFAULT_DIR = ".cluster"
DEFAULT_BASE_PORT = 50050
DEFAULT_NODES = 5
DEFAULT_PRIME_POOL = 4
MAX_NODES = 9  # node ports P+1..P+9 stay below the coordinator's health port P+10
HOST = "127.0.0.1"
HEALTH_OFFSET = 10
METRICS_OFFSET = 20
COORDINATOR = "coordinator"
CLIENT = "client"
DEV_CLIENT_PRINCIPAL = {"org": "default", "roles": ["org:admin", "tenant:signer", "auditor"]}
"""What the dev cluster's `client` certificate stands for (coordinator.json ``auth``): all
roles over org ``default``, the org keys made without an owner belong to."""
DEV_LIMITS = {
    "sign_per_client": {"rate": 1000, "burst": 2000},
    "sign_per_key": {"rate": 1000, "burst": 2000},
    "create_key_per_client": {"rate": 20, "burst": 200},
}
"""coordinator.json ``limits`` of a dev cluster: every script (demo, bench, soak) signs as the
one `client` certificate, as fast as it can, so the rate limits sit far above what a local
cluster can do (the sizes keep their defaults)."""
READINESS = "readiness"

SERVING = "SERVING"
NOT_SERVING = "NOT_SERVING"
UNREACHABLE = "UNREACHABLE"

_CLUSTER_FILE = "cluster.json"
AUDIT_DIR = "audit"
"""A node's audit trail directory in its data_dir (mpcnode.server.AUDIT_DIR)."""
_LOCK_FILE = ".lock"
_LOG_MARKER = b"--- devcluster: starting "
_HEALTH_RPC_TIMEOUT = 1.0
_POLL_INTERVAL = 0.2
_KILL_WAIT = 5.0
_LOG_TAIL_LINES = 30
_REPO_ROOT = Path(__file__).resolve().parent.parent


class ClusterError(MpcError):
    """A cluster command failed; `details` is extra JSON-ready context (who, log tails)."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        return {"error": self.message, **self.details}


@dataclass(frozen=True)
class Process:
    """One process of the cluster: where it listens and where its files are."""

    name: str
    party: int | None  # None for the coordinator
    port: int
    health_port: int
    config: Path
    log: Path
    module: str  # the `python -m` entry point

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def health_address(self) -> str:
        return f"{HOST}:{self.health_port}"

    @property
    def metrics_port(self) -> int:
        return self.port + METRICS_OFFSET

    @property
    def metrics_address(self) -> str:
        return f"{HOST}:{self.metrics_port}"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module, "--config", str(self.config)]


# --------------------------------------------------------------------------- processes


def _proc_state(pid: int) -> str:
    """'alive', 'zombie' or 'gone' for a pid (Linux /proc, else `ps`)."""
    stat_file = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            raw = stat_file.read_text()
        except (FileNotFoundError, ProcessLookupError):
            return "gone"
        state = raw[raw.rfind(")") + 2 :].split(" ", 1)[0]
        return "zombie" if state in ("Z", "X") else "alive"
    result = subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    state = result.stdout.strip()
    if not state:
        return "gone"
    return "zombie" if state.startswith("Z") else "alive"


def _cmdline(pid: int) -> list[str]:
    """The argument vector of a live process, or [] if it cannot be read."""
    proc = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self/cmdline").exists():
        try:
            raw = proc.read_bytes()
        except OSError:
            return []
        return [a.decode(errors="replace") for a in raw.split(b"\0") if a]
    result = subprocess.run(
        ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    return result.stdout.split()


def _port_free(port: int) -> bool:
    """True if nothing listens on HOST:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _log_tail(log: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last lines a process wrote since its latest start (empty if no log)."""
    try:
        with log.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            data = f.read()
    except OSError:
        return ""
    start = data.rfind(_LOG_MARKER)
    if start >= 0:
        newline = data.find(b"\n", start)
        data = data[newline + 1 :] if newline >= 0 else b""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def _check_health(processes: Sequence[Process]) -> dict[str, str]:
    """Ask every process's health port for service "readiness" (plaintext), concurrently."""
    results: dict[str, str] = {}
    calls = []
    channels = []
    try:
        for p in processes:
            channel = grpc.insecure_channel(p.health_address)
            channels.append(channel)
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=READINESS)
            calls.append((p, stub.Check.future(request, timeout=_HEALTH_RPC_TIMEOUT)))
        for p, call in calls:
            try:
                reply = call.result()
            except grpc.RpcError as exc:
                # NOT_FOUND (service unknown) or UNIMPLEMENTED: something answers, not ready.
                gone = exc.code() in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                )
                results[p.name] = UNREACHABLE if gone else NOT_SERVING
                continue
            serving = reply.status == health_pb2.HealthCheckResponse.SERVING
            results[p.name] = SERVING if serving else NOT_SERVING
    finally:
        for channel in channels:
            channel.close()
    return results


# --------------------------------------------------------------------------- the cluster


class Cluster:
    """A local cluster rooted at one directory.

    `base_port` and `nodes` default to what the directory was created with (or
    50050 and 5 for a new one); passing a different value for an existing
    cluster is an error rather than a silent re-layout.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str] = DEFAULT_DIR,
        base_port: int | None = None,
        nodes: int | None = None,
        prime_pool: int = DEFAULT_PRIME_POOL,
        test_primes: str | os.PathLike[str] | None = None,
    ) -> None:
        self.directory = Path(directory).absolute()
        self.prime_pool = prime_pool
        """Safe primes each node keeps ready (written into node.json when the cluster is made)."""
        self.test_primes = Path(test_primes).absolute() if test_primes is not None else None
        """TEST ONLY: a public safe-prime fixture every node tops its prime pool up from at
        startup (node.json gets allow_test_primes and test_primes_file)."""
        if self.test_primes is not None and not self.test_primes.is_file():
            raise ClusterError(f"--test-primes: {self.test_primes} is not a file")
        saved = self._saved_layout()
        if saved is not None:
            for what, given, have in (
                ("base port", base_port, saved[0]),
                ("nodes", nodes, saved[1]),
            ):
                if given is not None and given != have:
                    raise ClusterError(
                        f"{self.directory} was created with {what} {have}, not {given}; "
                        "use those settings or `down --purge` it first",
                        dir=str(self.directory),
                    )
            base_port, nodes = saved
        self.base_port = DEFAULT_BASE_PORT if base_port is None else base_port
        self.nodes = DEFAULT_NODES if nodes is None else nodes
        if not 1 <= self.nodes <= MAX_NODES:
            raise ClusterError(f"--nodes must be between 1 and {MAX_NODES}, got {self.nodes}")
        top = self.base_port + METRICS_OFFSET + self.nodes
        if self.base_port < 1 or top > 65535:
            raise ClusterError(
                f"base port {self.base_port} puts ports outside 1..65535 (highest would be {top})"
            )
        # Processes this object started: kept so that their exit can be reaped (no zombies).
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    # ----------------------------------------------------------------- layout

    @property
    def cluster_file(self) -> Path:
        return self.directory / _CLUSTER_FILE

    @property
    def tls_dir(self) -> Path:
        return self.directory / "tls"

    @property
    def roster_file(self) -> Path:
        return self.directory / "roster.json"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def coordinator_dir(self) -> Path:
        return self.directory / "coordinator"

    @property
    def audit_key_file(self) -> Path:
        """The coordinator's audit signing key (`mpcnode.audit.AuditSigner` file)."""
        return self.coordinator_dir / "audit.key"

    @property
    def audit_dir(self) -> Path:
        """The coordinator's audit trail (audit.log, audit.head.json)."""
        return self.coordinator_dir / "audit"

    def node_audit_dir(self, index: int) -> Path:
        """Node `index`'s audit trail (its data_dir/audit)."""
        return self.node_dir(index) / AUDIT_DIR

    def audit_public_key(self) -> str | None:
        """Hex Ed25519 key that verifies the coordinator's audit log (None: no audit key)."""
        if not self.audit_key_file.exists():
            return None
        return AuditSigner.load(self.audit_key_file).public_key.hex()

    def node_name(self, index: int) -> str:
        return f"mpc-{index}"

    def node_dir(self, index: int) -> Path:
        return self.directory / "nodes" / self.node_name(index)

    @property
    def coordinator(self) -> Process:
        return Process(
            name=COORDINATOR,
            party=None,
            port=self.base_port,
            health_port=self.base_port + HEALTH_OFFSET,
            config=self.directory / "coordinator.json",
            log=self.logs_dir / f"{COORDINATOR}.log",
            module="coordinator.server",
        )

    def node(self, index: int) -> Process:
        if not 0 <= index < self.nodes:
            raise ClusterError(f"no node {index}: nodes are 0..{self.nodes - 1}")
        return self._node_process(index)

    def _node_process(self, index: int) -> Process:
        """Node mpc-`index` without the range check (add_node describes the next node)."""
        name = self.node_name(index)
        port = self.base_port + 1 + index
        return Process(
            name=name,
            party=index + 1,
            port=port,
            health_port=port + HEALTH_OFFSET,
            config=self.node_dir(index) / "node.json",
            log=self.logs_dir / f"{name}.log",
            module="mpcnode.server",
        )

    @property
    def processes(self) -> list[Process]:
        """The coordinator, then the nodes in party order."""
        return [self.coordinator] + [self.node(i) for i in range(self.nodes)]

    @property
    def coordinator_address(self) -> str:
        return self.coordinator.address

    def tls_paths(self, name: str = CLIENT) -> tuple[Path, Path, Path]:
        """(ca, cert, key) paths of the certificate `name` (default: the `client` one)."""
        return (
            self.tls_dir / "ca.pem",
            self.tls_dir / f"{name}.pem",
            self.tls_dir / f"{name}.key",
        )

    def client_tls(self) -> grpc.ChannelCredentials:
        """Channel credentials of the `client` certificate, for talking to the coordinator."""
        return tls.channel_credentials(*self.tls_paths(CLIENT))

    def is_prepared(self) -> bool:
        return self.cluster_file.is_file()

    def _saved_layout(self) -> tuple[int, int] | None:
        """(base port, node count) recorded in cluster.json, if there is one."""
        try:
            doc = json.loads(self.cluster_file.read_text())
            base = int(doc["coordinator"]["address"].rsplit(":", 1)[1])
            return base, len(doc["nodes"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            raise ClusterError(
                f"{self.cluster_file} is unreadable or malformed", dir=str(self.directory)
            ) from None

    # ----------------------------------------------------------------- state files

    def _cluster_doc(self, pids: dict[str, int | None]) -> dict[str, Any]:
        ca, cert, key = self.tls_paths(CLIENT)
        c = self.coordinator
        return {
            "dir": str(self.directory),
            "coordinator": {
                "address": c.address,
                "health": c.health_address,
                "pid": pids.get(c.name),
                "config": str(c.config),
                "log": str(c.log),
                "audit_log": str(self.audit_dir / LOG_NAME),
                "audit_public_key": self.audit_public_key(),
            },
            "nodes": [
                {
                    "name": n.name,
                    "party": n.party,
                    "address": n.address,
                    "health": n.health_address,
                    "pid": pids.get(n.name),
                    "config": str(n.config),
                    "log": str(n.log),
                    "audit_log": str(self.directory / "nodes" / n.name / AUDIT_DIR / LOG_NAME),
                }
                for n in self.processes[1:]
            ],
            "tls": {"ca": str(ca), "client_cert": str(cert), "client_key": str(key)},
            "roster": str(self.roster_file),
        }

    def _read_pids(self) -> dict[str, int | None]:
        if not self.is_prepared():
            return {p.name: None for p in self.processes}
        try:
            doc = json.loads(self.cluster_file.read_text())
            entries = [doc["coordinator"] | {"name": COORDINATOR}, *doc["nodes"]]
            pids = {str(e["name"]): e["pid"] for e in entries}
        except (OSError, ValueError, KeyError, TypeError):
            raise ClusterError(f"{self.cluster_file} is unreadable or malformed") from None
        out: dict[str, int | None] = {}
        for p in self.processes:
            pid = pids.get(p.name)
            out[p.name] = pid if isinstance(pid, int) and pid > 0 else None
        return out

    def _write_pids(self, pids: dict[str, int | None]) -> None:
        data = json.dumps(self._cluster_doc(pids), indent=2).encode() + b"\n"
        write_file_atomic(self.cluster_file, data, 0o600)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialize commands that change processes or files of this directory."""
        fd = os.open(self.directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # ----------------------------------------------------------------- preparation

    def prepare(self) -> bool:
        """Create certificates, identities, KEKs and configs unless they exist.

        Returns True if files were created, False if the directory already held a
        cluster (which is then reused as is: same keys). Starts no process.
        """
        if self.is_prepared():
            return False
        if self.directory.exists():
            if not self.directory.is_dir() or any(self.directory.iterdir()):
                raise ClusterError(
                    f"{self.directory} exists but holds no cluster ({_CLUSTER_FILE} missing); "
                    "remove it or choose another --dir",
                    dir=str(self.directory),
                )
        created = not self.directory.exists()
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        try:
            self._create_files()
        except BaseException:
            if created:
                shutil.rmtree(self.directory, ignore_errors=True)
            else:  # it was empty before: empty it again
                for child in self.directory.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            raise
        return True

    def _create_files(self) -> None:
        node_names = [self.node_name(i) for i in range(self.nodes)]
        tls.make_dev_pki(self.tls_dir, [*node_names, COORDINATOR, CLIENT])
        entries = [
            self._create_node_files(i, self.prime_pool, self._test_prime_settings())
            for i in range(self.nodes)
        ]
        Roster(entries).save(self.roster_file)
        c = self.coordinator
        ca, cert, key = self.tls_paths(COORDINATOR)
        self.coordinator_dir.mkdir(mode=0o700)
        AuditSigner.generate_file(self.audit_key_file, COORDINATOR)
        _write_json(
            c.config,
            {
                "listen": c.address,
                "health_listen": c.health_address,
                "metrics_listen": c.metrics_address,
                "roster_file": str(self.roster_file),
                "tls": {"ca": str(ca), "cert": str(cert), "key": str(key)},
                "nodes": [_coordinator_entry(n) for n in self.processes[1:]],
                # every call needs a principal: the `client` certificate is an org-wide one
                "auth": {"mtls_principals": {CLIENT: DEV_CLIENT_PRINCIPAL}},
                "limits": DEV_LIMITS,
                "audit_dir": str(self.audit_dir),
                "audit_key_file": str(self.audit_key_file),
            },
        )
        self.logs_dir.mkdir(mode=0o700)
        os.chmod(self.logs_dir, 0o700)
        self._write_pids({})  # written last: its presence marks a complete cluster directory

    def _create_node_files(
        self, index: int, prime_pool_target: int, extra: dict[str, Any]
    ) -> RosterEntry:
        """Create node_dir(index) with a fresh identity, a KEK and node.json.

        The node's certificate must already be in tls/. `extra` is added to node.json
        (the test-prime settings). Returns the identity's public roster entry.
        """
        node = self._node_process(index)
        assert node.party is not None
        directory = self.node_dir(index)
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)
        os.chmod(directory.parent, 0o700)
        identity = NodeIdentity.generate(node.name, node.party)
        identity.save(directory / "identity.json")
        create_kek_file(directory / "kek")
        ca, cert, key = self.tls_paths(node.name)
        config = {
            "name": node.name,
            "party": node.party,
            "listen": node.address,
            "health_listen": node.health_address,
            "metrics_listen": node.metrics_address,
            "data_dir": str(directory),
            "kek_file": str(directory / "kek"),
            # `mpcctl rotate-kek` rewraps under the KEK put here (see the README, KEK rotation)
            "kek_next_file": str(directory / "kek-next"),
            "identity_file": str(directory / "identity.json"),
            "roster_file": str(self.roster_file),
            "tls": {"ca": str(ca), "cert": str(cert), "key": str(key)},
            "allowed_clients": [COORDINATOR],
            "prime_pool_target": prime_pool_target,
        }
        config.update(extra)
        _write_json(node.config, config)
        return identity.public_entry()

    def _test_prime_settings(self) -> dict[str, Any]:
        if self.test_primes is None:
            return {}
        return {"allow_test_primes": True, "test_primes_file": str(self.test_primes)}

    def _apply_test_primes(self) -> None:
        """Write the test-prime settings into the node.json of an existing cluster."""
        settings = self._test_prime_settings()
        if not settings:
            return
        for i in range(self.nodes):
            path = self.node(i).config
            try:
                config = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ClusterError(f"cannot read {path}: {exc.__class__.__name__}") from None
            if all(config.get(k) == v for k, v in settings.items()):
                continue
            config.update(settings)
            _write_json(path, config)

    # ----------------------------------------------------------------- process control

    def _alive(self, p: Process, pid: int | None) -> bool:
        """True if `pid` runs (not a zombie) and is this cluster's process `p`."""
        if pid is None:
            return False
        child = self._children.get(p.name)
        if child is not None and child.pid == pid and child.poll() is not None:
            return False  # our own child exited (and is now reaped)
        if _proc_state(pid) != "alive":
            return False
        return str(p.config) in _cmdline(pid)

    def _check_ports(self, to_start: Sequence[Process]) -> None:
        taken = []
        for p in to_start:
            for port, what in (
                (p.port, "API"),
                (p.health_port, "health"),
                (p.metrics_port, "metrics"),
            ):
                if not _port_free(port):
                    taken.append({"process": p.name, "port": port, "use": what})
        if taken:
            ports = ", ".join(f"{t['port']} ({t['process']} {t['use']})" for t in taken)
            raise ClusterError(
                f"port(s) in use by another program on {HOST}: {ports}; "
                "stop it or choose another --base-port",
                taken=taken,
            )

    def _spawn(self, p: Process) -> int:
        env = dict(os.environ)
        env.pop("MPC_KEK", None)  # the config names a KEK file; never inherit a KEK
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        fd = os.open(p.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "ab") as log:
            now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            log.write(_LOG_MARKER + f"{p.name} at {now} ---\n".encode())
            log.flush()
            child = subprocess.Popen(
                p.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=env,
                start_new_session=True,
            )
        self._children[p.name] = child
        return child.pid

    def _wait_gone(self, targets: Sequence[tuple[Process, int]], timeout: float) -> list[int]:
        """Wait until none of the processes is alive; return the pids still alive."""
        deadline = time.monotonic() + timeout
        while True:
            left = [(p, pid) for p, pid in targets if self._alive(p, pid)]
            if not left or time.monotonic() >= deadline:
                return [pid for _, pid in left]
            time.sleep(0.05)

    def _kill_group(self, pid: int) -> None:
        """SIGKILL the process and everything in its session's process group (workers)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)

    def _start(self, targets: Sequence[Process]) -> None:
        """Start the processes of `targets` that are not running; record their pids."""
        pids = self._read_pids()
        to_start = [p for p in targets if not self._alive(p, pids[p.name])]
        self._check_ports(to_start)
        try:
            for p in to_start:
                pids[p.name] = self._spawn(p)
        finally:
            self._write_pids(pids)

    def wait_healthy(self, names: Sequence[str], timeout: float) -> None:
        """Wait until each named process answers readiness SERVING.

        Fails at once if one of them exits, else after `timeout` seconds, naming the
        processes that are not healthy with the tail of their logs.
        """
        by_name = {p.name: p for p in self.processes}
        pending = [by_name[n] for n in names]
        deadline = time.monotonic() + timeout
        while True:
            pids = self._read_pids()
            dead = [p for p in pending if not self._alive(p, pids[p.name])]
            health = _check_health([p for p in pending if p not in dead])
            pending = [p for p in pending if health.get(p.name) != SERVING]
            if not pending:
                return
            if dead or time.monotonic() >= deadline:
                if dead:
                    message = f"{', '.join(p.name for p in dead)}: exited before becoming healthy"
                else:
                    names = ", ".join(p.name for p in pending)
                    message = f"{names}: not healthy after {timeout:g} s"
                raise ClusterError(
                    message,
                    unhealthy=[
                        {
                            "name": p.name,
                            "pid": pids[p.name],
                            "alive": p not in dead,
                            "exit_code": self._exit_code(p),
                            "health": health.get(p.name, UNREACHABLE),
                            "log": str(p.log),
                            "log_tail": _log_tail(p.log),
                        }
                        for p in pending
                    ],
                )
            time.sleep(_POLL_INTERVAL)

    def _exit_code(self, p: Process) -> int | None:
        child = self._children.get(p.name)
        return None if child is None else child.poll()

    # ----------------------------------------------------------------- commands

    def up(self, timeout: float = 60.0) -> dict[str, Any]:
        """Prepare the directory if needed, start what is not running, wait until healthy."""
        if not self.prepare():
            with self._lock():
                self._apply_test_primes()  # takes effect for nodes started now
        with self._lock():
            self._start(self.processes)
        self.wait_healthy([p.name for p in self.processes], timeout)
        return self.status()

    def down(self, purge: bool = False, grace: float = 10.0) -> None:
        """SIGTERM every recorded process, SIGKILL what is left after `grace` seconds.

        Files stay, so the next `up` restarts with the same keys; `purge` deletes the
        directory too (only a directory that holds a cluster.json, or an empty one).
        """
        if not self.is_prepared():
            if purge and self.directory.is_dir():
                if any(self.directory.iterdir()):
                    raise ClusterError(
                        f"{self.directory} holds no {_CLUSTER_FILE}; not deleting it",
                        dir=str(self.directory),
                    )
                self.directory.rmdir()
            return
        with self._lock():
            pids = self._read_pids()
            targets = [(p, pid) for p in self.processes if (pid := pids[p.name]) is not None]
            targets = [(p, pid) for p, pid in targets if self._alive(p, pid)]
            for _, pid in targets:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self._wait_gone(targets, grace)
            for _, pid in targets:  # stragglers, and any worker left in the group
                self._kill_group(pid)
            left = self._wait_gone(targets, _KILL_WAIT)
            self._write_pids({p.name: pid for p, pid in targets if pid in left})
            if left:
                raise ClusterError(f"processes did not exit after SIGKILL: {left}")
            if purge:
                shutil.rmtree(self.directory)

    def kill_node(self, index: int) -> dict[str, Any]:
        """SIGKILL node mpc-`index` and its process group: a crash, no graceful shutdown."""
        p = self.node(index)
        self._require_prepared()
        with self._lock():
            pids = self._read_pids()
            pid = pids[p.name]
            killed = pid if pid is not None and self._alive(p, pid) else None
            if killed is not None:
                self._kill_group(killed)
                if self._wait_gone([(p, killed)], _KILL_WAIT):
                    raise ClusterError(f"{p.name} (pid {killed}) survived SIGKILL")
            pids[p.name] = None
            self._write_pids(pids)
        return {"name": p.name, "killed_pid": killed}

    def start_node(self, index: int, timeout: float = 60.0) -> dict[str, Any]:
        """Start node mpc-`index` again (if it is not running) and wait until healthy."""
        p = self.node(index)
        self._require_prepared()
        with self._lock():
            self._start([p])
        self.wait_healthy([p.name], timeout)
        return self.status()

    def add_node(self, timeout: float = 60.0) -> dict[str, Any]:
        """Add node mpc-N (N = the current node count) to a prepared cluster.

        Its certificate comes from the existing dev CA; it gets a fresh identity, KEK and
        node.json (prime pool and test-prime settings copied from mpc-0), and the roster,
        coordinator.json and cluster.json (last) list it. If any process of the cluster
        runs, the new node is started and every process alive at the time of the call is
        restarted so that it loads the new roster; then all of them must become healthy.
        Processes that are down stay down. Returns `status()` plus "added".
        """
        self._require_prepared()
        if self.nodes >= MAX_NODES:
            raise ClusterError(
                f"the cluster already has {self.nodes} nodes, the most a dev cluster can have "
                f"(node ports P+1..P+{MAX_NODES})",
                dir=str(self.directory),
            )
        index = self.nodes
        new = self._node_process(index)
        if new.metrics_port > 65535:
            raise ClusterError(
                f"base port {self.base_port} leaves no room for {new.name} "
                f"(its metrics port would be {new.metrics_port})"
            )
        with self._lock():
            saved = self._saved_layout()
            if saved is None or saved[1] != self.nodes:
                now = "no cluster" if saved is None else f"{saved[1]} nodes"
                raise ClusterError(
                    f"{self.directory} changed meanwhile (now {now}, not {self.nodes}); "
                    "run the command again",
                    dir=str(self.directory),
                )
            pids = self._read_pids()
            running = [p for p in self.processes if self._alive(p, pids[p.name])]
            if running:
                self._check_ports([new])  # before any file changes
            self._add_node_files(index, pids)
            if running:
                self._start([new])
                self._restart(running)
        if running:
            self.wait_healthy([new.name, *(p.name for p in running)], timeout)
        result = self.status()
        result["added"] = {"name": new.name, "party": new.party}
        return result

    def _add_node_files(self, index: int, pids: dict[str, int | None]) -> None:
        """Create node `index`'s files and list it in every config; sets self.nodes.

        An exception undoes the changes. A node directory or roster entry left over by
        an add that died halfway (cluster.json, written last, does not count the node,
        so no process ever ran with it) is replaced.
        """
        new = self._node_process(index)
        assert new.party is not None
        template = _read_json(self.node(0).config)
        prime_pool = template.get("prime_pool_target", self.prime_pool)
        test_keys = ("allow_test_primes", "test_primes_file")
        extra: dict[str, Any] = {k: template[k] for k in test_keys if k in template}
        roster = Roster.load(self.roster_file)
        coordinator = _read_json(self.coordinator.config)
        if not isinstance(coordinator.get("nodes"), list):
            raise ClusterError(f'{self.coordinator.config} has no "nodes" list')
        ca_pem, cert_path, key_path = self.tls_paths(new.name)
        ca_key = self.tls_dir / "ca.key"
        saved = {
            self.roster_file: (self.roster_file.read_bytes(), 0o644),
            self.coordinator.config: (self.coordinator.config.read_bytes(), 0o600),
        }
        directory = self.node_dir(index)
        if directory.exists():
            shutil.rmtree(directory)  # left over by an interrupted add (see above)
        try:
            cert, key = tls.issue_cert(
                ca_pem.read_bytes(),
                ca_key.read_bytes(),
                new.name,
                tls.dev_dns_names(new.name),
                [HOST],
            )
            tls.write_pem(key_path, key, private=True)
            tls.write_pem(cert_path, cert, private=False)
            entry = self._create_node_files(index, prime_pool, extra)
            kept = [e for e in roster if e.party != new.party and e.name != new.name]
            Roster([*kept, entry]).save(self.roster_file)
            coordinator["nodes"] = [
                n
                for n in coordinator["nodes"]
                if not (isinstance(n, dict) and n.get("name") == new.name)
            ] + [_coordinator_entry(new)]
            _write_json(self.coordinator.config, coordinator)
            self.nodes = index + 1
            self._write_pids({**pids, new.name: None})  # last: the node now counts
        except BaseException:
            self.nodes = index
            for path, (data, mode) in saved.items():
                write_file_atomic(path, data, mode)
            shutil.rmtree(directory, ignore_errors=True)
            cert_path.unlink(missing_ok=True)
            key_path.unlink(missing_ok=True)
            raise

    def _restart(self, targets: Sequence[Process], grace: float = 10.0) -> None:
        """SIGTERM `targets` (SIGKILL after `grace` s), wait until gone, start them again."""
        pids = self._read_pids()
        victims = [(p, pid) for p in targets if (pid := pids[p.name]) is not None]
        victims = [(p, pid) for p, pid in victims if self._alive(p, pid)]
        for _, pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self._wait_gone(victims, grace)
        for _, pid in victims:  # stragglers, and any worker left in the group
            self._kill_group(pid)
        left = self._wait_gone(victims, _KILL_WAIT)
        if left:
            raise ClusterError(f"processes did not exit after SIGKILL: {left}")
        self._start(targets)

    def status(self) -> dict[str, Any]:
        """Every process with pid, liveness, ports and readiness health."""
        pids = self._read_pids()
        alive = {p.name: self._alive(p, pids[p.name]) for p in self.processes}
        health = _check_health([p for p in self.processes if alive[p.name]])
        processes = [
            {
                "name": p.name,
                "party": p.party,
                "pid": pids[p.name],
                "alive": alive[p.name],
                "address": p.address,
                "health_address": p.health_address,
                "port": p.port,
                "health_port": p.health_port,
                "metrics_port": p.metrics_port,
                "health": health.get(p.name, UNREACHABLE),
                "log": str(p.log),
            }
            for p in self.processes
        ]
        ca, cert, key = self.tls_paths(CLIENT)
        return {
            "dir": str(self.directory),
            "prepared": self.is_prepared(),
            "healthy": all(proc["health"] == SERVING for proc in processes),
            "processes": processes,
            "tls": {"ca": str(ca), "client_cert": str(cert), "client_key": str(key)},
        }

    def _require_prepared(self) -> None:
        if not self.is_prepared():
            raise ClusterError(
                f"{self.directory} holds no cluster; run `up` first", dir=str(self.directory)
            )


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    write_file_atomic(path, json.dumps(doc, indent=2).encode() + b"\n", 0o600)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClusterError(f"cannot read {path}: {exc.__class__.__name__}") from None
    if not isinstance(doc, dict):
        raise ClusterError(f"{path} does not hold a JSON object")
    return doc


def _coordinator_entry(node: Process) -> dict[str, Any]:
    """A node as coordinator.json lists it."""
    return {"name": node.name, "party": node.party, "address": node.address}


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    location = argparse.ArgumentParser(add_help=False)
    location.add_argument(
        "--dir", default=DEFAULT_DIR, help="cluster directory (default: ./.cluster)"
    )
    location.add_argument(
        "--base-port",
        type=int,
        default=None,
        help=(
            f"coordinator port P; nodes P+1.., health ports +10, metrics ports +20 "
            f"(default {DEFAULT_BASE_PORT})"
        ),
    )
    common = argparse.ArgumentParser(add_help=False, parents=[location])
    common.add_argument(
        "--nodes", type=int, default=None, help=f"number of nodes (default {DEFAULT_NODES})"
    )
    timeout = argparse.ArgumentParser(add_help=False)
    timeout.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for health (default 60)"
    )

    parser = argparse.ArgumentParser(
        prog="cluster", description="Run a local MPC cluster (nodes + coordinator)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser(
        "up", parents=[common, timeout], help="create if needed, start, wait healthy"
    )
    up.add_argument(
        "--prime-pool",
        type=int,
        default=DEFAULT_PRIME_POOL,
        help="safe primes each node keeps ready, generated in the background when the cluster "
        f"is created (default {DEFAULT_PRIME_POOL}; 0 for test clusters that never run aux-info)",
    )
    up.add_argument(
        "--test-primes",
        metavar="FILE",
        default=None,
        help="TEST ONLY: every node accepts public fixture primes and tops its prime pool up "
        "from FILE (format of tests/fixtures/safe_primes.json) at startup, so aux-info needs no "
        "prime generation; Paillier keys made from them are broken, never use it for real keys",
    )
    down = sub.add_parser("down", parents=[common], help="stop every process (keep the files)")
    down.add_argument("--purge", action="store_true", help="also delete the cluster directory")
    sub.add_parser("status", parents=[common], help="pids, liveness and health as JSON")
    kill = sub.add_parser("kill-node", parents=[common], help="SIGKILL node mpc-I (chaos)")
    kill.add_argument("index", type=int, metavar="I")
    start = sub.add_parser(
        "start-node", parents=[common, timeout], help="start node mpc-I, wait healthy"
    )
    start.add_argument("index", type=int, metavar="I")
    sub.add_parser(
        "add-node",
        parents=[location, timeout],
        help=f"add node mpc-N (up to {MAX_NODES}); a running cluster is restarted to load it",
        description="Add node mpc-N (N = the current node count, at most "
        f"{MAX_NODES} nodes): certificate from the existing CA, fresh identity and KEK, "
        "roster and coordinator.json extended. If the cluster runs, the new node starts "
        "and every running process restarts to load the new roster; stopped ones stay "
        "stopped.",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one cluster command; JSON on stdout, errors as one JSON object on stderr."""
    args = _parser().parse_args(argv)
    try:
        cluster = Cluster(
            args.dir,
            base_port=args.base_port,
            nodes=getattr(args, "nodes", None),
            prime_pool=getattr(args, "prime_pool", DEFAULT_PRIME_POOL),
            test_primes=getattr(args, "test_primes", None),
        )
        result: dict[str, Any]
        if args.command == "up":
            result = cluster.up(timeout=args.timeout)
        elif args.command == "down":
            cluster.down(purge=args.purge)
            result = {"dir": str(cluster.directory), "stopped": True, "purged": args.purge}
        elif args.command == "status":
            result = cluster.status()
        elif args.command == "kill-node":
            result = cluster.kill_node(args.index)
        elif args.command == "add-node":
            result = cluster.add_node(timeout=args.timeout)
        else:
            result = cluster.start_node(args.index, timeout=args.timeout)
    except ClusterError as exc:
        print(json.dumps(exc.to_json(), indent=2), file=sys.stderr)
        return 1
    except (MpcError, OSError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}, indent=2), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(json.dumps({"error": "interrupted"}), file=sys.stderr)
        return 130
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
