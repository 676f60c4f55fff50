"""CGGMP ECDSA through the node service: five real node services over gRPC with mTLS.

secp256k1 keygen (the FROST DKG), aux-info seeded from the test fixture, presigning relayed by
the coordinator, pooled partial signing (consume-once, also across a store restart), the
interactive digest session, the status RPCs, and the heavy rounds running off the trio loop.
Every signature is checked by coincurve and by cryptography. One real aux-info run through the
nodes is slow and runs only with MPC_SLOW_TESTS=1.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import coincurve
import grpc
import pytest
import trio

from coordinator.devcluster import Cluster
from coordinator.server import package_of
from mpcnode.crypto.group import SECP256K1
from mpcnode.crypto.sharing import lagrange_coefficient
from mpcnode.envelope import verify_envelope
from mpcnode.errors import InvalidInput, ProtocolAborted
from mpcnode.prime_pool import PrimePool
from mpcnode.protocols.base import BROADCAST, COORDINATOR, Outgoing, Session, execution_id
from mpcnode.protocols.cggmp import sign
from mpcnode.protocols.cggmp.aux_info import AuxInfo
from mpcnode.protocols.cggmp.presign import PresignaturePublic
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage
from mpcnode.rpc import call
from mpcnode.server import NodeConfig, build_service, seed_test_primes
from mpcnode.storage import KeyStore
from mpcnode.workers import terminate_proof_workers
from protos.mpc.v1 import node_pb2
from tests.ecdsa_checks import check_ecdsa_signature
from tests.fixtures.aux_info import TEST_COMMITTEE, load_test_aux_info_blobs
from tests.fixtures.primes import FIXTURE_PATH as PRIMES_FIXTURE
from tests.fixtures.primes import load_test_primes
from tests.integration.conftest import InProcessCluster, open_cluster

PARTIES = (1, 2, 3, 4, 5)
THRESHOLD = 3
Q = SECP256K1.order
CALL_TIMEOUT = 120.0


@pytest.fixture(scope="module", autouse=True)
def _stop_proof_workers() -> Iterator[None]:
    yield
    terminate_proof_workers()


@pytest.fixture
async def ecdsa_cluster(tmp_path: Path) -> Any:
    async with open_cluster(tmp_path, allow_test_primes=True) as opened:
        yield opened


# --------------------------------------------------------------------------- helpers


async def node_call(cluster: InProcessCluster, party: int, method: str, request: Any) -> Any:
    return await call(getattr(cluster.coordinator.stubs[party], method), request, CALL_TIMEOUT)


async def node_error(
    cluster: InProcessCluster, party: int, method: str, request: Any
) -> tuple[grpc.StatusCode, str]:
    """Call a node RPC that must fail; its status code and details."""
    with pytest.raises(grpc.RpcError) as info:
        await node_call(cluster, party, method, request)
    return info.value.code(), info.value.details()


async def make_key(cluster: InProcessCluster) -> tuple[str, PublicKeyPackage]:
    """A secp256k1 3-of-5 key made by the DKG over the relay; its verified public package."""
    key_id = f"ecdsa-{os.urandom(4).hex()}"
    start = node_pb2.StartRequest(
        session_id=os.urandom(16),
        protocol="frost-dkg",
        key_id=key_id,
        threshold=THRESHOLD,
        parties=PARTIES,
        scheme="secp256k1",
    )
    await cluster.coordinator.run_session(start, PARTIES)
    record = await cluster.coordinator.get_record(key_id)  # checks every holder's confirmation
    return key_id, package_of(record)


def seed_aux_info(cluster: InProcessCluster) -> None:
    blobs = load_test_aux_info_blobs()
    for party, service in cluster.services.items():
        service.store.put_aux_info(TEST_COMMITTEE, blobs[party])


async def presign(cluster: InProcessCluster, key_id: str, signers: Sequence[int]) -> bytes:
    """Run cggmp-presign among `signers` through the coordinator's relay; the presignature id."""
    sid = os.urandom(16)
    start = node_pb2.StartRequest(
        session_id=sid, protocol="cggmp-presign", key_id=key_id, parties=signers
    )
    transcript = await cluster.coordinator.run_session(start, signers)
    # Four wire rounds; the Step that finishes the session answers with no envelope.
    assert [len(r) > 0 for r in transcript.rounds] == [True] * 4 + [False]
    return sid


