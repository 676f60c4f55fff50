"""The audit trail: hash-chained log, signed head, tamper detection naming the entry."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mpcnode import audit
from mpcnode.audit import (
    HEAD_NAME,
    LOG_NAME,
    AuditIntegrityError,
    AuditLog,
    AuditSigner,
    VerifyReport,
    canonical_json,
    entry_hash,
    genesis_hash,
    head_message,
    verify_log,
)
from mpcnode.errors import InvalidInput
from mpcnode.identity import NodeIdentity, Roster

N = 10
FIELDS = sorted(audit.ENTRY_FIELDS)


@pytest.fixture(scope="module")
def signer() -> AuditSigner:
    return AuditSigner.generate("coordinator")


def _fill(log: AuditLog, n: int = N) -> list[dict[str, Any]]:
    """n entries of varied shape (every optional field both set and null somewhere)."""
    actions = ["key.create", "key.sign", "key.derive", "key.reshare", "access.denied"]
    entries = []
    for i in range(n):
        entries.append(
            log.append(
                actions[i % len(actions)],
                actor={"subject": f"user-{i}", "roles": ["signer"], "via": "grpc"},
                outcome="ok" if i % 3 else "PERMISSION_DENIED",
                key_id=f"key-{i % 4}" if i % 5 else None,
                org="acme" if i % 2 else None,
                tenant=f"tenant-{i}" if i % 2 else None,
                details={"digest": f"{i:064x}", "signers": ["mpc-0", "mpc-1"], "n": i},
            )
        )
    return entries


@pytest.fixture
def filled(tmp_path: Path, signer: AuditSigner) -> Path:
    with AuditLog(tmp_path, "coordinator", signer) as log:
        _fill(log)
    return tmp_path


def _lines(directory: Path) -> list[bytes]:
    return (directory / LOG_NAME).read_bytes().splitlines()


def _write_lines(directory: Path, lines: list[bytes]) -> None:
    (directory / LOG_NAME).write_bytes(b"".join(line + b"\n" for line in lines))


def _verify(directory: Path, signer: AuditSigner) -> VerifyReport:
    return verify_log(directory / LOG_NAME, trusted=signer.public_key)


def _expect(
    directory: Path, signer: AuditSigner, kind: str, seq: int | None, line: int | None
) -> VerifyReport:
    report = _verify(directory, signer)
    assert not report.ok
    assert (report.kind, report.seq, report.line) == (kind, seq, line), report.error
    assert report.error
    # Opening the tampered log refuses with the same finding.
    with pytest.raises(AuditIntegrityError) as info:
        AuditLog(directory, "coordinator", signer)
    assert (info.value.report.kind, info.value.report.seq) == (kind, seq)
    return report


def _changed(value: Any, name: str) -> Any:
    """A different value of the same shape (hex stays hex, so only the content changes)."""
    if name in ("prev", "hash", "sig"):
        return ("0" if value[0] != "0" else "1") + value[1:]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if value is None:
        return "x"
    if isinstance(value, dict):
        return {**value, "forged": True}
    raise AssertionError(name)


# --------------------------------------------------------------------------- round trip


def test_round_trip_and_reopen(tmp_path: Path, signer: AuditSigner) -> None:
    with AuditLog(tmp_path, "coordinator", signer) as log:
        written = _fill(log, 4)
        assert log.count == 4
    assert [json.loads(line) for line in _lines(tmp_path)] == written
    for i, entry in enumerate(written):
        assert entry["seq"] == i
        assert entry["hash"] == entry_hash(entry)
        assert entry["prev"] == (written[i - 1]["hash"] if i else genesis_hash("coordinator"))
        assert entry["ts"].endswith("Z") and "T" in entry["ts"]
    with AuditLog(tmp_path, "coordinator", signer) as log:
        assert log.count == 4
        more = log.append("key.delete", actor={"subject": "bob"}, outcome="ok", key_id="k")
        assert more["seq"] == 4 and more["prev"] == written[-1]["hash"]
        head = log.head()
    report = _verify(tmp_path, signer)
    assert report.ok and report.entries == 5 and report.trusted_key
    assert report.head == head == json.loads((tmp_path / HEAD_NAME).read_bytes())
    assert head["count"] == 5 and head["seq"] == 4 and head["hash"] == more["hash"]
    assert head["signer"] == "coordinator" and head["public_key"] == signer.public_key.hex()
    assert report.to_json() == {"ok": True, "entries": 5, "head": head, "trusted_key": True}


def test_every_line_is_canonical_json(filled: Path) -> None:
    for line in _lines(filled):
        assert canonical_json(json.loads(line)) == line
        assert line.isascii()


def test_empty_log_has_a_signed_head(tmp_path: Path, signer: AuditSigner) -> None:
    AuditLog(tmp_path, "coordinator", signer).close()
    head = json.loads((tmp_path / HEAD_NAME).read_bytes())
    assert (head["count"], head["seq"], head["hash"]) == (0, -1, genesis_hash("coordinator"))
    assert (tmp_path / LOG_NAME).read_bytes() == b""
    report = _verify(tmp_path, signer)
    assert report.ok and report.entries == 0
    with AuditLog(tmp_path, "coordinator", signer) as log:
        assert log.append("key.create", actor={}, outcome="ok")["seq"] == 0


def test_node_identity_signs_and_roster_verifies(tmp_path: Path) -> None:
    nodes = [NodeIdentity.generate(f"mpc-{i}", i + 1) for i in range(3)]
    roster = Roster(n.public_entry() for n in nodes)
    with AuditLog(tmp_path, "mpc-1", nodes[1]) as log:
        log.append("key.sign", actor={"subject": "coordinator"}, outcome="ok", key_id="k")
    log_path = tmp_path / LOG_NAME
    assert verify_log(log_path, trusted=roster).ok
    assert verify_log(log_path, trusted={"mpc-1": nodes[1].public_entry().signing_key}).ok
    report = verify_log(log_path, trusted=nodes[0].public_entry().signing_key)
    assert report.kind == "bad head signature"
    report = verify_log(log_path, trusted={"mpc-0": nodes[0].public_entry().signing_key})
    assert report.kind == "bad head signature" and "not a trusted signer" in (report.error or "")
    other = Roster([nodes[0].public_entry(), nodes[2].public_entry()])
    report = verify_log(log_path, trusted=other)
    assert report.kind == "bad head signature" and "not in the roster" in (report.error or "")
    # Reopening with another identity (another key) is refused.
    with pytest.raises(AuditIntegrityError):
        AuditLog(tmp_path, "mpc-1", NodeIdentity.generate("mpc-1", 2))


def test_without_a_trusted_key_the_head_key_is_used_and_says_so(filled: Path) -> None:
    report = verify_log(filled / LOG_NAME)
    assert report.ok and not report.trusted_key and report.warnings
    assert report.to_json()["trusted_key"] is False


def test_reopen_with_another_log_id_is_refused(filled: Path, signer: AuditSigner) -> None:
    with pytest.raises(AuditIntegrityError, match="belongs to"):
        AuditLog(filled, "mpc-0", signer)


def test_file_modes(tmp_path: Path, signer: AuditSigner) -> None:
    old = os.umask(0)
    try:
        with AuditLog(tmp_path / "d", "coordinator", signer) as log:
            log.append("key.create", actor={}, outcome="ok")
    finally:
        os.umask(old)
    for name in (LOG_NAME, HEAD_NAME):
        assert stat.S_IMODE((tmp_path / "d" / name).stat().st_mode) == 0o600
    os.chmod(tmp_path / "d" / LOG_NAME, 0o644)
    AuditLog(tmp_path / "d", "coordinator", signer).close()
    assert stat.S_IMODE((tmp_path / "d" / LOG_NAME).stat().st_mode) == 0o600


def test_log_is_opened_append_only(tmp_path: Path, signer: AuditSigner) -> None:
    import fcntl

    with AuditLog(tmp_path, "coordinator", signer) as log:
        assert fcntl.fcntl(log._fd, fcntl.F_GETFL) & os.O_APPEND


# --------------------------------------------------------------------------- concurrency


def test_concurrent_appends_keep_the_chain(tmp_path: Path, signer: AuditSigner) -> None:
    threads, per_thread = 8, 15
    barrier = threading.Barrier(threads)
    with AuditLog(tmp_path, "coordinator", signer) as log:

        def work(t: int) -> None:
            barrier.wait()
            for i in range(per_thread):
                log.append("key.sign", actor={"subject": f"t{t}"}, outcome="ok", details={"i": i})

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        assert log.count == threads * per_thread
    report = _verify(tmp_path, signer)
    assert report.ok and report.entries == threads * per_thread
    seqs = [json.loads(line)["seq"] for line in _lines(tmp_path)]
    assert seqs == list(range(threads * per_thread))


# --------------------------------------------------------------------------- crash states


def test_crash_between_append_and_head_is_repaired(
    filled: Path, signer: AuditSigner, caplog: pytest.LogCaptureFixture
) -> None:
    head_before = (filled / HEAD_NAME).read_bytes()
    with AuditLog(filled, "coordinator", signer) as log:
        log.append("key.delete", actor={}, outcome="ok", key_id="k")
    (filled / HEAD_NAME).write_bytes(head_before)  # the head write never happened
    report = _verify(filled, signer)
    assert (report.kind, report.seq, report.line) == ("extended", N, N + 1)
    with caplog.at_level(logging.WARNING, logger="mpcnode.audit"):
        with AuditLog(filled, "coordinator", signer) as log:
            assert log.count == N + 1
    assert "past its signed head" in caplog.text
    assert _verify(filled, signer).ok


def test_two_entries_past_the_head_are_refused(filled: Path, signer: AuditSigner) -> None:
    head_before = (filled / HEAD_NAME).read_bytes()
    with AuditLog(filled, "coordinator", signer) as log:
        log.append("key.delete", actor={}, outcome="ok")
        log.append("key.delete", actor={}, outcome="ok")
    (filled / HEAD_NAME).write_bytes(head_before)
    _expect(filled, signer, "extended", N, N + 1)


def test_torn_last_line_is_cut_on_open(
    filled: Path, signer: AuditSigner, caplog: pytest.LogCaptureFixture
) -> None:
    with open(filled / LOG_NAME, "ab") as f:
        f.write(b'{"action":"key.si')
    report = _verify(filled, signer)
    assert (report.kind, report.seq, report.line) == ("malformed", N, N + 1)
    with caplog.at_level(logging.WARNING, logger="mpcnode.audit"):
        AuditLog(filled, "coordinator", signer).close()
    assert "partial line" in caplog.text
    assert _verify(filled, signer).ok


def test_failed_head_write_is_retried_before_the_next_append(
    filled: Path, signer: AuditSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mpcnode.storage import write_file_atomic as real

    failures = [OSError(28, "No space left on device")]

    def flaky(path: Any, data: bytes, mode: int = 0o600) -> None:
        if failures:
            raise failures.pop()
        real(path, data, mode)

    with AuditLog(filled, "coordinator", signer) as log:
        monkeypatch.setattr("mpcnode.audit.write_file_atomic", flaky)
        with pytest.raises(OSError):
            log.append("key.sign", actor={}, outcome="ok")
        assert _verify(filled, signer).kind == "extended"  # entry N is durable, head is not
        log.append("key.sign", actor={}, outcome="ok")
    report = _verify(filled, signer)
    assert report.ok and report.entries == N + 2


def test_failed_write_leaves_no_partial_line(
    filled: Path, signer: AuditSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog(filled, "coordinator", signer) as log:

        def broken_fsync(fd: int) -> None:
            raise OSError(5, "I/O error")

        monkeypatch.setattr(os, "fsync", broken_fsync)
        with pytest.raises(OSError):
            log.append("key.sign", actor={}, outcome="ok")
        monkeypatch.undo()
        assert log.count == N
        log.append("key.sign", actor={}, outcome="ok")
    assert _verify(filled, signer).ok


# --------------------------------------------------------------------------- tampering


def test_a_good_log_verifies(filled: Path, signer: AuditSigner) -> None:
    report = _verify(filled, signer)
    assert report.ok and report.entries == N


@pytest.mark.parametrize("index", range(N))
@pytest.mark.parametrize("name", FIELDS)
def test_every_field_edit_is_named(
    filled: Path, signer: AuditSigner, index: int, name: str
) -> None:
    lines = _lines(filled)
    entry = json.loads(lines[index])
    entry[name] = _changed(entry[name], name)
    lines[index] = canonical_json(entry)
    _write_lines(filled, lines)
    # The signature does not cover itself: an altered sig is a bad signature, not a bad hash.
    kind = "bad entry signature" if name == "sig" else "edited"
    _expect(filled, signer, kind, index, index + 1)


@pytest.mark.parametrize("index", range(N))
@pytest.mark.parametrize("name", [f for f in FIELDS if f != "hash"])
def test_every_field_edit_with_its_hash_recomputed_is_named(
    filled: Path, signer: AuditSigner, index: int, name: str
) -> None:
    """The edited entry's own hash checks out, but its signature (over the old hash) does
    not. An altered prev is caught by the chain first and is indistinguishable from an edit
    of the entry before it, which is the entry named; an altered seq or log_id is named as
    an edit before the signature is looked at."""
    lines = _lines(filled)
    entry = json.loads(lines[index])
    entry[name] = _changed(entry[name], name)
    entry["hash"] = entry_hash(entry)
    lines[index] = canonical_json(entry)
    _write_lines(filled, lines)
    named = index - 1 if name == "prev" and index > 0 else index
    kind = "edited" if name in ("prev", "seq", "log_id") else "bad entry signature"
    report = _expect(filled, signer, kind, named, named + 1)
    if name == "prev" and index > 0:
        assert "its own prev was altered" in (report.error or "")
    if kind == "bad entry signature":
        assert f"entry {index} (line {index + 1}) has a bad signature" in (report.error or "")


def test_text_level_edit_is_named(filled: Path, signer: AuditSigner) -> None:
    raw = (filled / LOG_NAME).read_bytes()
    lines = raw.splitlines()
    lines[4] = lines[4].replace(b'"user-4"', b'"user-9"')
    _write_lines(filled, lines)
    report = _expect(filled, signer, "edited", 4, 5)
    assert report.error == "entry 4 (line 5) was edited: its hash does not match"


def test_noncanonical_whitespace_counts_as_an_edit(filled: Path, signer: AuditSigner) -> None:
    lines = _lines(filled)
    lines[2] = json.dumps(json.loads(lines[2])).encode()
    _write_lines(filled, lines)
    _expect(filled, signer, "edited", 2, 3)


@pytest.mark.parametrize("index", range(N))
def test_every_single_deletion_is_named(filled: Path, signer: AuditSigner, index: int) -> None:
    lines = _lines(filled)
    del lines[index]
    _write_lines(filled, lines)
    if index < N - 1:
        report = _expect(filled, signer, "removed", index, index + 1)
        assert f"entry {index} was removed" in (report.error or "")
    else:  # the last line: the log now ends before its signed head
        report = _expect(filled, signer, "truncated", N - 1, N)
        assert f"entry {N - 1} was removed" in (report.error or "")


def test_several_deleted_entries_are_named(filled: Path, signer: AuditSigner) -> None:
    lines = _lines(filled)
    del lines[3:6]
    _write_lines(filled, lines)
    report = _expect(filled, signer, "removed", 3, 4)
    assert "entries 3..5 were removed" in (report.error or "")


@pytest.mark.parametrize("index", range(N - 1))
def test_every_adjacent_swap_is_named(filled: Path, signer: AuditSigner, index: int) -> None:
    lines = _lines(filled)
    lines[index], lines[index + 1] = lines[index + 1], lines[index]
    _write_lines(filled, lines)
    report = _expect(filled, signer, "reordered", index + 1, index + 1)
    assert f"entry {index} should be here but is at line {index + 2}" in (report.error or "")


def test_moved_entry_is_named(filled: Path, signer: AuditSigner) -> None:
    lines = _lines(filled)
    lines.insert(8, lines.pop(2))
    _write_lines(filled, lines)
    _expect(filled, signer, "reordered", 3, 3)


@pytest.mark.parametrize("index", range(N))
def test_duplicated_entry_is_named(filled: Path, signer: AuditSigner, index: int) -> None:
    lines = _lines(filled)
    lines.insert(index + 1, lines[index])
    _write_lines(filled, lines)
    # Also after the last entry: a repeat is never mistaken for the one entry a crash leaves.
    _expect(filled, signer, "duplicated", index, index + 2)


@pytest.mark.parametrize("keep", range(N))
def test_truncation_is_named(filled: Path, signer: AuditSigner, keep: int) -> None:
    _write_lines(filled, _lines(filled)[:keep])
    _expect(filled, signer, "truncated", keep, keep + 1)


def test_deleted_log_file_is_refused(filled: Path, signer: AuditSigner) -> None:
    (filled / LOG_NAME).unlink()
    with pytest.raises(InvalidInput):
        _verify(filled, signer)
    with pytest.raises(AuditIntegrityError):
        AuditLog(filled, "coordinator", signer)


def _forged_entry(lines: list[bytes], key: AuditSigner | None = None) -> bytes:
    """A correctly chained next entry; its sig copied from the last entry, or made by `key`."""
    last = json.loads(lines[-1])
    forged = dict(last, seq=last["seq"] + 1, prev=last["hash"], action="key.delete")
    forged["hash"] = entry_hash(forged)
    if key is not None:
        forged["sig"] = key.sign(audit.entry_message(forged["log_id"], forged["hash"])).hex()
    return canonical_json(forged)


@pytest.mark.parametrize("other_key", [False, True])
def test_appended_forged_entry_is_named_and_never_signed_over(
    filled: Path, signer: AuditSigner, other_key: bool
) -> None:
    """One correctly chained entry past the head looks like the state a crash leaves; without
    the signer's key its own signature gives it away, and a restart refuses it rather than
    signing a new head over it."""
    head_before = (filled / HEAD_NAME).read_bytes()
    lines = _lines(filled)
    lines.append(_forged_entry(lines, AuditSigner.generate("coordinator") if other_key else None))
    _write_lines(filled, lines)
    report = _expect(filled, signer, "bad entry signature", N, N + 1)
    assert f"entry {N} (line {N + 1}) has a bad signature" in (report.error or "")
    assert (filled / HEAD_NAME).read_bytes() == head_before
    # Without a trusted key too: the entries are checked under the head's key.
    assert verify_log(filled / LOG_NAME).kind == "bad entry signature"


def test_entries_carry_a_signature_under_the_signer_key(filled: Path, signer: AuditSigner) -> None:
    import nacl.signing

    key = nacl.signing.VerifyKey(signer.public_key)
    for line in _lines(filled):
        entry = json.loads(line)
        key.verify(audit.entry_message("coordinator", entry["hash"]), bytes.fromhex(entry["sig"]))
        assert entry["hash"] == entry_hash(entry)  # sig is not under the hash


def test_forged_entry_in_the_middle_is_named(filled: Path, signer: AuditSigner) -> None:
    """Rewriting an entry and re-chaining everything after it (hashes recomputed) still fails
    at the first rewritten entry's signature."""
    lines = _lines(filled)
    prev = json.loads(lines[3])["hash"]
    for i in range(4, N):
        entry = json.loads(lines[i])
        if i == 4:
            entry["outcome"] = "ok"
            entry["actor"] = {"subject": "someone-else"}
        entry["prev"] = prev
        entry["hash"] = prev = entry_hash(entry)
        lines[i] = canonical_json(entry)
    _write_lines(filled, lines)
    _resign(filled, signer, hash=prev)  # even with a correctly re-signed head
    _expect(filled, signer, "bad entry signature", 4, 5)


