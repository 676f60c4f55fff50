"""The bridge between grpcio (threads) and trio (the event loop that owns all state).

grpcio has no trio support, so the service keeps every piece of state inside one
trio loop and treats gRPC as an edge:

* incoming: each handler is a thin synchronous shim run by a gRPC worker thread;
  it hands the call to the trio loop with `trio.from_thread.run`, inside a cancel
  scope that the call's deadline and the client's cancellation both close;
* outgoing: `stub.Method.future(...)` with a timeout taken from the trio
  deadline, completion signalled back to trio, and the RPC cancelled when trio
  cancels (a plain `to_thread` would leave the remote call running).

Errors from the project's family become the gRPC status codes users expect.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent import futures
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import trio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from mpcnode import logs
from mpcnode.errors import (
    InvalidInput,
    InvalidSignature,
    KeyNotFound,
    MpcError,
    PermissionDenied,
    PreconditionFailed,
    ProtocolAborted,
    QuorumUnavailable,
    ResourceExhausted,
    SessionUnknown,
    Unauthenticated,
)
from mpcnode.prime_pool import PrimePoolExhausted

if TYPE_CHECKING:
    from mpcnode.metrics import Metrics

log = logging.getLogger(__name__)

CULPRITS_METADATA = "mpc-culprits"
"""Trailing metadata key listing culprit party indices of an ABORTED call, comma-separated."""
RETRY_AFTER_METADATA = "retry-after"
"""Trailing metadata of a rate-limited (RESOURCE_EXHAUSTED) call: whole seconds to wait."""

MAX_MESSAGE_BYTES = 16 * 1024 * 1024

LOG_LEVEL_ENV = "MPC_LOG_LEVEL"
"""Default of a server process's `--log-level` (e.g. DEBUG for a whole dev cluster)."""
LOG_FORMAT_ENV = "MPC_LOG_FORMAT"
"""Default of a server process's `--log-format` (json or text)."""

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Reconnect quickly to a node that comes back after a restart.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
]

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.so_reuseport", 0),  # never silently share a port with another server
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
]


