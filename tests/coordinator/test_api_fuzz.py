"""Hypothesis fuzzing of the coordinator's public API against a real in-process cluster.

Property, for every generated request (CreateKey, GetKey, Sign, Reshare, PresignStatus,
GetOperation, ListKeys):

* in-process (`CoordinatorApi` methods with proto requests): the call returns a well-formed
  response of the method's type, or raises an `MpcError` whose `status_of` code is not
  INTERNAL; never any other exception type;
* over real gRPC (the same handlers behind `generic_service`): a response, or an RpcError
  whose code is neither INTERNAL nor UNKNOWN;
* afterwards a known good ed25519 key still signs, and the signature verifies (PyNaCl).

How it runs: pytest-trio gives every test (and every Hypothesis example) its own trio loop,
and a cluster costs about a second to build, so one cluster per module lives in a background
thread running its own `trio.run` (nodes, coordinator, its background nursery and a gRPC
server for the public API). The sync `@given` test hands each example to that loop with
`trio.from_thread.run`, and makes the gRPC calls from its own thread with a blocking stub.
secp256k1 keys are never created (aux-info is slow): valid-looking secp256k1 CreateKey
requests are turned into invalid ones.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import trio
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from nacl.signing import VerifyKey

from coordinator.auth import AuthConfig, Authenticator
from coordinator.server import CoordinatorApi
from mpcnode.errors import MpcError
from mpcnode.rpc import status_of
from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc
from tests.integration.conftest import InProcessCluster, open_cluster
from tests.jwt_issuer import make_test_issuer

KEY = "<the good key>"
"""Placeholder in generated requests for the id of the known good key."""
STARTUP_TIMEOUT = 60.0


@dataclass
class Harness:
    token: trio.lowlevel.TrioToken
    cluster: InProcessCluster
    api: CoordinatorApi
    stub: Any
    key_id: str
    public_key: bytes
    metadata: tuple[tuple[str, str], ...]
    """A bearer token of the default org with every role (keys made in-process are its)."""

    def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        return trio.from_thread.run(fn, *args, trio_token=self.token)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    tmp_path: Path = tmp_path_factory.mktemp("fuzz-cluster")
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stop = trio.Event()
        box["stop"] = stop
        async with open_cluster(tmp_path) as cluster, trio.open_nursery() as nursery:
            await nursery.start(cluster.coordinator.run_background)
            issuer = make_test_issuer(tmp_path)
            authenticator = Authenticator(AuthConfig.from_dict(issuer.auth_config()))
            token = issuer.token(
                org="default", roles=["org:admin", "tenant:signer", "auditor"], ttl=3600
            )
            api = CoordinatorApi(cluster.coordinator, authenticator)
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            server.add_generic_rpc_handlers((api.handlers(trio.lowlevel.current_trio_token()),))
            port = server.add_insecure_port("127.0.0.1:0")
            server.start()
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            try:
                info = await cluster.coordinator.create_key("ed25519", 3, 5)
                box["harness"] = Harness(
                    trio.lowlevel.current_trio_token(),
                    cluster,
                    api,
                    coordinator_pb2_grpc.CoordinatorStub(channel),  # type: ignore[no-untyped-call]
                    info.key_id,
                    bytes(info.public_key),
                    (issuer.bearer(token),),
                )
                ready.set()
                await stop.wait()
            finally:
                channel.close()
                server.stop(grace=None)
                nursery.cancel_scope.cancel()

    def thread_main() -> None:
        try:
            trio.run(main)
        except BaseException as exc:  # surfaced to the test below
            box["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=thread_main, name="fuzz-cluster", daemon=True)
    thread.start()
    assert ready.wait(STARTUP_TIMEOUT), "cluster did not start"
    if "harness" not in box:
        raise RuntimeError("cluster failed to start") from box.get("error")
    h: Harness = box["harness"]
    try:
        yield h
    finally:
        trio.from_thread.run_sync(box["stop"].set, trio_token=h.token)
        thread.join(STARTUP_TIMEOUT)
        assert "error" not in box, box.get("error")


# -- strategies -----------------------------------------------------------------------------------

ANY_TEXT = st.text(max_size=160)
CONTROL_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", categories=["Cc", "Ll", "Nd", "Po", "Zs"]),
    min_size=1,
    max_size=140,
)
KEY_IDS = st.one_of(
    st.just(KEY),
    st.just(KEY),
    st.just(""),
    st.uuids().map(str),
    ANY_TEXT,
    st.text(min_size=120, max_size=300),
)
INDICES = st.one_of(
    st.integers(0, 2**31 - 1).map(str),
    st.integers(0, 2**32 + 5).map(lambda i: f"{i}'"),
    st.integers(0, 2**31).map(lambda i: f"{i}h"),
    st.integers(0, 10**12).map(str),
    st.sampled_from(["", "-1", "01", "H", "x", "1.5", " 1", "٣"]),
)
PATHS = st.one_of(
    st.just(""),
    st.just("m"),
    st.lists(INDICES, min_size=1, max_size=6).map(lambda parts: "m/" + "/".join(parts)),
    st.lists(st.integers(0, 9).map(str), min_size=250, max_size=260).map(
        lambda parts: "m/" + "/".join(parts)
    ),
    ANY_TEXT,
)
TENANTS = st.one_of(
    st.just(""),
    st.just("acme-corp/payments"),
    CONTROL_TEXT,
    ANY_TEXT,
    st.text(min_size=128, max_size=129),
    st.text(min_size=129, max_size=400),
)
VALID_PATHS = st.lists(st.integers(0, 2**31 - 1), max_size=5).map(
    lambda ix: "/".join(["m", *map(str, ix)])
)
VALID_TENANTS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=128
)
PATH_OR_TENANT = st.one_of(
    st.tuples(st.just(""), st.just("")),
    st.tuples(st.just(""), st.just("")),
    st.tuples(VALID_PATHS, st.just("")),
    st.tuples(st.just(""), VALID_TENANTS),
    st.tuples(PATHS, st.just("")),
    st.tuples(st.just(""), TENANTS),
    st.tuples(PATHS, TENANTS),
)
SCHEMES = st.one_of(
    st.sampled_from(["", "ed25519", "secp256k1", "ED25519", "ed448", "rsa", " ed25519"]),
    ANY_TEXT,
)
SMALL = st.integers(0, 10)


def create_key(scheme: str, threshold: int, parties: int) -> Any:
    req = coordinator_pb2.CreateKeyRequest(scheme=scheme, threshold=threshold, parties=parties)
    # No secp256k1 key may actually be made (aux-info): keep such requests invalid.
    if scheme == "secp256k1" and (parties or 5) == 5 and 2 <= (threshold or 3) <= 5:
        req.threshold = 7
    return req


REQUESTS = st.one_of(
    st.tuples(st.just("CreateKey"), st.builds(create_key, SCHEMES, SMALL, SMALL)),
    st.tuples(
        st.just("GetKey"),
        st.builds(
            lambda k, pt: coordinator_pb2.GetKeyRequest(key_id=k, path=pt[0], tenant=pt[1]),
            KEY_IDS,
            PATH_OR_TENANT,
        ),
    ),
    st.tuples(
        st.just("Sign"),
        st.builds(
            lambda k, m, d, pt: coordinator_pb2.SignRequest(
                key_id=k, message=m, digest=d, path=pt[0], tenant=pt[1]
            ),
            KEY_IDS,
            st.binary(max_size=4096),
            st.one_of(
                st.just(b""),
                st.just(b""),
                st.just(b""),
                st.binary(max_size=64),
                st.binary(min_size=32, max_size=32),
            ),
            PATH_OR_TENANT,
        ),
    ),
    st.tuples(
        st.just("Reshare"),
        st.builds(
            lambda k, ps, t: coordinator_pb2.ReshareRequest(key_id=k, parties=ps, threshold=t),
            KEY_IDS,
            st.lists(SMALL, max_size=10),
            SMALL,
        ),
    ),
    st.tuples(
        st.just("PresignStatus"),
        st.builds(lambda k: coordinator_pb2.PresignStatusRequest(key_id=k), KEY_IDS),
    ),
    st.tuples(
        st.just("GetOperation"),
        st.builds(
            lambda o: coordinator_pb2.GetOperationRequest(operation_id=o),
            st.one_of(ANY_TEXT, st.uuids().map(str)),
        ),
    ),
    st.tuples(st.just("ListKeys"), st.just(coordinator_pb2.ListKeysRequest())),
)

RESPONSE_TYPES = {
    "CreateKey": coordinator_pb2.KeyInfo,
    "GetKey": coordinator_pb2.KeyInfo,
    "Sign": coordinator_pb2.SignResponse,
    "Reshare": coordinator_pb2.KeyInfo,
    "PresignStatus": coordinator_pb2.PresignStatusResponse,
    "GetOperation": coordinator_pb2.Operation,
    "ListKeys": coordinator_pb2.ListKeysResponse,
}
API_METHODS = {
    "CreateKey": "create_key",
    "GetKey": "get_key",
    "Sign": "sign",
    "Reshare": "reshare",
    "PresignStatus": "presign_status",
    "GetOperation": "get_operation",
    "ListKeys": "list_keys",
}
BAD_CODES = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)


# -- checks --------------------------------------------------------------------------------


def with_key(h: Harness, request: Any) -> Any:
    if getattr(request, "key_id", None) == KEY:
        request.key_id = h.key_id
    return request


def check_response(h: Harness, method: str, request: Any, response: Any) -> None:
    assert isinstance(response, RESPONSE_TYPES[method]), (method, type(response))
    response.SerializeToString()  # well-formed: every field valid
    if method == "Sign":
        VerifyKey(bytes(response.public_key)).verify(bytes(request.message), response.signature)
    if method in ("CreateKey", "GetKey", "Reshare"):
        assert response.key_id and response.scheme == "ed25519"
        assert len(response.public_key) == 32 and len(response.chain_code) == 32
    root = not getattr(request, "path", "") and not getattr(request, "tenant", "")
    if method in ("GetKey", "Reshare") and response.key_id == h.key_id and root:
        assert bytes(response.public_key) == h.public_key  # resharing keeps the key


@dataclass
class FakeContext:
    """What a handler reads of a grpc.ServicerContext: the call's credentials."""

    metadata: tuple[tuple[str, str], ...]

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}