def test_forged_entry_from_another_log_is_named(tmp_path: Path, signer: AuditSigner) -> None:
    with AuditLog(tmp_path / "a", "coordinator", signer) as log:
        _fill(log, 3)
    with AuditLog(tmp_path / "b", "other", signer) as log:
        _fill(log, 3)
    lines = _lines(tmp_path / "a")
    lines[1] = _lines(tmp_path / "b")[1]
    _write_lines(tmp_path / "a", lines)
    _expect(tmp_path / "a", signer, "edited", 1, 2)


@pytest.mark.parametrize(
    "garbage", [b"", b"not json", b"[]", b'{"seq": 3}', b'{"seq":1.5}', b"\xff\xfe"]
)
def test_malformed_line_is_named(filled: Path, signer: AuditSigner, garbage: bytes) -> None:
    lines = _lines(filled)
    lines.insert(5, garbage)
    _write_lines(filled, lines)
    _expect(filled, signer, "malformed", 5, 6)


def _resign(directory: Path, key: AuditSigner, **changes: Any) -> None:
    head = json.loads((directory / HEAD_NAME).read_bytes())
    head.update(changes)
    head["public_key"] = key.public_key.hex()
    message = head_message(
        head["log_id"], head["seq"], head["hash"], head["count"], head["ts"], head["signer"]
    )
    head["signature"] = key.sign(message).hex()
    (directory / HEAD_NAME).write_text(json.dumps(head))


