"""Structured logs: one JSON object per line, with the session context on every line.

Both processes (nodes and the coordinator) log through `configure` (called by
`mpcnode.rpc.run_process`). Every line has the keys

    ts        ISO-8601 UTC time, milliseconds
    level     DEBUG, INFO, WARNING, ERROR, CRITICAL
    logger    the logger name ("mpcnode", "coordinator", "mpcnode.rpc", ...)
    process   the node name (mpc-0 ...) or "coordinator"
    msg       the formatted message
    rpc       the gRPC method being served (null outside a call)
    session_id, key_id, tenant, protocol   null when unknown

and, for a line about an exception, `exc_type` (and for an unexpected internal error a
`traceback`: frames and source lines only, never the exception's message unless it is one of
the project's own errors, whose messages are secret-free by rule).

The context fields live in a `contextvars.ContextVar`: trio copies the context into a task
when it is spawned, so fields set by a handler label every line it (and the tasks it starts)
writes, and nothing leaks into other calls. Set them with `log_context(...)` (a `with` block)
or, inside a function decorated with `log_scope`, with `bind(...)` (undone when the
decorated call returns).

Never log secret material: shares, nonces, Paillier primes or secret keys, KEKs, identity
keys, sealed payloads, envelope bodies, presignatures, or a protobuf request (its repr shows
the payload bytes). Log ids, indices, protocol names, counts and digests.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import functools
import json
import logging
import sys
import traceback
import types
from collections.abc import Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

from mpcnode.errors import MpcError

CONTEXT_FIELDS = ("session_id", "key_id", "tenant", "protocol", "rpc")
"""Context keys every JSON line carries (null when unknown)."""

LINE_KEYS = ("ts", "level", "logger", "process", "msg", *CONTEXT_FIELDS)
"""The keys of every JSON line, in order."""

MAX_FIELD_CHARS = 200
"""A context value longer than this is cut (values come from requests: keep lines short)."""

_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "mpc_log_context", default=types.MappingProxyType({})
)
_process = "-"

P = ParamSpec("P")
R = TypeVar("R")


def set_process(name: str) -> None:
    """The `process` field of every line (the node's name, or "coordinator"); once at startup."""
    global _process
    _process = name


def _clean(value: Any) -> Any:
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).hex()
    if isinstance(value, (int, float, bool)):
        return value
    text = str(value)
    return text if len(text) <= MAX_FIELD_CHARS else text[:MAX_FIELD_CHARS] + "..."


def current() -> dict[str, Any]:
    """The context fields set for the running task."""
    return dict(_context.get())


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add fields (session_id, key_id, tenant, protocol, rpc, ...) to every line logged inside
    the block; bytes are shown as hex, empty values as null."""
    merged = {**_context.get(), **{k: _clean(v) for k, v in fields.items()}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current context until the enclosing `log_scope` call returns.

    Use it only inside a function decorated with `log_scope` (or a task that ends with the
    request, such as a gRPC handler): the fields stay set until then.
    """
    _context.set({**_context.get(), **{k: _clean(v) for k, v in fields.items()}})


def log_scope(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate an async function so that whatever it `bind`s is undone when it returns."""

    @functools.wraps(fn)
    async def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _context.set(_context.get())
        try:
            return await fn(*args, **kwargs)
        finally:
            _context.reset(token)

    return scoped


def with_fields(fn: Callable[P, Awaitable[R]], **fields: Any) -> Callable[P, Awaitable[R]]:
    """`fn` running with `fields` in its log context (e.g. a handler with its node's name)."""

    @functools.wraps(fn)
    async def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        with log_context(**fields):
            return await fn(*args, **kwargs)

    return scoped


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _traceback(exc_info: ExcInfo) -> str:
    """Frames and source lines; the message only for the project's own (secret-free) errors."""
    kind, exc, tb = exc_info
    frames = "".join(traceback.format_tb(tb))
    text = f"{kind.__name__}: {exc}" if isinstance(exc, MpcError) else kind.__name__
    return f"Traceback (most recent call last):\n{frames}{text}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the keys of `LINE_KEYS` (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _context.get()
        ts = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        line: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "process": fields.get("process") or _process,
            "msg": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            # `extra={"session_id": ...}` on the call wins over the task's context.
            given = getattr(record, key, None)
            line[key] = _clean(given) if given is not None else fields.get(key)
        for key, value in fields.items():
            if key not in line:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["traceback"] = _traceback(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The human format (`--log-format text`): time, level, logger, context, message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = _context.get()
        exc_info, record.exc_info, record.exc_text = record.exc_info, None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info = exc_info
        shown = ("session_id", "key_id", "tenant", "protocol")
        tags = " ".join(f"{k}={fields[k]}" for k in shown if fields.get(k))
        if tags:
            text = f"{text} [{tags}]"
        if exc_info and exc_info[0] is not None:
            text += "\n" + _traceback(exc_info)
        return text


FORMATS = ("json", "text")


def configure(level: str = "INFO", fmt: str = "json", process: str | None = None) -> None:
    """Install the one stderr handler of the process (replacing any earlier one)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    if process is not None:
        set_process(process)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
