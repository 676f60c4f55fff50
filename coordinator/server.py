"""The coordinator process: public API, session driver, key registry. It holds no secret.

It relays sealed, signed envelopes between nodes in lock-step rounds, checks
the signatures of everything it consumes itself (FROST commitments and shares,
DKG confirmations, ECDSA partial signatures), aggregates signatures, and picks
signer quorums among live nodes, retrying with another quorum when a signer dies
or cheats. Its key registry is a cache that can always be rebuilt from the nodes:
every key record carries the signed confirmations of all its holders. For
secp256k1 (CGGMP ECDSA) it also runs the committee's aux-info as a background
operation and keeps presignature pools (`coordinator.presign_pool`), whose index
(ids and signer sets, never secrets) is rebuilt from the nodes after a restart.
"""

from __future__ import annotations

import contextvars
import functools
import hashlib
import json
import logging
import os
import sys
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import trio

from coordinator.auth import (
    AuthConfig,
    Authenticator,
    KeyOwner,
    Principal,
    authorize_admin,
    authorize_audit,
    authorize_create,
    authorize_org_admin,
    authorize_use,
    list_view,
)
from coordinator.limits import (
    Limits,
    RateLimiter,
    check_create_key_request,
    check_key_id,
    check_sign_request,
)
from coordinator.presign_pool import DEFAULT_TARGET, PresignPools, Refiller, SignerSet
from mpcnode import audit, logs, tls
from mpcnode.audit import AuditLog, AuditSigner
from mpcnode.crypto import hd
from mpcnode.crypto.ecdsa import EcdsaSignature
from mpcnode.crypto.group import SECP256K1
from mpcnode.envelope import package_of, verify_envelope, verify_key_record
from mpcnode.errors import (
    InternalBug,
    InvalidInput,
    InvalidSignature,
    KeyNotFound,
    MpcError,
    PreconditionFailed,
    ProtocolAborted,
    QuorumUnavailable,
    Unauthenticated,
)
from mpcnode.identity import Roster
from mpcnode.metrics import CoordinatorMetrics, metrics_endpoint
from mpcnode.protocols.base import BROADCAST, COORDINATOR, execution_id, session_message
from mpcnode.protocols.cggmp import sign as cggmp_sign
from mpcnode.protocols.cggmp.presign import PresignaturePublic
from mpcnode.protocols.frost.sign import FrostAggregator
from mpcnode.protocols.keys import KEY_PROTOCOLS, PublicKeyPackage
from mpcnode.rpc import (
    CHANNEL_OPTIONS,
    call,
    culprits_of,
    generic_service,
    run_process,
    running_server,
    status_of,
)
from mpcnode.storage import store_tenant_of_owner
from protos.mpc.v1 import coordinator_pb2, node_pb2, node_pb2_grpc

log = logging.getLogger("coordinator")

PROBE_TIMEOUT = 3.0
ROUND_TIMEOUT = 60.0
PARTIAL_SIGN_TIMEOUT = 30.0
SIGN_ATTEMPTS = 3
MAX_STALE_PRESIGNATURES = 16
MAX_MESSAGE_BYTES = 1024 * 1024
DIGEST_BYTES = 32
SUPPORTED_SCHEMES = ("ed25519", "secp256k1")

AUX_INFO_ROUNDS = 4
"""Node calls of one aux-info session: Start and three Steps (three wire rounds, then done)."""
AUX_INFO_POLL_SECONDS = 2.0
AUX_INFO_PRIMES_WAIT_SECONDS = 3600.0
"""How long an aux-info operation waits for the nodes' safe-prime pools before it fails."""
AUX_INFO_UNREACHABLE_GRACE = 30.0
"""How long an aux-info operation waits for a node that does not answer (one starting up)."""
MAX_OPERATIONS_KEPT = 32
AUDIT_LOG_ID = "coordinator"
"""The coordinator's audit log name (its entries' log_id)."""
WARM_POOLS_ATTEMPTS = 30
WARM_POOLS_INTERVAL = 2.0

_UNREACHABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)
"""Node call failures that mean "not there (now)" rather than a refusal or misbehaviour."""
_DOWN = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
"""Failures of a node that is down (as opposed to one that answered with an error)."""

Envelope = Any  # envelope_pb2.Envelope
Tap = Callable[[Envelope], Envelope]
T = TypeVar("T")


@dataclass(frozen=True)
class NodeAddress:
    name: str
    party: int
    address: str


@dataclass(frozen=True)
class CoordinatorConfig:
    listen: str
    health_listen: str
    roster_file: Path
    tls_ca: Path
    tls_cert: Path
    tls_key: Path
    nodes: tuple[NodeAddress, ...]
    presign_pool_target: int = DEFAULT_TARGET
    """Ready presignatures kept per key and signer set (0 disables pooling)."""
    metrics_listen: str | None = None
    """host:port of the plaintext Prometheus `/metrics` endpoint (none when unset)."""
    auth: AuthConfig | None = None
    """Who may call (``"auth"``: JWKS/issuer/audience and/or mTLS principals, see
    `coordinator.auth.AuthConfig`). Required to serve: `serve` refuses to start without it."""
    limits: Limits = Limits()
    """Rate limits and request sizes of the public API (``"limits"``, `coordinator.limits`)."""
    audit_dir: Path | None = None
    """Where the coordinator keeps its audit trail (`mpcnode.audit`); with `audit_key_file`,
    its signing key (``AuditSigner`` file). Both or neither: no audit trail without them."""
    audit_key_file: Path | None = None
    secret_files_group_readable: bool = False
    """Accept an audit key file the group may read (never write): for Kubernetes Secret
    mounts with an fsGroup, as the node's option of the same name."""

    @classmethod
    def load(cls, path: str | Path) -> CoordinatorConfig:
        try:
            raw: dict[str, Any] = json.loads(Path(path).read_text())
            target = int(raw.get("presign_pool_target", DEFAULT_TARGET))
            if target < 0:
                raise ValueError("presign_pool_target must be >= 0")
            return cls(
                listen=str(raw["listen"]),
                health_listen=str(raw["health_listen"]),
                roster_file=Path(raw["roster_file"]),
                tls_ca=Path(raw["tls"]["ca"]),
                tls_cert=Path(raw["tls"]["cert"]),
                tls_key=Path(raw["tls"]["key"]),
                nodes=tuple(
                    NodeAddress(str(n["name"]), int(n["party"]), str(n["address"]))
                    for n in raw["nodes"]
                ),
                presign_pool_target=target,
                metrics_listen=str(raw["metrics_listen"]) if raw.get("metrics_listen") else None,
                auth=(
                    AuthConfig.from_dict(raw["auth"], base_dir=Path(path).parent)
                    if raw.get("auth") is not None
                    else None
                ),
                limits=Limits.from_dict(raw.get("limits")),
                audit_dir=Path(raw["audit_dir"]) if raw.get("audit_dir") else None,
                audit_key_file=Path(raw["audit_key_file"]) if raw.get("audit_key_file") else None,
                secret_files_group_readable=_flag(raw, "secret_files_group_readable"),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"bad coordinator config {path}: {exc.__class__.__name__}") from exc


def _flag(raw: Mapping[str, Any], name: str) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def open_audit_log(config: CoordinatorConfig) -> AuditLog | None:
    """The coordinator's audit trail, if configured (refuses a log that does not verify)."""
    if (config.audit_dir is None) != (config.audit_key_file is None):
        raise InvalidInput("give both audit_dir and audit_key_file in the coordinator config")
    if config.audit_dir is None or config.audit_key_file is None:
        return None
    signer = AuditSigner.load(config.audit_key_file, config.secret_files_group_readable)
    return AuditLog(config.audit_dir, log_id=AUDIT_LOG_ID, signer=signer)


class NodeCallFailed(MpcError):
    """A node RPC failed; carries the party and the gRPC status."""

    def __init__(self, party: int, code: grpc.StatusCode, details: str, culprits: tuple[int, ...]):
        self.party = party
        self.code = code
        self.details = details
        self.culprits = culprits
        super().__init__(f"party {party}: {code.name}: {details}")


class PresignatureUnusable(ProtocolAborted):
    """A pooled presignature was refused by its signers (already consumed elsewhere, or
    gone): nobody misbehaved provably, so signing retries with another one, same signers."""


@dataclass
class SessionTranscript:
    """Every envelope the nodes produced in one session, by round."""

    session_id: bytes
    rounds: list[list[Envelope]] = field(default_factory=list)

    def from_round(self, number: int) -> list[Envelope]:
        return list(self.rounds[number - 1])


@dataclass
class Operation:
    """A long-running coordinator task a client follows with GetOperation (aux-info)."""

    operation_id: str
    kind: str
    state: str = "waiting-for-primes"
    stage: str = ""
    round: int = 0
    rounds: int = 0
    error: str = ""
    culprits: tuple[str, ...] = ()
    primes_ready: dict[str, int] = field(default_factory=dict)
    failure: MpcError | None = field(default=None, repr=False)
    finished: trio.Event = field(default_factory=trio.Event, repr=False)

    @property
    def running(self) -> bool:
        return not self.finished.is_set()

    def to_proto(self) -> Any:
        return coordinator_pb2.Operation(
            operation_id=self.operation_id,
            kind=self.kind,
            state=self.state,
            stage=self.stage,
            round=self.round,
            rounds=self.rounds,
            error=self.error,
            culprits=list(self.culprits),
            primes_ready=dict(self.primes_ready),
        )


@dataclass(frozen=True)
class SignOutcome:
    """One finished signature: the raw bytes (Ed25519, or ECDSA r||s) and what made it."""

    record: Any
    signers: list[int]
    signature: bytes
    ecdsa: EcdsaSignature | None = None
    digest: bytes = b""
    """secp256k1: the 32-byte digest that was signed (SHA-256 of the message, or the caller's)."""
    child: hd.ChildKey | None = None
    """The key that signed (the root key when its path is empty); None only before derivation."""

    @property
    def public_key(self) -> bytes:
        """The encoded public key the signature verifies under (the child key for a path)."""
        if self.child is None:
            return bytes(self.record.public_key)
        return bytes(self.child.public_key.encode())

    @property
    def path(self) -> str:
        return hd.format_path(self.child.path if self.child is not None else ())


