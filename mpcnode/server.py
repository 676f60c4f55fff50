"""The node process: holds this node's shares and runs protocol sessions for the coordinator.

All session state lives in one trio loop; gRPC threads only hand calls over
(`mpcnode.rpc`). Sessions are in memory only, so FROST nonces and unfinished
sessions die with the process: after a restart every outstanding commitment is
void. Shares reach disk sealed (`mpcnode.storage`) and a keygen is acknowledged
only after the share is durable.

CGGMP sessions (aux-info, presigning, digest signing) do seconds of big-integer
arithmetic per round, so each of their `start`/`receive` calls runs in a worker
process (`mpcnode.workers`): the loop keeps answering health checks, other
sessions and PartialSign meanwhile. The Steps of one session are serialised by a
per-session lock. FROST sessions are cheap and stay in this process.

Outputs are durable before the Step that finishes a session returns: aux-info
per committee, presignatures per key. A pooled presignature is consumed durably
(bound to the hash of the whole PartialSign request) before its partial
signature is computed, so it is never used for two different requests.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import trio

from mpcnode import logs, tls
from mpcnode.audit import AuditLog
from mpcnode.crypto import hd
from mpcnode.crypto.encoding import encode_fields
from mpcnode.crypto.primes import prime_digest
from mpcnode.envelope import key_record, open_envelope, seal, verify_key_record
from mpcnode.errors import (
    InternalBug,
    InvalidInput,
    KeyNotFound,
    MpcError,
    PermissionDenied,
    PreconditionFailed,
    ProtocolAborted,
    ResourceExhausted,
    SessionUnknown,
)
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.metrics import NodeMetrics, metrics_endpoint
from mpcnode.prime_pool import PrimePool, PrimePoolExhausted, generate_in_worker, terminate_workers
from mpcnode.protocols.base import (
    BROADCAST,
    Incoming,
    Outgoing,
    Session,
    execution_id,
    owner_binding,
    session_message,
)
from mpcnode.protocols.cggmp import sign as cggmp_sign
from mpcnode.protocols.cggmp.aux_info import AuxInfo, CggmpAuxInfoSession
from mpcnode.protocols.cggmp.presign import CggmpPresignSession, Presignature
from mpcnode.protocols.cggmp.sign import CggmpDigestSignSession
from mpcnode.protocols.frost.dkg import FrostDkgSession
from mpcnode.protocols.frost.sign import FrostSignSession
from mpcnode.protocols.keys import KEY_PROTOCOLS, KeyShare, PublicKeyPackage
from mpcnode.protocols.reshare import ReshareSession, reshare_execution_id
from mpcnode.rpc import generic_service, run_process, running_server
from mpcnode.storage import (
    KeyStore,
    PresignatureUsed,
    load_kek,
    owner_of_store_tenant,
    store_tenant_of_owner,
    write_file_atomic,
)
from mpcnode.workers import run_receive, run_start, terminate_proof_workers
from protos.mpc.v1 import envelope_pb2, node_pb2

log = logging.getLogger("mpcnode")

SESSION_ID_BYTES = 16
REQUEST_ID_BYTES = 16
SESSION_TTL_SECONDS = 600.0
"""A session older than this is dropped, however busy."""
SESSION_IDLE_SECONDS = 180.0
"""A session no Step has reached for this long is dropped: its coordinator gave up on it or
died (the coordinator waits at most 60 s for a round, and aborts what it abandons)."""
SESSION_SWEEP_SECONDS = 30.0
DEFAULT_MAX_SESSIONS = 128
"""Live sessions a node runs at once unless its config says `max_sessions`. A coordinator
drives at most one session per node for each public call it is serving (64 handler threads),
two background presign refills and one aux-info; the rest is room for sessions a crashed
coordinator left behind until they go idle (SESSION_IDLE_SECONDS)."""
MAX_SESSIONS_LIMIT = 100_000
"""The largest `max_sessions` a config may set."""
MAX_STEP_ENVELOPES_PER_PARTY = 4
"""A Step carries at most this many envelopes per session party (the protocols send at most
a broadcast and one direct message per peer and round)."""
MAX_MESSAGE_BYTES = 1024 * 1024
DIGEST_BYTES = 32
SCHEMES = ("ed25519", "secp256k1")
"""Schemes this build generates keys for: both through the FROST DKG (`frost-dkg`)."""
AUX_INFO_PRIMES = 4
"""Safe primes one aux-info run takes from the pool: p, q (Paillier) and p̂, q̂ (ring-Pedersen)."""
OFFLOADED_PROTOCOLS = frozenset({"cggmp-aux-info", "cggmp-presign", "cggmp-sign-digest"})
AUDITED_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.UNAUTHENTICATED,
    }
)
"""Refusals the node records in its audit log as ``access.denied``."""
AUDIT_DIR = "audit"
"""The node's audit trail: data_dir/audit/audit.log and audit.head.json (see mpcnode.audit)."""
"""Protocols whose rounds run in the worker processes."""
TEST_PRIMES_USED_FILE = "test-primes-used"
"""In the data directory: digests of test primes already put in the pool (never added twice)."""


MAX_OWNER_NAME = 256
"""Upper bound of an owner org or tenant name (characters)."""


def check_owner(req: Any) -> tuple[str, str]:
    """A key session's owner (StartRequest.owner_org/owner_tenant): an org (or nothing, for no
    owner) and a tenant of it ("" = the org root)."""
    org, tenant = str(req.owner_org), str(req.owner_tenant)
    if tenant and not org:
        raise InvalidInput("an owner tenant needs an owner org")
    for value in (org, tenant):
        if len(value) > MAX_OWNER_NAME or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise InvalidInput("owner names must be at most 256 characters, no control characters")
    return org, tenant


def check_tenant(tenant: str, path: Sequence[int]) -> str:
    """A request's tenant label (see node.proto): refused unless `path` is that tenant's path, so
    a log line can never name a tenant whose key was not the one used."""
    if tenant and tuple(path) != hd.tenant_path(tenant):
        log.warning("request refused: its path is not the path of tenant %r", tenant)
        raise InvalidInput("the path is not the tenant's path")
    return tenant


def path_tweak(public: PublicKeyPackage, path: tuple[int, ...]) -> int:
    """e of the child key at a checked `path` (0 for the root), derived from this node's OWN
    stored public key package (public key and chain code): a tweak is never taken from a request.
    """
    if not path:
        return 0
    return hd.derive(public.scheme, public.public_key, public.chain_code, path).tweak


