"""The coordinator process: public API, session driver, key registry. It holds no secret.

It relays sealed, signed envelopes between nodes in lock-step rounds, checks
the signatures of everything it consumes itself (FROST commitments and shares,
DKG confirmations), aggregates FROST signatures, and picks signer quorums among
live nodes, retrying with another quorum when a signer dies or cheats. Its key
registry is a cache that can always be rebuilt from the nodes: every key record
carries the signed confirmations of all its holders.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import trio

from mpcnode import tls
from mpcnode.crypto.group import GROUPS
from mpcnode.envelope import verify_envelope
from mpcnode.errors import (
    InvalidInput,
    InvalidSignature,
    KeyNotFound,
    MpcError,
    ProtocolAborted,
    QuorumUnavailable,
)
from mpcnode.identity import Roster
from mpcnode.protocols.base import BROADCAST, COORDINATOR, execution_id
from mpcnode.protocols.frost.sign import FrostAggregator
from mpcnode.protocols.keys import PublicKeyPackage
from mpcnode.rpc import (
    CHANNEL_OPTIONS,
    call,
    culprits_of,
    generic_service,
    run_process,
    running_server,
)
from protos.mpc.v1 import coordinator_pb2, node_pb2, node_pb2_grpc

log = logging.getLogger("coordinator")

PROBE_TIMEOUT = 3.0
ROUND_TIMEOUT = 60.0
SIGN_ATTEMPTS = 3
MAX_MESSAGE_BYTES = 1024 * 1024
SUPPORTED_SCHEMES = ("ed25519",)

Envelope = Any  # envelope_pb2.Envelope
Tap = Callable[[Envelope], Envelope]


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

    @classmethod
    def load(cls, path: str | Path) -> CoordinatorConfig:
        try:
            raw: dict[str, Any] = json.loads(Path(path).read_text())
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
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"bad coordinator config {path}: {exc.__class__.__name__}") from exc


class NodeCallFailed(MpcError):
    """A node RPC failed; carries the party and the gRPC status."""

    def __init__(self, party: int, code: grpc.StatusCode, details: str, culprits: tuple[int, ...]):
        self.party = party
        self.code = code
        self.details = details
        self.culprits = culprits
        super().__init__(f"party {party}: {code.name}: {details}")


@dataclass
class SessionTranscript:
    """Every envelope the nodes produced in one session, by round."""

    session_id: bytes
    rounds: list[list[Envelope]] = field(default_factory=list)

    def from_round(self, number: int) -> list[Envelope]:
        return list(self.rounds[number - 1])


def key_info(record: Any) -> Any:
    return coordinator_pb2.KeyInfo(
        key_id=record.key_id,
        scheme=record.scheme,
        public_key=record.public_key,
        threshold=record.threshold,
        parties=len(record.parties),
        chain_code=record.chain_code,
        generation=record.generation,
    )


def package_of(record: Any) -> PublicKeyPackage:
    """Decode and validate the public key package carried in a node's key record."""
    group = GROUPS.get(record.scheme)
    if group is None:
        raise ProtocolAborted(f"node reported unknown scheme {record.scheme!r}")
    package = PublicKeyPackage(
        scheme=record.scheme,
        threshold=record.threshold,
        parties=tuple(record.parties),
        public_key=group.decode_point(bytes(record.public_key)),
        verifying_shares=tuple(group.decode_point(bytes(v)) for v in record.verifying_shares),
        chain_code=bytes(record.chain_code),
        generation=record.generation,
    )
    return PublicKeyPackage.decode(package.encode())  # decode runs every consistency check


