"""mpcnode.storage: durable, private, sealed key records bound to node, key id and generation."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mpcnode.crypto.encoding import encode_fields
from mpcnode.errors import InvalidInput, KeyNotFound
from mpcnode.storage import (
    DB_NAME,
    KEK_ENV,
    KeyStore,
    create_kek_file,
    load_kek,
    write_file_atomic,
)

REPO = Path(__file__).resolve().parents[2]
NODE = "mpc-0"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def kek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


@pytest.fixture
def store(data_dir: Path, kek: bytes) -> Iterator[KeyStore]:
    with KeyStore(data_dir, NODE, kek) as s:
        yield s


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _files_bytes(data_dir: Path) -> bytes:
    """Everything on disk in the data directory: database, WAL and shared-memory files."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.iterdir()) if p.is_file())


@contextmanager
def _raw(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A second, independent connection: what an attacker with the files could do."""
    conn = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


# --------------------------------------------------------------------------- round trips


def test_put_activate_get_survives_reopen(data_dir: Path, kek: bytes) -> None:
    secret, public = os.urandom(48), b"public package"
    with KeyStore(data_dir, NODE, kek) as store:
        store.put_pending("k1", 0, "ed25519", public, secret)
        store.activate("k1", 0, b"confirmations")
    with KeyStore(data_dir, NODE, kek) as store:
        got = store.get_active("k1")
        assert got is not None
        assert (got.key_id, got.tenant, got.scheme, got.generation, got.status) == (
            "k1",
            "default",
            "ed25519",
            0,
            "active",
        )
        assert got.public == public
        assert got.confirmations == b"confirmations"
        assert got.secret() == secret
        assert store.get_active("k2") is None


def test_pending_is_not_active(store: KeyStore) -> None:
    store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
    assert store.get_active("k1") is None
    assert store.list_active() == []
    [pending] = store.pending_keys()
    assert (pending.key_id, pending.generation, pending.status) == ("k1", 0, "pending")
    assert pending.confirmations is None
    assert pending.secret() == b"sec"


def test_discard_pending(store: KeyStore) -> None:
    store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
    store.discard_pending("k1", 0)
    assert store.pending_keys() == []
    store.discard_pending("k1", 0)  # idempotent
    store.put_pending("k1", 0, "ed25519", b"pub", b"sec2")  # the slot is free again
    store.activate("k1", 0, b"c")
    with pytest.raises(InvalidInput, match="active"):
        store.discard_pending("k1", 0)
    active = store.get_active("k1")
    assert active is not None and active.secret() == b"sec2"


def test_duplicate_and_cross_tenant_puts_are_refused(store: KeyStore) -> None:
    store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
    with pytest.raises(InvalidInput, match="already stored"):
        store.put_pending("k1", 0, "ed25519", b"pub", b"other")
    with pytest.raises(InvalidInput, match="another tenant"):
        store.put_pending("k1", 1, "ed25519", b"pub", b"sec", tenant="acme")
    [pending] = store.pending_keys()
    assert pending.secret() == b"sec"


def test_activate_unknown_and_retry(store: KeyStore) -> None:
    with pytest.raises(KeyNotFound):
        store.activate("nope", 0, b"c")
    store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
    store.activate("k1", 0, b"c")
    store.activate("k1", 0, b"c")  # a retried activation is harmless
    with pytest.raises(InvalidInput, match="other confirmations"):
        store.activate("k1", 0, b"different")


def test_newest_active_generation_wins_and_old_ones_are_erased(store: KeyStore) -> None:
    store.put_pending("k1", 0, "secp256k1", b"pub0", b"sec0")
    store.activate("k1", 0, b"c0")
    store.put_pending("k1", 1, "secp256k1", b"pub1", b"sec1")
    current = store.get_active("k1")
    assert current is not None and current.generation == 0  # gen 1 not certified yet
    store.activate("k1", 1, b"c1")
    current = store.get_active("k1")
    assert current is not None and current.generation == 1 and current.secret() == b"sec1"
    with pytest.raises(KeyNotFound):
        store._open_secret("k1", 0)  # the old generation's share is gone
    assert [(k.key_id, k.generation) for k in store.list_active()] == [("k1", 1)]


def test_retire_erases_older_generations(store: KeyStore) -> None:
    store.put_pending("k1", 3, "ed25519", b"pub", b"sec")
    store.activate("k1", 3, b"c")
    assert store.retire("k1", 3) == 0
    assert store.retire("k1", 4) == 1
    assert store.get_active("k1") is None


def test_list_active_is_public_and_repr_redacted(store: KeyStore) -> None:
    secrets = {}
    for key_id in ("b", "a", "c"):
        secrets[key_id] = os.urandom(32)
        store.put_pending(key_id, 0, "ed25519", b"pub-" + key_id.encode(), secrets[key_id])
        if key_id != "c":
            store.activate(key_id, 0, b"conf")
    listed = store.list_active()
    assert [k.key_id for k in listed] == ["a", "b"]
    assert [k.public for k in listed] == [b"pub-a", b"pub-b"]
    for k in listed:
        text = repr(k) + str(k)
        assert secrets[k.key_id].hex() not in text and repr(secrets[k.key_id]) not in text
        assert "redacted" in text
        assert k.secret() == secrets[k.key_id]  # opened on demand
    assert "mpc-0" in repr(store)


def test_closed_store_refuses_use(data_dir: Path, kek: bytes) -> None:
    store = KeyStore(data_dir, NODE, kek)
    store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
    [pending] = store.pending_keys()
    store.close()
    store.close()
    with pytest.raises(InvalidInput, match="closed"):
        store.get_active("k1")
    with pytest.raises(InvalidInput, match="closed"):
        pending.secret()


def test_sqlite_settings(store: KeyStore, data_dir: Path) -> None:
    conn = store._db()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with _raw(data_dir) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent


def test_acknowledged_write_survives_kill_9(data_dir: Path, kek: bytes) -> None:
    """put_pending/activate return only once durable: a SIGKILL right after loses nothing."""
    script = (
        "import os, signal, sys\n"
        "from mpcnode.storage import KeyStore\n"
        "s = KeyStore(sys.argv[1], 'mpc-0', bytes.fromhex(sys.argv[2]))\n"
        "s.put_pending('k1', 0, 'ed25519', b'pub', b'sec')\n"
        "s.activate('k1', 0, b'conf')\n"
        "s.put_pending('k2', 0, 'ed25519', b'pub2', b'sec2')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data_dir), kek.hex()], env=env, capture_output=True
    )
    assert proc.returncode == -9, proc.stderr.decode()
    with KeyStore(data_dir, NODE, kek) as store:
        got = store.get_active("k1")
        assert got is not None and got.secret() == b"sec"
        assert [k.key_id for k in store.pending_keys()] == ["k2"]


# --------------------------------------------------------------------------- at rest


def test_secret_never_on_disk_in_plaintext(data_dir: Path, kek: bytes) -> None:
    secret = os.urandom(64)
    public = os.urandom(64)
    with KeyStore(data_dir, NODE, kek) as store:
        store.put_pending("k1", 0, "ed25519", public, secret)
        store.activate("k1", 0, b"c")
        on_disk = _files_bytes(data_dir)  # database and live WAL
        assert public in on_disk  # the scan sees what is stored in the clear ...
        assert secret not in on_disk  # ... and the secret is not among it
        assert secret[:16] not in on_disk and secret[-16:] not in on_disk
        assert kek not in on_disk
    on_disk = _files_bytes(data_dir)  # after the final checkpoint
    assert public in on_disk and secret not in on_disk and kek not in on_disk


def test_file_modes(tmp_path: Path, kek: bytes, permissive_umask: None) -> None:
    data_dir = tmp_path / "node"
    with KeyStore(data_dir, NODE, kek) as store:
        store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
        assert _mode(data_dir) == 0o700
        files = sorted(p.name for p in data_dir.iterdir())
        assert files == [DB_NAME, DB_NAME + "-shm", DB_NAME + "-wal"]
        for name in files:
            assert _mode(data_dir / name) == 0o600, name


def test_existing_loose_modes_are_tightened(tmp_path: Path, kek: bytes) -> None:
    data_dir = tmp_path / "node"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    (data_dir / DB_NAME).touch()
    os.chmod(data_dir / DB_NAME, 0o644)
    with KeyStore(data_dir, NODE, kek):
        assert _mode(data_dir) == 0o700
        assert _mode(data_dir / DB_NAME) == 0o600


# --------------------------------------------------------------------------- AAD binding


def _put_two(store: KeyStore) -> None:
    store.put_pending("k1", 0, "ed25519", b"pub1", b"secret one")
    store.activate("k1", 0, b"c")
    store.put_pending("k2", 0, "ed25519", b"pub2", b"secret two")
    store.activate("k2", 0, b"c")


def test_blob_moved_to_another_key_id_fails(store: KeyStore, data_dir: Path) -> None:
    _put_two(store)
    with _raw(data_dir) as raw:
        (blob,) = raw.execute("SELECT sealed_secret FROM keys WHERE key_id='k1'").fetchone()
        raw.execute("UPDATE keys SET sealed_secret=? WHERE key_id='k2'", (blob,))
    got = store.get_active("k2")
    assert got is not None
    with pytest.raises(InvalidInput, match="record authentication failed"):
        got.secret()
    k1 = store.get_active("k1")
    assert k1 is not None and k1.secret() == b"secret one"  # the original still opens


def test_blob_moved_to_another_generation_fails(store: KeyStore, data_dir: Path) -> None:
    _put_two(store)
    with _raw(data_dir) as raw:
        raw.execute("UPDATE keys SET generation=1 WHERE key_id='k1'")
    got = store.get_active("k1")
    assert got is not None and got.generation == 1
    with pytest.raises(InvalidInput, match="record authentication failed"):
        got.secret()


def test_record_moved_to_another_node_fails(tmp_path: Path, kek: bytes) -> None:
    """Another node cannot open the record, even sharing the KEK and given the data key row."""
    dir0, dir1 = tmp_path / "mpc-0", tmp_path / "mpc-1"
    with KeyStore(dir0, "mpc-0", kek) as s0:
        s0.put_pending("k1", 0, "ed25519", b"pub", b"node zero secret")
        s0.activate("k1", 0, b"c")
    with _raw(dir0) as raw:
        key_row = raw.execute("SELECT * FROM keys").fetchone()
        tenant_row = raw.execute("SELECT * FROM tenants").fetchone()
        dk_row = raw.execute("SELECT * FROM key_data_keys").fetchone()

    # 1. The whole database handed to another node name is refused outright.
    with pytest.raises(InvalidInput, match="belongs to node 'mpc-0'"):
        KeyStore(dir0, "mpc-1", kek)

    # 2. Rows copied into node mpc-1's database: the wrapped data key is bound to mpc-0.
    with KeyStore(dir1, "mpc-1", kek) as s1:
        with _raw(dir1) as raw:
            raw.execute("INSERT INTO tenants VALUES (?, ?, ?)", tenant_row)
            raw.execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", key_row)
        got = s1.get_active("k1")
        assert got is not None
        with pytest.raises(InvalidInput, match="data key"):
            got.secret()
        with _raw(dir1) as raw:
            raw.execute("INSERT INTO key_data_keys VALUES (?, ?, ?, ?)", dk_row)
        with pytest.raises(InvalidInput, match="data key of key 'k1' failed authentication"):
            got.secret()

        # 3. Even with the data key re-wrapped for mpc-1 (an attacker holding the KEK),
        #    the record itself is bound to mpc-0 by its AAD.
        wrapped = bytes(dk_row[2])
        old_aad = encode_fields([b"mpc.v1.key-data-key", b"mpc-0", b"k1"])
        data_key = AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], old_aad)
        new_aad = encode_fields([b"mpc.v1.key-data-key", b"mpc-1", b"k1"])
        nonce = os.urandom(12)
        rewrapped = nonce + AESGCM(kek).encrypt(nonce, data_key, new_aad)
        with _raw(dir1) as raw:
            raw.execute("UPDATE key_data_keys SET wrapped_key=? WHERE key_id='k1'", (rewrapped,))
        with pytest.raises(InvalidInput, match="record authentication failed"):
            got.secret()
        # Sanity: with the node name it was sealed for, the same data key opens it.
        sealed = bytes(key_row[6])
        share_aad = encode_fields([b"mpc.v1.share", b"mpc-0", b"k1", (0).to_bytes(4, "big")])
        assert AESGCM(data_key).decrypt(sealed[:12], sealed[12:], share_aad) == b"node zero secret"


def test_tampered_wrapped_data_key_fails(store: KeyStore, data_dir: Path) -> None:
    _put_two(store)
    with _raw(data_dir) as raw:
        (wrapped,) = raw.execute("SELECT wrapped_key FROM key_data_keys").fetchone()
        flipped = bytes(wrapped[:-1]) + bytes([wrapped[-1] ^ 1])
        raw.execute("UPDATE key_data_keys SET wrapped_key=?", (flipped,))
    got = store.get_active("k1")
    assert got is not None
    with pytest.raises(InvalidInput, match="failed authentication"):
        got.secret()


# --------------------------------------------------------------------------- KEK


def test_wrong_kek_is_refused_without_printing_keys(data_dir: Path, kek: bytes) -> None:
    with KeyStore(data_dir, NODE, kek) as store:
        store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
    wrong = os.urandom(32)
    with pytest.raises(InvalidInput, match="KEK does not match") as info:
        KeyStore(data_dir, NODE, wrong)
    text = str(info.value) + repr(info.value)
    for key in (kek, wrong):
        assert key.hex() not in text and repr(key) not in text and key.hex().upper() not in text


def test_wrong_kek_cannot_open_tenant_key(data_dir: Path, kek: bytes) -> None:
    """Even past the startup check, records do not open under another KEK."""
    with KeyStore(data_dir, NODE, kek) as store:
        store.put_pending("k1", 0, "ed25519", b"pub", b"sec")
    wrong = os.urandom(32)
    with KeyStore(data_dir / "other", NODE, wrong):  # a store whose KEK check accepts `wrong`
        pass
    with _raw(data_dir / "other") as other, _raw(data_dir) as raw:
        for name in ("kek_check", "kek_fingerprint"):
            (value,) = other.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
            raw.execute("UPDATE meta SET value=? WHERE name=?", (value, name))
    with KeyStore(data_dir, NODE, wrong) as store:
        [pending] = store.pending_keys()
        with pytest.raises(InvalidInput, match="wrong KEK") as info:
            pending.secret()
        assert kek.hex() not in str(info.value) and wrong.hex() not in str(info.value)


def test_kek_must_be_32_bytes(data_dir: Path) -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        KeyStore(data_dir, NODE, b"short")


def test_create_and_load_kek_file(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "kek"
    create_kek_file(path)
    assert _mode(path) == 0o600
    kek = path.read_bytes()
    assert len(kek) == 32
    assert load_kek(str(path)) == kek
    with pytest.raises(InvalidInput, match="already exists"):
        create_kek_file(path)
    assert path.read_bytes() == kek  # not overwritten
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kek"]  # no temp file left


def test_load_kek_refuses_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    create_kek_file(path)
    kek = path.read_bytes()
    os.chmod(path, 0o644)
    with pytest.raises(InvalidInput, match="group or others") as info:
        load_kek(str(path))
    assert kek.hex() not in str(info.value)
    os.chmod(path, 0o400)
    assert load_kek(str(path)) == kek


def test_load_kek_wrong_size_file(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    write_file_atomic(path, b"x" * 31, 0o600)
    with pytest.raises(InvalidInput, match="exactly 32 raw bytes"):
        load_kek(str(path))
    with pytest.raises(InvalidInput, match="does not exist"):
        load_kek(str(tmp_path / "missing"))


def test_load_kek_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    kek = os.urandom(32)
    monkeypatch.setenv(KEK_ENV, kek.hex())
    assert load_kek(None) == kek
    bad = kek.hex()[:-1] + "g"
    monkeypatch.setenv(KEK_ENV, bad)
    with pytest.raises(InvalidInput, match="not valid hex") as info:
        load_kek(None)
    assert bad not in str(info.value) and bad[:20] not in str(info.value)
    monkeypatch.setenv(KEK_ENV, kek.hex()[:40])
    with pytest.raises(InvalidInput, match="64 hex characters") as info:
        load_kek(None)
    assert kek.hex()[:40] not in str(info.value)
    monkeypatch.delenv(KEK_ENV)
    with pytest.raises(InvalidInput, match="no KEK"):
        load_kek(None)


# --------------------------------------------------------------------------- crypto-shredding


def test_delete_tenant_shreds_its_records(store: KeyStore, data_dir: Path) -> None:
    store.put_pending("t1", 0, "ed25519", b"pub-t1", b"tenant secret", tenant="acme")
    store.activate("t1", 0, b"c")
    store.put_pending("d1", 0, "ed25519", b"pub-d1", b"default secret")
    store.activate("d1", 0, b"c")
    with _raw(data_dir) as raw:
        stolen_row = raw.execute("SELECT * FROM keys WHERE key_id='t1'").fetchone()
        (wrapped,) = raw.execute("SELECT wrapped_key FROM tenants WHERE tenant='acme'").fetchone()
        (key_wrapped,) = raw.execute(
            "SELECT wrapped_key FROM key_data_keys WHERE key_id='t1'"
        ).fetchone()
    assert bytes(wrapped) in _files_bytes(data_dir)

    assert store.delete_tenant("acme") == ["t1"]

    assert store.get_active("t1") is None
    assert bytes(wrapped) not in _files_bytes(data_dir)  # gone from database and WAL
    assert bytes(key_wrapped) not in _files_bytes(data_dir)
    assert bytes(stolen_row[6]) not in _files_bytes(data_dir)
    other = store.get_active("d1")  # other tenants are untouched
    assert other is not None and other.secret() == b"default secret"

    # A copy of the sealed record, put back after the tenant is recreated, stays sealed:
    # its data key is gone (and the key id is tombstoned: it is never stored again).
    store.put_pending("t2", 0, "ed25519", b"pub-t2", b"new", tenant="acme")
    with pytest.raises(InvalidInput, match="was deleted"):
        store.put_pending("t1", 1, "ed25519", b"pub-t1", b"again", tenant="acme")
    with _raw(data_dir) as raw:
        raw.execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", stolen_row)
    restored = store.get_active("t1")
    assert restored is not None
    with pytest.raises(InvalidInput, match="no data key"):
        restored.secret()


def test_write_file_atomic_mode(tmp_path: Path, permissive_umask: None) -> None:
    path = tmp_path / "f"
    write_file_atomic(path, b"one", 0o600)
    write_file_atomic(path, b"two", 0o600)
    assert path.read_bytes() == b"two" and _mode(path) == 0o600
    write_file_atomic(path, b"three", 0o644)
    assert _mode(path) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