def resolve_path(path: str = "", tenant: str = "") -> tuple[int, ...]:
    """The child path a request names: `path` text ("m/0/1"), a tenant id (`hd.tenant_path`),
    or neither (the root key). Hardened or malformed paths are refused here, before any node
    is contacted (INVALID_ARGUMENT with hd's message)."""
    if path and tenant:
        raise InvalidInput("give a path or a tenant, not both")
    if tenant:
        return hd.check_path(hd.tenant_path(tenant))
    if path:
        return hd.check_path(hd.parse_path(path))
    return ()


DEFAULT_ORG = "default"
"""The org of keys created without an owner (in-process `Coordinator.create_key`) and of keys
whose record names none (made before owners existed)."""
DEFAULT_OWNER = KeyOwner(DEFAULT_ORG, "")


def owner_of(record: Any) -> KeyOwner:
    """Who owns the key of a (verified) key record: the org and tenant every holder confirmed
    with it (`owner_binding`); a record without an org (an older key) is the default org's."""
    if not record.org:
        return DEFAULT_OWNER
    return KeyOwner(str(record.org), str(record.tenant))


def derive_child(package: PublicKeyPackage, path: tuple[int, ...]) -> hd.ChildKey:
    """The child key at `path` of a verified key package (public data only)."""
    return hd.derive(package.scheme, package.public_key, package.chain_code, path)


def key_info(
    record: Any,
    child: hd.ChildKey | None = None,
    tenant: str = "",
    name_of: Callable[[int], str] | None = None,
) -> Any:
    """KeyInfo of a key record, or of its child key `child` (public key, chain code and path of
    the child; xpub for secp256k1). Without `child`: the root key, path "m". `name_of` gives
    the holders' node names."""
    if child is None:
        child = derive_child(package_of(record), ())
    info = coordinator_pb2.KeyInfo(
        key_id=record.key_id,
        scheme=record.scheme,
        public_key=child.public_key.encode(),
        threshold=record.threshold,
        parties=len(record.parties),
        chain_code=child.chain_code,
        generation=record.generation,
        path=hd.format_path(child.path),
        tenant=tenant,
        holder_parties=list(record.parties),
        holders=[name_of(p) for p in record.parties] if name_of is not None else [],
        org=owner_of(record).org,
        owner_tenant=owner_of(record).tenant,
    )
    if record.scheme == "secp256k1":
        info.xpub = hd.xpub(child)
    return info


