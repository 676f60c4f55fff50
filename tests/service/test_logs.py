"""mpcnode.logs: the JSON line format, the context fields and their scoping, tracebacks."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest
import trio

from mpcnode import logs
from mpcnode.errors import InvalidInput
from tests.cluster.harness import ROOT


def record(
    exc_info: logs.ExcInfo | None = None, extra: dict[str, object] | None = None
) -> logging.LogRecord:
    logger = logging.getLogger("tests.logs")
    return logger.makeRecord(
        "tests.logs", logging.INFO, __file__, 1, "hello %s", ("x",), exc_info, extra=extra
    )


def line(rec: logging.LogRecord) -> dict[str, object]:
    doc: dict[str, object] = json.loads(logs.JsonFormatter().format(rec))
    return doc


def test_every_line_has_every_key() -> None:
    doc = line(record())
    assert list(doc)[: len(logs.LINE_KEYS)] == list(logs.LINE_KEYS)
    assert doc["msg"] == "hello x" and doc["level"] == "INFO" and doc["logger"] == "tests.logs"
    assert str(doc["ts"]).endswith("Z")
    assert all(doc[k] is None for k in ("session_id", "key_id", "tenant", "protocol", "rpc"))


def test_context_fields_and_their_scope() -> None:
    with logs.log_context(session_id=b"\x01\x02", key_id="k", tenant="", protocol="frost-sign"):
        doc = line(record())
        assert (doc["session_id"], doc["key_id"], doc["protocol"]) == ("0102", "k", "frost-sign")
        assert doc["tenant"] is None  # empty means unknown
        with logs.log_context(tenant="t", party=3):
            inner = line(record())
            assert (inner["tenant"], inner["key_id"], inner["party"]) == ("t", "k", 3)
        assert line(record())["tenant"] is None
    assert line(record())["session_id"] is None
    # extra= on the call wins over the context
    with logs.log_context(key_id="k"):
        assert line(record(extra={"key_id": "other"}))["key_id"] == "other"


def test_long_values_are_cut() -> None:
    with logs.log_context(tenant="t" * 1000):
        assert len(str(line(record())["tenant"])) < 250


async def test_bind_is_undone_when_a_scoped_call_returns_and_tasks_are_isolated() -> None:
    seen: dict[str, object] = {}

    @logs.log_scope
    async def operation(key_id: str) -> None:
        logs.bind(key_id=key_id)
        await trio.lowlevel.checkpoint()
        seen[key_id] = logs.current().get("key_id")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(operation, "a")
        nursery.start_soon(operation, "b")
    assert seen == {"a": "a", "b": "b"}
    await operation("c")
    assert "key_id" not in logs.current()


def test_traceback_keeps_frames_drops_foreign_messages() -> None:
    def fail(exc: Exception) -> logging.LogRecord:
        try:
            raise exc
        except Exception:
            return record(exc_info=sys.exc_info())  # type: ignore[arg-type]

    foreign = line(fail(ValueError("secret 0x1234567890abcdef")))
    assert foreign["exc_type"] == "ValueError"
    assert "fail" in str(foreign["traceback"]) and "0x1234567890abcdef" not in json.dumps(foreign)
    ours = line(fail(InvalidInput("bad path")))
    assert str(ours["traceback"]).endswith("InvalidInput: bad path")


def test_text_format() -> None:
    with logs.log_context(session_id="ab", protocol="reshare"):
        text = logs.TextFormatter().format(record())
    assert text.endswith("hello x [session_id=ab protocol=reshare]")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_process_log_format_option(fmt: str, tmp_path: object) -> None:
    """`mpc-node --log-format`: a bad config fails with one clean line in that format."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mpcnode.server",
            "--config",
            "/nonexistent/node.json",
            "--log-format",
            fmt,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    if fmt == "json":
        doc = json.loads(lines[0])
        assert doc["level"] == "ERROR" and doc["process"] == "mpc-node"
        assert "bad node config" in doc["msg"]
    else:
        assert " ERROR " in lines[0] and "bad node config" in lines[0]
