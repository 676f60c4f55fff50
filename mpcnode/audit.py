"""The audit trail: a hash-chained, append-only log of key operations with a signed head.

Every node and the coordinator keep one `AuditLog` in their data directory:

``audit.log`` (mode 0600, opened ``O_APPEND``)
    JSON Lines, one entry per line, each line the *canonical JSON* of the entry (keys
    sorted, separators ``(",", ":")``, ASCII only, no floats) followed by ``\\n``.
    Entry fields:

    ``seq``      0, 1, 2, ... (consecutive)
    ``ts``       ISO-8601 UTC time, ``2025-01-31T12:00:00.123456Z``
    ``log_id``   the log's name (the node name, or ``coordinator``), the same in every entry
    ``actor``    who asked: a small dict (subject, org, tenant, roles, via, ...)
    ``action``   ``key.create``, ``key.sign``, ``key.derive``, ``key.reshare``, ``key.delete``,
                 ``tenant.delete``, ``access.denied``, ``kek.rotate``, ...
    ``key_id``, ``org``, ``tenant``   string or null
    ``outcome``  ``ok`` or an error code name (``PERMISSION_DENIED``, ...)
    ``details``  small dict (message digest hex, path, signer parties, ...)
    ``prev``     hex ``hash`` of the previous entry; entry 0 has ``genesis_hash(log_id)``
    ``hash``     hex SHA-256 of ``encode_fields([ENTRY_TAG, canonical JSON of every other
                 field except sig])``
    ``sig``      hex Ed25519 signature by the log's signer over
                 ``encode_fields([ENTRY_SIG_TAG, log_id, hash as 32 raw bytes])``

    Canonical JSON was chosen over ``encode_fields`` of each field because entries hold
    nested dicts; it is unambiguous here because values are restricted to null, bool,
    int (64-bit), str, lists and dicts with string keys (floats, bytes and deep nesting
    are refused). A line that is not byte-for-byte the canonical encoding of its content
    counts as edited.

``audit.head.json`` (mode 0600, replaced atomically)
    The signed head ``{log_id, seq, hash, count, ts, signer, public_key, signature}``:
    ``seq`` and ``hash`` of the last entry (``-1`` and the genesis hash for an empty log),
    ``count`` the number of entries, ``signer`` the signer's name, ``public_key`` its
    Ed25519 key (hex), ``signature`` (hex) an Ed25519 signature over
    ``encode_fields([HEAD_TAG, log_id, seq, hash, count, ts, signer])`` (integers as ASCII
    decimal, hash as 32 raw bytes).

The hash chain makes an edited, removed or reordered entry visible; the signed head fixes
where the log ends, so removing entries from the end (or appending forged ones) is visible
too, and a log cannot be rewritten wholesale without the signer's key. The per-entry
signature makes every entry the signer's own: someone who can write the file but has no key
cannot append a correctly chained forged entry and have it taken for the one entry a crash
leaves past the head. `verify_log` checks a log end to end (every entry's signature
included) and names the first bad entry; `AuditLog` refuses to open a log that does not
verify (except for the one state a crash can leave: exactly one entry past the head, with a
valid signature of its own, over which it signs the head again).

No gRPC and no trio here: `AuditLog.append` blocks (it fsyncs twice), so call it from a
worker thread in async code; it is thread-safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import nacl.exceptions
import nacl.signing

from mpcnode.crypto.encoding import encode_fields
from mpcnode.errors import InvalidInput, MpcError
from mpcnode.identity import NodeIdentity, Roster
from mpcnode.storage import fsync_dir, read_private_file, write_file_atomic

__all__ = [
    "ACTIONS",
    "HEAD_NAME",
    "LOG_NAME",
    "AuditIntegrityError",
    "AuditLog",
    "AuditSigner",
    "Trusted",
    "VerifyReport",
    "canonical_json",
    "entry_hash",
    "entry_message",
    "genesis_hash",
    "head_message",
    "signer_public_key",
    "verify_log",
]

log = logging.getLogger("mpcnode.audit")

LOG_NAME = "audit.log"
HEAD_NAME = "audit.head.json"

ENTRY_TAG = b"mpc.v1.audit-entry"
GENESIS_TAG = b"mpc.v1.audit-genesis"
HEAD_TAG = b"mpc.v1.audit-head"
ENTRY_SIG_TAG = b"mpc.v1.audit-entry-sig"

ACTIONS = (
    "key.create",
    "key.sign",
    "key.derive",
    "key.reshare",
    "key.delete",
    "tenant.delete",
    "access.denied",
    "kek.rotate",
)
"""The actions the service records; `append` accepts any name of the same form."""

ENTRY_FIELDS = frozenset(
    {
        "seq",
        "ts",
        "log_id",
        "actor",
        "action",
        "key_id",
        "org",
        "tenant",
        "outcome",
        "details",
        "prev",
        "hash",
        "sig",
    }
)
REDACTED_FIELDS = frozenset({"seq", "log_id", "prev", "hash", "sig", "redacted"})
"""A redacted entry (`redact`): its place in the chain and its signature, not its content."""
HEAD_FIELDS = frozenset(
    {"log_id", "seq", "hash", "count", "ts", "signer", "public_key", "signature"}
)

MAX_DETAILS_BYTES = 4096
MAX_ACTOR_BYTES = 2048
MAX_STRING = 256
MAX_DEPTH = 3
"""Containers nest at most this deep, counting the top-level dict (actor, details) as 1."""
MAX_LINE = 65536
"""The verifier refuses longer lines (the writer's are well under 16 KiB)."""
_INT_BOUND = 1 << 63

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_-]+)*")
_OUTCOME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_HEX_HASH_RE = re.compile(r"[0-9a-f]{64}")
_HEX_KEY_RE = re.compile(r"[0-9a-f]{64}")
_HEX_SIG_RE = re.compile(r"[0-9a-f]{128}")


