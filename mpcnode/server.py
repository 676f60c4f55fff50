"""The node process: holds this node's shares and runs protocol sessions for the coordinator.

All session state lives in one trio loop; gRPC threads only hand calls over
(`mpcnode.rpc`). Sessions are in memory only, so FROST nonces and unfinished
sessions die with the process: after a restart every outstanding commitment is
void. Shares reach disk sealed (`mpcnode.storage`) and a keygen is acknowledged
only after the share is durable.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import trio

from mpcnode import tls
from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.envelope import open_envelope, seal
from mpcnode.errors import (
    InvalidInput,
    KeyNotFound,
    MpcError,
    PermissionDenied,
    ProtocolAborted,
    SessionUnknown,
)
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.prime_pool import PrimePool, generate_in_worker, terminate_workers
from mpcnode.protocols.base import BROADCAST, Session, execution_id
from mpcnode.protocols.frost.dkg import FrostDkgSession
from mpcnode.protocols.frost.sign import FrostSignSession
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage
from mpcnode.rpc import generic_service, run_process, running_server
from mpcnode.storage import KeyStore, load_kek
from protos.mpc.v1 import envelope_pb2, node_pb2

log = logging.getLogger("mpcnode")

SESSION_ID_BYTES = 16
SESSION_TTL_SECONDS = 600.0
MAX_SESSIONS = 1024
MAX_MESSAGE_BYTES = 1024 * 1024
SCHEMES = ("ed25519",)
"""Schemes this build can generate keys for; secp256k1 (CGGMP21) is not built yet."""


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
    allowed_clients: tuple[str, ...] = ("coordinator",)
    prime_pool_target: int = 4
    """Safe primes kept ready for CGGMP aux-info (four per aux-info run)."""

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        try:
            raw: dict[str, Any] = json.loads(Path(path).read_text())
            return cls(
                name=str(raw["name"]),
                party=int(raw["party"]),
                listen=str(raw["listen"]),
                health_listen=str(raw["health_listen"]),
                data_dir=Path(raw["data_dir"]),
                identity_file=Path(raw["identity_file"]),
                roster_file=Path(raw["roster_file"]),
                tls_ca=Path(raw["tls"]["ca"]),
                tls_cert=Path(raw["tls"]["cert"]),
                tls_key=Path(raw["tls"]["key"]),
                kek_file=Path(raw["kek_file"]) if raw.get("kek_file") else None,
                allowed_clients=tuple(raw.get("allowed_clients", ["coordinator"])),
                prime_pool_target=int(raw.get("prime_pool_target", 4)),
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
    stored_pending: bool = False
    confirmations_delivered: bool = False
    own_confirmation: envelope_pb2.Envelope | None = None
    generation: int = 0


SessionFactory = Callable[..., Session[Any]]


@dataclass
class NodeService:
    """The node's protocol logic behind the gRPC surface (runs inside the trio loop)."""

    identity: NodeIdentity
    roster: Roster
    store: KeyStore
    sessions: dict[bytes, LiveSession] = field(default_factory=dict)
    # Injection points so tests can run a deliberately faulty node.
    dkg_factory: SessionFactory = FrostDkgSession
    sign_factory: SessionFactory = FrostSignSession

    @property
    def party(self) -> int:
        return int(self.identity.party)

    # -- helpers -----------------------------------------------------------------------------

    def _seal_all(self, session_id: bytes, protocol: str, outgoing: Sequence[Any]) -> list[Any]:
        return [seal(self.identity, self.roster, session_id, protocol, o) for o in outgoing]

    def _expire_sessions(self) -> None:
        now = trio.current_time()
        for sid, live in list(self.sessions.items()):
            if now - live.started > SESSION_TTL_SECONDS:
                self._drop(sid, "expired")

    def _drop(self, session_id: bytes, why: str) -> None:
        live = self.sessions.pop(session_id, None)
        if live is None:
            return
        log.info("session %s (%s) closed: %s", session_id.hex(), live.protocol, why)
        if live.protocol != "frost-dkg" or not live.stored_pending or live.session.done:
            return
        if live.confirmations_delivered:
            # Every holder had confirmed (the relay delivered all n confirmations), so the key
            # may be active elsewhere: keep this share pending rather than lose it.
            log.warning("key %s stays pending after a failed confirmation round", live.key_id)
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

    # -- RPC handlers ------------------------------------------------------------------------

    async def start(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        self._expire_sessions()
        sid = bytes(req.session_id)
        if len(sid) != SESSION_ID_BYTES:
            raise InvalidInput("session id must be 16 bytes")
        if sid in self.sessions:
            raise InvalidInput("session id already in use")
        if len(self.sessions) >= MAX_SESSIONS:
            raise InvalidInput("too many concurrent sessions")
        parties = self._check_parties(req.parties)
        key_id = str(req.key_id)
        if not key_id or len(key_id) > 128:
            raise InvalidInput("key id must be 1-128 characters")
        protocol = str(req.protocol)
        if protocol == "frost-dkg":
            if req.scheme not in SCHEMES:
                raise InvalidInput(f"unsupported scheme {req.scheme!r}")
            if self.store.get_active(key_id) is not None:
                raise InvalidInput("key id already exists")
            threshold = int(req.threshold)
            if not 2 <= threshold <= len(parties):
                raise InvalidInput("threshold must be between 2 and the number of parties")
            eid = execution_id(protocol, sid, key_id, parties, threshold)
            session = self.dkg_factory(
                party=self.party, parties=parties, threshold=threshold, eid=eid, scheme=req.scheme
            )
            live = LiveSession(protocol, session, key_id, parties, trio.current_time())
        elif protocol == "frost-sign":
            message = bytes(req.message)
            if len(message) > MAX_MESSAGE_BYTES:
                raise InvalidInput("message too long")
            stored = self.store.get_active(key_id)
            if stored is None:
                raise KeyNotFound(f"no key {key_id!r} on this node")
            share = KeyShare.decode(stored.secret())
            if share.public.scheme != "ed25519":
                raise InvalidInput("frost-sign needs an ed25519 key")
            eid = execution_id(protocol, sid, key_id, parties, share.public.threshold, message)
            session = self.sign_factory(key_share=share, signers=parties, message=message, eid=eid)
            live = LiveSession(protocol, session, key_id, parties, trio.current_time())
        else:
            raise InvalidInput(f"unknown protocol {protocol!r}")
        outgoing = session.start()
        self.sessions[sid] = live
        log.info("session %s (%s) started for key %s", sid.hex(), protocol, key_id)
        return node_pb2.StepResponse(
            envelopes=self._seal_all(sid, protocol, outgoing), done=session.done
        )

    async def step(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        sid = bytes(req.session_id)
        live = self.sessions.get(sid)
        if live is None:
            raise SessionUnknown("no such session on this node (finished, aborted or restarted)")
        if live.stored_pending:
            live.confirmations_delivered = True
        try:
            incoming = [
                open_envelope(self.identity, self.roster, env, sid, live.protocol)
                for env in req.envelopes
            ]
            for msg in incoming:
                if msg.sender not in live.parties:
                    raise ProtocolAborted("message from a party outside the session", [msg.sender])
            outgoing = live.session.receive(incoming)
            envelopes = self._seal_all(sid, live.protocol, outgoing)
            if live.protocol == "frost-dkg":
                self._dkg_progress(sid, live, req.envelopes, envelopes)
        except BaseException as exc:
            self._drop(sid, f"failed: {exc.__class__.__name__}")
            raise
        done = live.session.done
        if done:
            self._drop(sid, "done")
        return node_pb2.StepResponse(envelopes=envelopes, done=done)

    def _dkg_progress(
        self,
        sid: bytes,
        live: LiveSession,
        received: Sequence[Any],
        sent: Sequence[Any],
    ) -> None:
        """Persist the share before confirming it; activate it once everyone confirmed."""
        session = live.session
        if session.done:
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
            )
            live.stored_pending = True
            live.own_confirmation = next(e for e in sent if e.recipient == BROADCAST)

    async def abort(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        self._drop(bytes(req.session_id), "aborted by coordinator")
        return node_pb2.AbortResponse()

    def _record(self, stored: Any) -> Any:
        public = PublicKeyPackage.decode(stored.public)
        confirmations = [
            envelope_pb2.Envelope.FromString(raw) for raw in decode_fields(stored.confirmations)
        ]
        return envelope_pb2.KeyRecord(
            key_id=stored.key_id,
            scheme=public.scheme,
            threshold=public.threshold,
            parties=list(public.parties),
            public_key=public.public_key.encode(),
            verifying_shares=[y.encode() for y in public.verifying_shares],
            chain_code=public.chain_code,
            generation=public.generation,
            confirmations=confirmations,
        )

    async def get_key_record(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
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
    }
    return generic_service("mpc.v1.Node", token, methods, peer_checker(allowed))


def build_service(config: NodeConfig) -> NodeService:
    identity = NodeIdentity.load(config.identity_file)
    roster = Roster.load(config.roster_file)
    entry = roster.by_party(config.party)
    if identity.party != config.party or entry.name != config.name:
        raise InvalidInput("identity file, roster and config disagree about this node")
    if identity.public_entry() != entry:
        raise InvalidInput("this node's identity keys are not the ones pinned in the roster")
    store = KeyStore(
        config.data_dir, config.name, load_kek(str(config.kek_file) if config.kek_file else None)
    )
    return NodeService(identity, roster, store)


async def serve(config_path: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run the node until cancelled."""
    config = NodeConfig.load(config_path)
    service = build_service(config)
    handler = node_handlers(service, trio.lowlevel.current_trio_token(), config.allowed_clients)
    creds = tls.server_credentials(str(config.tls_ca), str(config.tls_cert), str(config.tls_key))
    pool = PrimePool(service.store, config.prime_pool_target)
    try:
        with running_server(config.listen, config.health_listen, handler, creds, max_workers=32):
            log.info("node %s (party %d) serving on %s", config.name, config.party, config.listen)
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_fill_prime_pool, pool)
                await trio.sleep_forever()
    finally:
        terminate_workers()
        service.store.close()


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