class Coordinator:
    """Drives sessions over a set of node stubs. Usable in-process (tests) or behind gRPC.

    Background work (aux-info operations, presignature refills) runs in the nursery of
    `run_background`; without it, aux-info still runs inline when key generation needs it
    and signing makes its presignatures on demand.
    """

    def __init__(
        self,
        roster: Roster,
        nodes: Sequence[NodeAddress],
        channel_factory: Callable[[str], grpc.Channel],
        presign_pool_target: int = DEFAULT_TARGET,
        metrics: CoordinatorMetrics | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self.audit = audit
        """The coordinator's audit trail (`record` appends to it); None: not kept."""
        self.roster = roster
        self.metrics = CoordinatorMetrics() if metrics is None else metrics
        """Prometheus instruments (a registry of its own unless one is given)."""
        self.nodes = {n.party: n for n in nodes}
        self._channels = {n.party: channel_factory(n.address) for n in nodes}
        self.stubs = {
            p: node_pb2_grpc.NodeStub(ch)  # type: ignore[no-untyped-call]
            for p, ch in self._channels.items()
        }
        self.registry: dict[str, Any] = {}
        self.tap: Tap | None = None
        """Test hook: sees (and may replace) every envelope the coordinator relays."""
        self.blamed: list[tuple[str, int]] = []
        """(session protocol, party) of every provable misbehaviour seen, newest last."""
        self.pools = PresignPools(presign_pool_target)
        self.pools.on_change = lambda: self.metrics.presign_pool_ready.set(self.pools.ready_total())
        self.refiller = Refiller(self.pools, self._refill_presign, self._refill_set)
        self.operations: dict[str, Operation] = {}
        self._aux_op: Operation | None = None
        self._nursery: trio.Nursery | None = None
        self._pool_locks: dict[str, trio.Lock] = {}
        self._reshare_locks: dict[str, trio.Lock] = {}
        self._lagging: dict[str, set[int]] = {}
        self._catching_up: set[str] = set()
        """Per key, nodes a certified generation could not be handed to yet (they were down)."""
        self._suspects: dict[str, set[int]] = {}
        self._deleted: dict[str, set[int]] = {}
        """Keys deleted since this coordinator started, with the nodes the deletion has not
        reached yet (empty: complete): refused whatever a node still lists."""
        self._tenant_deletions: dict[str, set[str]] = {}
        """Per tenant whose deletion is incomplete, the key ids it had."""
        """Per key, parties that misbehaved in a presign or sign: refills avoid them."""

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()
        if self.audit is not None:
            self.audit.close()

    async def record(
        self,
        action: str,
        *,
        actor: Mapping[str, Any],
        outcome: str,
        key_id: str | None = None,
        org: str | None = None,
        tenant: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one entry to the audit trail in a worker thread (it fsyncs); a no-op without
        one. Values are plain JSON data (no bytes: hex them; hashes, never messages).

        A failure to write is logged, not raised: the operation it records already happened.
        """
        if self.audit is None:
            return
        append = functools.partial(
            self.audit.append,
            action,
            actor=actor,
            outcome=outcome,
            key_id=key_id,
            org=org,
            tenant=tenant,
            details=details,
        )
        try:
            await trio.to_thread.run_sync(append)
        except Exception as exc:
            log.error("cannot write audit entry %s (%s): %s", action, outcome, exc)

    def name_of(self, party: int) -> str:
        node = self.nodes.get(party)
        return node.name if node else f"party-{party}"

    def _names(self, parties: Sequence[int]) -> list[str]:
        return [self.name_of(p) for p in parties]

    @property
    def committee(self) -> list[int]:
        """Every node of the roster: the holders of every key and the aux-info committee."""
        return sorted(self.nodes)

    async def run_background(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Host background work (aux-info operations, pool refills) until cancelled."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.refiller.run)
            self._nursery = nursery
            nursery.start_soon(self._warm_pools)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    # -- node calls --------------------------------------------------------------------------

    async def _call(
        self, party: int, method: str, request: Any, timeout: float, patient: bool = False
    ) -> Any:
        try:
            return await call(getattr(self.stubs[party], method), request, timeout, patient)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            details = err.details() if hasattr(err, "details") else ""
            raise NodeCallFailed(party, code, details or "", culprits_of(err)) from None

    async def _fanout(
        self, requests: dict[int, tuple[str, Any]], timeout: float, patient: bool = False
    ) -> tuple[dict[int, Any], dict[int, NodeCallFailed]]:
        results: dict[int, Any] = {}
        failures: dict[int, NodeCallFailed] = {}

        async def one(party: int, method: str, request: Any) -> None:
            try:
                results[party] = await self._call(party, method, request, timeout, patient)
            except NodeCallFailed as exc:
                failures[party] = exc

        async with trio.open_nursery() as nursery:
            for party, (method, request) in requests.items():
                nursery.start_soon(one, party, method, request)
        return results, failures

    async def probe(self, parties: Sequence[int], patient: bool = False) -> list[int]:
        """The parties that answer an Identity call with the identity pinned in the roster.

        Signing probes fail fast on a node that is down. `patient` (key generation, resharing:
        rare operations that need every node) also waits out the reconnect backoff (at most
        2 s, `CHANNEL_OPTIONS`) of a node that was just restarted.
        """
        results, _ = await self._fanout(
            {p: ("Identity", node_pb2.IdentityRequest()) for p in parties},
            PROBE_TIMEOUT,
            patient=patient,
        )
        alive = []
        for party, resp in results.items():
            entry = self.roster.by_party(party)
            if resp.party == party and bytes(resp.signing_key) == entry.signing_key:
                alive.append(party)
            else:
                log.error("node at party %d's address has a different identity", party)
        return sorted(alive)

    def _raise_for(self, failures: dict[int, NodeCallFailed], what: str) -> None:
        culprits = sorted({c for f in failures.values() for c in f.culprits})
        aborted = [f for f in failures.values() if f.code == grpc.StatusCode.ABORTED]
        if aborted:
            self._blame(what, culprits)
            names = ", ".join(self.name_of(c) for c in culprits)
            reason = aborted[0].details
            raise ProtocolAborted(
                f"{what} aborted: {reason}" + (f"; misbehaving: {names}" if names else ""),
                culprits,
            )
        if all(f.code in _UNREACHABLE for f in failures.values()):
            raise QuorumUnavailable(
                f"{what} lost contact with nodes", [self.name_of(p) for p in sorted(failures)]
            )
        first = failures[min(failures)]
        if first.code == grpc.StatusCode.NOT_FOUND:
            raise KeyNotFound(first.details)
        if first.code == grpc.StatusCode.INVALID_ARGUMENT:
            raise InvalidInput(f"{self.name_of(first.party)} refused: {first.details}")
        raise QuorumUnavailable(
            f"{what} failed on {self.name_of(first.party)}: {first.code.name} {first.details}",
            [self.name_of(first.party)],
        )

    # -- the relay ---------------------------------------------------------------------------

    @logs.log_scope
    async def run_session(
        self,
        start: Any,
        parties: Sequence[int],
        progress: Callable[[int], None] | None = None,
    ) -> SessionTranscript:
        """Run one lock-step session among `parties`; abort it on every node on failure.

        `progress(k)` is called before the k-th fan-out (k = 1 is Start, then one per Step).
        """
        transcript = SessionTranscript(bytes(start.session_id))
        call_number = 1
        finished: set[int] = set()
        logs.bind(session_id=bytes(start.session_id), protocol=start.protocol)
        if start.key_id:
            logs.bind(key_id=start.key_id)
        if start.tenant:
            logs.bind(tenant=start.tenant)
        log.info(
            "session %s (%s) started with %s",
            start.session_id.hex(),
            start.protocol,
            ", ".join(self._names(parties)),
        )
        try:
            if progress is not None:
                progress(call_number)
            results, failures = await self._fanout(
                {p: ("Start", start) for p in parties}, ROUND_TIMEOUT
            )
            while True:
                finished = {p for p, r in results.items() if r.done}
                if failures:
                    self._raise_for(failures, start.protocol)
                for party in parties:
                    self._check_produced(start, party, results[party].envelopes)
                produced = [self._relay(e) for p in parties for e in results[p].envelopes]
                transcript.rounds.append(produced)
                done = {p for p in parties if results[p].done}
                log.debug("session %s: round %d relayed", start.session_id.hex(), call_number)
                if done == set(parties):
                    log.info(
                        "session %s (%s) finished after %d rounds",
                        start.session_id.hex(),
                        start.protocol,
                        call_number,
                    )
                    return transcript
                if done:
                    raise ProtocolAborted("nodes disagree about the end of the session")
                inbox = {
                    p: [e for e in produced if e.sender != p and e.recipient in (BROADCAST, p)]
                    for p in parties
                }
                call_number += 1
                if progress is not None:
                    progress(call_number)
                results, failures = await self._fanout(
                    {
                        p: (
                            "Step",
                            node_pb2.StepRequest(session_id=start.session_id, envelopes=inbox[p]),
                        )
                        for p in parties
                    },
                    ROUND_TIMEOUT,
                )
        except BaseException as exc:
            culprits = exc.culprits if isinstance(exc, ProtocolAborted) else ()
            log.warning(
                "session %s (%s) failed in round %d: %s%s",
                start.session_id.hex(),
                start.protocol,
                call_number,
                f"{type(exc).__name__}: {exc}" if isinstance(exc, MpcError) else type(exc).__name__,
                f"; culprits {', '.join(self._names(culprits))}" if culprits else "",
            )
            if finished and start.protocol in KEY_PROTOCOLS:
                # Some node ended the key session, so every holder had stored its share and
                # confirmed: the new key (generation) is certified. Aborting would make the
                # holders the last round missed discard their share; they keep it pending and
                # get the certified record instead (CertifyGeneration).
                log.warning(
                    "%s %s failed after %s finished it; not aborting the others",
                    start.protocol,
                    start.session_id.hex(),
                    ", ".join(self._names(sorted(finished))),
                )
                raise
            with trio.CancelScope(shield=True):
                await self._fanout(
                    {
                        p: ("Abort", node_pb2.AbortRequest(session_id=start.session_id))
                        for p in parties
                    },
                    PROBE_TIMEOUT,
                )
            raise

    def _check_produced(self, start: Any, party: int, envelopes: Sequence[Envelope]) -> None:
        """Every envelope a node hands over must be its own, for this session, and signed.

        The node answered over mTLS as itself, so a bad envelope is its fault: it is named
        here, before anything reaches the other nodes.
        """
        for env in envelopes:
            try:
                if env.sender != party:
                    raise ProtocolAborted("envelope carries another sender")
                if env.session_id != start.session_id or env.protocol != start.protocol:
                    raise ProtocolAborted("envelope for another session")
                verify_envelope(self.roster, env)
            except (ProtocolAborted, InvalidSignature) as exc:
                self._blame(start.protocol, [party])
                raise ProtocolAborted(
                    f"{self.name_of(party)} produced a bad envelope: {exc}", [party]
                ) from None

    def _relay(self, envelope: Envelope) -> Envelope:
        return self.tap(envelope) if self.tap is not None else envelope

    # -- keys --------------------------------------------------------------------------------

    def _verify_record(self, record: Any) -> PublicKeyPackage:
        """A key record is trusted only with a valid confirmation from every holder."""
        return verify_key_record(self.roster, record)

    def _scheme_of(self, key_id: str) -> str:
        """The scheme of a key the registry knows ("" otherwise): a metrics label."""
        record = self.registry.get(key_id)
        return str(record.scheme) if record is not None else ""

    async def create_key(
        self, scheme: str, threshold: int, parties: int, owner: KeyOwner = DEFAULT_OWNER
    ) -> Any:
        """Key generation (see `_create_key`), counted in the metrics."""
        label = scheme if scheme in SUPPORTED_SCHEMES else ""
        with self.metrics.operation("keygen", label):
            return await self._create_key(scheme, threshold, parties, owner)

    @logs.log_scope
    async def _create_key(
        self, scheme: str, threshold: int, parties: int, owner: KeyOwner = DEFAULT_OWNER
    ) -> Any:
        """Distributed key generation over every node (FROST DKG for both schemes).

        A secp256k1 key also needs the committee's CGGMP aux-info before it can presign:
        if any node lacks it, the aux-info operation runs (or the running one is joined)
        first, so a key is never handed out that cannot sign yet.
        """
        if scheme not in SUPPORTED_SCHEMES:
            raise InvalidInput(
                f"scheme {scheme!r} is not available; supported: {', '.join(SUPPORTED_SCHEMES)}"
            )
        everyone = self.committee
        if parties != len(everyone):
            raise InvalidInput(f"parties must be {len(everyone)}: keys are shared by every node")
        if not 2 <= threshold <= parties:
            raise InvalidInput(f"threshold must be between 2 and {parties}")
        alive = await self.probe(everyone, patient=True)
        missing = [p for p in everyone if p not in alive]
        if missing:
            raise QuorumUnavailable(
                "key generation needs every node", [self.name_of(p) for p in missing]
            )
        if scheme == "secp256k1":
            await self.ensure_aux_info()
        key_id = str(uuid.uuid4())
        logs.bind(key_id=key_id)
        log.info("keygen of a %s key (%d-of-%d) requested", scheme, threshold, parties)
        start = node_pb2.StartRequest(
            session_id=os.urandom(16),
            protocol="frost-dkg",
            key_id=key_id,
            threshold=threshold,
            parties=everyone,
            scheme=scheme,
            # bound into the key's execution id: every holder certifies who owns the key
            owner_org=owner.org,
            owner_tenant=owner.tenant,
        )
        try:
            await self.run_session(start, everyone)
        except QuorumUnavailable as exc:
            # A node lost in the last round: if every holder had confirmed, the key exists
            # (certified on the nodes that finished); the others get the record when back.
            try:
                await self._fetch_record(key_id, everyone)
            except MpcError:
                raise exc from None
            log.warning("keygen %s: %s; the key was certified before that", key_id, exc)
        record = await self._fetch_record(key_id, everyone)
        log.info("created %s key %s (%d-of-%d)", scheme, key_id, threshold, parties)
        if scheme == "secp256k1":
            self.pools.register(key_id)  # a fresh key has no presignature anywhere
            self.refiller.ensure(key_id)
        return key_info(record, name_of=self.name_of)

    async def _fetch_record(self, key_id: str, parties: Sequence[int]) -> Any:
        results, failures = await self._fanout(
            {p: ("GetKeyRecord", node_pb2.GetKeyRecordRequest(key_id=key_id)) for p in parties},
            PROBE_TIMEOUT,
        )
        if not results and failures and all(f.code in _DOWN for f in failures.values()):
            # Nobody answered: after a restart every channel may still be in its reconnect
            # backoff (at most 2 s). Ask once more, waiting for the channels to be ready.
            results, failures = await self._fanout(
                {p: ("GetKeyRecord", node_pb2.GetKeyRecordRequest(key_id=key_id)) for p in parties},
                PROBE_TIMEOUT,
                patient=True,
            )
        records = {}
        for party, record in results.items():
            try:
                self._verify_record(record)
            except MpcError as exc:
                log.error(
                    "%s returned an invalid record for %s: %s", self.name_of(party), key_id, exc
                )
                continue
            records[party] = record
        if not records:
            if failures and all(f.code == grpc.StatusCode.NOT_FOUND for f in failures.values()):
                raise KeyNotFound(f"no key {key_id!r}")
            if failures and not results:
                self._raise_for(failures, "key lookup")
            raise KeyNotFound(f"no key {key_id!r}")
        # Every record here is confirmed by all its holders, so the highest generation is the
        # certified one; a node still showing an older generation missed its certification.
        best = max((records[p] for p in sorted(records)), key=lambda r: int(r.generation))
        behind = [p for p, r in records.items() if r.generation < best.generation]
        behind += [  # a new holder that missed the last round has only a pending share
            p
            for p, f in failures.items()
            if f.code == grpc.StatusCode.NOT_FOUND and p in best.parties
        ]
        if behind:
            await self._certify(best, sorted(behind))
        down = {p for p, f in failures.items() if f.code in _DOWN}
        if down:  # they may have missed this generation: check when they are back
            self._lagging.setdefault(key_id, set()).update(down)
        self.registry[key_id] = best
        return best

    async def _certify(self, record: Any, parties: Sequence[int]) -> None:
        """Hand a certified generation to nodes that missed it (best effort, logged): a new
        holder activates its pending share, any other node erases its old generations."""
        request = node_pb2.CertifyGenerationRequest(record=record)
        results, failures = await self._fanout(
            {p: ("CertifyGeneration", request) for p in parties}, PROBE_TIMEOUT
        )
        lagging = self._lagging.setdefault(record.key_id, set())
        lagging.difference_update(results)
        lagging.difference_update(failures)
        lagging.update(p for p, f in failures.items() if f.code in _DOWN)
        if not lagging:
            del self._lagging[record.key_id]
        for party, resp in sorted(results.items()):
            log.info(
                "key %s generation %d on %s: %s",
                record.key_id,
                record.generation,
                self.name_of(party),
                resp.outcome,
            )
        for party, failure in sorted(failures.items()):
            log.warning(
                "key %s generation %d not certified on %s: %s %s",
                record.key_id,
                record.generation,
                self.name_of(party),
                failure.code.name,
                failure.details,
            )

    # -- resharing ---------------------------------------------------------------------------

    def _choose_dealers(
        self,
        old: PublicKeyPackage,
        alive: Sequence[int],
        new_parties: Sequence[int],
        excluded: set[int],
    ) -> list[int]:
        """t_old live old holders, those leaving the key first (they erase their share at the
        end of the session they took part in), never a party excluded for cheating."""
        usable = [p for p in old.parties if p in alive and p not in excluded]
        leaving = [p for p in usable if p not in new_parties]
        staying = [p for p in usable if p in new_parties]
        dealers = (leaving + staying)[: old.threshold]
        if len(dealers) < old.threshold and excluded:
            raise ProtocolAborted(
                f"resharing needs {old.threshold} dealers among the current holders; left out "
                f"for misbehaving: {', '.join(self._names(sorted(excluded)))}",
                sorted(excluded),
            )
        if len(dealers) < old.threshold:
            missing = [p for p in old.parties if p not in dealers]
            raise QuorumUnavailable(
                f"resharing needs {old.threshold} of the current holders to deal, "
                f"{len(dealers)} available",
                [self.name_of(p) for p in missing],
            )
        return sorted(dealers)

    async def reshare(self, key_id: str, parties: Sequence[int] = (), threshold: int = 0) -> Any:
        """Move a key to `parties` with `threshold` (defaults: the current ones), same public key.

        Dealers are t_old live old holders; every new holder must be live. A dealer named as a
        cheater is left out and the reshare restarts with another (up to SIGN_ATTEMPTS runs).
        The nodes activate the new generation only once every new holder confirmed it stored
        its share (and then erase the old one); until then the old generation signs. Old
        holders outside the session get the certified record afterwards and erase theirs.
        """
        if not key_id:
            raise InvalidInput("key id is required")
        # One reshare of a key at a time; a second request runs after it, from its result.
        with self.metrics.operation("reshare") as op:
            try:
                async with self._reshare_locks.setdefault(key_id, trio.Lock()):
                    return await self._reshare_locked(key_id, parties, threshold)
            finally:
                op.scheme = self._scheme_of(key_id)

    @logs.log_scope
    async def _reshare_locked(self, key_id: str, parties: Sequence[int], threshold: int) -> Any:
        logs.bind(key_id=key_id)
        old_record = await self._fetch_record(key_id, sorted(self.nodes))
        old = package_of(old_record)
        new_parties = sorted(set(parties)) if parties else list(old.parties)
        if len(new_parties) != len(parties) and parties:
            raise InvalidInput("new holders must be distinct")
        unknown = [p for p in new_parties if p not in self.nodes]
        if unknown:
            raise InvalidInput(f"parties {unknown} are not nodes of this cluster")
        new_threshold = threshold or old.threshold
        if not 2 <= new_threshold <= len(new_parties):
            raise InvalidInput(
                f"threshold must be between 2 and the number of new holders ({len(new_parties)})"
            )
        if old.scheme == "secp256k1":
            # The new holders must be able to presign the moment the old generation is gone.
            await self.ensure_aux_info()
        excluded: set[int] = set()
        last_error: MpcError | None = None
        for _ in range(SIGN_ATTEMPTS):
            alive = await self.probe(sorted(self.nodes), patient=True)
            missing = [p for p in new_parties if p not in alive]
            if missing:
                raise QuorumUnavailable(
                    "resharing needs every new holder", [self.name_of(p) for p in missing]
                )
            dealers = self._choose_dealers(old, alive, new_parties, excluded)
            session_parties = sorted(set(dealers) | set(new_parties))
            start = node_pb2.StartRequest(
                session_id=os.urandom(16),
                protocol="reshare",
                key_id=key_id,
                threshold=new_threshold,
                parties=session_parties,
                dealers=dealers,
                new_parties=new_parties,
                old_public=old.encode(),
                # the key keeps its owner; holders refuse any other (and bind it in the eid)
                owner_org=old_record.org,
                owner_tenant=old_record.tenant,
            )
            try:
                await self.run_session(start, session_parties)
                break
            except ProtocolAborted as exc:
                last_error = exc
                # A dealer is replaced by another old holder (it stays a new holder if asked
                # for: the operator sees it named and can reshare it out); a misbehaving new
                # holder cannot be replaced without changing the requested committee.
                cheating_dealers = [c for c in exc.culprits if c in dealers]
                if not cheating_dealers or len(cheating_dealers) != len(exc.culprits):
                    raise
                excluded.update(cheating_dealers)
                log.warning(
                    "reshare of %s: dealer %s misbehaved; restarting without it",
                    key_id,
                    ", ".join(self.name_of(c) for c in cheating_dealers),
                )
            except QuorumUnavailable as exc:
                # The last round may have reached some nodes: if the new generation was
                # certified, it is the key now (the others are certified below).
                record = await self._fetch_record(key_id, sorted(self.nodes))
                if record.generation > old.generation:
                    log.warning("reshare of %s: %s; the new generation was certified", key_id, exc)
                    break
                raise
        else:
            assert last_error is not None
            raise last_error
        record = await self._fetch_record(key_id, new_parties)
        if record.generation <= old.generation:
            raise InternalBug("reshare finished but the nodes report the old generation")
        # Every node gets the certified record: a holder that missed the last round activates
        # its share, an old holder outside the session erases its own; a node that is down
        # gets it when it is back (`get_record`).
        await self._certify(record, sorted(self.nodes))
        if record.scheme == "secp256k1":
            # Presignatures belong to a generation: the old ones are erased with it.
            self.pools.reset(key_id)
            self._suspects.pop(key_id, None)
            self.refiller.ensure(key_id)
        log.info(
            "key %s reshared: generation %d, %d-of-%s",
            key_id,
            record.generation,
            record.threshold,
            self._names(record.parties),
        )
        return key_info(record, name_of=self.name_of)

    async def get_record(self, key_id: str) -> Any:
        check_key_id(key_id)  # 1-128 characters: refused before any node is asked
        self._check_not_deleted(key_id)
        record = self.registry.get(key_id)
        if record is None:
            record = await self._fetch_record(key_id, sorted(self.nodes))
        elif key_id in self._lagging:
            # Some node missed the certified generation: hand it over once it is back
            # (in the background when the coordinator runs one; it only costs a probe).
            if self._nursery is not None:
                if key_id not in self._catching_up:
                    self._catching_up.add(key_id)
                    self._nursery.start_soon(self._catch_up, record)
            else:
                await self._catch_up(record)
        return record

    async def _catch_up(self, record: Any) -> None:
        try:
            lagging = sorted(self._lagging.get(record.key_id, ()))
            alive = await self.probe(lagging, patient=True)
            if alive:
                await self._certify(record, alive)
        finally:
            self._catching_up.discard(record.key_id)

    async def list_keys(self) -> list[Any]:
        results, _ = await self._fanout(
            {p: ("ListKeyRecords", node_pb2.ListKeyRecordsRequest()) for p in self.nodes},
            PROBE_TIMEOUT,
        )
        for party, resp in sorted(results.items()):
            for record in resp.keys:
                if record.key_id in self.registry or record.key_id in self._deleted:
                    continue
                try:
                    self._verify_record(record)
                except MpcError as exc:
                    log.error("%s listed an invalid record: %s", self.name_of(party), exc)
                    continue
                self.registry[record.key_id] = record
        return [self.registry[k] for k in sorted(self.registry)]

    # -- deletion (crypto-shredding) and KEK rotation ----------------------------------------

    def _forget_key(self, key_id: str, missing: set[int]) -> None:
        """The coordinator's side of a deletion: the key is refused from now on (also while
        `missing` nodes still hold it), its cached record and presignature pools go."""
        self._deleted[key_id] = missing
        self.registry.pop(key_id, None)
        self._lagging.pop(key_id, None)
        self._suspects.pop(key_id, None)
        if self.pools.loaded(key_id):
            self.pools.reset(key_id)

    def _deletion_failed(
        self, what: str, results: Mapping[int, Any], failures: dict[int, NodeCallFailed]
    ) -> None:
        """Raise for the nodes a deletion did not reach (it stays recorded as incomplete)."""
        done = ", ".join(self._names(sorted(results))) or "no node"
        if all(f.code in _UNREACHABLE for f in failures.values()):
            raise QuorumUnavailable(
                f"{what}: done on {done}; INCOMPLETE on nodes that are down (the key stays "
                "refused; run the deletion again when they are back)",
                self._names(sorted(failures)),
            )
        self._raise_for(failures, what)

    def _outcomes(self, results: Mapping[int, Any]) -> list[Any]:
        return [
            coordinator_pb2.NodeOutcome(node=self.name_of(p), outcome=str(r.outcome))
            for p, r in sorted(results.items())
        ]

    async def delete_key(self, key_id: str) -> Any:
        """Crypto-shred a key on every node (node.proto DeleteKey) and forget it here.

        A node that is down makes this UNAVAILABLE naming it; the key is refused meanwhile
        and a retry (every node again: DeleteKey is idempotent) finishes the job. A node's
        tombstone keeps it from taking the key back (CertifyGeneration, a reshare).
        """
        check_key_id(key_id)
        logs.bind(key_id=key_id)
        known = key_id in self._deleted or key_id in self.registry
        self._forget_key(key_id, set(self.nodes))
        request = node_pb2.NodeDeleteKeyRequest(key_id=key_id)
        results, failures = await self._fanout(
            {p: ("DeleteKey", request) for p in self.nodes}, PROBE_TIMEOUT, patient=True
        )
        self._deleted[key_id] = set(failures)
        if self.pools.loaded(key_id):
            self.pools.reset(key_id)  # a refill racing the deletion left nothing usable
        for party, resp in sorted(results.items()):
            log.warning("key %s deleted on %s: %s", key_id, self.name_of(party), resp.outcome)
        if failures:
            self._deletion_failed(f"deletion of key {key_id!r}", results, failures)
        if not known and all(r.outcome == "absent" for r in results.values()):
            raise KeyNotFound(f"no key {key_id!r}")
        return coordinator_pb2.DeleteResponse(key_ids=[key_id], nodes=self._outcomes(results))

    async def delete_tenant(self, tenant: str) -> Any:
        """Crypto-shred every key of `tenant` (its storage tenant) on every node; like
        `delete_key` for a node that is down."""
        if not tenant or len(tenant) > 2048:
            raise InvalidInput("tenant must be 1-2048 characters")
        logs.bind(tenant=tenant)
        request = node_pb2.NodeDeleteTenantRequest(tenant=tenant)
        results, failures = await self._fanout(
            {p: ("DeleteTenant", request) for p in self.nodes}, PROBE_TIMEOUT, patient=True
        )
        key_ids = sorted({k for r in results.values() for k in r.key_ids})
        key_ids = sorted(set(key_ids) | self._tenant_deletions.get(tenant, set()))
        for key_id in key_ids:
            self._forget_key(key_id, set(failures))
        if failures:
            self._tenant_deletions[tenant] = set(key_ids)
            self._deletion_failed(f"deletion of tenant {tenant!r}", results, failures)
        self._tenant_deletions.pop(tenant, None)
        log.warning("tenant %s deleted on every node: %d key(s)", tenant, len(key_ids))
        outcomes = [
            coordinator_pb2.NodeOutcome(
                node=self.name_of(p), outcome="deleted" if r.key_ids else "absent"
            )
            for p, r in sorted(results.items())
        ]
        return coordinator_pb2.DeleteResponse(key_ids=key_ids, nodes=outcomes)

    def _check_not_deleted(self, key_id: str) -> None:
        missing = self._deleted.get(key_id)
        if missing is None:
            return
        if missing:
            names = ", ".join(self._names(sorted(missing)))
            raise KeyNotFound(
                f"key {key_id!r} was deleted (incomplete on {names}: run the deletion again)"
            )
        raise KeyNotFound(f"key {key_id!r} was deleted")

    async def rotate_keks(self, names: Sequence[str] = ()) -> Any:
        """Each node (every node, or those named) rewraps its data keys under the KEK in its
        kek_next_file (node.proto RotateKek); UNAVAILABLE names the nodes it did not reach."""
        by_name = {n.name: p for p, n in self.nodes.items()}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise InvalidInput(f"unknown nodes {unknown}")
        parties = sorted(by_name[n] for n in names) if names else sorted(self.nodes)
        results, failures = await self._fanout(
            {p: ("RotateKek", node_pb2.RotateKekRequest()) for p in parties},
            PROBE_TIMEOUT,
            patient=True,
        )
        outcomes = [
            coordinator_pb2.NodeOutcome(
                node=self.name_of(p), outcome=str(r.outcome), kek_fingerprint=str(r.kek_fingerprint)
            )
            for p, r in sorted(results.items())
        ]
        for outcome in outcomes:
            log.warning(
                "KEK of %s: %s (%s)", outcome.node, outcome.outcome, outcome.kek_fingerprint
            )
        if failures:
            done = ", ".join(f"{o.node} {o.outcome}" for o in outcomes) or "no node"
            problems = "; ".join(
                f"{self.name_of(p)}: {f.code.name} {f.details}" for p, f in sorted(failures.items())
            )
            if all(f.code in _DOWN for f in failures.values()):
                raise QuorumUnavailable(
                    f"KEK rotation: {done}; not rotated: {problems}", self._names(sorted(failures))
                )
            raise PreconditionFailed(f"KEK rotation: {done}; not rotated: {problems}")
        return coordinator_pb2.RotateNodeKeksResponse(nodes=outcomes)

    # -- aux-info (CGGMP, per committee) -----------------------------------------------------

    async def _aux_info_statuses(self, committee: Sequence[int]) -> dict[int, Any]:
        """AuxInfoStatus of every committee node; QuorumUnavailable if one does not answer.

        Patient (like keygen's probe): aux-info needs every node, and one just restarted may
        still be in its reconnect backoff."""
        request = node_pb2.AuxInfoStatusRequest(parties=committee)
        results, failures = await self._fanout(
            {p: ("AuxInfoStatus", request) for p in committee}, PROBE_TIMEOUT, patient=True
        )
        if failures:
            self._raise_for(failures, "aux-info status")
        return results

    def operation(self, operation_id: str) -> Operation:
        op = self.operations.get(operation_id)
        if op is None:
            raise KeyNotFound(f"no operation {operation_id!r}")
        return op

    def _new_aux_op(self) -> Operation:
        op = Operation(operation_id=str(uuid.uuid4()), kind="aux-info", rounds=AUX_INFO_ROUNDS)
        op.stage = "checking the nodes' safe primes"
        self.operations[op.operation_id] = op
        finished = [k for k, v in self.operations.items() if not v.running]
        for old in finished[: max(0, len(self.operations) - MAX_OPERATIONS_KEPT)]:
            del self.operations[old]
        self._aux_op = op
        return op

    def start_aux_info(self) -> Operation:
        """Start the committee's aux-info in the background, or return the one running."""
        if self._aux_op is not None and self._aux_op.running:
            return self._aux_op
        if self._nursery is None:
            raise InternalBug("coordinator background tasks are not running")
        op = self._new_aux_op()
        self._nursery.start_soon(self._run_aux_info, op)
        return op

    async def ensure_aux_info(self) -> None:
        """Return once every committee node holds aux-info; make it if one does not."""
        statuses = await self._aux_info_statuses(self.committee)
        if all(s.ready for s in statuses.values()):
            return
        lacking = [self.name_of(p) for p, s in sorted(statuses.items()) if not s.ready]
        log.info("aux-info missing on %s: making it", ", ".join(lacking))
        if self._aux_op is not None and self._aux_op.running:
            op = self._aux_op
        elif self._nursery is None:
            op = self._new_aux_op()
            await self._run_aux_info(op)
        else:
            op = self.start_aux_info()
        await op.finished.wait()
        if op.failure is not None:
            raise op.failure

    @logs.log_scope
    async def _run_aux_info(self, op: Operation) -> None:
        """Wait until every node has the safe primes one run takes, then run the session."""
        logs.bind(key_id=None, tenant=None, protocol="cggmp-aux-info", operation_id=op.operation_id)
        committee = self.committee
        short: list[int] = []
        try:
            with trio.move_on_after(AUX_INFO_PRIMES_WAIT_SECONDS) as waiting:
                silent_since: float | None = None
                while True:
                    request = node_pb2.AuxInfoStatusRequest(parties=committee)
                    statuses, failures = await self._fanout(
                        {p: ("AuxInfoStatus", request) for p in committee}, PROBE_TIMEOUT
                    )
                    if failures:
                        # A node that is starting (or restarting) gets a grace period; any
                        # other failure, or silence for longer, fails the operation.
                        now = trio.current_time()
                        silent_since = now if silent_since is None else silent_since
                        only_silent = all(f.code in _UNREACHABLE for f in failures.values())
                        if not only_silent or now - silent_since > AUX_INFO_UNREACHABLE_GRACE:
                            self._raise_for(failures, "aux-info status")
                        op.stage = (
                            "waiting for " + ", ".join(self._names(sorted(failures))) + " to answer"
                        )
                        await trio.sleep(AUX_INFO_POLL_SECONDS)
                        continue
                    silent_since = None
                    op.primes_ready = {
                        self.name_of(p): int(s.primes_ready) for p, s in statuses.items()
                    }
                    short = [
                        p for p, s in sorted(statuses.items()) if s.primes_ready < s.primes_needed
                    ]
                    if not short:
                        break
                    op.stage = "waiting for safe primes: " + ", ".join(
                        f"{self.name_of(p)} {statuses[p].primes_ready}/{statuses[p].primes_needed}"
                        for p in short
                    )
                    await trio.sleep(AUX_INFO_POLL_SECONDS)
            if waiting.cancelled_caught:
                raise QuorumUnavailable(
                    "aux-info: timed out waiting for safe primes", self._names(short)
                )
            op.state = "running"
            op.primes_ready = {}

            def progress(k: int) -> None:
                op.round = k
                op.stage = f"round {k} of {op.rounds}"

            start = node_pb2.StartRequest(
                session_id=os.urandom(16), protocol="cggmp-aux-info", parties=committee
            )
            await self.run_session(start, committee, progress)
            statuses = await self._aux_info_statuses(committee)
            unstored = [p for p, s in sorted(statuses.items()) if not s.ready]
            if unstored:
                raise ProtocolAborted(
                    "aux-info finished but is not stored on " + ", ".join(self._names(unstored))
                )
            op.state, op.stage = "done", "done"
            log.info("aux-info ready on %s", ", ".join(self._names(committee)))
        except MpcError as exc:
            op.state = "failed"
            op.error = str(exc)
            op.failure = exc
            culprits = exc.culprits if isinstance(exc, ProtocolAborted) else ()
            op.culprits = tuple(self._names(culprits))
            op.stage = "failed"
            log.error("aux-info failed: %s", exc)
        except trio.Cancelled:
            op.state, op.stage = "failed", "failed"
            op.error = "the coordinator stopped"
            op.failure = QuorumUnavailable("aux-info interrupted: the coordinator stopped")
            raise
        except Exception:  # a bug: fail the operation, keep the coordinator serving
            log.exception("aux-info operation %s crashed", op.operation_id)
            op.state, op.stage, op.error = "failed", "failed", "internal error"
            op.failure = InternalBug("aux-info operation crashed")
        finally:
            self.metrics.record_operation("aux-info", "secp256k1", op.failure)
            op.finished.set()

    # -- presignature pools ------------------------------------------------------------------

    async def _warm_pools(self) -> None:
        """At startup, rebuild the pools of every secp256k1 key once all nodes answer."""
        for _ in range(WARM_POOLS_ATTEMPTS):
            if not self.pools.enabled:
                return
            alive = await self.probe(self.committee)
            if alive == self.committee:
                break
            await trio.sleep(WARM_POOLS_INTERVAL)
        try:
            for record in await self.list_keys():
                if record.scheme == "secp256k1":
                    await self._load_pools(record, package_of(record))
        except MpcError as exc:
            log.warning("could not rebuild presignature pools at startup: %s", exc)

    async def _load_pools(self, record: Any, package: PublicKeyPackage) -> None:
        """Rebuild a key's pools from the nodes on first use (ids every signer lists)."""
        key_id = record.key_id
        if not self.pools.enabled:
            return
        if not self.pools.loaded(key_id):
            async with self._pool_locks.setdefault(key_id, trio.Lock()):
                if not self.pools.loaded(key_id):
                    alive = await self.probe(package.parties)
                    request = node_pb2.ListPresignaturesRequest(key_id=key_id)
                    results, _ = await self._fanout(
                        {p: ("ListPresignatures", request) for p in alive}, PROBE_TIMEOUT
                    )
                    listings = {
                        party: [
                            (bytes(e.presignature_id), tuple(e.signers))
                            for e in resp.presignatures
                            if e.generation == package.generation
                        ]
                        for party, resp in results.items()
                    }
                    added = self.pools.rebuild(key_id, listings)
                    log.info("presign pool of %s rebuilt: %d ready", key_id, added)
        self.refiller.ensure(key_id)

    @logs.log_scope
    async def _presign(self, key_id: str, signers: Sequence[int]) -> bytes:
        """One CGGMP presign session; the presignature id is its session id."""
        logs.bind(key_id=key_id, tenant=None)  # made for the root key, whoever asked
        session_id = os.urandom(16)
        start = node_pb2.StartRequest(
            session_id=session_id, protocol="cggmp-presign", key_id=key_id, parties=signers
        )
        with self.metrics.operation("presign", "secp256k1"):
            try:
                await self.run_session(start, signers)
            except ProtocolAborted as exc:
                self._suspects.setdefault(key_id, set()).update(exc.culprits)
                raise
        return session_id

    async def _refill_set(self, key_id: str) -> SignerSet | None:
        record = await self.get_record(key_id)
        package = package_of(record)
        alive = await self.probe(package.parties)
        suspects = self._suspects.get(key_id, set())
        usable = [p for p in alive if p not in suspects]
        if len(usable) < package.threshold:
            usable = alive
        return self.pools.refill_set(key_id, usable, package.threshold)

    async def _refill_presign(self, key_id: str, signers: SignerSet) -> bytes:
        return await self._presign(key_id, signers)

    async def presign_status(self, key_id: str) -> Any:
        """The pools of a secp256k1 key (rebuilt from the nodes on first use)."""
        record = await self.get_record(key_id)
        package = package_of(record)
        if package.scheme != "secp256k1":
            raise InvalidInput("presignatures exist only for secp256k1 keys")
        await self._load_pools(record, package)
        return coordinator_pb2.PresignStatusResponse(
            key_id=key_id,
            target=self.pools.target,
            pools=[
                coordinator_pb2.PresignPool(
                    signers=self._names(pool.signers),
                    ready=len(pool.ready),
                    in_flight=pool.in_flight,
                    made=pool.made,
                    used=pool.used,
                )
                for pool in self.pools.pools(key_id)
            ],
        )

    # -- signing -----------------------------------------------------------------------------

    async def sign(self, key_id: str, message: bytes) -> tuple[bytes, Any, list[int]]:
        """Sign a message: (signature bytes, key record, signer parties); see `sign_request`."""
        outcome = await self.sign_request(key_id, message)
        return outcome.signature, outcome.record, outcome.signers

    async def child_key(self, key_id: str, path: str = "", tenant: str = "") -> Any:
        """KeyInfo of the key `key_id` or of its child at `path` / `tenant` (see `resolve_path`)."""
        indices = resolve_path(path, tenant)  # before any node is contacted
        record = await self.get_record(key_id)
        return key_info(
            record, derive_child(package_of(record), indices), tenant, name_of=self.name_of
        )

    async def sign_request(
        self,
        key_id: str,
        message: bytes = b"",
        digest: bytes = b"",
        path: str = "",
        tenant: str = "",
    ) -> SignOutcome:
        """Sign (see `_sign_request`), counted and timed in the metrics."""
        with self.metrics.operation("sign") as op:
            try:
                return await self._sign_request(key_id, message, digest, path, tenant)
            finally:
                op.scheme = self._scheme_of(key_id)

    @logs.log_scope
    async def _sign_request(
        self,
        key_id: str,
        message: bytes = b"",
        digest: bytes = b"",
        path: str = "",
        tenant: str = "",
    ) -> SignOutcome:
        """Sign a message (either scheme) or a 32-byte digest (secp256k1 only), with the key
        itself or, given `path` or `tenant`, its non-hardened child key.

        The nodes receive only the path and derive the tweak from their own stored key; the
        coordinator derives it too (public data) to aggregate and verify.
        """
        logs.bind(key_id=key_id, tenant=tenant)
        if len(message) > MAX_MESSAGE_BYTES:
            raise InvalidInput(f"message longer than {MAX_MESSAGE_BYTES} bytes")
        indices = resolve_path(path, tenant)  # refused before any node is contacted
        record = await self.get_record(key_id)
        package = package_of(record)
        child = derive_child(package, indices)
        t = package.threshold
        log.info(
            "sign requested: %s key %s at %s, %s %s",
            package.scheme,
            key_id,
            hd.format_path(child.path),
            "digest" if digest else "message sha256",
            (bytes(digest) if digest else hashlib.sha256(message).digest()).hex(),
        )
        if package.scheme == "ed25519":
            if digest:
                raise InvalidInput("a digest can be signed only with a secp256k1 key")
            signature, signers = await self._with_retries(
                package,
                lambda alive: alive[:t],
                lambda signers: self._sign_frost_once(
                    record, package, signers, message, child, tenant
                ),
            )
            return SignOutcome(record, signers, signature, child=child)
        if package.scheme != "secp256k1":
            raise InvalidInput(f"signing with scheme {package.scheme!r} is not available")
        if digest:
            if len(digest) != DIGEST_BYTES:
                raise InvalidInput(f"digest must be {DIGEST_BYTES} bytes")
            if message:
                raise InvalidInput("give a message or a digest, not both")
            # A caller's digest is never signed with a pooled presignature: whoever saw the
            # presignature's nonce point could pick a digest that forges a signature on a
            # message of their choice (CVE-2025-66017, ePrint 2021/1330 §1.1.2). The
            # interactive session makes a fresh presignature after the digest is fixed.
            sig, signers = await self._with_retries(
                package,
                lambda alive: alive[:t],
                lambda signers: self._sign_digest_once(
                    record, package, signers, digest, child, tenant
                ),
            )
            return SignOutcome(record, signers, sig.compact(), sig, digest, child)
        await self._load_pools(record, package)

        def choose(alive: list[int]) -> list[int]:
            return list(self.pools.choose_signers(key_id, alive, t))

        sig, signers = await self._with_retries(
            package,
            choose,
            lambda signers: self._sign_pooled_once(
                record, package, signers, message, child, tenant
            ),
        )
        digest = cggmp_sign.message_digest(message)
        return SignOutcome(record, signers, sig.compact(), sig, digest, child)

    async def _with_retries(
        self,
        package: PublicKeyPackage,
        choose: Callable[[list[int]], list[int]],
        attempt: Callable[[list[int]], Awaitable[T]],
    ) -> tuple[T, list[int]]:
        """Run `attempt` with `choose`n live holders; on a dead or cheating signer retry
        without it (up to SIGN_ATTEMPTS attempts). A pooled presignature its signers refuse
        (consumed through another coordinator) costs no attempt, up to MAX_STALE_PRESIGNATURES:
        each such retry removes one id from the pool, so this ends."""
        excluded: set[int] = set()
        last_error: MpcError | None = None
        attempts = stale = 0
        while attempts < SIGN_ATTEMPTS:
            attempts += 1
            candidates = [p for p in package.parties if p not in excluded]
            alive = await self.probe(candidates)
            if len(alive) < package.threshold:
                # About to refuse: first wait out the reconnect backoff of nodes that were
                # just restarted (at most a few seconds, and only on this failing path).
                alive = await self.probe(candidates, patient=True)
            if len(alive) < package.threshold:
                missing = [p for p in package.parties if p not in alive]
                raise QuorumUnavailable(
                    f"signing needs {package.threshold} of {len(package.parties)} nodes, "
                    f"{len(alive)} available",
                    [self.name_of(p) for p in missing],
                )
            signers = choose(alive)
            try:
                return await attempt(signers), signers
            except PresignatureUnusable as exc:
                last_error = exc
                log.warning("signing: %s; retrying with another presignature", exc)
                stale += 1
                if stale <= MAX_STALE_PRESIGNATURES:
                    attempts -= 1
            except ProtocolAborted as exc:
                last_error = exc
                if not exc.culprits:
                    raise
                excluded.update(exc.culprits)
                log.warning(
                    "signing: %s misbehaved; retrying without",
                    ", ".join(self.name_of(c) for c in exc.culprits),
                )
            except QuorumUnavailable as exc:
                last_error = exc
                lost = {p for p in signers if self.name_of(p) in exc.missing}
                excluded.update(lost or set(signers))
                log.warning("signing: lost %s; retrying", ", ".join(exc.missing))
        assert last_error is not None
        raise last_error

    async def _sign_frost_once(
        self,
        record: Any,
        package: PublicKeyPackage,
        signers: list[int],
        message: bytes,
        child: hd.ChildKey,
        tenant: str = "",
    ) -> bytes:
        start = node_pb2.StartRequest(
            session_id=os.urandom(16),
            protocol="frost-sign",
            key_id=record.key_id,
            parties=signers,
            message=message,
            path=list(child.path),
            tenant=tenant,
        )
        transcript = await self.run_session(start, signers)
        # The child key's package: PK + e·G and every Y_j + e·G (the nodes sign with s_i + e).
        signing_package = package.tweaked(child.tweak) if child.path else package
        aggregator = FrostAggregator(signing_package, signers, message)
        try:
            for env in transcript.from_round(1):
                verify_envelope(self.roster, env)
                aggregator.add_commitment(env.sender, bytes(env.payload))
            for env in transcript.from_round(2):
                if env.recipient != COORDINATOR:
                    continue
                verify_envelope(self.roster, env)
                aggregator.add_share(env.sender, bytes(env.payload))
            return bytes(aggregator.signature())
        except ProtocolAborted as exc:
            self._blame("frost-sign", exc.culprits)
            raise

    async def _sign_pooled_once(
        self,
        record: Any,
        package: PublicKeyPackage,
        signers: list[int],
        message: bytes,
        child: hd.ChildKey,
        tenant: str = "",
    ) -> EcdsaSignature:
        """One ECDSA attempt from a presignature: pooled if one is ready, else made now.

        The id leaves the pool before anything is sent and never returns to it: once any
        signer may have consumed it, it is burnt whatever happens next.
        """
        key_id = record.key_id
        pooled = self.pools.take(key_id, signers)
        presignature_id = pooled if pooled is not None else await self._presign(key_id, signers)
        request_id = os.urandom(16)
        partial_request = node_pb2.PartialSignRequest(
            key_id=key_id,
            presignature_id=presignature_id,
            request_id=request_id,
            signers=signers,
            message=message,
            path=list(child.path),
            tenant=tenant,
        )
        results, failures = await self._fanout(
            {p: ("PartialSign", partial_request) for p in signers}, PARTIAL_SIGN_TIMEOUT
        )
        if failures:
            refused = {grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT}
            if pooled is not None and all(f.code in refused for f in failures.values()):
                names = ", ".join(self._names(sorted(failures)))
                raise PresignatureUnusable(f"{names} refused pooled presignature")
            self._raise_for(failures, "cggmp-sign")
        replies = {
            p: (int(r.party), bytes(r.sigma), bytes(r.presignature_public))
            for p, r in results.items()
        }
        partials, public = self._collect_partials(signers, replies, decoded=None)
        sign_request = cggmp_sign.SignRequest(
            key_id=key_id,
            presignature_id=presignature_id,
            request_id=request_id,
            signers=tuple(signers),
            digest=cggmp_sign.message_digest(message),
            hash_kind=cggmp_sign.SIGN_HASH,
            tweak=child.tweak,
        )
        return self._combine(key_id, package, public, sign_request, partials)

    async def _sign_digest_once(
        self,
        record: Any,
        package: PublicKeyPackage,
        signers: list[int],
        digest: bytes,
        child: hd.ChildKey,
        tenant: str = "",
    ) -> EcdsaSignature:
        """One interactive ECDSA attempt over a caller's digest ("cggmp-sign-digest")."""
        key_id = record.key_id
        session_id = os.urandom(16)
        start = node_pb2.StartRequest(
            session_id=session_id,
            protocol="cggmp-sign-digest",
            key_id=key_id,
            parties=signers,
            message=digest,
            path=list(child.path),
            tenant=tenant,
        )
        try:
            transcript = await self.run_session(start, signers)
        except ProtocolAborted as exc:
            self._suspects.setdefault(key_id, set()).update(exc.culprits)
            raise
        decoded: dict[int, tuple[int, PresignaturePublic]] = {}
        replies: dict[int, tuple[int, bytes, bytes]] = {}
        faults: list[int] = []
        for produced in transcript.rounds:
            for env in produced:
                if env.recipient != COORDINATOR:
                    continue
                verify_envelope(self.roster, env)
                sender = int(env.sender)
                try:
                    if sender in decoded:
                        raise InvalidInput("two partial signatures")
                    sigma, public = cggmp_sign.decode_partial(bytes(env.payload))
                except InvalidInput:
                    faults.append(sender)
                    continue
                decoded[sender] = (sigma, public)
                replies[sender] = (sender, SECP256K1.encode_scalar(sigma), public.encode())
        faults.extend(p for p in signers if p not in decoded and p not in faults)
        if faults:
            self._blame("cggmp-sign-digest", faults)
            raise ProtocolAborted(
                "no valid partial signature from " + ", ".join(self._names(sorted(faults))),
                faults,
            )
        partials, public = self._collect_partials(signers, replies, decoded)
        # The nodes bound the digest and path into the execution id, which names the request.
        bound = session_message(digest, child.path)
        eid = execution_id(
            "cggmp-sign-digest", session_id, key_id, signers, package.threshold, bound
        )
        sign_request = cggmp_sign.digest_request(key_id, eid, signers, digest, child.tweak)
        return self._combine(key_id, package, public, sign_request, partials)

    def _blame(self, what: str, culprits: Sequence[int]) -> None:
        for c in culprits:
            self.blamed.append((what, c))
        self.metrics.blame(what, culprits)

    def _collect_partials(
        self,
        signers: Sequence[int],
        replies: Mapping[int, tuple[int, bytes, bytes]],
        decoded: Mapping[int, tuple[int, PresignaturePublic]] | None,
    ) -> tuple[dict[int, int], PresignaturePublic]:
        """σ_i per signer and the one presignature public part they all reported.

        replies: party -> (party it claims, σ_i bytes, PresignaturePublic bytes). A reply
        that is malformed names its sender; if the public parts differ, the ones not in
        the unique largest group are named (with no such group nobody can be blamed).
        """
        bad = [
            p
            for p, (claimed, sigma, _) in sorted(replies.items())
            if claimed != p or len(sigma) != 32
        ]
        partials: dict[int, int] = {}
        for p, (_, sigma, _) in sorted(replies.items()):
            if p in bad:
                continue
            try:
                partials[p] = SECP256K1.decode_scalar(sigma)
            except InvalidInput:
                bad.append(p)
        if bad:
            self._blame("cggmp-sign", bad)
            raise ProtocolAborted(
                "malformed partial signature from " + ", ".join(self._names(sorted(bad))), bad
            )
        blobs = {p: replies[p][2] for p in signers}
        ranked = Counter(blobs.values()).most_common()
        if len(ranked) > 1:
            if ranked[0][1] == ranked[1][1]:
                raise ProtocolAborted(
                    "signers report different presignatures: "
                    + ", ".join(self._names(sorted(blobs)))
                )
            odd = sorted(p for p, blob in blobs.items() if blob != ranked[0][0])
            self._blame("cggmp-sign", odd)
            raise ProtocolAborted(
                ", ".join(self._names(odd)) + " reported a different presignature", odd
            )
        first = min(blobs)
        if decoded is not None:
            public = decoded[first][1]
        else:
            try:
                public = PresignaturePublic.decode(blobs[first])
            except InvalidInput as exc:
                raise ProtocolAborted(f"signers reported an invalid presignature: {exc}") from None
        if tuple(public.signers) != tuple(signers):
            raise ProtocolAborted("the presignature belongs to another signer set")
        return partials, public

    def _combine(
        self,
        key_id: str,
        package: PublicKeyPackage,
        public: PresignaturePublic,
        request: Any,
        partials: Mapping[int, int],
    ) -> EcdsaSignature:
        """Combine partial signatures (per-signer check names culprits) into a verified one."""
        if public.public_key != package.public_key:
            raise ProtocolAborted("the presignature belongs to another key")
        try:
            return cggmp_sign.combine(public, request, partials)
        except ProtocolAborted as exc:
            self._blame("cggmp-sign", exc.culprits)
            self._suspects.setdefault(key_id, set()).update(exc.culprits)
            raise


_CALLER: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "coordinator_caller", default=None
)
"""The principal of the call being handled (set by `CoordinatorApi.authenticated`)."""


def _client_id(caller: Principal) -> tuple[str, str]:
    """Whose rate-limit buckets a call is charged to: its authenticated principal's org and
    subject (an mTLS principal's subject is ``mtls:<certificate common name>``)."""
    return (caller.org, caller.subject)


class CoordinatorApi:
    """The public gRPC surface (mpc.v1.Coordinator) over a `Coordinator`.

    Every method is wrapped by `authenticated` (`handlers`), so no call runs without a
    principal; each handler then authorizes against the key's owner, taken from the key record
    every holder certified (`owner_of`), never from coordinator state. A key the caller may
    not know is NOT_FOUND with the very message of a key that does not exist.
    """

    def __init__(
        self,
        coordinator: Coordinator,
        authenticator: Authenticator,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.c = coordinator
        self.auth = authenticator
        self.limiter = RateLimiter() if limiter is None else limiter
        """Rate limits and request sizes (`coordinator.limits`; the defaults if not given)."""

    def principal(self, ctx: grpc.ServicerContext | None) -> Principal:
        """The caller: the one `authenticated` established, else from `ctx`'s credentials."""
        known = _CALLER.get()
        if known is not None:
            return known
        if ctx is None:
            raise Unauthenticated("no credentials: send 'authorization: Bearer <token>'")
        return self.auth.authenticate(ctx.invocation_metadata(), tls.peer_common_name(ctx))

    def authenticated(
        self, handler: Callable[[Any, grpc.ServicerContext], Awaitable[Any]], method: str = ""
    ) -> Callable[[Any, grpc.ServicerContext], Awaitable[Any]]:
        """`handler`, run only once the call's credentials name a principal. The outcome of
        the RPC `method` is recorded in the audit trail (`_audit_call`), refusals included."""

        async def run(req: Any, ctx: grpc.ServicerContext) -> Any:
            peer = tls.peer_common_name(ctx)
            try:
                caller = self.auth.authenticate(ctx.invocation_metadata(), peer)
            except MpcError as exc:
                await self._audit_call(method, req, {"peer": peer}, error=exc)
                raise
            logs.bind(caller=caller.subject, org=caller.org)
            actor = _audit_actor(peer, caller)
            reset = _CALLER.set(caller)
            try:
                result = await handler(req, ctx)
            except MpcError as exc:
                await self._audit_call(method, req, actor, error=exc)
                raise
            finally:
                _CALLER.reset(reset)
            await self._audit_call(method, req, actor, result=result)
            return result

        run.__name__ = getattr(handler, "__name__", "handler")
        return run

    async def _audit_call(
        self,
        method: str,
        req: Any,
        actor: dict[str, Any],
        result: Any = None,
        error: MpcError | None = None,
    ) -> None:
        """Record a key operation (`AUDITED_CALLS`) and its outcome, or any call refused
        with UNAUTHENTICATED, PERMISSION_DENIED or NOT_FOUND (``access.denied``). Hashes and
        public values only: a message is recorded as its SHA-256."""
        action = AUDITED_CALLS.get(method)
        if method == "GetKey" and not (req.path or req.tenant):
            action = None  # reading a root key: no derivation
        code = None if error is None else status_of(error)[0]
        if code is not None and code in DENIED_CODES:
            recorded, outcome = "access.denied", code.name
        elif action is None:
            return
        else:
            recorded, outcome = action, "ok" if code is None else code.name
        details: dict[str, Any] = {"rpc": method, **_request_details(method, req)}
        if recorded == "access.denied" and action is not None:
            details["attempted"] = action
        if result is not None:
            details.update(_result_details(result))
        key_id = str(getattr(req, "key_id", "") or getattr(result, "key_id", "") or "")
        tenant = str(getattr(req, "tenant", "") or getattr(req, "owner_tenant", "") or "")
        await self.c.record(
            recorded,
            actor=actor,
            outcome=outcome,
            key_id=key_id[:256] or None,
            org=actor.get("org"),
            tenant=tenant[:256] or None,
            details=details,
        )

    async def _owned_record(self, key_id: str) -> tuple[Any, KeyOwner]:
        record = await self.c.get_record(key_id)
        return record, owner_of(record)

    async def create_key(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        caller = self.principal(ctx)
        self.limiter.check_create_key(_client_id(caller))  # before any other work
        check_create_key_request(str(req.scheme))
        owner = authorize_create(caller, str(req.owner_tenant))
        scheme = req.scheme or "ed25519"
        return await self.c.create_key(scheme, req.threshold or 3, req.parties or 5, owner)

    async def get_key(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        caller = self.principal(ctx)
        resolve_path(req.path, req.tenant)  # malformed requests fail before any node is asked
        _, owner = await self._owned_record(req.key_id)
        tenant, path = authorize_use(
            caller, owner, req.tenant, req.path, "read", key_id=str(req.key_id)
        )
        return await self.c.child_key(req.key_id, path, tenant)

    async def list_keys(self, _req: Any, ctx: grpc.ServicerContext) -> Any:
        caller = self.principal(ctx)
        shown = []
        for record in await self.c.list_keys():
            view = list_view(caller, owner_of(record))
            if view is None:
                continue
            if view == "":
                shown.append(key_info(record, name_of=self.c.name_of))
            else:  # a tenant sees an org root key only as its own tenant child
                child = derive_child(package_of(record), resolve_path("", view))
                shown.append(key_info(record, child, view, name_of=self.c.name_of))
        return coordinator_pb2.ListKeysResponse(keys=shown)

    async def sign(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        caller = self.principal(ctx)
        # Rate limits and sizes before anything else: a refused call contacts no node and
        # takes no presignature. The key's bucket is charged only once the caller may sign
        # with the key (nobody drains the bucket of a key they cannot use).
        self.limiter.check_sign_client(_client_id(caller))
        check_sign_request(
            self.limiter.limits,
            str(req.key_id),
            bytes(req.message),
            bytes(req.digest),
            str(req.path),
        )
        resolve_path(req.path, req.tenant)
        _, owner = await self._owned_record(req.key_id)
        tenant, path = authorize_use(
            caller, owner, req.tenant, req.path, "sign", key_id=str(req.key_id)
        )
        self.limiter.check_sign_key(str(req.key_id))
        outcome = await self.c.sign_request(
            req.key_id, bytes(req.message), bytes(req.digest), path, tenant
        )
        record = outcome.record
        response = coordinator_pb2.SignResponse(
            key_id=record.key_id,
            signature=outcome.signature,
            public_key=outcome.public_key,
            signers=self.c._names(outcome.signers),
            scheme=record.scheme,
            path=outcome.path,
        )
        if outcome.ecdsa is not None:
            response.signature_der = outcome.ecdsa.der()
            response.recovery_id = outcome.ecdsa.recovery_id
            response.digest = outcome.digest
        return response

    async def start_aux_info(self, _req: Any, ctx: grpc.ServicerContext) -> Any:
        authorize_org_admin(self.principal(ctx))
        return self.c.start_aux_info().to_proto()

    async def get_operation(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        authorize_org_admin(self.principal(ctx))
        return self.c.operation(req.operation_id).to_proto()

    async def presign_status(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        caller = self.principal(ctx)
        _, owner = await self._owned_record(req.key_id)
        authorize_admin(caller, owner, key_id=str(req.key_id))
        return await self.c.presign_status(req.key_id)

    async def reshare(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        caller = self.principal(ctx)
        _, owner = await self._owned_record(req.key_id)
        authorize_admin(caller, owner, key_id=str(req.key_id))
        return await self.c.reshare(req.key_id, list(req.parties), int(req.threshold))

    async def delete_key(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        caller = self.principal(ctx)
        key_id = str(req.key_id)
        check_key_id(key_id)
        if key_id in self.c._deleted:  # a retry: the record may be gone from every node
            authorize_org_admin(caller)
        else:
            _, owner = await self._owned_record(key_id)
            authorize_admin(caller, owner, key_id=key_id)
        return await self.c.delete_key(key_id)

    async def delete_tenant(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        """Every key of the caller's org's tenant `tenant` (its storage tenant on the nodes)."""
        org = authorize_org_admin(self.principal(ctx))
        tenant = str(req.tenant)
        if not tenant:
            raise InvalidInput("tenant is required")
        return await self.c.delete_tenant(store_tenant_of_owner(org, tenant))

    async def rotate_node_keks(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        authorize_org_admin(self.principal(ctx))
        return await self.c.rotate_keks([str(n) for n in req.nodes])

    async def get_audit_log(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        """A page of the coordinator's audit log for an auditor; what its scope may not see is
        redacted (`audit.redact`), so the page still verifies against the signed head."""
        scope = authorize_audit(self.principal(ctx))
        log = self.c.audit
        if log is None:
            raise PreconditionFailed("this coordinator keeps no audit log (no audit_dir)")
        head = log.head()
        count = int(head["count"])
        start = int(req.from_seq)
        limit = min(int(req.limit) or AUDIT_PAGE, AUDIT_PAGE)
        raw_lines = await trio.to_thread.run_sync(audit.read_lines, log.log_path, count)
        lines = []
        for raw in raw_lines[start : start + limit]:
            entry = json.loads(raw)
            visible = entry["org"] == scope.org and (
                scope.tenant is None or entry["tenant"] == scope.tenant
            )
            lines.append(raw if visible else audit.canonical_json(audit.redact(entry)))
        return coordinator_pb2.GetAuditLogResponse(
            lines=[line.decode() for line in lines],
            head=json.dumps(head, sort_keys=True),
            count=count,
            public_key=bytes.fromhex(str(head["public_key"])),
        )

    def handlers(self, token: trio.lowlevel.TrioToken) -> grpc.GenericRpcHandler:
        pb = coordinator_pb2
        methods = {
            "CreateKey": (self.create_key, pb.CreateKeyRequest, pb.KeyInfo),
            "GetKey": (self.get_key, pb.GetKeyRequest, pb.KeyInfo),
            "ListKeys": (self.list_keys, pb.ListKeysRequest, pb.ListKeysResponse),
            "Sign": (self.sign, pb.SignRequest, pb.SignResponse),
            "StartAuxInfo": (self.start_aux_info, pb.StartAuxInfoRequest, pb.Operation),
            "GetOperation": (self.get_operation, pb.GetOperationRequest, pb.Operation),
            "PresignStatus": (
                self.presign_status,
                pb.PresignStatusRequest,
                pb.PresignStatusResponse,
            ),
            "Reshare": (self.reshare, pb.ReshareRequest, pb.KeyInfo),
            "DeleteKey": (self.delete_key, pb.DeleteKeyRequest, pb.DeleteResponse),
            "DeleteTenant": (self.delete_tenant, pb.DeleteTenantRequest, pb.DeleteResponse),
            "RotateNodeKeks": (
                self.rotate_node_keks,
                pb.RotateNodeKeksRequest,
                pb.RotateNodeKeksResponse,
            ),
            "GetAuditLog": (self.get_audit_log, pb.GetAuditLogRequest, pb.GetAuditLogResponse),
        }
        # Every method, whoever adds it, first authenticates its caller.
        guarded = {
            name: (self.authenticated(handler, name), req_cls, resp_cls)
            for name, (handler, req_cls, resp_cls) in methods.items()
        }
        return generic_service("mpc.v1.Coordinator", token, guarded, metrics=self.c.metrics)


AUDIT_PAGE = 5000
"""Most audit entries one GetAuditLog call returns."""


AUDITED_CALLS = {
    "CreateKey": "key.create",
    "Sign": "key.sign",
    "GetKey": "key.derive",  # only with a path or tenant
    "Reshare": "key.reshare",
    "DeleteKey": "key.delete",
    "DeleteTenant": "tenant.delete",
    "RotateNodeKeks": "kek.rotate",
}
"""Public API calls the coordinator's audit trail records (success and failure)."""
DENIED_CODES = frozenset(
    {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND}
)
"""Failures of any call recorded as ``access.denied``."""


def _audit_actor(peer: str | None, caller: Principal) -> dict[str, Any]:
    return {
        "peer": peer,
        "subject": caller.subject[:256],
        "org": caller.org[:256],
        "tenant": caller.tenant[:256] if caller.tenant is not None else None,
        "roles": sorted(caller.roles)[:16],
        "via": str(caller.via),
    }


def _request_details(method: str, req: Any) -> dict[str, Any]:
    """What an audit entry keeps of a request: sizes, hashes, paths; never a message."""
    out: dict[str, Any] = {}
    if method == "Sign":
        if req.message:
            out["message_sha256"] = hashlib.sha256(bytes(req.message)).hexdigest()
        if req.digest:
            out["digest"] = bytes(req.digest).hex()[:128]
    for name in ("path", "scheme", "threshold"):
        value = getattr(req, name, None)
        if value:
            out[name] = value[:256] if isinstance(value, str) else value
    if method in ("CreateKey", "Reshare") and getattr(req, "parties", None):
        parties = req.parties
        out["parties"] = int(parties) if isinstance(parties, int) else [int(p) for p in parties]
    if method == "RotateNodeKeks":
        out["nodes"] = [str(n)[:64] for n in req.nodes][:64]
    return out


def _result_details(result: Any) -> dict[str, Any]:
    """Public facts of a successful key operation's reply (KeyInfo, SignResponse)."""
    out: dict[str, Any] = {}
    public_key = getattr(result, "public_key", b"")
    if public_key:
        out["public_key"] = bytes(public_key).hex()
    for name in ("generation", "threshold"):
        if getattr(result, name, 0):
            out[f"result_{name}"] = int(getattr(result, name))
    if getattr(result, "signers", None):
        out["signers"] = list(result.signers)
    if getattr(result, "holders", None):
        out["holders"] = list(result.holders)
    return out


def tls_channel_factory(ca: Path, cert: Path, key: Path) -> Callable[[str], grpc.Channel]:
    creds = tls.channel_credentials(str(ca), str(cert), str(key))

    def make(address: str) -> grpc.Channel:
        return grpc.secure_channel(address, creds, options=CHANNEL_OPTIONS)

    return make


async def serve(config_path: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run the coordinator until cancelled."""
    logs.set_process("coordinator")
    config = CoordinatorConfig.load(config_path)
    if config.auth is None:
        raise InvalidInput(
            f"coordinator config {config_path} has no 'auth': every call needs a principal; "
            'configure a JWKS (jwks_file, issuer, audience) and/or "mtls_principals"'
        )
    authenticator = Authenticator(config.auth)
    roster = Roster.load(config.roster_file)
    coordinator = Coordinator(
        roster,
        config.nodes,
        tls_channel_factory(config.tls_ca, config.tls_cert, config.tls_key),
        presign_pool_target=config.presign_pool_target,
        audit=open_audit_log(config),
    )
    if coordinator.audit is None:
        log.warning("no audit_dir/audit_key_file configured: this coordinator keeps no audit log")
    limiter = RateLimiter(config.limits)
    api = CoordinatorApi(coordinator, authenticator, limiter).handlers(
        trio.lowlevel.current_trio_token()
    )
    creds = tls.server_credentials(str(config.tls_ca), str(config.tls_cert), str(config.tls_key))
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(coordinator.run_background)
            with (
                metrics_endpoint(config.metrics_listen, coordinator.metrics),
                running_server(
                    config.listen,
                    config.health_listen,
                    api,
                    creds,
                    max_workers=64,
                    max_receive_bytes=config.limits.max_message_bytes,
                ),
            ):
                log.info("coordinator serving on %s for %d nodes", config.listen, len(config.nodes))
                task_status.started(coordinator)
                await trio.sleep_forever()
    finally:
        coordinator.close()


def main(argv: Sequence[str] | None = None) -> int:
    return run_process("mpc-coordinator", "Run the coordinator.", serve, argv)


if __name__ == "__main__":
    sys.exit(main())