def partial_request(
    key_id: str, presignature_id: bytes, request_id: bytes, signers: Sequence[int], message: bytes
) -> Any:
    return node_pb2.PartialSignRequest(
        key_id=key_id,
        presignature_id=presignature_id,
        request_id=request_id,
        signers=signers,
        message=message,
    )


def reopen_store(cluster: InProcessCluster, party: int) -> None:
    """A node restart as far as durable state goes: close its KeyStore, open it again."""
    service = cluster.services[party]
    service.store.close()
    service.store = KeyStore(cluster.data_dirs[party], service.identity.name, cluster.keks[party])
    service.prime_pool = PrimePool(service.store, 4, allow_test_primes=True)
    service.sessions.clear()
    service._aux_cache.clear()


# --------------------------------------------------------------------------- keygen


async def test_secp256k1_keygen_over_five_nodes(ecdsa_cluster: InProcessCluster) -> None:
    key_id, package = await make_key(ecdsa_cluster)
    assert package.scheme == "secp256k1" and package.threshold == THRESHOLD
    public_key = package.public_key.encode()
    assert len(public_key) == 33 and public_key[0] in (2, 3)
    shares = {}
    for party, service in ecdsa_cluster.services.items():
        stored = service.store.get_active(key_id)
        assert stored is not None
        share = KeyShare.decode(stored.secret())
        assert share.public == package and share.party == party
        shares[party] = share.secret_share
    # Any three shares interpolate to the key coincurve derives the public key from (test only).
    for subset in ((1, 2, 3), (2, 4, 5)):
        secret = sum(shares[j] * lagrange_coefficient(Q, j, subset) for j in subset) % Q
        derived = coincurve.PrivateKey(secret.to_bytes(32, "big")).public_key.format()
        assert derived == public_key


# --------------------------------------------------------------------------- pool signing