async def call_in_process(h: Harness, method: str, request: Any) -> Any:
    """The API call; an allowed error comes back as its exception, anything else propagates."""
    try:
        return await getattr(h.api, API_METHODS[method])(request, FakeContext(h.metadata))
    except MpcError as exc:
        return exc


async def good_key_signs(h: Harness, message: bytes) -> None:
    outcome = await h.cluster.coordinator.sign_request(h.key_id, message=message)
    VerifyKey(outcome.public_key).verify(message, outcome.signature)
    assert outcome.public_key == h.public_key


@settings(
    max_examples=250,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(call=REQUESTS, over_grpc=st.booleans(), check=st.binary(min_size=1, max_size=64))
def test_public_api_never_fails_internally(
    harness: Harness, call: tuple[str, Any], over_grpc: bool, check: bytes
) -> None:
    h = harness
    method, request = call
    request = with_key(h, request)
    if over_grpc:
        try:
            response = getattr(h.stub, method)(request, timeout=60, metadata=h.metadata)
        except grpc.RpcError as err:
            code = err.code()  # type: ignore[attr-defined]
            event(f"{method} over gRPC: {code.name}")
            assert code not in BAD_CODES, (method, request, code, err.details())  # type: ignore[attr-defined]
        else:
            event(f"{method} over gRPC: OK")
            check_response(h, method, request, response)
    else:
        result = h.run(call_in_process, h, method, request)
        if isinstance(result, MpcError):
            code, _ = status_of(result)
            event(f"{method}: {type(result).__name__}")
            assert code is not grpc.StatusCode.INTERNAL, (method, request, repr(result))
        else:
            event(f"{method}: OK")
            check_response(h, method, request, result)
    h.run(good_key_signs, h, check)
