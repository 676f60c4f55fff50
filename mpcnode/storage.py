"""Encrypted, durable key-share storage for one node, and the private-file helpers.

Layout (DESIGN.md, Storage): one SQLite database per node data directory, in WAL
mode with ``synchronous=FULL`` so an acknowledged write survives ``kill -9`` and
power loss. Secrets are sealed with envelope encryption:

    KEK (32 bytes, file or env MPC_KEK, never in the data directory)
      wraps  DK_key (32 random bytes per key id)     AES-256-GCM, AAD = (node, key id)
        seals  secret record                         AES-256-GCM, AAD = (node, key id, gen.)
      wraps  DK_tenant (32 random bytes per tenant)  AES-256-GCM, AAD = (node, tenant)
             (records written before per-key data keys; migrated to DK_key on open)

The AAD binding means a sealed record copied to another node, key id or generation
does not open. Deleting a key destroys its wrapped data key, deleting a tenant those
of all its keys and its own (crypto-shredding): any copy of their records left
anywhere can no longer be opened, not even with the KEK. A deleted key id leaves a
tombstone, so the key cannot come back on this node. `rotate_kek` rewraps every
data key under a new KEK in one transaction; meta row ``kek_fingerprint`` (an HMAC
of the KEK, never the KEK) tells which KEK a database needs.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote, unquote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mpcnode.crypto.encoding import encode_fields, encode_uint
from mpcnode.errors import InternalBug, InvalidInput, KeyNotFound

__all__ = [
    "DB_NAME",
    "DEFAULT_TENANT",
    "KEK_ENV",
    "ConsumedPresignature",
    "KeyStore",
    "PresignatureInfo",
    "PresignatureUsed",
    "StoredKey",
    "create_kek_file",
    "load_kek",
    "owner_of_store_tenant",
    "store_tenant_of_owner",
    "fsync_dir",
    "read_private_file",
    "write_file_atomic",
]

log = logging.getLogger("mpcnode.storage")

DB_NAME = "keys.sqlite3"
"""File name of the node database inside its data directory."""

DEFAULT_TENANT = "default"
_OWNER_PREFIX = "owner:"


def store_tenant_of_owner(org: str, tenant: str) -> str:
    """The storage tenant (the ``tenants`` table: one data key each) of a key owned by
    ``(org, tenant)`` (tenant "" = the org root): ``"owner:" + pct(org) + "/" + pct(tenant)``
    with every character outside ``[A-Za-z0-9_.~-]`` percent-encoded (UTF-8), so the mapping
    is reversible (`owner_of_store_tenant`). No owner (both empty) is `DEFAULT_TENANT`, where
    keys made before owners existed are stored."""
    if not org and not tenant:
        return DEFAULT_TENANT
    return f"{_OWNER_PREFIX}{quote(org, safe='')}/{quote(tenant, safe='')}"


def owner_of_store_tenant(name: str) -> tuple[str, str]:
    """The owner ``(org, tenant)`` of keys stored under storage tenant `name`; ``("", "")``
    (no owner) for any name not made by `store_tenant_of_owner`."""
    if not name.startswith(_OWNER_PREFIX):
        return "", ""
    org, sep, tenant = name[len(_OWNER_PREFIX) :].partition("/")
    if not sep or "/" in tenant:
        return "", ""
    return unquote(org, errors="strict"), unquote(tenant, errors="strict")


KEK_ENV = "MPC_KEK"
"""Environment variable holding the KEK as 64 hex characters when no KEK file is configured."""

KEK_SIZE = 32
_NONCE_SIZE = 12  # AES-GCM nonce
_SCHEMA_VERSION = b"1"

_SHARE_TAG = b"mpc.v1.share"
_TENANT_KEY_TAG = b"mpc.v1.tenant-key"
_KEK_CHECK_TAG = b"mpc.v1.kek-check"
_KEY_DATA_KEY_TAG = b"mpc.v1.key-data-key"
_KEK_FINGERPRINT_TAG = b"mpc.v1.kek-fingerprint"


# --------------------------------------------------------------------------- private files


def fsync_dir(directory: Path) -> None:
    """Make a rename or link inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(directory: Path, stem: str, data: bytes, mode: int) -> Path:
    """Write `data` to a fresh temp file in `directory`, created with `mode`, fsynced."""
    for attempt in range(100):
        tmp = directory / f".{stem}.tmp{os.getpid()}.{attempt}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits; never adds any
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        os.close(fd)
        return tmp
    raise InvalidInput(f"cannot create a temporary file in {directory}")