def test_head_signed_by_another_key_is_named(filled: Path, signer: AuditSigner) -> None:
    _resign(filled, AuditSigner.generate("coordinator"))
    report = _expect(filled, signer, "bad head signature", None, None)
    assert "not the trusted key" in (report.error or "")
    # Without a trusted key the entries' signatures (under the head's key) give it away ...
    assert verify_log(filled / LOG_NAME).kind == "bad entry signature"


def test_log_rewritten_with_another_key_needs_the_trusted_key(
    filled: Path, signer: AuditSigner
) -> None:
    mallory = AuditSigner.generate("coordinator")
    lines = []
    for line in _lines(filled):
        entry = json.loads(line)
        entry["sig"] = mallory.sign(audit.entry_message("coordinator", entry["hash"])).hex()
        lines.append(canonical_json(entry))
    _write_lines(filled, lines)
    _resign(filled, mallory)
    # ... but a log re-signed wholesale passes without one: what trusted_key=false warns about.
    report = verify_log(filled / LOG_NAME)
    assert report.ok and not report.trusted_key
    _expect(filled, signer, "bad head signature", None, None)


def test_head_with_the_right_public_key_but_a_wrong_signature(
    filled: Path, signer: AuditSigner
) -> None:
    head = json.loads((filled / HEAD_NAME).read_bytes())
    head["signature"] = AuditSigner.generate().sign(b"x").hex()
    (filled / HEAD_NAME).write_text(json.dumps(head))
    report = _expect(filled, signer, "bad head signature", None, None)
    assert "does not verify" in (report.error or "")