async def test_presign_partial_sign_and_single_use(ecdsa_cluster: InProcessCluster) -> None:
    cluster = ecdsa_cluster
    key_id, package = await make_key(cluster)
    public_key = package.public_key.encode()
    seed_aux_info(cluster)
    signers = (1, 2, 3)
    pid = await presign(cluster, key_id, signers)

    # Each signer holds it; the other holders do not.
    for party in PARTIES:
        listed = await node_call(
            cluster, party, "ListPresignatures", node_pb2.ListPresignaturesRequest(key_id=key_id)
        )
        entries = [(bytes(e.presignature_id), tuple(e.signers)) for e in listed.presignatures]
        assert entries == ([(pid, signers)] if party in signers else [])
        assert all(e.generation == package.generation for e in listed.presignatures)

    # A request naming other signers is refused and does not burn the presignature.
    wrong = partial_request(key_id, pid, os.urandom(16), (1, 2, 4), b"x")
    code, details = await node_error(cluster, 1, "PartialSign", wrong)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "signer" in details
    assert cluster.services[1].store.count_presignatures(key_id, signers) == 1

    message = b"transfer 5 BTC to bob"
    request_id = os.urandom(16)
    req = partial_request(key_id, pid, request_id, signers, message)
    responses = [await node_call(cluster, p, "PartialSign", req) for p in signers]
    assert [r.party for r in responses] == list(signers)
    assert all(len(r.sigma) == 32 for r in responses)
    assert len({bytes(r.presignature_public) for r in responses}) == 1
    public = PresignaturePublic.decode(bytes(responses[0].presignature_public))
    assert public.signers == signers and public.public_key == package.public_key
    digest = sign.message_digest(message)
    sign_request = sign.SignRequest(key_id, pid, request_id, signers, digest, sign.SIGN_HASH)
    partials = {r.party: int.from_bytes(r.sigma, "big") for r in responses}
    signature = sign.combine(public, sign_request, partials)
    check_ecdsa_signature(public_key, digest, signature)
    # The nodes hashed the message with SHA-256 themselves: coincurve's own hashing agrees.
    assert coincurve.PublicKey(public_key).verify(signature.der(), message)

    # A wrong σ from one signer is caught by the combiner and names it.
    bad = dict(partials)
    bad[2] = (bad[2] + 1) % Q
    with pytest.raises(ProtocolAborted) as aborted:
        sign.combine(public, sign_request, bad)
    assert aborted.value.culprits == (2,)

    # The same request again: the same σ_i (idempotent resend).
    again = [await node_call(cluster, p, "PartialSign", req) for p in signers]
    assert [bytes(r.sigma) for r in again] == [bytes(r.sigma) for r in responses]

    # Any other request on the consumed presignature is refused.
    for other in (
        partial_request(key_id, pid, request_id, signers, b"transfer 500 BTC to mallory"),
        partial_request(key_id, pid, os.urandom(16), signers, message),
    ):
        code, details = await node_error(cluster, 1, "PartialSign", other)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "presignature already used" in details

    # Consumed presignatures are no longer listed.
    listed = await node_call(
        cluster, 2, "ListPresignatures", node_pb2.ListPresignaturesRequest(key_id=key_id)
    )
    assert list(listed.presignatures) == []

    # After a restart (store closed and reopened) it is still consumed, and a resend still
    # gets the recorded σ_i.
    reopen_store(cluster, 1)
    code, details = await node_error(
        cluster,
        1,
        "PartialSign",
        partial_request(key_id, pid, os.urandom(16), signers, b"after restart"),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "presignature already used" in details
    resent = await node_call(cluster, 1, "PartialSign", req)
    assert bytes(resent.sigma) == bytes(responses[0].sigma)

    # An unknown presignature is NOT_FOUND; an unknown key too.
    code, _ = await node_error(
        cluster,
        1,
        "PartialSign",
        partial_request(key_id, os.urandom(16), os.urandom(16), signers, message),
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await node_error(
        cluster, 1, "ListPresignatures", node_pb2.ListPresignaturesRequest(key_id="nope")
    )
    assert code == grpc.StatusCode.NOT_FOUND


async def test_presignature_consumed_before_restart_is_refused(
    ecdsa_cluster: InProcessCluster,
) -> None:
    """Consumed on one node, which restarts before the others sign: still single use."""
    cluster = ecdsa_cluster
    key_id, package = await make_key(cluster)
    seed_aux_info(cluster)
    signers = (3, 4, 5)
    pid = await presign(cluster, key_id, signers)
    first = partial_request(key_id, pid, os.urandom(16), signers, b"first")
    sigma_5 = await node_call(cluster, 5, "PartialSign", first)
    reopen_store(cluster, 5)
    code, details = await node_error(
        cluster, 5, "PartialSign", partial_request(key_id, pid, os.urandom(16), signers, b"second")
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "presignature already used" in details
    # The first request completes on the others and verifies.
    responses = [await node_call(cluster, p, "PartialSign", first) for p in (3, 4)]
    responses.append(await node_call(cluster, 5, "PartialSign", first))
    assert bytes(responses[-1].sigma) == bytes(sigma_5.sigma)
    public = PresignaturePublic.decode(bytes(responses[0].presignature_public))
    digest = sign.message_digest(b"first")
    request = sign.SignRequest(
        key_id, pid, bytes(first.request_id), signers, digest, sign.SIGN_HASH
    )
    signature = sign.combine(
        public, request, {r.party: int.from_bytes(r.sigma, "big") for r in responses}
    )
    check_ecdsa_signature(package.public_key.encode(), digest, signature)


# --------------------------------------------------------------------------- digest signing


async def test_digest_signing_session(ecdsa_cluster: InProcessCluster) -> None:
    cluster = ecdsa_cluster
    key_id, package = await make_key(cluster)
    seed_aux_info(cluster)
    signers = (2, 4, 5)
    digest = os.urandom(32)
    sid = os.urandom(16)
    start = node_pb2.StartRequest(
        session_id=sid, protocol="cggmp-sign-digest", key_id=key_id, parties=signers, message=digest
    )
    transcript = await cluster.coordinator.run_session(start, signers)
    last = transcript.rounds[-1]
    assert len(transcript.rounds) == 5
    assert sorted(e.sender for e in last) == list(signers)
    assert all(e.recipient == COORDINATOR and e.round == 5 for e in last)
    partials: dict[int, int] = {}
    publics = set()
    for env in last:
        verify_envelope(cluster.roster, env)
        sigma, public = sign.decode_partial(bytes(env.payload))
        partials[env.sender] = sigma
        publics.add(public.encode())
    assert len(publics) == 1
    eid = execution_id("cggmp-sign-digest", sid, key_id, signers, THRESHOLD, digest)
    request = sign.digest_request(key_id, eid, signers, digest)
    signature = sign.combine(public, request, partials)
    check_ecdsa_signature(package.public_key.encode(), digest, signature)
    # Interactive signing stores nothing.
    for party in signers:
        assert cluster.services[party].store.list_presignatures(key_id) == []
        assert cluster.services[party].sessions == {}


# --------------------------------------------------------------------------- refusals


async def test_cggmp_starts_are_checked(ecdsa_cluster: InProcessCluster) -> None:
    cluster = ecdsa_cluster
    key_id, _ = await make_key(cluster)

    def start(
        protocol: str, parties: Sequence[int], key: str = key_id, message: bytes = b""
    ) -> Any:
        return node_pb2.StartRequest(
            session_id=os.urandom(16),
            protocol=protocol,
            key_id=key,
            parties=parties,
            message=message,
        )

    # No aux-info yet: FAILED_PRECONDITION telling the operator what to run.
    code, details = await node_error(cluster, 1, "Start", start("cggmp-presign", (1, 2, 3)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "no aux-info" in details
    # Aux-info with an empty prime pool: FAILED_PRECONDITION naming how many primes are ready.
    code, details = await node_error(cluster, 1, "Start", start("cggmp-aux-info", PARTIES, ""))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "0 ready" in details
    # Aux-info takes no key id and needs the whole committee.
    for bad in (start("cggmp-aux-info", PARTIES), start("cggmp-aux-info", (1, 2, 3, 4), "")):
        code, _ = await node_error(cluster, 1, "Start", bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT

    seed_aux_info(cluster)
    for bad in (
        start("cggmp-presign", (1, 2)),  # fewer than t signers
        start("cggmp-presign", (1, 2, 3, 4)),  # more than t
        start("cggmp-sign-digest", (1, 2, 3), message=b"\x01" * 31),  # not a 32-byte digest
        start("cggmp-sign-digest", (1, 2, 3), message=b"\x01" * 33),
    ):
        code, _ = await node_error(cluster, 1, "Start", bad)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await node_error(cluster, 1, "Start", start("cggmp-presign", (1, 2, 3), "nope"))
    assert code == grpc.StatusCode.NOT_FOUND

    # An ed25519 key is refused by the ECDSA protocols and PartialSign.
    info = await cluster.coordinator.create_key("ed25519", 3, 5)
    code, _ = await node_error(cluster, 1, "Start", start("cggmp-presign", (1, 2, 3), info.key_id))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await node_error(
        cluster,
        1,
        "PartialSign",
        partial_request(info.key_id, os.urandom(16), os.urandom(16), (1, 2, 3), b"m"),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    for service in cluster.services.values():
        assert service.sessions == {}


async def test_aux_info_status(ecdsa_cluster: InProcessCluster) -> None:
    cluster = ecdsa_cluster
    request = node_pb2.AuxInfoStatusRequest(parties=PARTIES)
    status = await node_call(cluster, 2, "AuxInfoStatus", request)
    assert (status.ready, status.primes_ready, status.primes_needed) == (False, 0, 4)
    pool = cluster.services[2].prime_pool
    assert pool is not None
    for prime in load_test_primes(1536)[4:7]:
        pool.add(prime)
    seed_aux_info(cluster)
    status = await node_call(cluster, 2, "AuxInfoStatus", request)
    assert (status.ready, status.primes_ready, status.primes_needed) == (True, 3, 4)
    # Aux-info is per committee: another committee has none.
    other = await node_call(
        cluster, 2, "AuxInfoStatus", node_pb2.AuxInfoStatusRequest(parties=[1, 2])
    )
    assert other.ready is False


# --------------------------------------------------------------------------- worker offload


class GatedAuxInfo(Session[AuxInfo]):
    """An aux-info stand-in whose first round blocks (in whatever process runs it) until a
    file exists: if it ran on the node's trio loop, nothing else would be answered meanwhile."""

    protocol = "cggmp-aux-info"

    def __init__(self, gate: str, **_: Any) -> None:
        super().__init__()
        self.gate = gate

    def _start(self) -> list[Outgoing]:
        deadline = time.monotonic() + 60
        while not Path(self.gate).exists():
            if time.monotonic() > deadline:
                raise InvalidInput("gate never opened")
            time.sleep(0.01)
        return [Outgoing(1, BROADCAST, b"round one")]

    def _receive(self, messages: Any) -> list[Outgoing]:
        raise InvalidInput("not expected")


async def test_heavy_rounds_run_off_the_event_loop(
    ecdsa_cluster: InProcessCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = ecdsa_cluster
    service = cluster.services[1]
    assert service.prime_pool is not None
    for prime in load_test_primes(1536)[:4]:
        service.prime_pool.add(prime)
    gate = tmp_path / "gate"
    service.aux_info_factory = functools.partial(GatedAuxInfo, str(gate))
    sid = os.urandom(16)
    start = node_pb2.StartRequest(session_id=sid, protocol="cggmp-aux-info", parties=PARTIES)
    results: dict[str, Any] = {}

    async def run_start() -> None:
        results["start"] = await node_call(cluster, 1, "Start", start)

    with trio.fail_after(90):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_start)
            # The node registers the session before its first round runs (no event to wait on).
            while sid not in service.sessions:  # noqa: ASYNC110
                await trio.sleep(0.01)
            # The round is computing in a worker: the node answers other calls meanwhile.
            identity = await node_call(cluster, 1, "Identity", node_pb2.IdentityRequest())
            status = await node_call(
                cluster, 1, "AuxInfoStatus", node_pb2.AuxInfoStatusRequest(parties=PARTIES)
            )
            assert "start" not in results
            gate.write_text("open")
    assert identity.party == 1
    assert status.primes_ready == 0  # the four primes were taken for this session
    response = results["start"]
    assert not response.done and [bytes(e.payload) for e in response.envelopes] == [b"round one"]
    assert isinstance(service.sessions[sid].session, GatedAuxInfo)
    with caplog.at_level(logging.WARNING, logger="mpcnode"):
        await node_call(cluster, 1, "Abort", node_pb2.AbortRequest(session_id=sid))
    assert sid not in service.sessions
    assert any("primes are discarded" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- test primes


def test_seed_test_primes_gives_each_party_its_own_primes_once(tmp_path: Path) -> None:
    fixture = load_test_primes(1536)
    per_party = len(fixture) // len(PARTIES)
    taken: dict[int, list[int]] = {}
    for party in (1, 2):
        data_dir = tmp_path / f"node-{party}"
        with KeyStore(data_dir, f"mpc-{party - 1}", os.urandom(32)) as store:
            pool = PrimePool(store, 4, allow_test_primes=True)
            assert seed_test_primes(pool, PRIMES_FIXTURE, party, PARTIES, data_dir) == 4
            taken[party] = pool.take(4)
            # Each restart seeds again, from the primes of its slice never handed out, until
            # the slice is used up: no prime is added twice.
            handed_out = list(taken[party])
            while added := seed_test_primes(pool, PRIMES_FIXTURE, party, PARTIES, data_dir):
                handed_out += pool.take(added)
            assert pool.count() == 0
            own = fixture[(party - 1) * per_party : party * per_party]
            assert sorted(handed_out) == sorted(own)  # all of its slice, each once
            refusing = PrimePool(store, 4)
            with pytest.raises(InvalidInput):
                seed_test_primes(refusing, PRIMES_FIXTURE, party, PARTIES, data_dir)
    assert sorted(taken[1]) == sorted(fixture[:4])
    assert sorted(taken[2]) == sorted(fixture[per_party : per_party + 4])
    assert not set(taken[1]) & set(taken[2])


def test_devcluster_test_primes_reach_the_node_config(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plain = Cluster(tmp_path / "plain", base_port=41050)
    plain.prepare()
    config = NodeConfig.load(plain.node(0).config)
    assert config.allow_test_primes is False and config.test_primes_file is None

    cluster = Cluster(tmp_path / "c", base_port=42050, test_primes=PRIMES_FIXTURE)
    cluster.prepare()
    for index in range(5):
        raw = json.loads(cluster.node(index).config.read_text())
        assert raw["allow_test_primes"] is True
        assert raw["test_primes_file"] == str(PRIMES_FIXTURE.absolute())
    config = NodeConfig.load(cluster.node(0).config)
    assert config.allow_test_primes is True and config.test_primes_file == PRIMES_FIXTURE
    with caplog.at_level(logging.WARNING, logger="mpcnode"):
        service = build_service(config)
    try:
        assert service.allow_test_primes and service.pool.allow_test_primes
        assert any("TEST ONLY" in r.getMessage() for r in caplog.records)
    finally:
        service.store.close()

    # Given for an existing cluster, the settings are written into its node configs.
    plain_again = Cluster(tmp_path / "plain", test_primes=PRIMES_FIXTURE)
    with plain_again._lock():
        plain_again._apply_test_primes()
    assert NodeConfig.load(plain.node(3).config).allow_test_primes is True


def test_node_config_refuses_a_non_boolean_test_prime_switch(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path / "c", base_port=43050)
    cluster.prepare()
    path = cluster.node(0).config
    raw = json.loads(path.read_text())
    raw["allow_test_primes"] = "false"
    path.write_text(json.dumps(raw))
    with pytest.raises(InvalidInput):
        NodeConfig.load(path)


# --------------------------------------------------------------------------- slow: real aux-info


@pytest.mark.skipif(
    not os.environ.get("MPC_SLOW_TESTS"),
    reason="a real aux-info run over five nodes takes a minute of CPU; set MPC_SLOW_TESTS=1",
)
async def test_real_aux_info_through_the_nodes(ecdsa_cluster: InProcessCluster) -> None:
    cluster = ecdsa_cluster
    primes = load_test_primes(1536)
    for party, service in cluster.services.items():
        assert service.prime_pool is not None
        for prime in primes[4 * (party - 1) : 4 * party]:
            service.prime_pool.add(prime)
    start = node_pb2.StartRequest(
        session_id=os.urandom(16), protocol="cggmp-aux-info", parties=PARTIES
    )
    await cluster.coordinator.run_session(start, PARTIES)
    publics = set()
    for party, service in cluster.services.items():
        status = await node_call(
            cluster, party, "AuxInfoStatus", node_pb2.AuxInfoStatusRequest(parties=PARTIES)
        )
        assert status.ready and status.primes_ready == 0
        blob = service.store.get_aux_info(TEST_COMMITTEE)
        assert blob is not None
        aux = AuxInfo.decode(blob)
        assert aux.party == party
        publics.add(aux.public.encode())
    assert len(publics) == 1
    # The new aux-info presigns and signs.
    key_id, package = await make_key(cluster)
    signers = (1, 3, 5)
    pid = await presign(cluster, key_id, signers)
    req = partial_request(key_id, pid, os.urandom(16), signers, b"fresh aux-info")
    responses = [await node_call(cluster, p, "PartialSign", req) for p in signers]
    public = PresignaturePublic.decode(bytes(responses[0].presignature_public))
    digest = sign.message_digest(b"fresh aux-info")
    request = sign.SignRequest(key_id, pid, bytes(req.request_id), signers, digest, sign.SIGN_HASH)
    signature = sign.combine(
        public, request, {r.party: int.from_bytes(r.sigma, "big") for r in responses}
    )
    check_ecdsa_signature(package.public_key.encode(), digest, signature)


def test_seeding_gives_one_aux_info_worth_even_without_a_pool_target(tmp_path: Path) -> None:
    """`scripts/cluster up --prime-pool 0 --test-primes F`: no generation, but aux-info can run."""
    with KeyStore(tmp_path / "node", "mpc-0", os.urandom(32)) as store:
        pool = PrimePool(store, 0, allow_test_primes=True)
        assert seed_test_primes(pool, PRIMES_FIXTURE, 1, PARTIES, tmp_path / "node") == 4
        assert pool.count() == 4