def _max_sessions(value: Any) -> int:
    """A config's `max_sessions`: an integer from 1 to MAX_SESSIONS_LIMIT (ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("max_sessions must be an integer")
    if not 1 <= value <= MAX_SESSIONS_LIMIT:
        raise ValueError(f"max_sessions must be between 1 and {MAX_SESSIONS_LIMIT}")
    return value


@dataclass(frozen=True)
class NodeConfig:
    name: str
    party: int
    listen: str
    health_listen: str
    data_dir: Path
    identity_file: Path
    roster_file: Path
    tls_ca: Path
    tls_cert: Path
    tls_key: Path
    kek_file: Path | None = None
    kek_next_file: Path | None = None
    """The KEK a RotateKek call rewraps every data key under (read at the call). At startup
    the node opens its store with whichever of kek_file / kek_next_file matches it."""
    allowed_clients: tuple[str, ...] = ("coordinator",)
    prime_pool_target: int = 4
    """Safe primes kept ready for CGGMP aux-info (four per aux-info run)."""
    allow_test_primes: bool = False
    """TEST ONLY: accept the public fixture primes (Paillier keys built from them are broken)."""
    test_primes_file: Path | None = None
    """TEST ONLY, honoured only with `allow_test_primes`: a safe-prime fixture (format of
    tests/fixtures/safe_primes.json) the pool is topped up from at startup."""
    metrics_listen: str | None = None
    """host:port of the plaintext Prometheus `/metrics` endpoint (none when unset)."""
    secret_files_group_readable: bool = False
    """Accept identity and KEK files that the group may read (never write): true only for
    Kubernetes Secret mounts, where kubelet grants the pod's fsGroup read access."""
    max_sessions: int = DEFAULT_MAX_SESSIONS
    """Live protocol sessions this node runs at once; a Start beyond is RESOURCE_EXHAUSTED."""

    @classmethod
    def load(cls, path: str | Path, environ: Mapping[str, str] | None = None) -> NodeConfig:
        """Read a node config file.

        In a StatefulSet one file serves every replica: `"name_from_env": "POD_NAME"` takes
        the node name from that environment variable (the pod name, e.g. `mpc-3`), and a
        config without `"party"` takes the party index the roster pins for that name.
        """
        env = os.environ if environ is None else environ
        try:
            raw: dict[str, Any] = json.loads(Path(path).read_text())
            allow_test_primes = raw.get("allow_test_primes", False)
            group_readable = raw.get("secret_files_group_readable", False)
            for flag, value in (
                ("allow_test_primes", allow_test_primes),
                ("secret_files_group_readable", group_readable),
            ):
                if not isinstance(value, bool):
                    raise ValueError(f"{flag} must be true or false")
            if "name_from_env" in raw:
                if "name" in raw:
                    raise ValueError("give name or name_from_env, not both")
                variable = str(raw["name_from_env"])
                if not env.get(variable):
                    raise ValueError(f"name_from_env: environment variable {variable} is unset")
                name = env[variable]
            else:
                name = str(raw["name"])
            if "party" in raw:
                party = int(raw["party"])
            else:
                party = Roster.load(raw["roster_file"]).by_name(name).party
            return cls(
                name=name,
                party=party,
                listen=str(raw["listen"]),
                health_listen=str(raw["health_listen"]),
                data_dir=Path(raw["data_dir"]),
                identity_file=Path(raw["identity_file"]),
                roster_file=Path(raw["roster_file"]),
                tls_ca=Path(raw["tls"]["ca"]),
                tls_cert=Path(raw["tls"]["cert"]),
                tls_key=Path(raw["tls"]["key"]),
                kek_file=Path(raw["kek_file"]) if raw.get("kek_file") else None,
                kek_next_file=Path(raw["kek_next_file"]) if raw.get("kek_next_file") else None,
                allowed_clients=tuple(raw.get("allowed_clients", ["coordinator"])),
                prime_pool_target=int(raw.get("prime_pool_target", 4)),
                allow_test_primes=allow_test_primes,
                test_primes_file=(
                    Path(raw["test_primes_file"]) if raw.get("test_primes_file") else None
                ),
                metrics_listen=str(raw["metrics_listen"]) if raw.get("metrics_listen") else None,
                secret_files_group_readable=group_readable,
                max_sessions=_max_sessions(raw.get("max_sessions", DEFAULT_MAX_SESSIONS)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"bad node config {path}: {exc.__class__.__name__} {exc}") from exc


@dataclass
class LiveSession:
    """One running protocol session and what the service needs to finish it."""

    protocol: str
    session: Session[Any]
    key_id: str
    parties: tuple[int, ...]
    started: float
    last_activity: float = 0.0
    """When a Start or Step last reached this session (trio clock)."""
    stored_pending: bool = False
    confirmations_delivered: bool = False
    own_confirmation: envelope_pb2.Envelope | None = None
    generation: int = 0
    tenant: str = ""
    """The tenant the request named (checked against its path; a log label)."""
    owner: tuple[str, str] = ("", "")
    """Key sessions: the key's owner (org, tenant), bound into the eid and stored with it."""
    audit_details: dict[str, Any] | None = None
    """Signing sessions: what the audit entry of the share records (hashes, path, signers)."""
    lock: trio.Lock = field(default_factory=trio.Lock)
    """Held for the whole of a Start or Step: one round of a session at a time."""

    def __post_init__(self) -> None:
        self.last_activity = max(self.last_activity, self.started)

    @property
    def offloaded(self) -> bool:
        return self.protocol in OFFLOADED_PROTOCOLS


SessionFactory = Callable[..., Session[Any]]


@dataclass
class NodeService:
    """The node's protocol logic behind the gRPC surface (runs inside the trio loop)."""

    identity: NodeIdentity
    roster: Roster
    store: KeyStore
    sessions: dict[bytes, LiveSession] = field(default_factory=dict)
    prime_pool: PrimePool | None = None
    """Where aux-info takes its primes; a pool with target 4 over `store` if not given."""
    allow_test_primes: bool = False
    """TEST ONLY: aux-info sessions accept the public fixture primes."""
    # Injection points so tests can run a deliberately faulty node.
    dkg_factory: SessionFactory = FrostDkgSession
    sign_factory: SessionFactory = FrostSignSession
    aux_info_factory: SessionFactory = CggmpAuxInfoSession
    presign_factory: SessionFactory = CggmpPresignSession
    digest_sign_factory: SessionFactory = CggmpDigestSignSession
    reshare_factory: SessionFactory = ReshareSession
    metrics: NodeMetrics = field(default_factory=NodeMetrics, repr=False)
    """This service's Prometheus instruments (its own registry)."""
    max_sessions: int = DEFAULT_MAX_SESSIONS
    """Live sessions at once; a Start beyond is refused (RESOURCE_EXHAUSTED) before any work."""
    kek_next_file: Path | None = None
    """Where RotateKek reads the new KEK (NodeConfig.kek_next_file); None: rotation refused."""
    kek_group_readable: bool = False
    """The KEK files may be group-readable (Kubernetes Secret mounts; see NodeConfig)."""
    audit: AuditLog | None = None
    """This node's audit trail (`build_service` opens it in data_dir/audit); None: not kept."""
    _aux_cache: dict[tuple[int, ...], tuple[bytes, AuxInfo]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        if self.prime_pool is None:
            self.prime_pool = PrimePool(self.store, 4, allow_test_primes=self.allow_test_primes)
        self.metrics.watch_store(self.store.count_all_presignatures, self.prime_pool.count)

    @property
    def party(self) -> int:
        return int(self.identity.party)

    @property
    def committee(self) -> tuple[int, ...]:
        """Every roster party: the holders aux-info is made for."""
        return tuple(sorted(self.roster.parties))

    @property
    def pool(self) -> PrimePool:
        assert self.prime_pool is not None  # set in __post_init__
        return self.prime_pool

    # -- audit trail -------------------------------------------------------------------------

    @staticmethod
    def _actor(ctx: grpc.ServicerContext | None) -> dict[str, Any]:
        """Who called: the TLS common name of the caller's verified certificate."""
        try:
            peer = tls.peer_common_name(ctx) if ctx is not None else None
        except Exception:  # a test's fake context
            peer = None
        return {"peer": peer}

    async def _audit(
        self,
        ctx: grpc.ServicerContext | None,
        action: str,
        *,
        required: bool = False,
        outcome: str = "ok",
        **fields: Any,
    ) -> None:
        """Append one entry to this node's audit log, in a worker thread (it fsyncs).

        `required` entries fail the call when they cannot be written (a signature share never
        leaves unrecorded); the others, recorded after their effect, only log the failure.
        """
        if self.audit is None:
            return
        append = functools.partial(
            self.audit.append, action, actor=self._actor(ctx), outcome=outcome, **fields
        )
        try:
            await trio.to_thread.run_sync(append)
        except Exception as exc:
            if required:
                raise InternalBug(f"cannot write the audit log: {exc}") from exc
            log.error("cannot write audit entry %s: %s", action, exc)

    def _owner_fields(self, key_id: str) -> dict[str, Any]:
        owner = self._stored_owner(key_id)
        org, tenant = owner if owner is not None else ("", "")
        return {"org": org or None, "tenant": tenant or None}

    def _package_details(self, key_id: str) -> dict[str, Any]:
        """Public facts of this node's active generation of the key (none if it has none)."""
        package = self._stored_package(key_id)
        if package is None:
            return {}
        return {
            "scheme": package.scheme,
            "generation": package.generation,
            "parties": list(package.parties),
            "threshold": package.threshold,
            "public_key": package.public_key.encode().hex(),
        }

    @staticmethod
    def _sign_details(req: Any, parties: tuple[int, ...]) -> dict[str, Any] | None:
        """What a signing session's audit entry records: hashes only, never the message."""
        protocol = str(req.protocol)
        if protocol not in ("frost-sign", "cggmp-sign-digest"):
            return None
        details: dict[str, Any] = {
            "protocol": protocol,
            "session_id": bytes(req.session_id).hex(),
            "signers": list(parties),
            "path": [int(i) for i in req.path],
        }
        message = bytes(req.message)
        if protocol == "frost-sign":
            details["message_sha256"] = hashlib.sha256(message).hexdigest()
        else:
            details["digest"] = message.hex()  # the caller's 32-byte digest (itself a hash)
        return details

    async def _audit_session_end(self, ctx: grpc.ServicerContext, live: LiveSession) -> None:
        """The audit entry of a session that just finished here (key made or reshared, or a
        signature share produced: that one before the share leaves)."""
        if live.protocol in ("frost-sign", "cggmp-sign-digest"):
            await self._audit(
                ctx,
                "key.sign",
                required=True,
                key_id=live.key_id,
                tenant=live.tenant or None,
                details=live.audit_details,
            )
        elif live.protocol == "frost-dkg":
            await self._audit(
                ctx,
                "key.create",
                key_id=live.key_id,
                org=live.owner[0] or None,
                tenant=live.owner[1] or None,
                details=self._package_details(live.key_id),
            )
        elif live.protocol == "reshare":
            retired = live.session.output is None
            details: dict[str, Any] = {
                "generation": live.generation,
                "effect": "retired" if retired else "activated",
            }
            if not retired:
                details.update(self._package_details(live.key_id))
            await self._audit(
                ctx,
                "key.reshare",
                key_id=live.key_id,
                org=live.owner[0] or None,
                tenant=live.owner[1] or None,
                details=details,
            )

    def audit_refusal(
        self, method: str, code: grpc.StatusCode, request: Any, context: grpc.ServicerContext
    ) -> None:
        """`rpc.ErrorHook`: record a refused call (a caller that is not the coordinator, or a
        request the handler refused) as ``access.denied``. Runs in the gRPC worker thread."""
        if self.audit is None or code not in AUDITED_REFUSALS:
            return

        def short(name: str) -> str | None:
            value = getattr(request, name, None)
            return value[:128] if isinstance(value, str) and value else None

        key_id = short("key_id")
        record = getattr(request, "record", None)  # CertifyGeneration
        if key_id is None and record is not None:
            key_id = str(record.key_id)[:128] or None
        self.audit.append(
            "access.denied",
            actor=self._actor(context),
            outcome=code.name,
            key_id=key_id,
            tenant=short("tenant"),
            details={"rpc": method, "code": code.name},
        )

    # -- helpers -----------------------------------------------------------------------------

    def _bind(self, **fields: Any) -> None:
        """Label this call's log lines (each RPC runs in its own task: see `rpc.trio_handler`)."""
        logs.bind(process=self.identity.name, **fields)

    @staticmethod
    def _log_fields(session_id: bytes, live: LiveSession) -> dict[str, Any]:
        """`extra=` context of a line about `live` written outside its calls (sweeps, aborts)."""
        return {
            "session_id": session_id.hex(),
            "protocol": live.protocol,
            "key_id": live.key_id or None,
            "tenant": live.tenant or None,
        }

    def _seal_all(self, session_id: bytes, protocol: str, outgoing: Sequence[Any]) -> list[Any]:
        return [seal(self.identity, self.roster, session_id, protocol, o) for o in outgoing]

    def _expire_sessions(self) -> None:
        """Drop sessions past their lifetime or idle too long (sessions left behind by a dead
        coordinator, or by peers that died: nobody will step them again). A session whose
        round is being computed right now is never idle."""
        now = trio.current_time()
        for sid, live in list(self.sessions.items()):
            if now - live.started > SESSION_TTL_SECONDS:
                self._drop(sid, "expired", keep_pending=True, outcome="expired")
            elif not live.lock.locked() and now - live.last_activity > SESSION_IDLE_SECONDS:
                self._drop(
                    sid, "idle: abandoned by its coordinator", keep_pending=True, outcome="idle"
                )

    async def sweep_sessions(self) -> None:
        """Expire abandoned sessions periodically (also without new Starts), until cancelled."""
        while True:
            await trio.sleep(SESSION_SWEEP_SECONDS)
            self._expire_sessions()

    def _drop(
        self,
        session_id: bytes,
        why: str,
        only: LiveSession | None = None,
        keep_pending: bool = False,
        outcome: str = "failed",
        error: BaseException | None = None,
    ) -> None:
        """Forget a session (and clean up after it); with `only`, just if it is that one.

        `outcome` (metrics.SESSION_OUTCOMES) is counted in the metrics, and so are the
        culprits of an `error` that ended it.

        A key session's pending share is discarded only when the session failed here or its
        coordinator aborted it before the confirmations were delivered. With `keep_pending`
        (a session that expired or was superseded: nobody told this node how it ended, and
        every other holder may have activated the key) the share stays pending, to be
        activated by a certified record (CertifyGeneration) or replaced by a later reshare.
        """
        live = self.sessions.get(session_id)
        if live is None or (only is not None and live is not only):
            return
        del self.sessions[session_id]
        self.metrics.set_live(s.protocol for s in self.sessions.values())
        self.metrics.session_ended(live.protocol, outcome)
        if isinstance(error, ProtocolAborted):
            self.metrics.blame(live.protocol, error.culprits)
        extra = self._log_fields(session_id, live)
        culprits = error.culprits if isinstance(error, ProtocolAborted) else ()
        log.info(
            "session %s (%s) closed: %s; parties %s%s",
            session_id.hex(),
            live.protocol,
            why,
            list(live.parties),
            f"; culprits {list(culprits)}" if culprits else "",
            extra=extra,
        )
        if live.protocol == "cggmp-aux-info" and not live.session.done:
            log.warning(
                "aux-info session %s ended unfinished: its %d safe primes are discarded "
                "(never reused)",
                session_id.hex(),
                AUX_INFO_PRIMES,
                extra=extra,
            )
        if live.protocol not in KEY_PROTOCOLS or not live.stored_pending or live.session.done:
            return
        if live.confirmations_delivered or keep_pending:
            # Every holder may have confirmed (the relay delivered the confirmations, or the
            # session ended without a word), so the key may be active elsewhere: keep this
            # share pending rather than lose it.
            log.warning(
                "key %s stays pending: the session ended unconfirmed", live.key_id, extra=extra
            )
            return
        self.store.discard_pending(live.key_id, live.generation)

    def _check_parties(self, parties: Sequence[int]) -> tuple[int, ...]:
        ordered = tuple(sorted(parties))
        if len(set(ordered)) != len(ordered) or not ordered:
            raise InvalidInput("parties must be distinct and non-empty")
        for p in ordered:
            self.roster.by_party(p)  # raises InvalidInput for a party outside the roster
        if self.party not in ordered:
            raise InvalidInput(f"this node (party {self.party}) is not in the session")
        return ordered

    @staticmethod
    def _check_key_id(key_id: str) -> str:
        if not key_id or len(key_id) > 128:
            raise InvalidInput("key id must be 1-128 characters")
        return key_id

    def _ecdsa_share(self, key_id: str) -> KeyShare:
        """This node's share of an active secp256k1 key."""
        stored = self.store.get_active(key_id)
        if stored is None:
            raise KeyNotFound(f"no key {key_id!r} on this node")
        share = KeyShare.decode(stored.secret())
        if share.public.scheme != "secp256k1":
            raise InvalidInput(f"key {key_id!r} is not a secp256k1 key")
        return share

    def _aux_info(self) -> AuxInfo:
        """This node's aux-info for the whole committee (decoded once per stored blob)."""
        committee = self.committee
        blob = self.store.get_aux_info(committee)
        if blob is None:
            raise PreconditionFailed(
                f"no aux-info: run mpcctl aux-info (committee {list(committee)})"
            )
        cached = self._aux_cache.get(committee)
        if cached is not None and cached[0] == blob:
            return cached[1]
        aux = AuxInfo.decode(blob)
        if aux.party != self.party or aux.parties != committee:
            raise InvalidInput("stored aux-info belongs to another party or committee")
        self._aux_cache[committee] = (blob, aux)
        return aux

    def _signers_of(self, share: KeyShare, parties: tuple[int, ...]) -> tuple[int, ...]:
        """A presigning signer set: exactly t holders of the key."""
        threshold = share.public.threshold
        if len(parties) != threshold:
            raise InvalidInput(f"presigning needs exactly {threshold} signers, got {len(parties)}")
        outside = [p for p in parties if p not in share.public.parties]
        if outside:
            raise InvalidInput(f"parties {outside} do not hold this key")
        return parties

    # -- session construction ----------------------------------------------------------------

    def _new_session(self, req: Any, sid: bytes, parties: tuple[int, ...]) -> LiveSession:
        """Check a Start request and build its session (no round has run yet)."""
        protocol = str(req.protocol)
        key_id = str(req.key_id)
        now = trio.current_time()
        if protocol == "cggmp-aux-info":
            return LiveSession(protocol, self._new_aux_info(sid, key_id, parties), "", parties, now)
        self._check_key_id(key_id)
        if self.store.is_deleted(key_id):
            raise KeyNotFound(f"key {key_id!r} was deleted on this node")
        if protocol == "reshare":
            return self._new_reshare(req, sid, key_id, parties)
        if protocol == "frost-dkg":
            if req.scheme not in SCHEMES:
                raise InvalidInput(f"unsupported scheme {req.scheme!r}")
            if self.store.get_active(key_id) is not None:
                raise InvalidInput("key id already exists")
            threshold = int(req.threshold)
            if not 2 <= threshold <= len(parties):
                raise InvalidInput("threshold must be between 2 and the number of parties")
            owner = check_owner(req)
            eid = execution_id(protocol, sid, key_id, parties, threshold, owner_binding(*owner))
            session = self.dkg_factory(
                party=self.party, parties=parties, threshold=threshold, eid=eid, scheme=req.scheme
            )
            return LiveSession(protocol, session, key_id, parties, now, owner=owner)
        if protocol == "frost-sign":
            message = bytes(req.message)
            if len(message) > MAX_MESSAGE_BYTES:
                raise InvalidInput("message too long")
            stored = self.store.get_active(key_id)
            if stored is None:
                raise KeyNotFound(f"no key {key_id!r} on this node")
            share = KeyShare.decode(stored.secret())
            if share.public.scheme != "ed25519":
                raise InvalidInput("frost-sign needs an ed25519 key")
            path = hd.check_path(req.path)
            if path:  # FROST signs with s_i + e under PK + e·G (every Y_j + e·G too)
                share = share.tweaked(path_tweak(share.public, path))
            bound = session_message(message, path)
            eid = execution_id(protocol, sid, key_id, parties, share.public.threshold, bound)
            session = self.sign_factory(key_share=share, signers=parties, message=message, eid=eid)
            return LiveSession(protocol, session, key_id, parties, now)
        if protocol in ("cggmp-presign", "cggmp-sign-digest"):
            share = self._ecdsa_share(key_id)
            signers = self._signers_of(share, parties)
            threshold = share.public.threshold
            if protocol == "cggmp-presign":
                aux = self._aux_info()
                eid = execution_id(protocol, sid, key_id, signers, threshold)
                session = self.presign_factory(key_share=share, aux=aux, signers=signers, eid=eid)
            else:
                digest = bytes(req.message)
                if len(digest) != DIGEST_BYTES:
                    raise InvalidInput(f"the digest must be exactly {DIGEST_BYTES} bytes")
                path = hd.check_path(req.path)
                tweak = path_tweak(share.public, path)
                aux = self._aux_info()
                bound = session_message(digest, path)
                eid = execution_id(protocol, sid, key_id, signers, threshold, bound)
                # Presigning stays with the root share; the tweak enters at σ_i (sign.py).
                session = self.digest_sign_factory(
                    key_share=share,
                    aux=aux,
                    signers=signers,
                    eid=eid,
                    digest=digest,
                    key_id=key_id,
                    tweak=tweak,
                )
            return LiveSession(
                protocol, session, key_id, signers, now, generation=share.public.generation
            )
        raise InvalidInput(f"unknown protocol {protocol!r}")

    def _stored_package(self, key_id: str) -> PublicKeyPackage | None:
        stored = self.store.get_active(key_id)
        return None if stored is None else PublicKeyPackage.decode(stored.public)

    def _stored_owner(self, key_id: str) -> tuple[str, str] | None:
        """The owner (org, tenant) this node stored with its active generation of the key."""
        stored = self.store.get_active(key_id)
        return None if stored is None else owner_of_store_tenant(stored.tenant)

    def _new_reshare(
        self, req: Any, sid: bytes, key_id: str, parties: tuple[int, ...]
    ) -> LiveSession:
        """Check a reshare Start against this node's own view of the key and build its session.

        A dealer deals from its stored share of exactly the generation named; a party that holds
        the key must hold exactly that package (or an older generation of the same key); a new
        node takes the package from the request (bound into the execution id).
        """
        dealers = tuple(sorted(int(p) for p in req.dealers))
        new_parties = tuple(sorted(int(p) for p in req.new_parties))
        for name, group in (("dealers", dealers), ("new parties", new_parties)):
            if not group or len(set(group)) != len(group):
                raise InvalidInput(f"{name} must be distinct and non-empty")
        if tuple(sorted(set(dealers) | set(new_parties))) != parties:
            raise InvalidInput("reshare parties must be exactly the dealers and the new holders")
        new_threshold = int(req.threshold)
        if not 2 <= new_threshold <= len(new_parties):
            raise InvalidInput("new threshold must be between 2 and the number of new holders")
        owner = check_owner(req)
        try:
            old_public = PublicKeyPackage.decode(bytes(req.old_public))
        except InvalidInput as exc:
            raise InvalidInput(f"old public key package: {exc}") from None
        mine = self._stored_package(key_id)
        if mine is not None:
            if mine.generation > old_public.generation:
                raise PreconditionFailed(
                    f"key {key_id!r} is at generation {mine.generation} on this node; the "
                    f"reshare starts from generation {old_public.generation}"
                )
            same_key = (mine.scheme, mine.public_key, mine.chain_code) == (
                old_public.scheme,
                old_public.public_key,
                old_public.chain_code,
            )
            if not same_key or (mine.generation == old_public.generation and mine != old_public):
                raise InvalidInput("the old public key package differs from this node's")
        old_share = None
        if self.party in dealers:
            stored = self.store.get_active(key_id)
            if stored is None or mine != old_public:
                raise PreconditionFailed(
                    f"this node holds no share of generation {old_public.generation} to deal"
                )
            old_share = KeyShare.decode(stored.secret())
        if mine is not None and self._stored_owner(key_id) != owner:
            # a reshare keeps the key's owner: no relay can hand the key to someone else
            raise InvalidInput("the owner differs from this node's record of the key")
        for other_sid, other in list(self.sessions.items()):
            # One key session per key: a new reshare supersedes an unfinished one (its
            # coordinator gave up on it, e.g. after a restart, and sessions expire only later).
            if other.key_id == key_id and other.protocol in KEY_PROTOCOLS:
                self._drop(
                    other_sid,
                    "superseded by a new reshare",
                    keep_pending=True,
                    outcome="superseded",
                )
        generation = old_public.generation + 1
        if self.party in new_parties:
            self._discard_stale_pending(key_id, generation)
        bound_owner = owner_binding(*owner)
        eid = reshare_execution_id(
            sid, key_id, old_public, dealers, new_parties, new_threshold, bound_owner
        )
        session = self.reshare_factory(
            party=self.party,
            old_public=old_public,
            dealers=dealers,
            new_parties=new_parties,
            new_threshold=new_threshold,
            eid=eid,
            old_share=old_share,
            # what a key record of the new generation is checked against (verify_key_record)
            confirmation_eid=execution_id(
                "reshare", sid, key_id, new_parties, new_threshold, bound_owner
            ),
        )
        return LiveSession(
            "reshare",
            session,
            key_id,
            parties,
            trio.current_time(),
            generation=generation,
            owner=owner,
        )

    def _discard_stale_pending(self, key_id: str, generation: int) -> None:
        """Drop a pending `generation` of the key left by an earlier reshare that never finished
        here (this node died or the session failed after it stored its share)."""
        for stale in self.store.pending_keys():
            if stale.key_id == key_id and stale.generation == generation:
                log.warning(
                    "key %s: discarding pending generation %d of an unfinished reshare",
                    key_id,
                    generation,
                )
                self.store.discard_pending(key_id, generation)

    def _new_aux_info(self, sid: bytes, key_id: str, parties: tuple[int, ...]) -> Session[Any]:
        """Aux-info for the whole committee with four fresh primes from the pool."""
        if key_id:
            raise InvalidInput("aux-info belongs to the committee: key id must be empty")
        if parties != self.committee:
            raise InvalidInput(f"aux-info needs exactly the whole committee {list(self.committee)}")
        pool = self.pool
        try:
            p, q, p_hat, q_hat = pool.take(AUX_INFO_PRIMES)
        except PrimePoolExhausted:
            raise PrimePoolExhausted(
                f"aux-info needs {AUX_INFO_PRIMES} safe primes, {pool.count()} ready in this "
                "node's pool; retry when the background refill has made them"
            ) from None
        eid = execution_id("cggmp-aux-info", sid, "", parties, 0)
        try:
            return self.aux_info_factory(
                party=self.party,
                parties=parties,
                eid=eid,
                primes=(p, q, p_hat, q_hat),
                allow_test_primes=self.allow_test_primes,
            )
        except BaseException:
            log.warning(
                "aux-info %s: set-up failed; its %d primes are discarded",
                sid.hex(),
                AUX_INFO_PRIMES,
            )
            raise

    async def _advance(self, live: LiveSession, incoming: list[Incoming] | None) -> list[Outgoing]:
        """Run the session's next step: `start()` if `incoming` is None, else `receive()`.

        Offloaded protocols run in a worker process (the session is pickled there and back),
        the others here.
        """
        if not live.offloaded:
            if incoming is None:
                return live.session.start()
            return live.session.receive(incoming)
        if incoming is None:
            live.session, outgoing = await run_start(live.session)
        else:
            live.session, outgoing = await run_receive(live.session, incoming)
        return outgoing

    def _still_live(self, sid: bytes, live: LiveSession) -> None:
        """After an await: the session may have been aborted or expired meanwhile."""
        if self.sessions.get(sid) is not live:
            raise SessionUnknown("the session was aborted while this node computed its round")

    def _store_output(self, sid: bytes, live: LiveSession) -> None:
        """Make a finished CGGMP session's output durable (before its last Step returns)."""
        if live.protocol == "cggmp-aux-info":
            aux: AuxInfo = live.session.output
            self.store.put_aux_info(live.parties, aux.encode())
            self._aux_cache.pop(live.parties, None)
            log.info("aux-info stored for committee %s", list(live.parties))
        elif live.protocol == "cggmp-presign":
            presig: Presignature = live.session.output
            self.store.put_presignature(
                sid,
                live.key_id,
                live.generation,
                live.parties,
                presig.public.encode(),
                presig.encode(),
            )
            log.info("presignature %s stored for key %s", sid.hex(), live.key_id)

    # -- RPC handlers ------------------------------------------------------------------------

    async def start(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        self._expire_sessions()
        sid = bytes(req.session_id)
        if len(sid) != SESSION_ID_BYTES:
            raise InvalidInput("session id must be 16 bytes")
        self._bind(session_id=sid, protocol=str(req.protocol), key_id=str(req.key_id))
        if sid in self.sessions:
            raise InvalidInput("session id already in use")
        if len(self.sessions) >= self.max_sessions:
            # Before the id is claimed or anything computed: the caller may retry this very
            # Start later, and no running session is touched.
            log.warning("Start refused: %d sessions running (max_sessions)", len(self.sessions))
            raise ResourceExhausted(
                f"this node runs {self.max_sessions} sessions already; retry later"
            )
        parties = self._check_parties(req.parties)
        tenant = check_tenant(str(req.tenant), req.path)
        self._bind(tenant=tenant)
        self.store.claim_session_id(sid)  # never two sessions under one id, restarts included
        live = self._new_session(req, sid, parties)
        live.tenant = tenant
        live.audit_details = self._sign_details(req, live.parties)
        async with live.lock:
            # Registered before the first round runs, so a duplicate Start or an Abort sees it.
            self.sessions[sid] = live
            self.metrics.set_live(s.protocol for s in self.sessions.values())
            try:
                outgoing = await self._advance(live, None)
                self._still_live(sid, live)
                envelopes = self._seal_all(sid, live.protocol, outgoing)
                live.last_activity = trio.current_time()
            except BaseException as exc:
                self._drop(sid, f"failed to start: {exc.__class__.__name__}", only=live, error=exc)
                raise
        log.info(
            "session %s (%s) started for key %s; parties %s",
            sid.hex(),
            live.protocol,
            live.key_id or "-",
            list(live.parties),
        )
        return node_pb2.StepResponse(envelopes=envelopes, done=live.session.done)

    async def step(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        sid = bytes(req.session_id)
        self._bind(session_id=sid)
        live = self.sessions.get(sid)
        if live is None:
            raise SessionUnknown("no such session on this node (finished, aborted or restarted)")
        self._bind(protocol=live.protocol, key_id=live.key_id, tenant=live.tenant)
        if len(req.envelopes) > MAX_STEP_ENVELOPES_PER_PARTY * len(live.parties):
            # Refused before any envelope is opened (a signature check and a decryption each).
            raise InvalidInput(f"too many envelopes in one step ({len(req.envelopes)})")
        async with live.lock:
            self._still_live(sid, live)
            live.last_activity = trio.current_time()
            if live.stored_pending:
                live.confirmations_delivered = True
            try:
                incoming = [
                    open_envelope(self.identity, self.roster, env, sid, live.protocol)
                    for env in req.envelopes
                ]
                for msg in incoming:
                    if msg.sender not in live.parties:
                        # Not provably the sender's fault: the relay may have started a
                        # session under this id with other parties elsewhere.
                        raise ProtocolAborted(
                            f"message from party {msg.sender}, not in the session"
                        )
                outgoing = await self._advance(live, incoming)
                self._still_live(sid, live)
                envelopes = self._seal_all(sid, live.protocol, outgoing)
                log.debug(
                    "session %s: round computed, %d envelopes in, %d out",
                    sid.hex(),
                    len(incoming),
                    len(envelopes),
                )
                if live.protocol in KEY_PROTOCOLS:
                    self._key_progress(live, req.envelopes, envelopes)
                elif live.session.done:
                    self._store_output(sid, live)
                if live.session.done:
                    await self._audit_session_end(ctx, live)
            except BaseException as exc:
                self._drop(sid, f"failed: {exc.__class__.__name__}", only=live, error=exc)
                raise
            done = live.session.done
            live.last_activity = trio.current_time()
            if done:
                self._drop(sid, "done", only=live, outcome="completed")
        return node_pb2.StepResponse(envelopes=envelopes, done=done)

    def _key_progress(
        self, live: LiveSession, received: Sequence[Any], sent: Sequence[Any]
    ) -> None:
        """Persist the share before confirming it; activate it once every holder confirmed.

        Activation erases the older generations of the key (a reshare's old share). A reshare
        dealer that holds no share of the new generation erases its old one instead.
        """
        session = live.session
        if session.done:
            if session.output is None:  # a reshare dealer leaving the key
                self.store.retire(live.key_id, live.generation)
                log.info(
                    "key %s: generation %d certified without this node; old share erased",
                    live.key_id,
                    live.generation,
                )
                return
            confirmations = sorted([*received, live.own_confirmation], key=lambda e: e.sender)
            blob = encode_fields([e.SerializeToString() for e in confirmations])
            self.store.activate(live.key_id, live.generation, blob)
            log.info("key %s active (generation %d)", live.key_id, live.generation)
            return
        pending: KeyShare | None = getattr(session, "pending_share", None)
        if pending is not None and not live.stored_pending:
            self.store.put_pending(
                live.key_id,
                live.generation,
                pending.public.scheme,
                pending.public.encode(),
                pending.encode(),
                tenant=store_tenant_of_owner(*live.owner),
            )
            live.stored_pending = True
            live.own_confirmation = next(e for e in sent if e.recipient == BROADCAST)

    async def certify_generation(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        """Act on a generation every holder confirmed (see node.proto): activate this node's
        pending share of it, or erase this node's older generations if it is not a holder."""
        record = req.record
        key_id = self._check_key_id(str(record.key_id))
        self._bind(key_id=key_id)
        if self.store.is_deleted(key_id):
            raise PreconditionFailed(f"key {key_id!r} was deleted on this node; refused")
        try:
            package = verify_key_record(self.roster, record)
        except MpcError as exc:
            raise InvalidInput(f"key record not certified: {exc}") from None
        mine = self._stored_package(key_id)
        if mine is not None:
            same_key = (mine.scheme, mine.public_key, mine.chain_code) == (
                package.scheme,
                package.public_key,
                package.chain_code,
            )
            if not same_key or self._stored_owner(key_id) != (record.org, record.tenant):
                raise InvalidInput("the record is of another key")
            if mine.generation == package.generation:
                if mine != package:
                    raise InvalidInput("the record differs from this node's active generation")
                return node_pb2.CertifyGenerationResponse(outcome="current")
            if mine.generation > package.generation:
                raise PreconditionFailed(
                    f"generation {package.generation} is older than the active one here "
                    f"({mine.generation})"
                )
        if self.party in package.parties:
            pending = [
                s
                for s in self.store.pending_keys()
                if s.key_id == key_id and s.generation == package.generation
            ]
            if (
                not pending
                or PublicKeyPackage.decode(pending[0].public) != package
                or owner_of_store_tenant(pending[0].tenant) != (record.org, record.tenant)
            ):
                raise PreconditionFailed(
                    f"this node holds no pending share of generation {package.generation} of "
                    f"key {key_id!r}: it missed the reshare"
                )
            confirmations = sorted(record.confirmations, key=lambda e: e.sender)
            blob = encode_fields([e.SerializeToString() for e in confirmations])
            self.store.activate(key_id, package.generation, blob)
            log.info("key %s active (generation %d, certified)", key_id, package.generation)
            await self._audit(
                ctx,
                "key.create" if package.generation == 0 else "key.reshare",
                key_id=key_id,
                org=record.org or None,
                tenant=record.tenant or None,
                details={
                    "via": "CertifyGeneration",
                    "effect": "activated",
                    **self._package_details(key_id),
                },
            )
            return node_pb2.CertifyGenerationResponse(outcome="activated")
        erased = self.store.retire(key_id, package.generation)
        if not erased:
            return node_pb2.CertifyGenerationResponse(outcome="absent")
        log.info(
            "key %s: generation %d certified without this node; %d older generation(s) erased",
            key_id,
            package.generation,
            erased,
        )
        await self._audit(
            ctx,
            "key.reshare",
            key_id=key_id,
            org=record.org or None,
            tenant=record.tenant or None,
            details={
                "via": "CertifyGeneration",
                "effect": "retired",
                "generation": package.generation,
                "erased_generations": erased,
            },
        )
        return node_pb2.CertifyGenerationResponse(outcome="retired")

    def _abort_key_sessions(self, key_ids: Sequence[str], why: str) -> None:
        wanted = set(key_ids)
        for sid, live in list(self.sessions.items()):
            if live.key_id and live.key_id in wanted:
                self._drop(sid, why, outcome="aborted")

    async def delete_key(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        """Crypto-shred a key here (node.proto DeleteKey): its live sessions are aborted first."""
        key_id = self._check_key_id(str(req.key_id))
        self._bind(key_id=key_id)
        self._abort_key_sessions([key_id], "key deleted")
        owner = self._owner_fields(key_id)  # before the record is gone
        generations, presignatures = self.store.delete_key(key_id)
        await self._audit(
            ctx,
            "key.delete",
            key_id=key_id,
            **owner,
            details={"generations": generations, "presignatures": presignatures},
        )
        log.warning(
            "key %s deleted: %d generation(s), %d presignature(s) and its data key erased",
            key_id,
            generations,
            presignatures,
        )
        return node_pb2.NodeDeleteKeyResponse(
            outcome="deleted" if generations or presignatures else "absent",
            generations=generations,
            presignatures=presignatures,
        )

    async def delete_tenant(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        """Crypto-shred every key of a tenant here, and the tenant's data key."""
        tenant = str(req.tenant)
        if not tenant or len(tenant) > 2048:
            raise InvalidInput("tenant must be 1-2048 characters")
        self._bind(tenant=tenant)
        key_ids = self.store.delete_tenant(tenant)
        await self._audit(
            ctx,
            "tenant.delete",
            tenant=tenant,
            details={"keys": len(key_ids), "key_ids": key_ids[:16]},
        )
        self._abort_key_sessions(key_ids, "tenant deleted")
        log.warning("tenant %s deleted: %d key(s) erased", tenant, len(key_ids))
        return node_pb2.NodeDeleteTenantResponse(key_ids=key_ids)

    async def rotate_kek(self, _req: Any, ctx: grpc.ServicerContext) -> Any:
        """Rewrap every data key under the KEK in kek_next_file (read now), then use it.

        One store transaction, taken between two calls of the trio loop: sessions and signing
        go on. Idempotent: when kek_next_file already is the KEK in use, nothing changes.
        """
        if self.kek_next_file is None:
            raise PreconditionFailed("this node has no kek_next_file configured")
        new_kek = await trio.to_thread.run_sync(
            load_kek, self.kek_next_file, self.kek_group_readable
        )
        rotated = self.store.rotate_kek(new_kek)
        fingerprint = self.store.kek_fingerprint
        if rotated:
            log.warning("KEK rotated: every data key rewrapped (fingerprint %s)", fingerprint)
        await self._audit(
            ctx,
            "kek.rotate",
            details={"effect": "rotated" if rotated else "current", "kek_fingerprint": fingerprint},
        )
        return node_pb2.RotateKekResponse(
            outcome="rotated" if rotated else "current", kek_fingerprint=fingerprint
        )

    async def abort(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        self._bind(session_id=bytes(req.session_id))
        self._drop(bytes(req.session_id), "aborted by coordinator", outcome="aborted")
        return node_pb2.AbortResponse()

    async def partial_sign(self, req: Any, ctx: grpc.ServicerContext) -> Any:
        """σ_i over SHA-256(message) from a pooled presignature, consumed durably first.

        The presignature is consumed for the hash of the whole request (`SignRequest.request_hash`:
        key, presignature and request ids, signers, SHA-256 of the message, and the child-key
        tweak this node derives itself from `path`): the same request again gets the same σ_i
        back, any other request for it (another path included) is refused.
        """
        key_id = self._check_key_id(str(req.key_id))
        presignature_id = bytes(req.presignature_id)
        request_id = bytes(req.request_id)
        message = bytes(req.message)
        # A pooled signature's "session" is its request id, the same on every signer.
        self._bind(
            session_id=request_id,
            key_id=key_id,
            protocol="cggmp-sign",
            presignature_id=presignature_id,
        )
        if len(presignature_id) != SESSION_ID_BYTES:
            raise InvalidInput("presignature id must be 16 bytes")
        if len(request_id) != REQUEST_ID_BYTES:
            raise InvalidInput("request id must be 16 bytes")
        if len(message) > MAX_MESSAGE_BYTES:
            raise InvalidInput("message too long")
        signers = tuple(sorted(int(s) for s in req.signers))
        if len(set(signers)) != len(signers) or self.party not in signers:
            raise InvalidInput("signers must be distinct and include this node")
        path = hd.check_path(req.path)
        self._bind(tenant=check_tenant(str(req.tenant), path))
        share = self._ecdsa_share(key_id)
        tweak = path_tweak(share.public, path)
        generation = share.public.generation
        # Refuse a mismatched request before consuming, so it cannot burn the presignature.
        for info in self.store.list_presignatures(key_id):
            if info.presignature_id == presignature_id:
                if info.signers != signers:
                    raise InvalidInput("signers differ from the presignature's signer set")
                if info.generation != generation:
                    raise InvalidInput("presignature belongs to an older key generation")
                break
        request = cggmp_sign.SignRequest(
            key_id=key_id,
            presignature_id=presignature_id,
            request_id=request_id,
            signers=signers,
            digest=cggmp_sign.message_digest(message),  # hashed here, never the caller's digest
            hash_kind=cggmp_sign.SIGN_HASH,
            tweak=tweak,  # in the request hash: no re-request of this presignature at another path
        )
        try:
            consumed = self.store.consume_presignature(
                presignature_id, key_id, request.request_hash()
            )
        except PresignatureUsed:
            raise InvalidInput(
                "presignature already used for another request; take another presignature"
            ) from None
        if consumed.signers != signers or consumed.generation != generation:
            raise InvalidInput("request does not match the presignature")
        audited = functools.partial(
            self._audit,
            ctx,
            "key.sign",
            required=True,  # no σ_i leaves unrecorded
            key_id=key_id,
            tenant=str(req.tenant) or None,
        )
        details = {
            "protocol": "cggmp-sign",
            "message_sha256": request.digest.hex(),
            "path": list(path),
            "signers": list(signers),
            "presignature_id": presignature_id.hex(),
            "request_id": request_id.hex(),
        }
        if consumed.cached_sigma is not None:
            log.info("presignature %s: resent request answered again", presignature_id.hex())
            await audited(details={**details, "resent": True})
            return node_pb2.PartialSignResponse(
                party=self.party, sigma=consumed.cached_sigma, presignature_public=consumed.public
            )
        if consumed.secret is None:
            raise InternalBug("consumed presignature has neither its secret nor a partial")
        presig = Presignature.decode(consumed.secret)
        if presig.party != self.party or presig.public.encode() != consumed.public:
            raise InvalidInput("stored presignature does not belong to this node")
        if presig.public.public_key != share.public.public_key:
            raise InvalidInput("presignature was made for another key")
        sigma = cggmp_sign.partial_sign(presig, request).to_bytes(DIGEST_BYTES, "big")
        self.store.record_partial(presignature_id, sigma)
        log.info("presignature %s consumed for key %s", presignature_id.hex(), key_id)
        await audited(details=details)
        return node_pb2.PartialSignResponse(
            party=self.party, sigma=sigma, presignature_public=consumed.public
        )

    async def aux_info_status(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        committee = tuple(sorted(int(p) for p in req.parties))
        if not committee or len(set(committee)) != len(committee):
            raise InvalidInput("parties must be distinct and non-empty")
        pool = self.pool
        ready_primes = await trio.to_thread.run_sync(pool.count)
        return node_pb2.AuxInfoStatusResponse(
            ready=self.store.get_aux_info(committee) is not None,
            primes_ready=ready_primes,
            primes_needed=AUX_INFO_PRIMES,
        )

    async def list_presignatures(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        key_id = self._check_key_id(str(req.key_id))
        if self.store.get_active(key_id) is None:
            raise KeyNotFound(f"no key {key_id!r} on this node")
        return node_pb2.ListPresignaturesResponse(
            presignatures=[
                node_pb2.PresignatureEntry(
                    presignature_id=bytes(info.presignature_id),
                    signers=list(info.signers),
                    generation=int(info.generation),
                )
                for info in self.store.list_presignatures(key_id)
            ]
        )

    def _record(self, stored: Any) -> Any:
        org, tenant = owner_of_store_tenant(stored.tenant)
        return key_record(
            stored.key_id, PublicKeyPackage.decode(stored.public), stored.confirmations, org, tenant
        )

    async def get_key_record(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        self._bind(key_id=str(req.key_id))
        stored = self.store.get_active(str(req.key_id))
        if stored is None:
            raise KeyNotFound(f"no key {req.key_id!r} on this node")
        return self._record(stored)

    async def list_key_records(self, _req: Any, _ctx: grpc.ServicerContext) -> Any:
        return node_pb2.ListKeyRecordsResponse(
            keys=[self._record(s) for s in self.store.list_active()]
        )

    async def identity_info(self, _req: Any, _ctx: grpc.ServicerContext) -> Any:
        entry = self.identity.public_entry()
        return node_pb2.IdentityResponse(
            party=entry.party, name=entry.name, signing_key=entry.signing_key, box_key=entry.box_key
        )


def peer_checker(allowed: Sequence[str]) -> Callable[[grpc.ServicerContext], None]:
    """Only the coordinator (by certificate common name) may call a node."""

    def check(context: grpc.ServicerContext) -> None:
        name = tls.peer_common_name(context)
        if name not in allowed:
            raise PermissionDenied("this caller may not use the node API")

    return check


def node_handlers(
    service: NodeService, token: trio.lowlevel.TrioToken, allowed: Sequence[str]
) -> grpc.GenericRpcHandler:
    methods = {
        "Start": (service.start, node_pb2.StartRequest, node_pb2.StepResponse),
        "Step": (service.step, node_pb2.StepRequest, node_pb2.StepResponse),
        "Abort": (service.abort, node_pb2.AbortRequest, node_pb2.AbortResponse),
        "GetKeyRecord": (
            service.get_key_record,
            node_pb2.GetKeyRecordRequest,
            envelope_pb2.KeyRecord,
        ),
        "ListKeyRecords": (
            service.list_key_records,
            node_pb2.ListKeyRecordsRequest,
            node_pb2.ListKeyRecordsResponse,
        ),
        "Identity": (service.identity_info, node_pb2.IdentityRequest, node_pb2.IdentityResponse),
        "PartialSign": (
            service.partial_sign,
            node_pb2.PartialSignRequest,
            node_pb2.PartialSignResponse,
        ),
        "AuxInfoStatus": (
            service.aux_info_status,
            node_pb2.AuxInfoStatusRequest,
            node_pb2.AuxInfoStatusResponse,
        ),
        "ListPresignatures": (
            service.list_presignatures,
            node_pb2.ListPresignaturesRequest,
            node_pb2.ListPresignaturesResponse,
        ),
        "CertifyGeneration": (
            service.certify_generation,
            node_pb2.CertifyGenerationRequest,
            node_pb2.CertifyGenerationResponse,
        ),
        "DeleteKey": (
            service.delete_key,
            node_pb2.NodeDeleteKeyRequest,
            node_pb2.NodeDeleteKeyResponse,
        ),
        "DeleteTenant": (
            service.delete_tenant,
            node_pb2.NodeDeleteTenantRequest,
            node_pb2.NodeDeleteTenantResponse,
        ),
        "RotateKek": (service.rotate_kek, node_pb2.RotateKekRequest, node_pb2.RotateKekResponse),
    }
    return generic_service(
        "mpc.v1.Node",
        token,
        methods,
        peer_checker(allowed),
        metrics=service.metrics,
        on_error=service.audit_refusal,
    )


def build_service(config: NodeConfig) -> NodeService:
    identity = NodeIdentity.load(config.identity_file, config.secret_files_group_readable)
    roster = Roster.load(config.roster_file)
    entry = roster.by_party(config.party)
    if identity.party != config.party or entry.name != config.name:
        raise InvalidInput("identity file, roster and config disagree about this node")
    if identity.public_entry() != entry:
        raise InvalidInput("this node's identity keys are not the ones pinned in the roster")
    if config.allow_test_primes:
        log.warning(
            "!!! TEST ONLY: allow_test_primes is on: this node accepts the PUBLIC fixture safe "
            "primes, and Paillier keys made from them are BROKEN. Never run it in production !!!"
        )
    elif config.test_primes_file is not None:
        log.warning("test_primes_file is ignored: it is honoured only with allow_test_primes")
    next_kek = None
    if config.kek_next_file is not None and config.kek_next_file.exists():
        next_kek = load_kek(config.kek_next_file, config.secret_files_group_readable)
    store = KeyStore(
        config.data_dir,
        config.name,
        load_kek(
            str(config.kek_file) if config.kek_file else None, config.secret_files_group_readable
        ),
        next_kek=next_kek,
    )
    log.info("key store open; KEK fingerprint %s", store.kek_fingerprint)
    pool = PrimePool(store, config.prime_pool_target, allow_test_primes=config.allow_test_primes)
    return NodeService(
        identity,
        roster,
        store,
        prime_pool=pool,
        allow_test_primes=config.allow_test_primes,
        max_sessions=config.max_sessions,
        kek_next_file=config.kek_next_file,
        kek_group_readable=config.secret_files_group_readable,
        # Refuses to start on a log that does not verify (AuditIntegrityError names the entry).
        audit=AuditLog(config.data_dir / AUDIT_DIR, log_id=config.name, signer=identity),
    )


def seed_test_primes(
    pool: PrimePool, path: Path, party: int, parties: Sequence[int], data_dir: Path
) -> int:
    """TEST ONLY: top `pool` up from a safe-prime fixture file; returns how many were added.

    It fills to the pool's target, and at least to what one aux-info takes (so a cluster run
    with ``--prime-pool 0``, i.e. no background generation, can still make its aux-info once).

    The file has the format of tests/fixtures/safe_primes.json. Each party takes its own slice
    of the primes of the pool's size (the k-th of the sorted `parties` gets the k-th
    len(primes) // len(parties) of them), so nodes of one cluster get distinct primes. A prime
    once added is recorded (by digest) in the data directory and never added again: after a
    restart an aux-info cannot get a prime an earlier one used.
    """
    if not pool.allow_test_primes:
        raise InvalidInput("test primes need a pool built with allow_test_primes")
    try:
        document = json.loads(path.read_text())
        hexes = document["safe_primes"].get(str(pool.bits), [])
        primes = [int(h, 16) for h in hexes]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"bad test primes file {path}: {exc.__class__.__name__}") from None
    ordered = sorted(parties)
    share = len(primes) // len(ordered)
    index = ordered.index(party)
    mine = primes[index * share : (index + 1) * share]
    used_file = data_dir / TEST_PRIMES_USED_FILE
    try:
        used = set(used_file.read_text().split())
    except FileNotFoundError:
        used = set()
    wanted = max(pool.target, AUX_INFO_PRIMES)
    added = 0
    for prime in mine:
        if pool.count() >= wanted:
            break
        digest = prime_digest(prime)
        if digest in used:
            continue
        used.add(digest)
        # Recorded before it enters the pool: a crash in between loses a prime, never reuses one.
        write_file_atomic(used_file, ("\n".join(sorted(used)) + "\n").encode(), 0o600)
        pool.add(prime)
        added += 1
    if pool.count() < wanted:
        log.warning(
            "test primes file %s has no unused primes left for party %d; %d of %d ready",
            path,
            party,
            pool.count(),
            wanted,
        )
    return added


async def serve(config_path: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run the node until cancelled."""
    config = NodeConfig.load(config_path)
    logs.set_process(config.name)
    service = build_service(config)
    handler = node_handlers(service, trio.lowlevel.current_trio_token(), config.allowed_clients)
    creds = tls.server_credentials(str(config.tls_ca), str(config.tls_cert), str(config.tls_key))
    pool = service.pool
    try:
        if config.allow_test_primes and config.test_primes_file is not None:
            added = await trio.to_thread.run_sync(
                seed_test_primes,
                pool,
                config.test_primes_file,
                config.party,
                service.roster.parties,
                config.data_dir,
            )
            log.warning("TEST ONLY: %d fixture primes added to the prime pool", added)
        with (
            metrics_endpoint(config.metrics_listen, service.metrics),
            running_server(config.listen, config.health_listen, handler, creds, max_workers=32),
        ):
            log.info("node %s (party %d) serving on %s", config.name, config.party, config.listen)
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_fill_prime_pool, pool)
                nursery.start_soon(service.sweep_sessions)
                await trio.sleep_forever()
    finally:
        terminate_workers()
        terminate_proof_workers()
        service.store.close()
        if service.audit is not None:
            service.audit.close()


async def _fill_prime_pool(pool: PrimePool) -> None:
    """Top the safe-prime pool up in the background worker process (never blocks serving)."""
    try:
        added = await pool.refill(generate_in_worker)
    except MpcError as exc:
        log.error("prime pool refill failed: %s", exc)
        return
    if added:
        log.info("prime pool: %d ready (%d generated)", pool.count(), added)


def main(argv: Sequence[str] | None = None) -> int:
    return run_process("mpc-node", "Run one threshold-signing node.", serve, argv)


if __name__ == "__main__":
    sys.exit(main())
