"""`mpcctl audit verify`: offline check of an audit log, JSON out, entry named on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordinator import cli
from mpcnode.audit import HEAD_NAME, LOG_NAME, AuditLog, AuditSigner
from mpcnode.identity import NodeIdentity, Roster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.CLUSTER_ENV, raising=False)


@pytest.fixture
def signer() -> AuditSigner:
    return AuditSigner.generate("coordinator")


@pytest.fixture
def logdir(tmp_path: Path, signer: AuditSigner) -> Path:
    directory = tmp_path / "coord"
    with AuditLog(directory, "coordinator", signer) as log:
        for i in range(20):
            log.append(
                "key.sign",
                actor={"subject": "alice", "via": "grpc"},
                outcome="ok",
                key_id="k1",
                details={"digest": f"{i:064x}"},
            )
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, ""), err
    return json.loads(out)


def failed(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Exit 1, nothing on stdout, exactly one JSON object on stderr."""
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    obj: dict[str, Any] = json.loads(err)
    assert isinstance(obj["message"], str) and obj["message"]
    return obj


def test_verify_ok_with_public_key(
    capsys: pytest.CaptureFixture[str], logdir: Path, signer: AuditSigner
) -> None:
    out = ok(
        capsys, "audit", "verify", str(logdir / LOG_NAME), "--public-key", signer.public_key.hex()
    )
    head = json.loads((logdir / HEAD_NAME).read_bytes())
    assert out == {"ok": True, "entries": 20, "head": head, "trusted_key": True}


def test_verify_ok_with_explicit_head_and_global_options(
    capsys: pytest.CaptureFixture[str], logdir: Path, signer: AuditSigner, tmp_path: Path
) -> None:
    moved = tmp_path / "elsewhere.json"
    moved.write_bytes((logdir / HEAD_NAME).read_bytes())
    (logdir / HEAD_NAME).unlink()
    out = ok(
        capsys,
        "--timeout",
        "5",
        "audit",
        "verify",
        str(logdir / LOG_NAME),
        "--head",
        str(moved),
        "--public-key",
        "0x" + signer.public_key.hex(),
    )
    assert out["ok"] is True and out["entries"] == 20


def test_verify_ok_without_a_trusted_key_says_so(
    capsys: pytest.CaptureFixture[str], logdir: Path
) -> None:
    out = ok(capsys, "audit", "verify", str(logdir / LOG_NAME))
    assert out["ok"] is True and out["trusted_key"] is False and out["warnings"]


def test_verify_node_log_with_roster(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    nodes = [NodeIdentity.generate(f"mpc-{i}", i + 1) for i in range(5)]
    roster_path = tmp_path / "roster.json"
    Roster(n.public_entry() for n in nodes).save(roster_path)
    with AuditLog(tmp_path / "mpc-3", "mpc-3", nodes[3]) as log:
        log.append("key.create", actor={"subject": "coordinator"}, outcome="ok", key_id="k")
    out = ok(
        capsys, "audit", "verify", str(tmp_path / "mpc-3" / LOG_NAME), "--roster", str(roster_path)
    )
    assert out["ok"] is True and out["head"]["signer"] == "mpc-3"
    # The same log checked as if mpc-2 had signed it fails.
    head_path = tmp_path / "mpc-3" / HEAD_NAME
    head = json.loads(head_path.read_bytes())
    head["signer"] = "mpc-2"
    head_path.write_text(json.dumps(head))
    err = failed(
        capsys, "audit", "verify", str(tmp_path / "mpc-3" / LOG_NAME), "--roster", str(roster_path)
    )
    assert err["error"] == "DATA_LOSS" and err["kind"] == "bad head signature"


def test_edited_entry_is_named(
    capsys: pytest.CaptureFixture[str], logdir: Path, signer: AuditSigner
) -> None:
    path = logdir / LOG_NAME
    lines = path.read_bytes().splitlines()
    lines[17] = lines[17].replace(b'"alice"', b'"mallory"')
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    err = failed(capsys, "audit", "verify", str(path), "--public-key", signer.public_key.hex())
    assert err == {
        "error": "DATA_LOSS",
        "message": "entry 17 (line 18) was edited: its hash does not match",
        "ok": False,
        "kind": "edited",
        "seq": 17,
        "line": 18,
    }


@pytest.mark.parametrize(
    ("tamper", "kind", "seq", "line"),
    [
        ("delete-first", "removed", 0, 1),
        ("delete-middle", "removed", 9, 10),
        ("delete-last", "truncated", 19, 20),
        ("swap", "reordered", 6, 6),
    ],
)
def test_deletions_and_swaps_are_named(
    capsys: pytest.CaptureFixture[str],
    logdir: Path,
    signer: AuditSigner,
    tamper: str,
    kind: str,
    seq: int,
    line: int,
) -> None:
    path = logdir / LOG_NAME
    lines = path.read_bytes().splitlines()
    if tamper == "delete-first":
        del lines[0]
    elif tamper == "delete-middle":
        del lines[9]
    elif tamper == "delete-last":
        del lines[-1]
    else:
        lines[5], lines[6] = lines[6], lines[5]
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    err = failed(capsys, "audit", "verify", str(path), "--public-key", signer.public_key.hex())
    assert (err["error"], err["kind"], err["seq"], err["line"]) == ("DATA_LOSS", kind, seq, line)
    assert err["ok"] is False


def test_wrong_public_key_is_named(capsys: pytest.CaptureFixture[str], logdir: Path) -> None:
    other = AuditSigner.generate().public_key.hex()
    err = failed(capsys, "audit", "verify", str(logdir / LOG_NAME), "--public-key", other)
    assert err["kind"] == "bad head signature" and err["seq"] is None


@pytest.mark.parametrize(
    "argv",
    [
        ["audit", "verify", "LOG", "--public-key", "zz"],
        ["audit", "verify", "LOG", "--public-key", "abcd"],
        ["audit", "verify", "LOG", "--public-key", "00" * 32, "--roster", "r.json"],
        ["audit", "verify", "LOG", "--roster", "/nonexistent/roster.json"],
        ["audit", "verify", "/nonexistent/audit.log"],
        ["audit", "verify"],
        ["audit"],
    ],
)
def test_bad_input_is_invalid_argument(
    capsys: pytest.CaptureFixture[str], logdir: Path, argv: list[str]
) -> None:
    argv = [str(logdir / LOG_NAME) if a == "LOG" else a for a in argv]
    err = failed(capsys, *argv)
    assert err["error"] == "INVALID_ARGUMENT" and set(err) == {"error", "message"}


def test_console_script_runs_without_a_coordinator(logdir: Path, signer: AuditSigner) -> None:
    env = {k: v for k, v in os.environ.items() if k != cli.CLUSTER_ENV}
    args = [sys.executable, "-m", "coordinator.cli", "audit", "verify", str(logdir / LOG_NAME)]
    done = subprocess.run(
        [*args, "--public-key", signer.public_key.hex()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == ""
    assert json.loads(done.stdout)["entries"] == 20
    with open(logdir / LOG_NAME, "ab") as f:
        f.write(b"garbage\n")
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1 and done.stdout == ""
    assert json.loads(done.stderr)["kind"] == "malformed"