@pytest.mark.parametrize(
    "change",
    [
        {"seq": N - 2, "count": N - 1},
        {"seq": N, "count": N + 1},
        {"ts": "2000-01-01T00:00:00.000000Z"},
        {"signer": "mallory"},
        {"log_id": "other"},
    ],
)
def test_altered_head_fails_its_signature(
    filled: Path, signer: AuditSigner, change: dict[str, Any]
) -> None:
    head = json.loads((filled / HEAD_NAME).read_bytes())
    head.update(change)
    (filled / HEAD_NAME).write_text(json.dumps(head))
    _expect(filled, signer, "bad head signature", None, None)


def test_truncation_with_a_head_reset_needs_the_key(filled: Path, signer: AuditSigner) -> None:
    """Cutting entries and rewriting the head to match is only possible with the signer's key."""
    lines = _lines(filled)[:5]
    _write_lines(filled, lines)
    last = json.loads(lines[-1])
    _resign(filled, AuditSigner.generate("coordinator"), seq=4, count=5, hash=last["hash"])
    _expect(filled, signer, "bad head signature", None, None)


@pytest.mark.parametrize("content", [None, b"{}", b"not json", b'{"seq": -1}'])
def test_missing_or_malformed_head(
    filled: Path, signer: AuditSigner, content: bytes | None
) -> None:
    if content is None:
        (filled / HEAD_NAME).unlink()
    else:
        (filled / HEAD_NAME).write_bytes(content)
    report = _verify(filled, signer)
    assert report.kind == "bad head" and not report.ok
    with pytest.raises(AuditIntegrityError):
        AuditLog(filled, "coordinator", signer)