class Coordinator:
    """Drives sessions over a set of node stubs. Usable in-process (tests) or behind gRPC."""

    def __init__(
        self,
        roster: Roster,
        nodes: Sequence[NodeAddress],
        channel_factory: Callable[[str], grpc.Channel],
    ) -> None:
        self.roster = roster
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

    def close(self) -> None:
        for ch in self._channels.values():
            ch.close()

    def name_of(self, party: int) -> str:
        node = self.nodes.get(party)
        return node.name if node else f"party-{party}"

    # -- node calls --------------------------------------------------------------------------

    async def _call(self, party: int, method: str, request: Any, timeout: float) -> Any:
        try:
            return await call(getattr(self.stubs[party], method), request, timeout)
        except grpc.RpcError as err:
            code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
            details = err.details() if hasattr(err, "details") else ""
            raise NodeCallFailed(party, code, details or "", culprits_of(err)) from None

    async def _fanout(
        self, requests: dict[int, tuple[str, Any]], timeout: float
    ) -> tuple[dict[int, Any], dict[int, NodeCallFailed]]:
        results: dict[int, Any] = {}
        failures: dict[int, NodeCallFailed] = {}

        async def one(party: int, method: str, request: Any) -> None:
            try:
                results[party] = await self._call(party, method, request, timeout)
            except NodeCallFailed as exc:
                failures[party] = exc

        async with trio.open_nursery() as nursery:
            for party, (method, request) in requests.items():
                nursery.start_soon(one, party, method, request)
        return results, failures

    async def probe(self, parties: Sequence[int]) -> list[int]:
        """The parties that answer an Identity call with the identity pinned in the roster."""
        results, _ = await self._fanout(
            {p: ("Identity", node_pb2.IdentityRequest()) for p in parties}, PROBE_TIMEOUT
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
            for c in culprits:
                self.blamed.append((what, c))
            names = ", ".join(self.name_of(c) for c in culprits)
            reason = aborted[0].details
            raise ProtocolAborted(
                f"{what} aborted: {reason}" + (f"; misbehaving: {names}" if names else ""),
                culprits,
            )
        unreachable = {
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.CANCELLED,
            grpc.StatusCode.FAILED_PRECONDITION,
        }
        if all(f.code in unreachable for f in failures.values()):
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

    async def run_session(self, start: Any, parties: Sequence[int]) -> SessionTranscript:
        """Run one lock-step session among `parties`; abort it on every node on failure."""
        transcript = SessionTranscript(bytes(start.session_id))
        try:
            results, failures = await self._fanout(
                {p: ("Start", start) for p in parties}, ROUND_TIMEOUT
            )
            while True:
                if failures:
                    self._raise_for(failures, start.protocol)
                for party in parties:
                    self._check_produced(start, party, results[party].envelopes)
                produced = [self._relay(e) for p in parties for e in results[p].envelopes]
                transcript.rounds.append(produced)
                done = {p for p in parties if results[p].done}
                if done == set(parties):
                    return transcript
                if done:
                    raise ProtocolAborted("nodes disagree about the end of the session")
                inbox = {
                    p: [e for e in produced if e.sender != p and e.recipient in (BROADCAST, p)]
                    for p in parties
                }
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
        except BaseException:
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
                self.blamed.append((start.protocol, party))
                raise ProtocolAborted(
                    f"{self.name_of(party)} produced a bad envelope: {exc}", [party]
                ) from None

    def _relay(self, envelope: Envelope) -> Envelope:
        return self.tap(envelope) if self.tap is not None else envelope

    # -- keys --------------------------------------------------------------------------------

    def _verify_record(self, record: Any) -> PublicKeyPackage:
        """A key record is trusted only with a valid confirmation from every holder."""
        package = package_of(record)
        confirmed = set()
        for env in record.confirmations:
            verify_envelope(self.roster, env)
            eid = execution_id(
                env.protocol,
                bytes(env.session_id),
                record.key_id,
                package.parties,
                package.threshold,
            )
            if env.recipient != BROADCAST or bytes(env.payload) != package.confirmation_digest(eid):
                raise ProtocolAborted("key record confirmation does not match", [env.sender])
            confirmed.add(env.sender)
        if confirmed != set(package.parties):
            raise ProtocolAborted("key record is not confirmed by every holder")
        return package

    async def create_key(self, scheme: str, threshold: int, parties: int) -> Any:
        if scheme not in SUPPORTED_SCHEMES:
            raise InvalidInput(
                f"scheme {scheme!r} is not available; supported: {', '.join(SUPPORTED_SCHEMES)}"
            )
        everyone = sorted(self.nodes)
        if parties != len(everyone):
            raise InvalidInput(f"parties must be {len(everyone)}: keys are shared by every node")
        if not 2 <= threshold <= parties:
            raise InvalidInput(f"threshold must be between 2 and {parties}")
        alive = await self.probe(everyone)
        missing = [p for p in everyone if p not in alive]
        if missing:
            raise QuorumUnavailable(
                "key generation needs every node", [self.name_of(p) for p in missing]
            )
        key_id = str(uuid.uuid4())
        start = node_pb2.StartRequest(
            session_id=os.urandom(16),
            protocol="frost-dkg",
            key_id=key_id,
            threshold=threshold,
            parties=everyone,
            scheme=scheme,
        )
        await self.run_session(start, everyone)
        record = await self._fetch_record(key_id, everyone)
        log.info("created %s key %s (%d-of-%d)", scheme, key_id, threshold, parties)
        return key_info(record)

    async def _fetch_record(self, key_id: str, parties: Sequence[int]) -> Any:
        results, failures = await self._fanout(
            {p: ("GetKeyRecord", node_pb2.GetKeyRecordRequest(key_id=key_id)) for p in parties},
            PROBE_TIMEOUT,
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
        serialized = {r.SerializeToString(deterministic=True) for r in records.values()}
        if len(serialized) > 1:
            log.warning("nodes hold different records for key %s", key_id)
        best = records[min(records)]
        self.registry[key_id] = best
        return best

    async def get_record(self, key_id: str) -> Any:
        if not key_id:
            raise InvalidInput("key id is required")
        record = self.registry.get(key_id)
        if record is None:
            record = await self._fetch_record(key_id, sorted(self.nodes))
        return record

    async def list_keys(self) -> list[Any]:
        results, _ = await self._fanout(
            {p: ("ListKeyRecords", node_pb2.ListKeyRecordsRequest()) for p in self.nodes},
            PROBE_TIMEOUT,
        )
        for party, resp in sorted(results.items()):
            for record in resp.keys:
                if record.key_id in self.registry:
                    continue
                try:
                    self._verify_record(record)
                except MpcError as exc:
                    log.error("%s listed an invalid record: %s", self.name_of(party), exc)
                    continue
                self.registry[record.key_id] = record
        return [self.registry[k] for k in sorted(self.registry)]

    # -- signing -----------------------------------------------------------------------------

    async def sign(self, key_id: str, message: bytes) -> tuple[bytes, Any, list[int]]:
        """Sign with the first t live holders; on a dead or cheating signer retry without it."""
        if len(message) > MAX_MESSAGE_BYTES:
            raise InvalidInput(f"message longer than {MAX_MESSAGE_BYTES} bytes")
        record = await self.get_record(key_id)
        package = package_of(record)
        if package.scheme != "ed25519":
            raise InvalidInput(f"signing with scheme {package.scheme!r} is not available")
        excluded: set[int] = set()
        last_error: MpcError | None = None
        for _attempt in range(SIGN_ATTEMPTS):
            candidates = [p for p in package.parties if p not in excluded]
            alive = await self.probe(candidates)
            if len(alive) < package.threshold:
                missing = [p for p in package.parties if p not in alive]
                raise QuorumUnavailable(
                    f"signing needs {package.threshold} of {len(package.parties)} nodes, "
                    f"{len(alive)} available",
                    [self.name_of(p) for p in missing],
                )
            signers = alive[: package.threshold]
            try:
                signature = await self._sign_once(record, package, signers, message)
                return signature, record, signers
            except ProtocolAborted as exc:
                last_error = exc
                if not exc.culprits:
                    raise
                excluded.update(exc.culprits)
                log.warning(
                    "signing for %s: %s misbehaved; retrying without",
                    key_id,
                    ", ".join(self.name_of(c) for c in exc.culprits),
                )
            except QuorumUnavailable as exc:
                last_error = exc
                lost = {p for p in signers if self.name_of(p) in exc.missing}
                excluded.update(lost or set(signers))
                log.warning("signing for %s: lost %s; retrying", key_id, ", ".join(exc.missing))
        assert last_error is not None
        raise last_error

    async def _sign_once(
        self, record: Any, package: PublicKeyPackage, signers: list[int], message: bytes
    ) -> bytes:
        start = node_pb2.StartRequest(
            session_id=os.urandom(16),
            protocol="frost-sign",
            key_id=record.key_id,
            parties=signers,
            message=message,
        )
        transcript = await self.run_session(start, signers)
        aggregator = FrostAggregator(package, signers, message)
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
            for c in exc.culprits:
                self.blamed.append(("frost-sign", c))
            raise


class CoordinatorApi:
    """The public gRPC surface (mpc.v1.Coordinator) over a `Coordinator`."""

    def __init__(self, coordinator: Coordinator) -> None:
        self.c = coordinator

    async def create_key(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        scheme = req.scheme or "ed25519"
        return await self.c.create_key(scheme, req.threshold or 3, req.parties or 5)

    async def get_key(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        return key_info(await self.c.get_record(req.key_id))

    async def list_keys(self, _req: Any, _ctx: grpc.ServicerContext) -> Any:
        return coordinator_pb2.ListKeysResponse(
            keys=[key_info(r) for r in await self.c.list_keys()]
        )

    async def sign(self, req: Any, _ctx: grpc.ServicerContext) -> Any:
        signature, record, signers = await self.c.sign(req.key_id, bytes(req.message))
        return coordinator_pb2.SignResponse(
            key_id=record.key_id,
            signature=signature,
            public_key=record.public_key,
            signers=[self.c.name_of(p) for p in signers],
        )

    def handlers(self, token: trio.lowlevel.TrioToken) -> grpc.GenericRpcHandler:
        methods = {
            "CreateKey": (
                self.create_key,
                coordinator_pb2.CreateKeyRequest,
                coordinator_pb2.KeyInfo,
            ),
            "GetKey": (self.get_key, coordinator_pb2.GetKeyRequest, coordinator_pb2.KeyInfo),
            "ListKeys": (
                self.list_keys,
                coordinator_pb2.ListKeysRequest,
                coordinator_pb2.ListKeysResponse,
            ),
            "Sign": (self.sign, coordinator_pb2.SignRequest, coordinator_pb2.SignResponse),
        }
        return generic_service("mpc.v1.Coordinator", token, methods)


def tls_channel_factory(ca: Path, cert: Path, key: Path) -> Callable[[str], grpc.Channel]:
    creds = tls.channel_credentials(str(ca), str(cert), str(key))

    def make(address: str) -> grpc.Channel:
        return grpc.secure_channel(address, creds, options=CHANNEL_OPTIONS)

    return make


async def serve(config_path: str, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run the coordinator until cancelled."""
    config = CoordinatorConfig.load(config_path)
    roster = Roster.load(config.roster_file)
    coordinator = Coordinator(
        roster, config.nodes, tls_channel_factory(config.tls_ca, config.tls_cert, config.tls_key)
    )
    api = CoordinatorApi(coordinator).handlers(trio.lowlevel.current_trio_token())
    creds = tls.server_credentials(str(config.tls_ca), str(config.tls_cert), str(config.tls_key))
    try:
        with running_server(config.listen, config.health_listen, api, creds, max_workers=64):
            log.info("coordinator serving on %s for %d nodes", config.listen, len(config.nodes))
            task_status.started(coordinator)
            await trio.sleep_forever()
    finally:
        coordinator.close()


def main(argv: Sequence[str] | None = None) -> int:
    return run_process("mpc-coordinator", "Run the coordinator.", serve, argv)


if __name__ == "__main__":
    sys.exit(main())