def status_of(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The gRPC status and the (secret-free) message a caller sees for an exception."""
    if isinstance(exc, InvalidInput):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, KeyNotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, (SessionUnknown, PreconditionFailed, PrimePoolExhausted)):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, QuorumUnavailable):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    if isinstance(exc, PermissionDenied):
        return grpc.StatusCode.PERMISSION_DENIED, str(exc)
    if isinstance(exc, Unauthenticated):
        return grpc.StatusCode.UNAUTHENTICATED, str(exc)
    if isinstance(exc, ResourceExhausted):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, (ProtocolAborted, InvalidSignature)):
        return grpc.StatusCode.ABORTED, str(exc)
    if isinstance(exc, trio.TooSlowError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"
    if isinstance(exc, MpcError):
        return grpc.StatusCode.INTERNAL, "internal error"
    return grpc.StatusCode.INTERNAL, "internal error"


Req = TypeVar("Req")
Resp = TypeVar("Resp")
Handler = Callable[[Any, grpc.ServicerContext], Awaitable[Any]]
ErrorHook = Callable[[str, grpc.StatusCode, Any, grpc.ServicerContext], None]
"""Told (method, status code, request, context) of every refused or failed call, in the
gRPC worker thread before the call aborts (may block briefly: the audit log fsyncs)."""


def _tell(
    on_error: ErrorHook | None,
    method: str,
    code: grpc.StatusCode,
    request: Any,
    context: grpc.ServicerContext,
) -> None:
    if on_error is None:
        return
    try:
        on_error(method, code, request, context)
    except Exception:  # a failing hook never changes the caller's answer
        log.exception("error hook of %s failed", method)


def trio_handler(
    token: trio.lowlevel.TrioToken,
    handler: Handler,
    check_peer: Callable[[grpc.ServicerContext], None] | None = None,
    method: str = "",
    on_error: ErrorHook | None = None,
) -> Callable[[Any, grpc.ServicerContext], Any]:
    """Wrap an async trio handler as a synchronous grpcio handler.

    Each call runs in its own trio task with a copy of the log context: `method` (the RPC
    name) labels its lines as `rpc`, and whatever the handler `logs.bind`s stays with the call.
    `on_error` hears of every call refused by `check_peer` or failed by the handler.
    """

    def shim(request: Any, context: grpc.ServicerContext) -> Any:
        if check_peer is not None:
            try:
                check_peer(context)
            except MpcError as exc:
                code, message = status_of(exc)
                _tell(on_error, method, code, request, context)
                context.abort(code, message)

        scope_box: list[trio.CancelScope] = []

        def cancel_from_grpc() -> None:
            if scope_box:
                try:
                    token.run_sync_soon(scope_box[0].cancel)
                except trio.RunFinishedError:
                    pass

        context.add_callback(cancel_from_grpc)
        remaining = context.time_remaining()
        timeout = remaining if remaining is not None and remaining < 1e9 else math.inf

        async def run() -> tuple[Any, BaseException | None]:
            logs.bind(rpc=method or getattr(handler, "__name__", None))
            with trio.CancelScope() as scope:
                scope_box.append(scope)
                try:
                    with trio.fail_after(timeout):
                        return await handler(request, context), None
                except (MpcError, trio.TooSlowError) as exc:
                    return None, exc
                except Exception as exc:  # report, never leak internals to the caller
                    log.exception("handler %s failed", getattr(handler, "__name__", handler))
                    return None, exc
            return None, trio.TooSlowError()

        try:
            result, error = trio.from_thread.run(run, trio_token=token)
        except trio.RunFinishedError:
            context.abort(grpc.StatusCode.UNAVAILABLE, "server is shutting down")
        if error is not None:
            code, message = status_of(error)
            _tell(on_error, method, code, request, context)
            if isinstance(error, ProtocolAborted) and error.culprits:
                context.set_trailing_metadata(
                    ((CULPRITS_METADATA, ",".join(str(c) for c in error.culprits)),)
                )
            retry_after = getattr(error, "retry_after", None)
            if isinstance(error, ResourceExhausted) and isinstance(retry_after, int | float):
                # Whole seconds, rounded up (as HTTP's Retry-After): never retry too early.
                context.set_trailing_metadata(
                    ((RETRY_AFTER_METADATA, str(max(1, math.ceil(retry_after)))),)
                )
            context.abort(code, message)
        return result

    return shim


def timed_handler(
    shim: Callable[[Any, grpc.ServicerContext], Any],
    metrics: Metrics,
    service_name: str,
    method: str,
) -> Callable[[Any, grpc.ServicerContext], Any]:
    """Record every call of a grpcio handler (a refused peer included) in `metrics`: its
    duration and status code (the code the handler aborted with; UNKNOWN for a crash)."""

    def timed(request: Any, context: grpc.ServicerContext) -> Any:
        began = time.perf_counter()
        code = "UNKNOWN"
        try:
            result = shim(request, context)
            code = "OK"
            return result
        except BaseException:
            aborted = context.code()
            if aborted is not None:
                code = aborted.name
            raise
        finally:
            metrics.observe_rpc(service_name, method, code, time.perf_counter() - began)

    return timed


def generic_service(
    service_name: str,
    token: trio.lowlevel.TrioToken,
    methods: Mapping[str, tuple[Handler, Any, Any]],
    check_peer: Callable[[grpc.ServicerContext], None] | None = None,
    metrics: Metrics | None = None,
    on_error: ErrorHook | None = None,
) -> grpc.GenericRpcHandler:
    """A unary-unary service whose methods are trio handlers.

    `methods` maps method name -> (handler, request message class, response message class).
    With `metrics`, every call's duration and status code are recorded there; `on_error`
    hears of every refused or failed call (see `ErrorHook`).
    """

    def wrap(
        name: str, shim: Callable[[Any, grpc.ServicerContext], Any]
    ) -> Callable[[Any, grpc.ServicerContext], Any]:
        return shim if metrics is None else timed_handler(shim, metrics, service_name, name)

    handlers = {
        name: grpc.unary_unary_rpc_method_handler(
            wrap(name, trio_handler(token, handler, check_peer, method=name, on_error=on_error)),
            request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString,
        )
        for name, (handler, req_cls, resp_cls) in methods.items()
    }
    return grpc.method_handlers_generic_handler(service_name, handlers)


def start_health_server(address: str) -> tuple[grpc.Server, health.HealthServicer]:
    """grpc.health.v1 on a separate plaintext port (Kubernetes probes cannot do mTLS)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    if server.add_insecure_port(address) == 0:
        raise InvalidInput(f"cannot listen on health address {address}")
    server.start()
    return server, servicer


def set_serving(servicer: health.HealthServicer, serving: bool) -> None:
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for service in ("", "liveness", "readiness"):
        servicer.set(service, status)


async def call(method: Any, request: Any, timeout: float, wait_for_ready: bool = False) -> Any:
    """Await a unary gRPC call from trio; the remote call is cancelled if trio cancels us.

    `timeout` is also capped by the current trio deadline. `wait_for_ready` waits (up to the
    timeout) for a channel that is reconnecting instead of failing at once.
    """
    deadline = trio.current_effective_deadline()
    if deadline != math.inf:
        timeout = max(0.0, min(timeout, deadline - trio.current_time()))
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    future = method.future(request, timeout=timeout, wait_for_ready=wait_for_ready)

    def on_done(_: Any) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:
            pass

    future.add_done_callback(on_done)
    try:
        await done.wait()
    except trio.Cancelled:
        future.cancel()
        raise
    return future.result()


def culprits_of(error: grpc.RpcError) -> tuple[int, ...]:
    """Culprit party indices a node reported in an ABORTED call's trailing metadata."""
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == CULPRITS_METADATA:
            return tuple(int(v) for v in str(value).split(",") if v.strip().isdigit())
    return ()


@contextlib.contextmanager
def running_server(
    listen: str,
    health_listen: str,
    handler: grpc.GenericRpcHandler,
    credentials: grpc.ServerCredentials,
    max_workers: int,
    max_receive_bytes: int = MAX_MESSAGE_BYTES,
) -> Iterator[None]:
    """An mTLS API server plus its plaintext health server, SERVING while the block runs.

    `max_receive_bytes` caps a request (larger ones fail with RESOURCE_EXHAUSTED in gRPC).
    """
    health_server, health_servicer = start_health_server(health_listen)
    options = [
        (name, max_receive_bytes if name == "grpc.max_receive_message_length" else value)
        for name, value in SERVER_OPTIONS
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
    server.add_generic_rpc_handlers((handler,))
    if server.add_secure_port(listen, credentials) == 0:
        health_server.stop(grace=None)
        raise InvalidInput(f"cannot listen on {listen}")
    server.start()
    set_serving(health_servicer, True)
    try:
        yield
    finally:
        set_serving(health_servicer, False)
        server.stop(grace=None)
        health_server.stop(grace=None)


def run_process(
    prog: str, description: str, serve: Callable[[str], Awaitable[None]], argv: Sequence[str] | None
) -> int:
    """Entry point of a server process: `--config PATH`, logging, SIGTERM/SIGINT stop it cleanly."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="path to the JSON config file")
    parser.add_argument(
        "--log-level",
        default=os.environ.get(LOG_LEVEL_ENV, "INFO"),
        help=f"DEBUG, INFO, WARNING or ERROR (default: ${LOG_LEVEL_ENV} or INFO)",
    )
    parser.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=os.environ.get(LOG_FORMAT_ENV, "json"),
        help=f"json (one object per line, the default) or text (default: ${LOG_FORMAT_ENV})",
    )
    args = parser.parse_args(argv)
    if args.log_format not in logs.FORMATS:
        parser.error(f"{LOG_FORMAT_ENV} must be one of {', '.join(logs.FORMATS)}")
    logs.configure(args.log_level, args.log_format, process=prog)

    async def until_signalled() -> None:
        async with trio.open_nursery() as nursery:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                nursery.start_soon(serve, args.config)
                async for _ in signals:
                    log.info("%s shutting down", prog)
                    nursery.cancel_scope.cancel()
                    break

    failed = False
    try:
        trio.run(until_signalled)
    except* MpcError as group:  # bad config, port in use, wrong KEK: a clear line, no traceback
        for exc in group.exceptions:
            log.error("%s failed: %s", prog, exc)
        failed = True
    return 1 if failed else 0