def test_report_json_names_the_entry(filled: Path, signer: AuditSigner) -> None:
    lines = _lines(filled)
    entry = json.loads(lines[7])
    entry["outcome"] = "ok" if entry["outcome"] != "ok" else "PERMISSION_DENIED"
    lines[7] = canonical_json(entry)
    _write_lines(filled, lines)
    assert _verify(filled, signer).to_json() == {
        "ok": False,
        "error": "entry 7 (line 8) was edited: its hash does not match",
        "kind": "edited",
        "seq": 7,
        "line": 8,
    }


# --------------------------------------------------------------------------- refused input


def _appender(tmp_path: Path, signer: AuditSigner) -> Callable[..., Any]:
    log = AuditLog(tmp_path, "coordinator", signer)

    def append(**kwargs: Any) -> Any:
        args: dict[str, Any] = {"action": "key.sign", "actor": {"subject": "a"}, "outcome": "ok"}
        args.update(kwargs)
        action = args.pop("action")
        return log.append(action, **args)

    return append


@pytest.mark.parametrize(
    "kwargs",
    [
        {"details": {"secret": b"\x01\x02"}},
        {"details": {"x": bytearray(2)}},
        {"details": {"ratio": 0.5}},
        {"details": {"nan": float("nan")}},
        {"details": {"big": 1 << 63}},
        {"details": {"deep": {"a": {"b": {"c": 1}}}}},
        {"details": {"deep": [[[1]]]}},
        {"details": {1: "non-string key"}},
        {"details": {"blob": "x" * 5000}},
        {"details": {"obj": object()}},
        {"details": {"set": {1, 2}}},
        {"details": ["not", "a", "dict"]},
        {"actor": {"key": b"k"}},
        {"actor": {"subject": "x" * 3000}},
        {"actor": "alice"},
        {"key_id": b"k"},
        {"key_id": "k" * 300},
        {"tenant": 5},
        {"action": "Key Sign"},
        {"action": ""},
        {"action": "key.sign\n"},
        {"outcome": "ok\n{"},
        {"outcome": ""},
    ],
)
def test_refused_values(tmp_path: Path, signer: AuditSigner, kwargs: dict[str, Any]) -> None:
    append = _appender(tmp_path, signer)
    with pytest.raises(InvalidInput):
        append(**kwargs)
    assert _verify(tmp_path, signer).entries == 0  # nothing was written