class AuditIntegrityError(MpcError):
    """An audit log or its head does not verify; `report` names the first problem."""

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(report.error or "audit log does not verify")
        self.report = report


# --------------------------------------------------------------------------- encoding


def canonical_json(value: object) -> bytes:
    """Sorted keys, no spaces, ASCII only, no NaN: one byte string per value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def genesis_hash(log_id: str) -> str:
    """The `prev` of entry 0 (and the head `hash` of an empty log)."""
    return hashlib.sha256(encode_fields([GENESIS_TAG, log_id.encode()])).hexdigest()


def entry_hash(entry: Mapping[str, Any]) -> str:
    """Hex SHA-256 over the canonical JSON of every field of `entry` except ``hash`` and
    ``sig``."""
    body = {k: v for k, v in entry.items() if k not in ("hash", "sig")}
    return hashlib.sha256(encode_fields([ENTRY_TAG, canonical_json(body)])).hexdigest()


def entry_message(log_id: str, hash_hex: str) -> bytes:
    """The bytes an entry's ``sig`` covers: its hash, domain-separated and bound to the log."""
    return encode_fields([ENTRY_SIG_TAG, log_id.encode(), bytes.fromhex(hash_hex)])


def head_message(log_id: str, seq: int, hash_hex: str, count: int, ts: str, signer: str) -> bytes:
    """The bytes the head signature covers (domain-separated, length-prefixed fields)."""
    return encode_fields(
        [
            HEAD_TAG,
            log_id.encode(),
            str(seq).encode(),
            bytes.fromhex(hash_hex),
            str(count).encode(),
            ts.encode(),
            signer.encode(),
        ]
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _format_ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------- input checks


def _check_log_id(log_id: object) -> str:
    if not isinstance(log_id, str) or not 0 < len(log_id) <= 128:
        raise InvalidInput("audit log_id must be a string of 1-128 characters")
    if not log_id.isprintable():
        raise InvalidInput("audit log_id must not contain control characters")
    return log_id


def _plain(value: object, what: str, depth: int) -> Any:
    """A deep copy of `value` as plain JSON data (tuples become lists), or InvalidInput."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -_INT_BOUND <= value < _INT_BOUND:
            raise InvalidInput(f"{what}: integer out of the 64-bit range")
        return value
    if isinstance(value, float):
        raise InvalidInput(f"{what}: floats are not allowed in the audit log")
    if isinstance(value, bytes | bytearray | memoryview):
        raise InvalidInput(f"{what}: bytes are not allowed in the audit log (use hex strings)")
    if isinstance(value, list | tuple | dict):
        if depth > MAX_DEPTH:
            raise InvalidInput(f"{what}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidInput(f"{what}: dict keys must be strings")
                out[key] = _plain(item, f"{what}.{key}", depth + 1)
            return out
        return [_plain(item, f"{what}[]", depth + 1) for item in value]
    raise InvalidInput(f"{what}: a {type(value).__name__} is not allowed in the audit log")


def _small_dict(value: object, what: str, limit: int) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidInput(f"audit {what} must be a dict")
    plain = _plain(dict(value), what, 1)
    if len(canonical_json(plain)) > limit:
        raise InvalidInput(f"audit {what} larger than {limit} bytes")
    result: dict[str, Any] = plain
    return result


def _optional_str(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_STRING:
        raise InvalidInput(f"audit {what} must be a string of at most {MAX_STRING} characters")
    return value


def _name(value: object, what: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or len(value) > 64 or not pattern.fullmatch(value):
        raise InvalidInput(f"audit {what} {value!r} is not a valid name")
    return value


# --------------------------------------------------------------------------- signer


class AuditSigner:
    """An Ed25519 key that signs a log head: the coordinator's (nodes use their identity).

    File: JSON ``{"name", "signing_seed", "public_key"}`` with mode 0600. repr never shows
    the key.
    """

    def __init__(self, name: str, signing_private: nacl.signing.SigningKey) -> None:
        if not isinstance(name, str) or not name or not name.isprintable():
            raise InvalidInput("audit signer name must be a non-empty printable string")
        if not isinstance(signing_private, nacl.signing.SigningKey):
            raise InvalidInput("audit signer key must be a nacl.signing.SigningKey")
        self.name = name
        self._key = signing_private

    @classmethod
    def generate(cls, name: str = "coordinator") -> AuditSigner:
        return cls(name, nacl.signing.SigningKey.generate())

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message`."""
        signature: bytes = self._key.sign(message).signature
        return signature

    def secret_file_bytes(self) -> bytes:
        """The key file's content (SECRET: the signing seed), e.g. for a Kubernetes Secret."""
        return self._file_bytes()

    def _file_bytes(self) -> bytes:
        doc = {
            "name": self.name,
            "signing_seed": bytes(self._key).hex(),
            "public_key": self.public_key.hex(),
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    @classmethod
    def generate_file(cls, path: str | os.PathLike[str], name: str = "coordinator") -> AuditSigner:
        """Create a fresh key file (mode 0600, atomically); refuse to overwrite an existing one."""
        signer = cls.generate(name)
        target = Path(path)
        tmp = target.parent / f".{target.name}.new{os.getpid()}.{threading.get_ident()}"
        write_file_atomic(tmp, signer._file_bytes(), 0o600)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise InvalidInput(
                f"audit key file {target} already exists; refusing to overwrite it"
            ) from None
        finally:
            tmp.unlink(missing_ok=True)
        fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return signer

    @classmethod
    def load(cls, path: str | os.PathLike[str], group_readable: bool = False) -> AuditSigner:
        """Read a key file; refuse one that others (or group, see `read_private_file`) can
        access, or whose public_key does not match its seed."""
        where = os.fspath(path)
        raw = read_private_file(path, "audit key file", group_readable)
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInput(f"audit key file {where} is not valid JSON") from None
        if not isinstance(doc, dict) or not {"name", "signing_seed"} <= doc.keys():
            raise InvalidInput(f"audit key file {where} must hold name and signing_seed")
        seed = doc["signing_seed"]
        if not isinstance(seed, str) or not _HEX_KEY_RE.fullmatch(seed):
            raise InvalidInput(f"audit key file {where}: signing_seed must be 64 hex digits")
        signer = cls(doc["name"], nacl.signing.SigningKey(bytes.fromhex(seed)))
        if "public_key" in doc and doc["public_key"] != signer.public_key.hex():
            raise InvalidInput(f"audit key file {where}: public_key does not match the seed")
        return signer

    def __repr__(self) -> str:
        return f"AuditSigner(name={self.name!r}, key=<redacted>)"


def signer_public_key(signer: NodeIdentity | AuditSigner) -> bytes:
    if isinstance(signer, NodeIdentity):
        return signer.public_entry().signing_key
    return signer.public_key


def _signature_ok(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


# --------------------------------------------------------------------------- verification


@dataclass
class VerifyReport:
    """The outcome of checking a log: ok, or the first problem, its kind and entry.

    Kinds: ``malformed`` (a line that is no valid entry), ``edited`` (an entry's content
    changed), ``removed`` (an entry missing before the end), ``reordered`` (entries out of
    order), ``duplicated`` (an entry repeated), ``truncated`` (entries missing at the end,
    before the signed head), ``extended`` (entries after the signed head), ``bad head`` (a
    head that is missing or malformed), ``bad head signature``, ``bad entry signature`` (an
    entry whose own signature does not verify: forged, or edited with its hash recomputed).
    `seq` is the entry named
    (the first missing one for ``removed``/``truncated``), `line` its 1-based line in the
    log (where it should be, for a missing one).
    """

    ok: bool
    entries: int = 0
    head: dict[str, Any] | None = None
    trusted_key: bool = False
    error: str | None = None
    kind: str | None = None
    seq: int | None = None
    line: int | None = None
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if self.ok:
            out: dict[str, Any] = {
                "ok": True,
                "entries": self.entries,
                "head": self.head,
                "trusted_key": self.trusted_key,
            }
            if self.warnings:
                out["warnings"] = list(self.warnings)
            return out
        return {
            "ok": False,
            "error": self.error,
            "kind": self.kind,
            "seq": self.seq,
            "line": self.line,
        }


def _fail(kind: str, message: str, seq: int | None, line: int | None) -> VerifyReport:
    return VerifyReport(ok=False, error=message, kind=kind, seq=seq, line=line)


def _where(seq: int, line: int) -> str:
    return f"entry {seq} (line {line})"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not allowed")


def _parse_line(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """(entry, "") for a structurally valid line, else (None, reason)."""
    if len(raw) > MAX_LINE:
        return None, f"longer than {MAX_LINE} bytes"
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        return None, "not valid JSON"
    if not isinstance(obj, dict):
        return None, "not a JSON object"
    if obj.keys() == REDACTED_FIELDS and obj["redacted"] is True:
        return _parse_redacted(obj, raw)
    if obj.keys() != ENTRY_FIELDS:
        missing = sorted(ENTRY_FIELDS - obj.keys())
        extra = sorted(obj.keys() - ENTRY_FIELDS)
        return None, f"wrong fields (missing {missing}, unexpected {extra})"
    seq = obj["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return None, "seq is not a non-negative integer"
    for name in ("prev", "hash"):
        if not isinstance(obj[name], str) or not _HEX_HASH_RE.fullmatch(obj[name]):
            return None, f"{name} is not 64 lowercase hex digits"
    if not isinstance(obj["sig"], str) or not _HEX_SIG_RE.fullmatch(obj["sig"]):
        return None, "sig is not 128 lowercase hex digits"
    for name in ("ts", "log_id", "action", "outcome"):
        if not isinstance(obj[name], str):
            return None, f"{name} is not a string"
    for name in ("key_id", "org", "tenant"):
        if obj[name] is not None and not isinstance(obj[name], str):
            return None, f"{name} is not a string or null"
    for name in ("actor", "details"):
        if not isinstance(obj[name], dict):
            return None, f"{name} is not an object"
    try:
        canonical = canonical_json(obj)
    except ValueError:
        return None, "not encodable as canonical JSON"
    if canonical != raw:
        return obj, "noncanonical"
    return obj, ""


def _parse_redacted(obj: dict[str, Any], raw: bytes) -> tuple[dict[str, Any] | None, str]:
    seq = obj["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return None, "seq is not a non-negative integer"
    for name in ("prev", "hash"):
        if not isinstance(obj[name], str) or not _HEX_HASH_RE.fullmatch(obj[name]):
            return None, f"{name} is not 64 lowercase hex digits"
    if not isinstance(obj["sig"], str) or not _HEX_SIG_RE.fullmatch(obj["sig"]):
        return None, "sig is not 128 lowercase hex digits"
    if not isinstance(obj["log_id"], str):
        return None, "log_id is not a string"
    if canonical_json(obj) != raw:
        return obj, "noncanonical"
    return obj, ""


def redact(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The entry without its content: seq, log id, prev, hash and signature only.

    A reader who may not see an entry (an auditor of another org) still gets its place in
    the chain; the verifier checks its signature over the hash and the links on both sides,
    so a removed, reordered or forged entry stays visible even where the content is hidden.
    """
    return {
        "seq": entry["seq"],
        "log_id": entry["log_id"],
        "prev": entry["prev"],
        "hash": entry["hash"],
        "sig": entry["sig"],
        "redacted": True,
    }


def read_lines(log_path: str | os.PathLike[str], count: int) -> list[bytes]:
    """The first `count` lines of a log (without newlines): the entries a head of that count
    covers, even while the log is being appended to."""
    lines: list[bytes] = []
    for _, raw, terminated in _lines(Path(log_path)):
        if len(lines) >= count or not terminated:
            break
        lines.append(raw)
    return lines


def _lines(path: Path) -> Iterator[tuple[int, bytes, bool]]:
    """(1-based line number, line without its newline, whether it ended with one)."""
    with open(path, "rb") as f:
        number = 0
        while True:
            raw = f.readline(MAX_LINE + 2)
            if not raw:
                return
            number += 1
            if raw.endswith(b"\n"):
                yield number, raw[:-1], True
                continue
            if len(raw) > MAX_LINE:  # an overlong line: report it, skip the rest of it
                while (more := f.readline(MAX_LINE + 2)) and not more.endswith(b"\n"):
                    pass
                yield number, raw, bool(more)
                continue
            yield number, raw, False


def _find_seq(path: Path, seq: int, after_line: int) -> int | None:
    """The line of the entry recorded as `seq` after `after_line`, if any (best effort)."""
    for number, raw, _ in _lines(path):
        if number <= after_line:
            continue
        obj, reason = _parse_line(raw)
        if obj is not None and reason in ("", "noncanonical") and obj["seq"] == seq:
            return number
    return None


@dataclass
class _Scan:
    count: int  # entries that verified, in order from 0
    last_hash: str  # hash of the last of them (genesis when none)
    hash_at_mark: str | None  # hash of entry `mark` when it verified
    problem: VerifyReport | None


def _scan(path: Path, log_id: str, key: bytes, mark: int | None = None) -> _Scan:
    """Check every line of the log in order (each entry's signature under `key`); stop at
    the first problem."""
    prev_hash = genesis_hash(log_id)
    hash_at_mark: str | None = None
    index = 0

    def stop(problem: VerifyReport) -> _Scan:
        return _Scan(index, prev_hash, hash_at_mark, problem)

    for number, raw, terminated in _lines(path):
        where = _where(index, number)
        entry, reason = _parse_line(raw)
        if entry is not None and not terminated:
            entry, reason = None, "the last line has no newline (a torn write)"
        if entry is None:
            return stop(_fail("malformed", f"{where} is malformed: {reason}", index, number))
        recorded = entry["seq"]
        claim = f" (it claims seq {recorded})" if recorded != index else ""
        if reason == "noncanonical":
            return stop(
                _fail(
                    "edited",
                    f"{where} was edited: the line is not the canonical encoding of an "
                    f"entry{claim}",
                    index,
                    number,
                )
            )
        if not entry.get("redacted") and entry_hash(entry) != entry["hash"]:
            return stop(
                _fail(
                    "edited", f"{where} was edited: its hash does not match{claim}", index, number
                )
            )
        if recorded != index:
            if entry["prev"] == prev_hash:
                # Chains to the entry before: the same entry with its seq (and hash) rewritten.
                return stop(
                    _fail(
                        "edited",
                        f"{where} was edited: it claims seq {recorded} and its hash was recomputed",
                        index,
                        number,
                    )
                )
            if recorded < index:
                return stop(
                    _fail(
                        "duplicated",
                        f"entry {recorded} appears again at line {number} (first at line "
                        f"{recorded + 1}): an entry was duplicated or moved",
                        recorded,
                        number,
                    )
                )
            later = _find_seq(path, index, number)
            if later is not None:
                return stop(
                    _fail(
                        "reordered",
                        f"{_where(recorded, number)} is out of order: entry {index} should be "
                        f"here but is at line {later} (entries were reordered or swapped)",
                        recorded,
                        number,
                    )
                )
            missing = (
                f"entry {index} was"
                if recorded == index + 1
                else (f"entries {index}..{recorded - 1} were")
            )
            return stop(
                _fail(
                    "removed",
                    f"{missing} removed: line {number} should hold entry {index} but holds "
                    f"entry {recorded}",
                    index,
                    number,
                )
            )
        if entry["log_id"] != log_id:
            return stop(
                _fail(
                    "edited",
                    f"{where} was edited or copied from another log: its log_id is "
                    f"{entry['log_id']!r}, not {log_id!r}",
                    index,
                    number,
                )
            )
        if entry["prev"] != prev_hash:
            if index == 0:
                return stop(
                    _fail(
                        "edited",
                        f"{where} was edited: its prev is not the genesis hash of log {log_id!r}",
                        index,
                        number,
                    )
                )
            return stop(
                _fail(
                    "edited",
                    f"{_where(index - 1, number - 1)} was edited (its hash recomputed to hide "
                    f"it): {where} records a different prev hash (or its own prev was altered)",
                    index - 1,
                    number - 1,
                )
            )
        signed = entry_message(log_id, entry["hash"])
        if not _signature_ok(key, signed, bytes.fromhex(entry["sig"])):
            return stop(
                _fail(
                    "bad entry signature",
                    f"{where} has a bad signature: it was forged, or edited with its hash "
                    "recomputed (its signature does not verify under the log signer's key)",
                    index,
                    number,
                )
            )
        prev_hash = entry["hash"]
        if index == mark:
            hash_at_mark = prev_hash
        index += 1
    return _Scan(index, prev_hash, hash_at_mark, None)


def _parse_head(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        return None, "not valid JSON"
    if not isinstance(obj, dict) or obj.keys() != HEAD_FIELDS:
        return None, f"must be a JSON object with exactly the fields {sorted(HEAD_FIELDS)}"
    for name in ("seq", "count"):
        if isinstance(obj[name], bool) or not isinstance(obj[name], int):
            return None, f"{name} is not an integer"
    if obj["count"] < 0 or obj["seq"] != obj["count"] - 1:
        return None, "seq must be count - 1"
    for name in ("log_id", "ts", "signer"):
        if not isinstance(obj[name], str) or not obj[name]:
            return None, f"{name} is not a non-empty string"
    checks = (("hash", _HEX_HASH_RE), ("public_key", _HEX_KEY_RE), ("signature", _HEX_SIG_RE))
    for name, pattern in checks:
        if not isinstance(obj[name], str) or not pattern.fullmatch(obj[name]):
            return None, f"{name} is not lowercase hex of the right length"
    return obj, ""


Trusted = bytes | Roster | Mapping[str, bytes] | None
"""A public key, a roster (the key of the head's signer name), a name -> key mapping, or
None (the head's own key: checks integrity but not who signed)."""


def _check_head(head: dict[str, Any], trusted: Trusted) -> VerifyReport | None:
    """None when the head signature verifies under the trusted key (or, with none given,
    under the head's own key); the entries' signatures are checked under the same key (the
    head's ``public_key`` once this passed)."""
    signer = head["signer"]
    if trusted is None:
        key = bytes.fromhex(head["public_key"])
    elif isinstance(trusted, bytes):
        key = trusted
    elif isinstance(trusted, Roster):
        if signer not in trusted.names:
            return _fail(
                "bad head signature",
                f"the head's signer {signer!r} is not in the roster",
                None,
                None,
            )
        key = trusted.by_name(signer).signing_key
    else:
        if signer not in trusted:
            return _fail(
                "bad head signature",
                f"the head's signer {signer!r} is not a trusted signer",
                None,
                None,
            )
        key = trusted[signer]
    if head["public_key"] != key.hex():
        return _fail(
            "bad head signature",
            f"the head names public key {head['public_key']}, not the trusted key {key.hex()} "
            f"of {signer!r}",
            None,
            None,
        )
    message = head_message(
        head["log_id"], head["seq"], head["hash"], head["count"], head["ts"], signer
    )
    if not _signature_ok(key, message, bytes.fromhex(head["signature"])):
        return _fail(
            "bad head signature",
            f"the head signature does not verify under the key of {signer!r}: the head "
            f"(seq {head['seq']}, count {head['count']}) was forged or altered",
            None,
            None,
        )
    return None


def _read_head(head_path: Path) -> tuple[dict[str, Any] | None, VerifyReport | None]:
    try:
        raw = head_path.read_bytes()
    except FileNotFoundError:
        return None, _fail("bad head", f"the head file {head_path} does not exist", None, None)
    except OSError as exc:
        raise InvalidInput(f"cannot read audit head {head_path}: {exc.strerror}") from None
    head, reason = _parse_head(raw)
    if head is None:
        return None, _fail(
            "bad head", f"the head file {head_path} is malformed: {reason}", None, None
        )
    return head, None


def _compare(scan: _Scan, head: dict[str, Any], allow_one_extra: bool) -> VerifyReport | None:
    """None when the verified log ends exactly at the head (or one past it, if allowed)."""
    count = head["count"]
    if count == 0 and head["hash"] != genesis_hash(head["log_id"]):
        return _fail("bad head", "the head of an empty log must hold the genesis hash", None, None)
    if scan.count == count:
        if scan.last_hash == head["hash"]:
            return None
        return _fail(
            "edited",
            f"{_where(count - 1, count)} was edited: its hash (recomputed to hide the edit) "
            "does not match the signed head",
            count - 1,
            count,
        )
    if scan.count < count:
        missing = (
            f"entry {scan.count} was"
            if scan.count == count - 1
            else (f"entries {scan.count}..{count - 1} were")
        )
        return _fail(
            "truncated",
            f"the log was truncated: {missing} removed from the end (the log ends after "
            f"{scan.count} entries, the signed head covers {count})",
            scan.count,
            scan.count + 1,
        )
    at_head = scan.hash_at_mark if count > 0 else genesis_hash(head["log_id"])
    if at_head != head["hash"]:
        return _fail(
            "edited",
            f"{_where(count - 1, count)} was edited: its hash (recomputed to hide the edit) "
            "does not match the signed head",
            count - 1,
            count,
        )
    if allow_one_extra and scan.count == count + 1:
        return None
    return _fail(
        "extended",
        f"{_where(count, count + 1)} comes after the signed head (which ends at entry "
        f"{count - 1}): {scan.count - count} entr{'y' if scan.count - count == 1 else 'ies'} "
        "added without a head signature (or the writer crashed before signing its head)",
        count,
        count + 1,
    )


def _verify(
    log_path: Path, head_path: Path, trusted: Trusted, allow_one_extra: bool
) -> tuple[VerifyReport, _Scan | None, dict[str, Any] | None]:
    if not log_path.is_file():
        raise InvalidInput(f"audit log {log_path} does not exist or is not a file")
    head, problem = _read_head(head_path)
    if head is None:
        assert problem is not None
        return problem, None, None
    problem = _check_head(head, trusted)
    if problem is not None:
        return problem, None, head
    try:
        key = bytes.fromhex(head["public_key"])  # _check_head: the trusted key
        scan = _scan(log_path, head["log_id"], key, mark=head["count"] - 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read audit log {log_path}: {exc.strerror}") from None
    if scan.problem is not None:
        return scan.problem, scan, head
    problem = _compare(scan, head, allow_one_extra)
    if problem is not None:
        return problem, scan, head
    report = VerifyReport(ok=True, entries=scan.count, head=head, trusted_key=trusted is not None)
    if trusted is None:
        report.warnings.append(
            "no trusted key given: the head was checked under its own public key only"
        )
    return report, scan, head


def verify_log(
    log_path: str | os.PathLike[str],
    head_path: str | os.PathLike[str] | None = None,
    trusted: Trusted = None,
) -> VerifyReport:
    """Check an audit log end to end against its signed head; name the first problem.

    `head_path` defaults to ``audit.head.json`` next to the log. `trusted` is the signer's
    Ed25519 public key, a `Roster` or a name -> key mapping (the head's ``signer`` picks the
    key); with None the head's own public key is used, which detects tampering by anyone
    without a key but not a log re-signed with another key (``trusted_key`` is then false).
    Raises InvalidInput when the log cannot be read; every content problem is a report.
    """
    log_file = Path(log_path)
    head_file = Path(head_path) if head_path is not None else log_file.parent / HEAD_NAME
    report, _, _ = _verify(log_file, head_file, trusted, allow_one_extra=False)
    return report


# --------------------------------------------------------------------------- the log


class AuditLog:
    """One hash-chained, append-only audit log with a signed head in `directory`.

    Opening verifies the existing log under the signer's key and refuses
    (`AuditIntegrityError`, naming the first bad entry) a log that does not verify; the
    one state a crash can leave, one entry past the head, gets a new head and a warning,
    only if that entry's own signature verifies (a forged entry is refused, not signed over).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        log_id: str,
        signer: NodeIdentity | AuditSigner,
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.log_id = _check_log_id(log_id)
        self._signer = signer
        self._signer_name: str = signer.name
        self._public_key = signer_public_key(signer)
        probe = encode_fields([HEAD_TAG, b"self-test"])
        if not _signature_ok(self._public_key, probe, signer.sign(probe)):
            raise InvalidInput("the audit signer's signatures do not verify under its public key")
        self._clock = clock
        self._lock = threading.Lock()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_path = self.directory / LOG_NAME
        self.head_path = self.directory / HEAD_NAME
        self._fd = -1
        self._next_seq = 0
        self._last_hash = genesis_hash(self.log_id)
        self._head_stale = False
        self._head: dict[str, Any] = {}
        self._open()

    # -- opening

    def _open(self) -> None:
        log_exists = self.log_path.exists()
        head_exists = self.head_path.exists()
        if head_exists and not log_exists:
            raise AuditIntegrityError(
                _fail(
                    "truncated",
                    f"audit log {self.log_path} is missing but its head {self.head_path} exists",
                    0,
                    1,
                )
            )
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        fd = os.open(self.log_path, flags, 0o600)
        try:
            self._check_mode(fd)
            if not log_exists:
                os.fsync(fd)
                fsync_dir(self.directory)
            self._repair_torn_tail(fd)
            if not head_exists:
                if os.fstat(fd).st_size != 0:
                    raise AuditIntegrityError(
                        _fail(
                            "bad head",
                            f"audit log {self.log_path} has entries but its head "
                            f"{self.head_path} is missing",
                            None,
                            None,
                        )
                    )
                if log_exists:
                    log.warning("audit log %s had no head; signing one", self.log_path)
                self._fd = fd
                self._write_head()
                return
            report, scan, head = _verify(
                self.log_path, self.head_path, self._public_key, allow_one_extra=True
            )
            if not report.ok:
                raise AuditIntegrityError(report)
            assert scan is not None and head is not None
            if head["log_id"] != self.log_id:
                raise AuditIntegrityError(
                    _fail(
                        "bad head",
                        f"audit log in {self.directory} belongs to {head['log_id']!r}, "
                        f"not {self.log_id!r}",
                        None,
                        None,
                    )
                )
            self._fd = fd
            self._next_seq = scan.count
            self._last_hash = scan.last_hash
            self._head = head
            if scan.count == head["count"] + 1:
                log.warning(
                    "audit log %s has entry %d past its signed head (a crash between append "
                    "and head write); signing a new head",
                    self.log_path,
                    head["count"],
                )
                self._write_head()
        except BaseException:
            os.close(fd)
            self._fd = -1
            raise

    def _check_mode(self, fd: int) -> None:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"audit log {self.log_path} is not a regular file")
        if stat.S_IMODE(st.st_mode) & 0o077:
            log.warning(
                "audit log %s had mode %04o; restricting it to 0600",
                self.log_path,
                stat.S_IMODE(st.st_mode),
            )
            os.fchmod(fd, 0o600)

    def _repair_torn_tail(self, fd: int) -> None:
        """Cut a partial last line (a write torn by a crash; never covered by the head)."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        with open(self.log_path, "rb") as f:
            f.seek(max(0, size - MAX_LINE - 2))
            tail = f.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        keep = size - len(tail) + cut + 1 if cut >= 0 else 0
        if cut < 0 and size > len(tail):
            raise AuditIntegrityError(
                _fail(
                    "malformed",
                    f"audit log {self.log_path} ends with an overlong unterminated line",
                    None,
                    None,
                )
            )
        log.warning(
            "audit log %s ends with a partial line of %d bytes (a torn write); removing it",
            self.log_path,
            size - keep,
        )
        os.ftruncate(fd, keep)
        os.fsync(fd)

    # -- writing

    def _write_head(self) -> None:
        """Sign and atomically write the head for the current end of the log (lock held)."""
        ts = _format_ts(self._clock())
        seq = self._next_seq - 1
        message = head_message(
            self.log_id, seq, self._last_hash, self._next_seq, ts, self._signer_name
        )
        head = {
            "log_id": self.log_id,
            "seq": seq,
            "hash": self._last_hash,
            "count": self._next_seq,
            "ts": ts,
            "signer": self._signer_name,
            "public_key": self._public_key.hex(),
            "signature": self._signer.sign(message).hex(),
        }
        self._head_stale = True
        write_file_atomic(self.head_path, json.dumps(head, indent=2).encode() + b"\n", 0o600)
        self._head_stale = False
        self._head = head

    def append(
        self,
        action: str,
        *,
        actor: Mapping[str, Any],
        outcome: str,
        key_id: str | None = None,
        org: str | None = None,
        tenant: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append one entry durably (write + fsync), then sign the new head; return the entry.

        Values must be plain JSON data without floats or bytes (InvalidInput otherwise), so
        nothing secret or unbounded is logged by accident: details at most 4 KiB, actor
        2 KiB, nesting 3 levels. Blocks on disk I/O; thread-safe. If the head could not be
        written last time, it is written first, so the log is never more than one entry
        past its signed head.
        """
        fields: dict[str, Any] = {
            "ts": "",
            "log_id": self.log_id,
            "actor": _small_dict(actor, "actor", MAX_ACTOR_BYTES),
            "action": _name(action, "action", _NAME_RE),
            "key_id": _optional_str(key_id, "key_id"),
            "org": _optional_str(org, "org"),
            "tenant": _optional_str(tenant, "tenant"),
            "outcome": _name(outcome, "outcome", _OUTCOME_RE),
            "details": _small_dict(details, "details", MAX_DETAILS_BYTES),
        }
        with self._lock:
            if self._fd < 0:
                raise InvalidInput(f"audit log {self.log_path} is closed")
            if self._head_stale:
                self._write_head()
            entry = dict(fields, seq=self._next_seq, ts=_format_ts(self._clock()))
            entry["prev"] = self._last_hash
            entry["hash"] = entry_hash(entry)
            entry["sig"] = self._signer.sign(entry_message(self.log_id, entry["hash"])).hex()
            line = canonical_json(entry) + b"\n"
            size = os.fstat(self._fd).st_size
            try:
                view = memoryview(line)
                while view:
                    written = os.write(self._fd, view)
                    view = view[written:]
                os.fsync(self._fd)
            except BaseException:
                # Leave no partial line behind; the entry did not happen.
                try:
                    os.ftruncate(self._fd, size)
                except OSError:
                    log.error("cannot remove a partial audit entry from %s", self.log_path)
                raise
            self._next_seq += 1
            self._last_hash = entry["hash"]
            self._write_head()
            return entry

    # -- state

    @property
    def count(self) -> int:
        with self._lock:
            return self._next_seq

    def head(self) -> dict[str, Any]:
        """The last signed head (a copy)."""
        with self._lock:
            return dict(self._head)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AuditLog({str(self.log_path)!r}, log_id={self.log_id!r})"