def write_file_atomic(path: str | os.PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically and durably; the file has `mode` from creation.

    Temp file in the same directory, fsync, ``os.replace``, fsync of the directory: after
    a crash the path holds either the old or the new content, never a mix.
    """
    target = Path(path)
    directory = target.parent
    tmp = _write_temp(directory, target.name, data, mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(directory)


def read_private_file(
    path: str | os.PathLike[str], what: str, group_readable: bool = False
) -> bytes:
    """Read a secret file, refusing one that group or others may access.

    `group_readable` tolerates group *read* only (never group write, never any access by
    others): a Kubernetes Secret mounted for a non-root user is readable through the pod's
    `fsGroup`, and kubelet adds that group-read bit whatever `defaultMode` says.
    The mode is checked on the opened descriptor, so the file read is the file checked.
    Error messages name the file and mode, never its content.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise InvalidInput(f"{what} {os.fspath(path)} does not exist") from None
    except OSError as exc:
        raise InvalidInput(f"cannot open {what} {os.fspath(path)}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidInput(f"{what} {os.fspath(path)} is not a regular file")
        perms = stat.S_IMODE(st.st_mode)
        if perms & (0o037 if group_readable else 0o077):
            raise InvalidInput(
                f"{what} {os.fspath(path)} is accessible by group or others "
                f"(mode {perms:04o}); restrict it with chmod 600"
            )
        chunks: list[bytes] = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- KEK


def load_kek(kek_file: str | os.PathLike[str] | None, group_readable: bool = False) -> bytes:
    """The node's key-encryption key: 32 raw bytes from `kek_file`, else hex from $MPC_KEK.

    Refuses a KEK file readable by others, or by group unless `group_readable` (see
    `read_private_file`). No error message contains key material.
    """
    if kek_file is not None:
        kek = read_private_file(kek_file, "KEK file", group_readable)
        if len(kek) != KEK_SIZE:
            raise InvalidInput(
                f"KEK file {os.fspath(kek_file)} must hold exactly {KEK_SIZE} raw bytes, "
                f"found {len(kek)}"
            )
        return kek
    value = os.environ.get(KEK_ENV)
    if value is None:
        raise InvalidInput(f"no KEK: configure kek_file or set {KEK_ENV} (64 hex characters)")
    value = value.strip()
    if len(value) != 2 * KEK_SIZE:
        raise InvalidInput(f"{KEK_ENV} must be {2 * KEK_SIZE} hex characters, found {len(value)}")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidInput(f"{KEK_ENV} is not valid hex") from None


def create_kek_file(path: str | os.PathLike[str]) -> None:
    """Write a fresh random 32-byte KEK to `path` with mode 0600; refuse to overwrite one.

    Overwriting a KEK would make every record sealed under it unreadable, so an existing
    file is an error. The file appears atomically (temp file + hard link) and durably.
    """
    target = Path(path)
    tmp = _write_temp(target.parent, target.name, os.urandom(KEK_SIZE), 0o600)
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise InvalidInput(f"KEK file {target} already exists; refusing to overwrite it") from None
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(target.parent)


# --------------------------------------------------------------------------- records


def _share_aad(node_name: str, key_id: str, generation: int) -> bytes:
    return encode_fields([_SHARE_TAG, node_name.encode(), key_id.encode(), encode_uint(generation)])


def _tenant_aad(node_name: str, tenant: str) -> bytes:
    return encode_fields([_TENANT_KEY_TAG, node_name.encode(), tenant.encode()])


def _key_data_key_aad(node_name: str, key_id: str) -> bytes:
    return encode_fields([_KEY_DATA_KEY_TAG, node_name.encode(), key_id.encode()])


def kek_fingerprint(kek: bytes, node_name: str) -> bytes:
    """HMAC-SHA256(KEK, tag || node): names a KEK without revealing it (stored in meta row
    ``kek_fingerprint``; different on every node even for one KEK)."""
    return hmac.new(
        kek, encode_fields([_KEK_FINGERPRINT_TAG, node_name.encode()]), hashlib.sha256
    ).digest()


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """nonce || AES-256-GCM(key, nonce, plaintext, aad) with a random 96-bit nonce."""
    nonce = os.urandom(_NONCE_SIZE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Inverse of `_seal`; raises cryptography's InvalidTag when authentication fails."""
    if len(sealed) < _NONCE_SIZE + 16:
        raise InvalidTag()
    return AESGCM(key).decrypt(sealed[:_NONCE_SIZE], sealed[_NONCE_SIZE:], aad)


@dataclass(frozen=True, repr=False)
class StoredKey:
    """One stored key generation. Public fields are plain; the secret opens on demand.

    `secret()` decrypts the share record each time it is called (nothing secret is kept
    on this object). `repr` shows only identifiers.
    """

    key_id: str
    tenant: str
    scheme: str
    generation: int
    status: str  # "pending" or "active"
    public: bytes
    confirmations: bytes | None
    created_at: int
    _store: KeyStore = field(compare=False)

    def secret(self) -> bytes:
        """Decrypt this generation's secret record (raises InvalidInput if it does not open)."""
        return self._store._open_secret(self.key_id, self.generation)

    def __repr__(self) -> str:
        return (
            f"StoredKey(key_id={self.key_id!r}, tenant={self.tenant!r}, scheme={self.scheme!r}, "
            f"generation={self.generation}, status={self.status!r}, secret=<redacted>)"
        )


class PresignatureUsed(InvalidInput):
    """The presignature was already consumed for another request: it can never sign again."""


@dataclass(frozen=True, repr=False)
class ConsumedPresignature:
    """A presignature this node has durably marked consumed for one request.

    On the first consume (and on a resend of the same request before `record_partial`),
    `secret` holds the opened secret record and `cached_sigma` is None. Once σ_i has been
    recorded, the secret record is erased and a resend gets `secret` None and `cached_sigma`
    set: exactly one of them is not None. `repr` shows neither.
    """

    presignature_id: bytes
    key_id: str
    generation: int
    signers: tuple[int, ...]
    public: bytes
    secret: bytes | None
    cached_sigma: bytes | None

    def __repr__(self) -> str:
        return (
            f"ConsumedPresignature(presignature_id={self.presignature_id.hex()}, "
            f"key_id={self.key_id!r}, generation={self.generation}, "
            f"signers={list(self.signers)}, secret=<redacted>, "
            f"cached_sigma={'<redacted>' if self.cached_sigma is not None else None})"
        )


@dataclass(frozen=True)
class PresignatureInfo:
    """Public description of one available presignature (no secret)."""

    presignature_id: bytes
    signers: tuple[int, ...]
    generation: int


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants (
    tenant      TEXT PRIMARY KEY,
    wrapped_key BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
    key_id        TEXT NOT NULL,
    tenant        TEXT NOT NULL REFERENCES tenants(tenant),
    scheme        TEXT NOT NULL,
    generation    INTEGER NOT NULL CHECK (generation >= 0),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'active')),
    public        BLOB NOT NULL,
    sealed_secret BLOB NOT NULL,
    confirmations BLOB,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (key_id, generation)
);
CREATE INDEX IF NOT EXISTS keys_tenant ON keys(tenant);
CREATE TABLE IF NOT EXISTS session_ids (
    session_id BLOB PRIMARY KEY,
    started_at INTEGER NOT NULL
);
"""

_PUBLIC_COLUMNS = "key_id, tenant, scheme, generation, status, public, confirmations, created_at"


def _check_name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{what} must be a non-empty string")
    return value


def _check_generation(generation: object) -> int:
    if isinstance(generation, bool) or not isinstance(generation, int):
        raise InvalidInput("generation must be an integer")
    if not 0 <= generation < 1 << 32:
        raise InvalidInput("generation out of range")
    return generation


class KeyStore:
    """The node's key database: pending/active key generations with sealed secrets.

    Every write method runs one ``BEGIN IMMEDIATE`` transaction and returns after the
    commit is on disk (WAL, ``synchronous=FULL``). Safe to share between threads.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        node_name: str,
        kek: bytes,
        next_kek: bytes | None = None,
    ) -> None:
        """Open (or create) the node's store. `next_kek` (optional, from ``kek_next_file``) is
        the KEK a running node may rotate to; at startup the store uses whichever of `kek` and
        `next_kek` matches its stored KEK fingerprint (so after a rotation either file layout
        starts the node) and refuses to open when neither does."""
        self._node = _check_name(node_name, "node name")
        for candidate in (kek, next_kek):
            if candidate is not None and (
                not isinstance(candidate, bytes) or len(candidate) != KEK_SIZE
            ):
                raise InvalidInput(f"KEK must be {KEK_SIZE} bytes")
        self._kek = kek
        self._next_kek = next_kek
        self._dir = Path(data_dir)
        self._lock = threading.RLock()
        self._prepare_dir()
        self.path = self._dir / DB_NAME
        self._create_db_file()
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False
        )
        try:
            self._configure()
            self._choose_kek()
            self._init_meta()
            self._init_key_data_keys()
        except BaseException:
            self.close()
            raise

    # -- setup

    def _prepare_dir(self) -> None:
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(self._dir.stat().st_mode) != 0o700:
            os.chmod(self._dir, 0o700)

    def _create_db_file(self) -> None:
        """Create the database file with mode 0600 before SQLite opens it.

        SQLite gives the -wal and -shm files the mode of the database file.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if stat.S_IMODE(os.fstat(fd).st_mode) != 0o600:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists() and stat.S_IMODE(side.stat().st_mode) & 0o077:
                os.chmod(side, 0o600)

    def _configure(self) -> None:
        conn = self._db()
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise InvalidInput(f"cannot enable WAL on {self.path}")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA secure_delete=ON")  # deleted records are overwritten with zeros
        conn.executescript(_SCHEMA)

    def _init_meta(self) -> None:
        """Bind the database to this node and check the KEK against it."""
        with self._write() as conn:
            rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            check_aad = encode_fields([_KEK_CHECK_TAG, self._node.encode()])
            if not rows:
                conn.executemany(
                    "INSERT INTO meta(name, value) VALUES (?, ?)",
                    [
                        ("schema_version", _SCHEMA_VERSION),
                        ("node_name", self._node.encode()),
                        ("kek_check", _seal(self._kek, b"", check_aad)),
                    ],
                )
                return
        if rows.get("schema_version") != _SCHEMA_VERSION:
            raise InvalidInput(f"{self.path} has an unsupported schema version")
        stored_node = bytes(rows.get("node_name", b"")).decode(errors="replace")
        if stored_node != self._node:
            raise InvalidInput(f"{self.path} belongs to node {stored_node!r}, not {self._node!r}")
        try:
            _open(self._kek, bytes(rows["kek_check"]), check_aad)
        except (InvalidTag, KeyError):
            raise InvalidInput(f"the KEK does not match the key store {self.path}") from None

    # -- plumbing

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise InvalidInput("key store is closed")
        return self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One durable write transaction (commit on success, rollback on any error)."""
        with self._lock:
            conn = self._db()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _tenant_key(self, conn: sqlite3.Connection, tenant: str, *, create: bool) -> bytes | None:
        """Unwrap the tenant's data key; with `create`, make one on first use."""
        row = conn.execute("SELECT wrapped_key FROM tenants WHERE tenant = ?", (tenant,)).fetchone()
        aad = _tenant_aad(self._node, tenant)
        if row is None:
            if not create:
                return None
            data_key = AESGCM.generate_key(bit_length=256)
            conn.execute(
                "INSERT INTO tenants(tenant, wrapped_key, created_at) VALUES (?, ?, ?)",
                (tenant, _seal(self._kek, data_key, aad), int(time.time())),
            )
            return data_key
        try:
            return _open(self._kek, bytes(row[0]), aad)
        except InvalidTag:
            raise InvalidInput(
                f"data key of tenant {tenant!r} failed authentication "
                "(wrong KEK or tampered record)"
            ) from None

    def _row_to_key(self, row: tuple[object, ...]) -> StoredKey:
        key_id, tenant, scheme, generation, status, public, confirmations, created_at = row
        assert isinstance(key_id, str) and isinstance(tenant, str) and isinstance(scheme, str)
        assert isinstance(generation, int) and isinstance(status, str)
        assert isinstance(public, bytes) and isinstance(created_at, int)
        assert confirmations is None or isinstance(confirmations, bytes)
        return StoredKey(
            key_id, tenant, scheme, generation, status, public, confirmations, created_at, self
        )

    def _open_secret(self, key_id: str, generation: int) -> bytes:
        with self._lock:
            conn = self._db()
            row = conn.execute(
                "SELECT tenant, sealed_secret FROM keys WHERE key_id = ? AND generation = ?",
                (key_id, generation),
            ).fetchone()
            if row is None:
                raise KeyNotFound(f"key {key_id!r} generation {generation} is no longer stored")
            _tenant, sealed = row
            data_key = self._key_data_key(conn, key_id, create=False)
        if data_key is None:
            raise InvalidInput(f"key {key_id!r} has no data key (deleted)")
        try:
            return _open(data_key, bytes(sealed), _share_aad(self._node, key_id, generation))
        except InvalidTag:
            raise InvalidInput(
                f"record authentication failed for key {key_id!r} generation {generation}"
            ) from None

    # -- public API

    @property
    def node_name(self) -> str:
        return self._node

    def put_pending(
        self,
        key_id: str,
        generation: int,
        scheme: str,
        public: bytes,
        secret: bytes,
        tenant: str = DEFAULT_TENANT,
    ) -> None:
        """Store a new key generation as pending (not yet certified by every holder).

        Refuses an existing (key_id, generation) and a key id that belongs to another tenant.
        """
        _check_name(key_id, "key id")
        _check_generation(generation)
        _check_name(scheme, "scheme")
        _check_name(tenant, "tenant")
        if not isinstance(public, bytes) or not isinstance(secret, bytes):
            raise InvalidInput("public and secret must be bytes")
        with self._write() as conn:
            existing = conn.execute(
                "SELECT tenant, generation FROM keys WHERE key_id = ?", (key_id,)
            ).fetchall()
            if any(g == generation for _, g in existing):
                raise InvalidInput(f"key {key_id!r} generation {generation} is already stored")
            if any(t != tenant for t, _ in existing):
                raise InvalidInput(f"key {key_id!r} belongs to another tenant")
            if self._deleted(conn, key_id):
                raise InvalidInput(f"key {key_id!r} was deleted on this node; it cannot return")
            self._tenant_key(conn, tenant, create=True)  # the tenant row (its key: old records)
            data_key = self._key_data_key(conn, key_id, create=True)
            if data_key is None:
                raise InternalBug("key data key was not created")
            sealed = _seal(data_key, secret, _share_aad(self._node, key_id, generation))
            conn.execute(
                "INSERT INTO keys(key_id, tenant, scheme, generation, status, public,"
                " sealed_secret, confirmations, created_at)"
                " VALUES (?, ?, ?, ?, 'pending', ?, ?, NULL, ?)",
                (key_id, tenant, scheme, generation, public, sealed, int(time.time())),
            )

    def activate(self, key_id: str, generation: int, confirmations: bytes) -> None:
        """Mark a pending generation active once every holder has certified it.

        Older generations of the key are erased in the same transaction (DESIGN.md: an old
        generation is kept only until the new one is certified). Activating an already
        active generation with the same confirmations is a no-op, so the call can be retried.
        """
        _check_name(key_id, "key id")
        _check_generation(generation)
        if not isinstance(confirmations, bytes):
            raise InvalidInput("confirmations must be bytes")
        with self._write() as conn:
            row = conn.execute(
                "SELECT status, confirmations FROM keys WHERE key_id = ? AND generation = ?",
                (key_id, generation),
            ).fetchone()
            if row is None:
                raise KeyNotFound(f"no pending key {key_id!r} generation {generation}")
            status, stored_confirmations = row
            if status == "active":
                if stored_confirmations != confirmations:
                    raise InvalidInput(
                        f"key {key_id!r} generation {generation} is already active "
                        "with other confirmations"
                    )
                return
            conn.execute(
                "UPDATE keys SET status = 'active', confirmations = ?"
                " WHERE key_id = ? AND generation = ?",
                (confirmations, key_id, generation),
            )
            erased = conn.execute(
                "DELETE FROM keys WHERE key_id = ? AND generation < ?", (key_id, generation)
            ).rowcount
        if erased:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it, so erased records (zeroed in the
        database by ``secure_delete``) leave no copy in the WAL either. A busy checkpoint is
        logged, not raised: the erasure itself is committed, and the next one catches up."""
        with self._lock:
            busy = self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            log.warning("WAL checkpoint after an erase was busy; old pages remain until the next")

    def claim_session_id(self, session_id: bytes) -> None:
        """Record a protocol session id as used, durably; InvalidInput if it ever was.

        Envelopes are signed over the session id, not the whole execution, so a node must never
        run two sessions under one id (a relay could otherwise feed one the other's messages),
        also not across restarts.
        """
        if not isinstance(session_id, bytes) or not session_id:
            raise InvalidInput("session id must be non-empty bytes")
        with self._write() as conn:
            try:
                conn.execute(
                    "INSERT INTO session_ids(session_id, started_at) VALUES (?, ?)",
                    (session_id, int(time.time())),
                )
            except sqlite3.IntegrityError:
                raise InvalidInput("session id already used on this node") from None

    def generations(self, key_id: str) -> list[tuple[int, str]]:
        """(generation, status) of every stored generation of `key_id`, oldest first."""
        _check_name(key_id, "key id")
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT generation, status FROM keys WHERE key_id = ? ORDER BY generation",
                    (key_id,),
                )
                .fetchall()
            )
        return [(int(g), str(status)) for g, status in rows]

    def discard_pending(self, key_id: str, generation: int) -> None:
        """Erase a pending generation (a failed keygen or reshare); absent is not an error."""
        _check_name(key_id, "key id")
        _check_generation(generation)
        with self._write() as conn:
            row = conn.execute(
                "SELECT status FROM keys WHERE key_id = ? AND generation = ?", (key_id, generation)
            ).fetchone()
            if row is None:
                return
            if row[0] != "pending":
                raise InvalidInput(
                    f"key {key_id!r} generation {generation} is active; refusing to discard it"
                )
            conn.execute(
                "DELETE FROM keys WHERE key_id = ? AND generation = ?", (key_id, generation)
            )

    def retire(self, key_id: str, below_generation: int) -> int:
        """Erase every generation of `key_id` older than `below_generation`; returns how many.

        For a node that is not a holder of a reshared key's new generation.
        """
        _check_name(key_id, "key id")
        _check_generation(below_generation)
        with self._write() as conn:
            erased = conn.execute(
                "DELETE FROM keys WHERE key_id = ? AND generation < ?", (key_id, below_generation)
            ).rowcount
        if erased:
            self._checkpoint()
        return int(erased)

    def get_active(self, key_id: str) -> StoredKey | None:
        """The highest active generation of `key_id`, or None. Pending generations are ignored."""
        _check_name(key_id, "key id")
        with self._lock:
            row = (
                self._db()
                .execute(
                    f"SELECT {_PUBLIC_COLUMNS} FROM keys WHERE key_id = ? AND status = 'active'"
                    " ORDER BY generation DESC LIMIT 1",
                    (key_id,),
                )
                .fetchone()
            )
        return None if row is None else self._row_to_key(row)

    def list_active(self) -> list[StoredKey]:
        """The highest active generation of every key, ordered by key id."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    f"SELECT {_PUBLIC_COLUMNS} FROM keys AS k"
                    " WHERE status = 'active' AND generation = (SELECT MAX(generation) FROM keys"
                    " WHERE key_id = k.key_id AND status = 'active') ORDER BY key_id"
                )
                .fetchall()
            )
        return [self._row_to_key(r) for r in rows]

    def pending_keys(self) -> list[StoredKey]:
        """Every pending generation, ordered by key id and generation."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    f"SELECT {_PUBLIC_COLUMNS} FROM keys WHERE status = 'pending'"
                    " ORDER BY key_id, generation"
                )
                .fetchall()
            )
        return [self._row_to_key(r) for r in rows]

    def delete_tenant(self, tenant: str) -> list[str]:
        """Crypto-shred a tenant: destroy its data key and the data keys of all its keys, erase
        their records and leave a tombstone per key id; returns the key ids erased.

        The deleted pages are zeroed (``secure_delete``) and the WAL is checkpointed and
        truncated, so neither file keeps a wrapped key; any other copy of the tenant's
        sealed records can no longer be opened.
        """
        _check_name(tenant, "tenant")
        with self._write() as conn:
            key_ids = sorted(
                {
                    str(r[0])
                    for r in conn.execute(
                        "SELECT key_id FROM keys WHERE tenant = ?"
                        " UNION SELECT key_id FROM key_data_keys WHERE tenant = ?",
                        (tenant, tenant),
                    )
                }
            )
            for key_id in key_ids:
                self._erase_key(conn, key_id, tenant)
            conn.execute("DELETE FROM tenants WHERE tenant = ?", (tenant,))
        self._checkpoint_strict("tenant deleted")
        return key_ids

    # -- per-key data keys, deletion and KEK rotation

    _KEY_DATA_KEYS_SCHEMA = """
    CREATE TABLE IF NOT EXISTS key_data_keys (
        key_id      TEXT PRIMARY KEY,
        tenant      TEXT NOT NULL,
        wrapped_key BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS deleted_keys (
        key_id     TEXT PRIMARY KEY,
        tenant     TEXT NOT NULL,
        deleted_at INTEGER NOT NULL
    );
    """
    _NODE_DATA_KEYS = (
        (b"mpc.v1.prime-pool-key", "prime_pool_key", "prime-pool"),
        (b"mpc.v1.aux-info-key", "aux_info_key", "aux-info"),
    )
    """(tag, meta row, purpose) of every node-level data key wrapped by the KEK
    (`_node_data_key`): KEK rotation rewraps them."""

    def _check_aad(self) -> bytes:
        return encode_fields([_KEK_CHECK_TAG, self._node.encode()])

    def _choose_kek(self) -> None:
        """At startup: use whichever of the KEK and the next KEK the database was sealed with
        (its stored fingerprint, or for an older database its KEK check record)."""
        rows = dict(
            self._db()
            .execute(
                "SELECT name, value FROM meta"
                " WHERE name IN ('kek_fingerprint', 'kek_check', 'node_name')"
            )
            .fetchall()
        )
        if bytes(rows.get("node_name", self._node.encode())) != self._node.encode():
            return  # another node's database: `_init_meta` says so
        candidates = [k for k in (self._kek, self._next_kek) if k is not None]
        stored = rows.get("kek_fingerprint")
        if stored is not None:
            for candidate in candidates:
                if hmac.compare_digest(kek_fingerprint(candidate, self._node), bytes(stored)):
                    self._kek = candidate
                    return
            raise InvalidInput(
                f"the KEK does not match the key store {self.path}: neither kek_file nor "
                f"kek_next_file is the KEK it needs (fingerprint {bytes(stored)[:8].hex()})"
            )
        check = rows.get("kek_check")
        if check is None:
            return  # a new database
        for candidate in candidates:
            try:
                _open(candidate, bytes(check), self._check_aad())
            except InvalidTag:
                continue
            self._kek = candidate
            return

    def _init_key_data_keys(self) -> None:
        """Create the per-key tables, record the KEK fingerprint, and move records written
        before per-key data keys (sealed under their tenant's key) to a data key of their own."""
        self._db().executescript(self._KEY_DATA_KEYS_SCHEMA)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO meta(name, value) VALUES ('kek_fingerprint', ?)"
                " ON CONFLICT(name) DO NOTHING",
                (kek_fingerprint(self._kek, self._node),),
            )
            legacy = conn.execute(
                "SELECT key_id, MIN(tenant) FROM keys"
                " WHERE key_id NOT IN (SELECT key_id FROM key_data_keys) GROUP BY key_id"
            ).fetchall()
            for key_id, tenant in legacy:
                self._migrate_key(conn, str(key_id), str(tenant))
        if legacy:
            log.info("moved %d key(s) to per-key data keys", len(legacy))
            self._checkpoint()

    def _has_table(self, conn: sqlite3.Connection, name: str) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
            is not None
        )

    def _migrate_key(self, conn: sqlite3.Connection, key_id: str, tenant: str) -> None:
        """Re-seal a key's records from its tenant's data key under a new key data key."""
        new = self._key_data_key(conn, key_id, create=True, tenant=tenant)
        old = self._tenant_key(conn, tenant, create=False)
        if new is None or old is None:
            return

        def reseal(sealed: bytes | None, aad: bytes) -> bytes | None:
            if sealed is None:
                return None
            try:
                return _seal(new, _open(old, bytes(sealed), aad), aad)
            except InvalidTag:
                return bytes(sealed)  # tampered or foreign: it stays unopenable

        for generation, sealed in conn.execute(
            "SELECT generation, sealed_secret FROM keys WHERE key_id = ?", (key_id,)
        ).fetchall():
            conn.execute(
                "UPDATE keys SET sealed_secret = ? WHERE key_id = ? AND generation = ?",
                (reseal(sealed, _share_aad(self._node, key_id, generation)), key_id, generation),
            )
        if not self._has_table(conn, "presignatures"):
            return
        rows = conn.execute(
            "SELECT presignature_id, generation, signers, public, sealed_secret, consumed_by,"
            " sealed_sigma FROM presignatures WHERE key_id = ?",
            (key_id,),
        ).fetchall()
        for pid, generation, signers, public, sealed, consumed_by, sealed_sigma in rows:
            pid = bytes(pid)
            secret_aad = self._presignature_aad(key_id, generation, pid, signers, bytes(public))
            sigma_aad = (
                self._sigma_aad(key_id, generation, pid, bytes(consumed_by))
                if consumed_by is not None
                else b""
            )
            conn.execute(
                "UPDATE presignatures SET sealed_secret = ?, sealed_sigma = ?"
                " WHERE presignature_id = ?",
                (reseal(sealed, secret_aad), reseal(sealed_sigma, sigma_aad), pid),
            )

    def _key_data_key(
        self, conn: sqlite3.Connection, key_id: str, *, create: bool, tenant: str = ""
    ) -> bytes | None:
        """Unwrap the key's data key; with `create`, make one on first use."""
        row = conn.execute(
            "SELECT wrapped_key FROM key_data_keys WHERE key_id = ?", (key_id,)
        ).fetchone()
        aad = _key_data_key_aad(self._node, key_id)
        if row is None:
            if not create:
                return None
            data_key = AESGCM.generate_key(bit_length=256)
            conn.execute(
                "INSERT INTO key_data_keys(key_id, tenant, wrapped_key, created_at)"
                " VALUES (?, ?, ?, ?)",
                (key_id, tenant, _seal(self._kek, data_key, aad), int(time.time())),
            )
            return data_key
        try:
            return _open(self._kek, bytes(row[0]), aad)
        except InvalidTag:
            raise InvalidInput(
                f"data key of key {key_id!r} failed authentication (wrong KEK or tampered record)"
            ) from None

    @staticmethod
    def _deleted(conn: sqlite3.Connection, key_id: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM deleted_keys WHERE key_id = ?", (key_id,)).fetchone()
            is not None
        )

    def is_deleted(self, key_id: str) -> bool:
        """Whether `key_id` was deleted on this node (a tombstone: it can never be stored again)."""
        _check_name(key_id, "key id")
        with self._lock:
            return self._deleted(self._db(), key_id)

    def _erase_key(self, conn: sqlite3.Connection, key_id: str, tenant: str) -> tuple[int, int]:
        """Inside a write: erase the key's presignatures, generations and data key; tombstone."""
        presignatures = 0
        if self._has_table(conn, "presignatures"):
            presignatures = conn.execute(
                "DELETE FROM presignatures WHERE key_id = ?", (key_id,)
            ).rowcount
        generations = conn.execute("DELETE FROM keys WHERE key_id = ?", (key_id,)).rowcount
        conn.execute("DELETE FROM key_data_keys WHERE key_id = ?", (key_id,))
        conn.execute(
            "INSERT INTO deleted_keys(key_id, tenant, deleted_at) VALUES (?, ?, ?)"
            " ON CONFLICT(key_id) DO NOTHING",
            (key_id, tenant, int(time.time())),
        )
        return int(generations), int(presignatures)

    def delete_key(self, key_id: str) -> tuple[int, int]:
        """Crypto-shred one key: erase every generation (pending ones too), its presignatures
        and its data key, and leave a tombstone so the key id is never stored here again.

        Returns (generations, presignatures) erased; deleting an absent or already deleted key
        is not an error (it leaves the tombstone). Durable, zeroed (``secure_delete``) and
        checkpointed with TRUNCATE before it returns: neither the database nor its WAL keeps
        the wrapped data key, so no copy of the key's records anywhere opens any more.
        """
        _check_name(key_id, "key id")
        with self._write() as conn:
            row = conn.execute(
                "SELECT tenant FROM keys WHERE key_id = ?"
                " UNION ALL SELECT tenant FROM key_data_keys WHERE key_id = ? LIMIT 1",
                (key_id, key_id),
            ).fetchone()
            erased = self._erase_key(conn, key_id, str(row[0]) if row else "")
        self._checkpoint_strict("key deleted")
        return erased

    def _checkpoint_strict(self, what: str) -> None:
        with self._lock:
            busy = self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy:
            raise InvalidInput(f"{what}, but the WAL could not be checkpointed (busy)")

    @property
    def kek_fingerprint(self) -> str:
        """Short hex fingerprint of the KEK in use (never the KEK; see `kek_fingerprint`)."""
        return kek_fingerprint(self._kek, self._node)[:8].hex()

    def uses_kek(self, kek: bytes) -> bool:
        """Whether `kek` is the KEK this store is sealed under now."""
        return hmac.compare_digest(kek, self._kek)

    def rotate_kek(self, new_kek: bytes) -> bool:
        """Rewrap every data key (per key, per tenant, node-level) and the KEK check under
        `new_kek`, in ONE transaction, then use it; returns False if it already is the KEK.

        The store keeps serving meanwhile (the rewrap takes the store lock for milliseconds).
        On any failure nothing changed and the old KEK stays in use. The WAL is checkpointed
        afterwards, so the files no longer hold the data keys wrapped by the old KEK.
        """
        if not isinstance(new_kek, bytes) or len(new_kek) != KEK_SIZE:
            raise InvalidInput(f"KEK must be {KEK_SIZE} bytes")
        with self._lock:
            if self.uses_kek(new_kek):
                return False
            old = self._kek
            with self._write() as conn:

                def rewrap(wrapped: bytes, aad: bytes, what: str) -> bytes:
                    try:
                        return _seal(new_kek, _open(old, bytes(wrapped), aad), aad)
                    except InvalidTag:
                        raise InvalidInput(
                            f"{what} failed authentication; KEK rotation abandoned"
                        ) from None

                for tenant, wrapped in conn.execute(
                    "SELECT tenant, wrapped_key FROM tenants"
                ).fetchall():
                    conn.execute(
                        "UPDATE tenants SET wrapped_key = ? WHERE tenant = ?",
                        (rewrap(wrapped, _tenant_aad(self._node, tenant), "a tenant key"), tenant),
                    )
                for key_id, wrapped in conn.execute(
                    "SELECT key_id, wrapped_key FROM key_data_keys"
                ).fetchall():
                    aad = _key_data_key_aad(self._node, key_id)
                    conn.execute(
                        "UPDATE key_data_keys SET wrapped_key = ? WHERE key_id = ?",
                        (rewrap(wrapped, aad, f"data key of key {key_id!r}"), key_id),
                    )
                for tag, name, purpose in self._NODE_DATA_KEYS:
                    row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
                    if row is not None:
                        aad = encode_fields([tag, self._node.encode(), purpose.encode()])
                        conn.execute(
                            "UPDATE meta SET value = ? WHERE name = ?",
                            (rewrap(row[0], aad, f"{purpose} data key"), name),
                        )
                conn.execute(
                    "UPDATE meta SET value = ? WHERE name = 'kek_check'",
                    (_seal(new_kek, b"", self._check_aad()),),
                )
                conn.execute(
                    "INSERT INTO meta(name, value) VALUES ('kek_fingerprint', ?)"
                    " ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                    (kek_fingerprint(new_kek, self._node),),
                )
            self._kek = new_kek
        self._checkpoint()
        log.info("KEK rotated: every data key rewrapped (fingerprint %s)", self.kek_fingerprint)
        return True

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> KeyStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KeyStore(node={self._node!r}, path={os.fspath(self.path)!r})"

    # ======================================================================= prime pool
    # Safe primes generated ahead of time for Paillier / ring-Pedersen keys (used by
    # mpcnode/prime_pool.py, which also checks that they are safe primes). Each prime is
    # sealed with AES-256-GCM under a node-level pool data key, itself wrapped by the KEK
    # (meta row "prime_pool_key"); the AAD binds node name, "prime-pool", record id and bit
    # length. A take reads and deletes its rows in one durable transaction, so a prime is
    # handed out at most once, even across a crash or restart.

    _PRIME_POOL_TAG = b"mpc.v1.prime-pool"
    _PRIME_POOL_KEY_TAG = b"mpc.v1.prime-pool-key"
    _PRIME_POOL_KEY_NAME = "prime_pool_key"
    _PRIME_POOL_SCHEMA = (
        "CREATE TABLE IF NOT EXISTS prime_pool ("
        " seq        INTEGER PRIMARY KEY AUTOINCREMENT,"
        " record_id  TEXT NOT NULL UNIQUE,"
        " bits       INTEGER NOT NULL CHECK (bits > 0),"
        " sealed     BLOB NOT NULL,"
        " created_at INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS prime_pool_bits ON prime_pool(bits, seq)",
    )
    _prime_pool_ready = False

    def _prime_pool_ensure(self) -> None:
        """Create the pool table on first use (its own committed transaction)."""
        if self._prime_pool_ready:
            return
        with self._write() as conn:
            for statement in self._PRIME_POOL_SCHEMA:
                conn.execute(statement)
        self._prime_pool_ready = True

    def _node_data_key(
        self, conn: sqlite3.Connection, tag: bytes, name: str, purpose: str, *, create: bool
    ) -> bytes | None:
        """Unwrap the node-level data key stored in meta row `name` (sealed by the KEK with an
        AAD binding `tag`, the node and `purpose`); with `create`, make one on first use."""
        aad = encode_fields([tag, self._node.encode(), purpose.encode()])
        row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        if row is None:
            if not create:
                return None
            data_key = AESGCM.generate_key(bit_length=256)
            conn.execute(
                "INSERT INTO meta(name, value) VALUES (?, ?)",
                (name, _seal(self._kek, data_key, aad)),
            )
            return data_key
        try:
            return _open(self._kek, bytes(row[0]), aad)
        except InvalidTag:
            raise InvalidInput(
                f"{purpose} data key failed authentication (wrong KEK or tampered record)"
            ) from None

    def _prime_pool_key(self, conn: sqlite3.Connection, *, create: bool) -> bytes | None:
        """The prime pool's data key."""
        return self._node_data_key(
            conn, self._PRIME_POOL_KEY_TAG, self._PRIME_POOL_KEY_NAME, "prime-pool", create=create
        )

    @staticmethod
    def _prime_pool_bits(bits: object) -> int:
        if isinstance(bits, bool) or not isinstance(bits, int) or not 0 < bits < 1 << 16:
            raise InvalidInput("prime bit length must be an integer in [1, 65535]")
        return bits

    def _prime_pool_aad(self, record_id: str, bits: int) -> bytes:
        return encode_fields(
            [
                self._PRIME_POOL_TAG,
                self._node.encode(),
                b"prime-pool",
                record_id.encode(),
                encode_uint(bits),
            ]
        )

    def prime_pool_put(self, bits: int, prime: int) -> str:
        """Seal and store one prime of exactly `bits` bits; returns its random record id.

        Checks only the size: primality and the test-prime guard are the caller's job
        (mpcnode.prime_pool.PrimePool.add).
        """
        bits = self._prime_pool_bits(bits)
        if isinstance(prime, bool) or not isinstance(prime, int) or prime <= 0:
            raise InvalidInput("prime must be a positive integer")
        if prime.bit_length() != bits:
            raise InvalidInput(f"prime does not have exactly {bits} bits")
        self._prime_pool_ensure()
        record_id = os.urandom(16).hex()
        plaintext = prime.to_bytes((bits + 7) // 8, "big")
        with self._write() as conn:
            data_key = self._prime_pool_key(conn, create=True)
            if data_key is None:
                raise InternalBug("prime pool data key was not created")
            conn.execute(
                "INSERT INTO prime_pool(record_id, bits, sealed, created_at) VALUES (?, ?, ?, ?)",
                (
                    record_id,
                    bits,
                    _seal(data_key, plaintext, self._prime_pool_aad(record_id, bits)),
                    int(time.time()),
                ),
            )
        return record_id

    def prime_pool_take(self, bits: int, n: int) -> list[int] | None:
        """Remove and return the `n` oldest primes of `bits` bits, durably, in one transaction.

        Returns None, removing nothing, when fewer than `n` are stored. The rows are deleted
        (and, with ``secure_delete``, zeroed) before this returns, so no later call, in this
        process or after a restart, can return the same prime.
        """
        bits = self._prime_pool_bits(bits)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InvalidInput("n must be a non-negative integer")
        self._prime_pool_ensure()
        with self._write() as conn:
            rows = conn.execute(
                "SELECT seq, record_id, sealed FROM prime_pool WHERE bits = ? ORDER BY seq LIMIT ?",
                (bits, n),
            ).fetchall()
            if len(rows) < n:
                return None
            if not rows:
                return []
            data_key = self._prime_pool_key(conn, create=False)
            if data_key is None:
                raise InvalidInput("prime pool records exist but the pool data key is missing")
            primes: list[int] = []
            for _, record_id, sealed in rows:
                try:
                    plaintext = _open(
                        data_key, bytes(sealed), self._prime_pool_aad(record_id, bits)
                    )
                except InvalidTag:
                    raise InvalidInput(
                        f"prime pool record {record_id} failed authentication"
                    ) from None
                primes.append(int.from_bytes(plaintext, "big"))
            conn.executemany("DELETE FROM prime_pool WHERE seq = ?", [(r[0],) for r in rows])
            return primes

    def prime_pool_count(self, bits: int) -> int:
        """How many primes of `bits` bits are stored."""
        bits = self._prime_pool_bits(bits)
        self._prime_pool_ensure()
        with self._lock:
            row = (
                self._db()
                .execute("SELECT COUNT(*) FROM prime_pool WHERE bits = ?", (bits,))
                .fetchone()
            )
        return int(row[0])

    # ======================================================================= CGGMP aux-info
    # and presignatures
    #
    # Aux-info (the node's Paillier and ring-Pedersen secrets plus every party's public
    # parameters) belongs to the node, not to a tenant: it is sealed under a node-level data
    # key (meta row "aux_info_key", wrapped by the KEK) with an AAD binding node name,
    # "aux-info" and the committee. Presignatures belong to their key: the secret
    # record is sealed under the key's data key with an AAD binding node name, key id,
    # generation, presignature id, signer set and the public part, so a sealed record moved
    # to another row (or a row whose public part was edited) does not open. A presignature
    # row references its key generation with ON DELETE CASCADE: whatever erases a key
    # generation (activate of a reshared generation, retire, delete_tenant) erases its
    # presignatures in the same transaction.

    _AUX_INFO_TAG = b"mpc.v1.aux-info"
    _AUX_INFO_KEY_TAG = b"mpc.v1.aux-info-key"
    _AUX_INFO_KEY_NAME = "aux_info_key"
    _PRESIGNATURE_TAG = b"mpc.v1.presignature"
    _PRESIGNATURE_SIGMA_TAG = b"mpc.v1.presignature-sigma"
    _PRESIGNATURE_ID_MAX = 256
    _REQUEST_HASH_MAX = 256
    _CGGMP_SCHEMA = (
        "CREATE TABLE IF NOT EXISTS aux_info ("
        " committee  TEXT PRIMARY KEY,"
        " sealed     BLOB NOT NULL,"
        " updated_at INTEGER NOT NULL)",
        "CREATE TABLE IF NOT EXISTS presignatures ("
        " seq             INTEGER PRIMARY KEY AUTOINCREMENT,"
        " presignature_id BLOB NOT NULL UNIQUE,"
        " key_id          TEXT NOT NULL,"
        " generation      INTEGER NOT NULL,"
        " signers         TEXT NOT NULL,"
        " public          BLOB NOT NULL,"
        " sealed_secret   BLOB,"
        " state           TEXT NOT NULL CHECK (state IN ('available', 'consumed')),"
        " consumed_by     BLOB,"
        " sealed_sigma    BLOB,"
        " created_at      INTEGER NOT NULL,"
        " consumed_at     INTEGER,"
        " CHECK ((state = 'available') = (consumed_by IS NULL)),"
        " CHECK (sealed_secret IS NOT NULL OR sealed_sigma IS NOT NULL),"
        " FOREIGN KEY (key_id, generation) REFERENCES keys(key_id, generation)"
        " ON DELETE CASCADE)",
        "CREATE INDEX IF NOT EXISTS presignatures_key"
        " ON presignatures(key_id, generation, state, signers)",
    )
    _cggmp_ready = False

    def _cggmp_ensure(self) -> None:
        """Create the aux-info and presignature tables on first use (own transaction)."""
        if self._cggmp_ready:
            return
        with self._write() as conn:
            for statement in self._CGGMP_SCHEMA:
                conn.execute(statement)
        self._cggmp_ready = True

    @staticmethod
    def _party_set(value: object, what: str) -> tuple[int, ...]:
        """A set of party indices as a sorted tuple: non-empty, distinct, in [1, 2^32)."""
        if not isinstance(value, tuple | list) or not value:
            raise InvalidInput(f"{what} must be a non-empty tuple of party indices")
        for p in value:
            if isinstance(p, bool) or not isinstance(p, int) or not 0 < p < 1 << 32:
                raise InvalidInput(f"{what} must hold party indices in [1, 2^32)")
        ordered = tuple(sorted(value))
        if len(set(ordered)) != len(ordered):
            raise InvalidInput(f"{what} holds a party index twice")
        return ordered

    @staticmethod
    def _party_text(parties: tuple[int, ...]) -> str:
        return ",".join(str(p) for p in parties)

    @staticmethod
    def _id_bytes(value: object, what: str, limit: int) -> bytes:
        if not isinstance(value, bytes) or not 0 < len(value) <= limit:
            raise InvalidInput(f"{what} must be 1 to {limit} bytes")
        return value

    # -- aux-info

    def _aux_info_key(self, conn: sqlite3.Connection, *, create: bool) -> bytes | None:
        """The node-level aux-info data key."""
        return self._node_data_key(
            conn, self._AUX_INFO_KEY_TAG, self._AUX_INFO_KEY_NAME, "aux-info", create=create
        )

    def _aux_info_aad(self, committee: str) -> bytes:
        return encode_fields(
            [self._AUX_INFO_TAG, self._node.encode(), b"aux-info", committee.encode()]
        )

    def put_aux_info(self, committee: tuple[int, ...], blob: bytes) -> None:
        """Seal and store this node's aux-info for `committee`, replacing an older one, durably.

        `committee` is a set of party indices (stored sorted); `blob` is `AuxInfo.encode()`.
        """
        name = self._party_text(self._party_set(committee, "committee"))
        if not isinstance(blob, bytes) or not blob:
            raise InvalidInput("aux-info must be non-empty bytes")
        self._cggmp_ensure()
        with self._write() as conn:
            data_key = self._aux_info_key(conn, create=True)
            if data_key is None:
                raise InternalBug("aux-info data key was not created")
            conn.execute(
                "INSERT INTO aux_info(committee, sealed, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(committee) DO UPDATE"
                " SET sealed = excluded.sealed, updated_at = excluded.updated_at",
                (name, _seal(data_key, blob, self._aux_info_aad(name)), int(time.time())),
            )

    def get_aux_info(self, committee: tuple[int, ...]) -> bytes | None:
        """The opened aux-info of `committee`, or None if none is stored.

        Raises InvalidInput when the record does not authenticate (tampered or moved).
        """
        name = self._party_text(self._party_set(committee, "committee"))
        self._cggmp_ensure()
        with self._lock:
            conn = self._db()
            row = conn.execute(
                "SELECT sealed FROM aux_info WHERE committee = ?", (name,)
            ).fetchone()
            if row is None:
                return None
            data_key = self._aux_info_key(conn, create=False)
        if data_key is None:
            raise InvalidInput("aux-info records exist but the aux-info data key is missing")
        try:
            return _open(data_key, bytes(row[0]), self._aux_info_aad(name))
        except InvalidTag:
            raise InvalidInput(
                f"aux-info record of committee {name} failed authentication"
            ) from None

    # -- presignatures

    def _presignature_aad(
        self, key_id: str, generation: int, presignature_id: bytes, signers: str, public: bytes
    ) -> bytes:
        return encode_fields(
            [
                self._PRESIGNATURE_TAG,
                self._node.encode(),
                key_id.encode(),
                encode_uint(generation),
                presignature_id,
                signers.encode(),
                public,
            ]
        )

    def _sigma_aad(
        self, key_id: str, generation: int, presignature_id: bytes, request_hash: bytes
    ) -> bytes:
        return encode_fields(
            [
                self._PRESIGNATURE_SIGMA_TAG,
                self._node.encode(),
                key_id.encode(),
                encode_uint(generation),
                presignature_id,
                request_hash,
            ]
        )

    def _presignature_data_key(
        self, conn: sqlite3.Connection, key_id: str, generation: int
    ) -> bytes:
        """The data key of the key that owns (key_id, generation)."""
        row = conn.execute(
            "SELECT tenant FROM keys WHERE key_id = ? AND generation = ?", (key_id, generation)
        ).fetchone()
        if row is None:
            raise KeyNotFound(f"key {key_id!r} generation {generation} is not stored")
        data_key = self._key_data_key(conn, key_id, create=False)
        if data_key is None:
            raise InvalidInput(f"key {key_id!r} has no data key (deleted)")
        return data_key

    def put_presignature(
        self,
        presignature_id: bytes,
        key_id: str,
        generation: int,
        signers: tuple[int, ...],
        public: bytes,
        secret: bytes,
    ) -> None:
        """Store a fresh presignature of an active key generation as available, durably.

        `signers` is stored sorted. Refuses an id already stored (in any state), an unknown
        or not yet active key generation (KeyNotFound / InvalidInput).
        """
        pid = self._id_bytes(presignature_id, "presignature id", self._PRESIGNATURE_ID_MAX)
        _check_name(key_id, "key id")
        _check_generation(generation)
        signer_text = self._party_text(self._party_set(signers, "signers"))
        if not isinstance(public, bytes) or not isinstance(secret, bytes) or not secret:
            raise InvalidInput("public and secret must be bytes (secret non-empty)")
        self._cggmp_ensure()
        with self._write() as conn:
            row = conn.execute(
                "SELECT status FROM keys WHERE key_id = ? AND generation = ?", (key_id, generation)
            ).fetchone()
            if row is None:
                raise KeyNotFound(f"key {key_id!r} generation {generation} is not stored")
            if row[0] != "active":
                raise InvalidInput(f"key {key_id!r} generation {generation} is not active")
            if conn.execute(
                "SELECT 1 FROM presignatures WHERE presignature_id = ?", (pid,)
            ).fetchone():
                raise InvalidInput(f"presignature {pid.hex()} is already stored")
            data_key = self._presignature_data_key(conn, key_id, generation)
            sealed = _seal(
                data_key,
                secret,
                self._presignature_aad(key_id, generation, pid, signer_text, public),
            )
            conn.execute(
                "INSERT INTO presignatures(presignature_id, key_id, generation, signers, public,"
                " sealed_secret, state, consumed_by, sealed_sigma, created_at, consumed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'available', NULL, NULL, ?, NULL)",
                (pid, key_id, generation, signer_text, public, sealed, int(time.time())),
            )

    def consume_presignature(
        self, presignature_id: bytes, key_id: str, request_hash: bytes
    ) -> ConsumedPresignature:
        """Mark a presignature consumed by `request_hash` and open it, durably, atomically.

        One write transaction does the compare-and-set available -> consumed; it is on disk
        before this returns, so a crash afterwards cannot make the presignature available
        again. The same `request_hash` again (a resend) returns it again, with the cached
        σ_i once `record_partial` ran. Raises KeyNotFound for an unknown id, InvalidInput if
        it belongs to another key, and PresignatureUsed if another request consumed it.
        """
        pid = self._id_bytes(presignature_id, "presignature id", self._PRESIGNATURE_ID_MAX)
        _check_name(key_id, "key id")
        request = self._id_bytes(request_hash, "request hash", self._REQUEST_HASH_MAX)
        self._cggmp_ensure()
        with self._write() as conn:
            row = conn.execute(
                "SELECT key_id, generation, signers, public, sealed_secret, state, consumed_by,"
                " sealed_sigma FROM presignatures WHERE presignature_id = ?",
                (pid,),
            ).fetchone()
            if row is None:
                raise KeyNotFound(f"no presignature {pid.hex()}")
            row_key, generation, signer_text, public, sealed, state, consumed_by, sealed_sigma = row
            if row_key != key_id:
                raise InvalidInput(f"presignature {pid.hex()} belongs to another key")
            if state == "consumed" and bytes(consumed_by) != request:
                raise PresignatureUsed(
                    f"presignature {pid.hex()} was already used for another request"
                )
            if state == "available":
                cur = conn.execute(
                    "UPDATE presignatures SET state = 'consumed', consumed_by = ?,"
                    " consumed_at = ? WHERE presignature_id = ? AND state = 'available'",
                    (request, int(time.time()), pid),
                )
                if cur.rowcount != 1:
                    raise InternalBug("presignature state changed inside its transaction")
            data_key = self._presignature_data_key(conn, key_id, generation)
            secret: bytes | None = None
            sigma: bytes | None = None
            try:
                if sealed is not None:
                    secret = _open(
                        data_key,
                        bytes(sealed),
                        self._presignature_aad(key_id, generation, pid, signer_text, bytes(public)),
                    )
                if sealed_sigma is not None:
                    sigma = _open(
                        data_key,
                        bytes(sealed_sigma),
                        self._sigma_aad(key_id, generation, pid, request),
                    )
            except InvalidTag:
                raise InvalidInput(
                    f"presignature record {pid.hex()} failed authentication"
                ) from None
            return ConsumedPresignature(
                presignature_id=pid,
                key_id=key_id,
                generation=generation,
                signers=tuple(int(p) for p in signer_text.split(",")),
                public=bytes(public),
                secret=secret,
                cached_sigma=sigma,
            )

    def record_partial(self, presignature_id: bytes, sigma: bytes) -> None:
        """Cache σ_i of a consumed presignature (for resends) and erase its secret record.

        Call after `consume_presignature` and before σ_i leaves the node; durable on return.
        Recording the same σ_i again is a no-op; a different one is refused (InvalidInput).
        """
        pid = self._id_bytes(presignature_id, "presignature id", self._PRESIGNATURE_ID_MAX)
        if not isinstance(sigma, bytes) or not sigma:
            raise InvalidInput("sigma must be non-empty bytes")
        self._cggmp_ensure()
        with self._write() as conn:
            row = conn.execute(
                "SELECT key_id, generation, state, consumed_by, sealed_sigma FROM presignatures"
                " WHERE presignature_id = ?",
                (pid,),
            ).fetchone()
            if row is None:
                raise KeyNotFound(f"no presignature {pid.hex()}")
            key_id, generation, state, consumed_by, sealed_sigma = row
            if state != "consumed":
                raise InvalidInput(f"presignature {pid.hex()} has not been consumed")
            data_key = self._presignature_data_key(conn, key_id, generation)
            aad = self._sigma_aad(key_id, generation, pid, bytes(consumed_by))
            if sealed_sigma is not None:
                try:
                    recorded = _open(data_key, bytes(sealed_sigma), aad)
                except InvalidTag:
                    raise InvalidInput(
                        f"presignature record {pid.hex()} failed authentication"
                    ) from None
                if recorded != sigma:
                    raise InvalidInput(
                        f"presignature {pid.hex()} already has another partial signature"
                    )
                return
            conn.execute(
                "UPDATE presignatures SET sealed_sigma = ?, sealed_secret = NULL"
                " WHERE presignature_id = ?",
                (_seal(data_key, sigma, aad), pid),
            )

    def list_presignatures(self, key_id: str) -> list[PresignatureInfo]:
        """The available presignatures of `key_id`, oldest first."""
        _check_name(key_id, "key id")
        self._cggmp_ensure()
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT presignature_id, signers, generation FROM presignatures"
                    " WHERE key_id = ? AND state = 'available' ORDER BY seq",
                    (key_id,),
                )
                .fetchall()
            )
        return [
            PresignatureInfo(bytes(pid), tuple(int(p) for p in signers.split(",")), generation)
            for pid, signers, generation in rows
        ]

    def count_presignatures(self, key_id: str, signers: tuple[int, ...]) -> int:
        """How many available presignatures `key_id` has for exactly this signer set."""
        _check_name(key_id, "key id")
        signer_text = self._party_text(self._party_set(signers, "signers"))
        self._cggmp_ensure()
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT COUNT(*) FROM presignatures"
                    " WHERE key_id = ? AND signers = ? AND state = 'available'",
                    (key_id, signer_text),
                )
                .fetchone()
            )
        return int(row[0])

    def count_all_presignatures(self) -> int:
        """How many available presignatures are stored, over every key (for the metrics)."""
        self._cggmp_ensure()
        with self._lock:
            row = (
                self._db()
                .execute("SELECT COUNT(*) FROM presignatures WHERE state = 'available'")
                .fetchone()
            )
        return int(row[0])

    def drop_presignatures(self, key_id: str, below_generation: int | None = None) -> int:
        """Erase presignatures of `key_id` (all, or those of generations below
        `below_generation`), available and consumed alike; returns how many rows went.

        Erasing a consumed row is safe: a later consume of its id finds nothing (KeyNotFound).
        """
        _check_name(key_id, "key id")
        if below_generation is not None:
            _check_generation(below_generation)
        self._cggmp_ensure()
        with self._write() as conn:
            if below_generation is None:
                cur = conn.execute("DELETE FROM presignatures WHERE key_id = ?", (key_id,))
            else:
                cur = conn.execute(
                    "DELETE FROM presignatures WHERE key_id = ? AND generation < ?",
                    (key_id, below_generation),
                )
            return cur.rowcount