def test_accepted_values_round_trip(tmp_path: Path, signer: AuditSigner) -> None:
    append = _appender(tmp_path, signer)
    details = {
        "digest": "ab" * 32,
        "signers": ("mpc-0", "mpc-2"),  # a tuple is stored as a list
        "interactive": True,
        "index": -(1 << 63),
        "path": {"levels": [1, 2, 3]},
        "note": "h\u00e9llo\n\u2603",
        "none": None,
    }
    entry = append(details=details, key_id="k", org="o", tenant="t", outcome="NOT_FOUND")
    assert entry["details"]["signers"] == ["mpc-0", "mpc-2"]
    stored = json.loads(_lines(tmp_path)[0])
    assert stored == entry
    assert _verify(tmp_path, signer).ok


def test_caller_mutation_does_not_change_the_entry(tmp_path: Path, signer: AuditSigner) -> None:
    append = _appender(tmp_path, signer)
    details: dict[str, Any] = {"signers": ["mpc-0"]}
    entry = append(details=details)
    details["signers"].append("mpc-9")
    assert entry["details"] == {"signers": ["mpc-0"]}


def test_bad_log_id_is_refused(tmp_path: Path, signer: AuditSigner) -> None:
    for bad in ("", "x" * 200, "a\nb"):
        with pytest.raises(InvalidInput):
            AuditLog(tmp_path, bad, signer)


def test_closed_log_refuses_appends(tmp_path: Path, signer: AuditSigner) -> None:
    log = AuditLog(tmp_path, "coordinator", signer)
    log.close()
    with pytest.raises(InvalidInput, match="closed"):
        log.append("key.sign", actor={}, outcome="ok")


# --------------------------------------------------------------------------- signer file


def test_signer_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    made = AuditSigner.generate_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = AuditSigner.load(path)
    assert loaded.public_key == made.public_key and loaded.name == "coordinator"
    assert loaded.sign(b"m") == made.sign(b"m")
    assert "redacted" in repr(loaded) and json.loads(path.read_bytes())["signing_seed"] not in repr(
        loaded
    )
    with pytest.raises(InvalidInput, match="refusing to overwrite"):
        AuditSigner.generate_file(path)
    assert AuditSigner.load(path).public_key == made.public_key  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["audit.key"]  # no temp file left
    os.chmod(path, 0o640)
    with pytest.raises(InvalidInput, match="group or others"):
        AuditSigner.load(path)
    assert AuditSigner.load(path, group_readable=True).public_key == made.public_key


def test_signer_file_with_mismatched_public_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    AuditSigner.generate_file(path, name="coord-1")
    doc = json.loads(path.read_bytes())
    doc["public_key"] = AuditSigner.generate().public_key.hex()
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput, match="does not match"):
        AuditSigner.load(path)


def _redacted_copy(source: Path, out: Path, visible_org: str) -> Path:
    """What GetAuditLog hands an auditor of `visible_org`: other orgs' entries redacted."""
    out.mkdir()
    head = json.loads((source.parent / audit.HEAD_NAME).read_text())
    lines = []
    for raw in audit.read_lines(source, head["count"]):
        entry = json.loads(raw)
        shown = entry if entry["org"] == visible_org else audit.redact(entry)
        lines.append(audit.canonical_json(shown))
    (out / audit.LOG_NAME).write_bytes(b"".join(line + b"\n" for line in lines))
    (out / audit.HEAD_NAME).write_text(json.dumps(head))
    return out / audit.LOG_NAME


def test_redacted_entries_keep_the_chain_verifiable(tmp_path: Path, signer: AuditSigner) -> None:
    with AuditLog(tmp_path / "log", "coordinator", signer) as log:
        for i in range(6):
            log.append(
                "key.sign",
                actor={"subject": f"u{i}"},
                outcome="ok",
                key_id=f"k{i}",
                org="acme" if i % 2 else "other",
                details={"digest": "ab" * 32},
            )
    copy = _redacted_copy(tmp_path / "log" / audit.LOG_NAME, tmp_path / "copy", "acme")
    text = copy.read_text()
    assert '"org":"other"' not in text and '"org":"acme"' in text
    report = verify_log(copy, trusted=signer.public_key)
    assert report.ok and report.entries == 6, report.to_json()
    lines = copy.read_bytes().splitlines()
    # A redacted entry is still signed: a forged hash is caught (here: the next prev breaks
    # first; on the last entry its own signature would).
    forged = json.loads(lines[0])
    forged["hash"] = "00" * 32
    tampered = tmp_path / "tampered"
    tampered.mkdir()
    (tampered / audit.HEAD_NAME).write_bytes((copy.parent / audit.HEAD_NAME).read_bytes())
    (tampered / audit.LOG_NAME).write_bytes(
        b"".join(x + b"\n" for x in [audit.canonical_json(forged), *lines[1:]])
    )
    assert not verify_log(tampered / audit.LOG_NAME, trusted=signer.public_key).ok
    # Removing a redacted entry is as visible as removing any other.
    (tampered / audit.LOG_NAME).write_bytes(b"".join(x + b"\n" for x in lines[:2] + lines[3:]))
    report = verify_log(tampered / audit.LOG_NAME, trusted=signer.public_key)
    assert not report.ok and report.kind == "removed" and report.seq == 2
