"""mpcnode.storage: per-key data keys, crypto-shredding of a key or a tenant, KEK rotation."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

import mpcnode.storage as storage
from mpcnode.crypto.encoding import encode_fields
from mpcnode.errors import InvalidInput, KeyNotFound
from mpcnode.storage import DB_NAME, KeyStore

NODE = "mpc-0"
SIGNERS = (1, 2, 3)


@pytest.fixture
def kek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


@contextmanager
def _raw(data_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _files_bytes(data_dir: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in sorted(data_dir.iterdir()) if p.name.startswith(DB_NAME)
    )


def _key(store: KeyStore, key_id: str, tenant: str = "default", scheme: str = "ed25519") -> None:
    store.put_pending(
        key_id, 0, scheme, b"pub-" + key_id.encode(), b"share of " + key_id.encode(), tenant
    )
    store.activate(key_id, 0, b"c")


def _unwrap(kek: bytes, wrapped: bytes, aad: bytes) -> bytes:
    return AESGCM(kek).decrypt(wrapped[:12], wrapped[12:], aad)


def _wrapped_keys(data_dir: Path) -> dict[str, bytes]:
    """Every KEK-wrapped value in the database, by a label."""
    out: dict[str, bytes] = {}
    with _raw(data_dir) as raw:
        for tenant, wrapped in raw.execute("SELECT tenant, wrapped_key FROM tenants"):
            out[f"tenant:{tenant}"] = bytes(wrapped)
        for key_id, wrapped in raw.execute("SELECT key_id, wrapped_key FROM key_data_keys"):
            out[f"key:{key_id}"] = bytes(wrapped)
        for name, value in raw.execute(
            "SELECT name, value FROM meta WHERE name IN ('prime_pool_key', 'aux_info_key')"
        ):
            out[f"meta:{name}"] = bytes(value)
    return out


def _aad(label: str) -> bytes:
    kind, _, name = label.partition(":")
    if kind == "tenant":
        return encode_fields([b"mpc.v1.tenant-key", NODE.encode(), name.encode()])
    if kind == "key":
        return encode_fields([b"mpc.v1.key-data-key", NODE.encode(), name.encode()])
    purpose = {"prime_pool_key": b"prime-pool", "aux_info_key": b"aux-info"}[name]
    tag = {"prime_pool_key": b"mpc.v1.prime-pool-key", "aux_info_key": b"mpc.v1.aux-info-key"}
    return encode_fields([tag[name], NODE.encode(), purpose])


# --------------------------------------------------------------------------- delete_key


def test_delete_key_shreds_its_records_and_leaves_others(data_dir: Path, kek: bytes) -> None:
    with KeyStore(data_dir, NODE, kek) as store:
        _key(store, "doomed", scheme="secp256k1")
        _key(store, "kept", scheme="secp256k1")
        store.put_pending("doomed", 1, "secp256k1", b"pub-doomed", b"pending share")
        store.put_presignature(b"p" * 16, "doomed", 0, SIGNERS, b"pp", b"presig secret")
        store.put_presignature(b"q" * 16, "kept", 0, SIGNERS, b"pp", b"kept presig")
        with _raw(data_dir) as raw:
            sealed = [
                bytes(r[0])
                for r in raw.execute("SELECT sealed_secret FROM keys WHERE key_id='doomed'")
            ]
            sealed += [
                bytes(r[0])
                for r in raw.execute(
                    "SELECT sealed_secret FROM presignatures WHERE key_id='doomed'"
                )
            ]
            (wrapped,) = raw.execute(
                "SELECT wrapped_key FROM key_data_keys WHERE key_id='doomed'"
            ).fetchone()
        data_key = _unwrap(kek, bytes(wrapped), _aad("key:doomed"))
        assert len(sealed) == 3 and all(s in _files_bytes(data_dir) for s in sealed)

        assert store.delete_key("doomed") == (2, 1)

        files = _files_bytes(data_dir)
        assert bytes(wrapped) not in files and data_key not in files
        assert not any(s in files for s in sealed)
        assert (data_dir / (DB_NAME + "-wal")).stat().st_size == 0
        assert store.get_active("doomed") is None and store.generations("doomed") == []
        assert store.list_presignatures("doomed") == []
        assert store.is_deleted("doomed") and not store.is_deleted("kept")
        # Every wrapped value left: none is the doomed key's data key.
        for label, value in _wrapped_keys(data_dir).items():
            with pytest.raises(InvalidTag):
                _unwrap(kek, value, _aad("key:doomed"))
            assert label != "key:doomed"
        # The other key and its presignature are untouched.
        kept = store.get_active("kept")
        assert kept is not None and kept.secret() == b"share of kept"
        assert store.consume_presignature(b"q" * 16, "kept", b"h" * 32).secret == b"kept presig"
        # The tombstone: the key id can never be stored here again.
        with pytest.raises(InvalidInput, match="was deleted"):
            store.put_pending("doomed", 2, "secp256k1", b"pub", b"again")
        assert store.delete_key("doomed") == (0, 0)  # idempotent
        assert store.delete_key("never-seen") == (0, 0)
        assert store.is_deleted("never-seen")
        # A copy of the deleted records put back does not open.
        with _raw(data_dir) as raw:
            raw.execute(
                "INSERT INTO keys VALUES ('doomed', 'default', 'secp256k1', 0, 'active', ?, ?,"
                " NULL, 0)",
                (b"pub-doomed", sealed[0]),
            )
        restored = store.get_active("doomed")
        assert restored is not None
        with pytest.raises(InvalidInput, match="no data key"):
            restored.secret()


def test_delete_tenant_shreds_every_key_of_it(data_dir: Path, kek: bytes) -> None:
    with KeyStore(data_dir, NODE, kek) as store:
        _key(store, "a1", tenant="acme")
        _key(store, "a2", tenant="acme")
        _key(store, "b1", tenant="beta")
        before = _wrapped_keys(data_dir)
        assert store.delete_tenant("acme") == ["a1", "a2"]
        files = _files_bytes(data_dir)
        for label in ("tenant:acme", "key:a1", "key:a2"):
            assert before[label] not in files
        assert store.get_active("a1") is None and store.get_active("a2") is None
        assert store.is_deleted("a1") and store.is_deleted("a2")
        b1 = store.get_active("b1")
        assert b1 is not None and b1.secret() == b"share of b1"
        assert store.delete_tenant("acme") == []
        _key(store, "a3", tenant="acme")  # the tenant may come back, with new data keys
        a3 = store.get_active("a3")
        assert a3 is not None and a3.secret() == b"share of a3"


def test_records_of_an_older_database_move_to_per_key_data_keys(data_dir: Path, kek: bytes) -> None:
    """A database written before per-key data keys (records sealed under the tenant key)."""
    with KeyStore(data_dir, NODE, kek) as store:
        _key(store, "old", scheme="secp256k1")
        store.put_presignature(b"p" * 16, "old", 0, SIGNERS, b"pp", b"presig secret")
    with _raw(data_dir) as raw:
        (wrapped,) = raw.execute("SELECT wrapped_key FROM tenants").fetchone()
        tenant_key = _unwrap(kek, bytes(wrapped), _aad("tenant:default"))

        def seal(plain: bytes, aad: bytes) -> bytes:
            nonce = os.urandom(12)
            return nonce + AESGCM(tenant_key).encrypt(nonce, plain, aad)

        share_aad = encode_fields([b"mpc.v1.share", NODE.encode(), b"old", (0).to_bytes(4, "big")])
        raw.execute("UPDATE keys SET sealed_secret=?", (seal(b"legacy share", share_aad),))
        presig_aad = encode_fields(
            [
                b"mpc.v1.presignature",
                NODE.encode(),
                b"old",
                (0).to_bytes(4, "big"),
                b"p" * 16,
                b"1,2,3",
                b"pp",
            ]
        )
        raw.execute(
            "UPDATE presignatures SET sealed_secret=?", (seal(b"legacy presig", presig_aad),)
        )
        raw.execute("DROP TABLE key_data_keys")
        raw.execute("DELETE FROM meta WHERE name='kek_fingerprint'")
    with KeyStore(data_dir, NODE, kek) as store:
        got = store.get_active("old")
        assert got is not None and got.secret() == b"legacy share"
        assert store.consume_presignature(b"p" * 16, "old", b"h" * 32).secret == b"legacy presig"
        assert store.delete_key("old") == (1, 1)


# --------------------------------------------------------------------------- KEK rotation


def _populated(data_dir: Path, kek: bytes) -> KeyStore:
    store = KeyStore(data_dir, NODE, kek)
    _key(store, "k1", tenant="acme", scheme="secp256k1")
    _key(store, "k2")
    store.put_presignature(b"p" * 16, "k1", 0, SIGNERS, b"pp", b"presig secret")
    store.put_aux_info((1, 2, 3, 4, 5), b"aux blob")
    store.prime_pool_put(64, (1 << 63) + 5)
    return store


def _assert_all_open(store: KeyStore) -> None:
    for key_id in ("k1", "k2"):
        got = store.get_active(key_id)
        assert got is not None and got.secret() == b"share of " + key_id.encode()
    assert store.get_aux_info((1, 2, 3, 4, 5)) == b"aux blob"
    assert store.list_presignatures("k1")[0].presignature_id == b"p" * 16


def test_kek_rotation_rewraps_every_data_key(data_dir: Path, kek: bytes) -> None:
    new = os.urandom(32)
    with _populated(data_dir, kek) as store:
        old_fingerprint = store.kek_fingerprint
        before = _wrapped_keys(data_dir)
        assert set(before) == {
            "tenant:acme",
            "tenant:default",
            "key:k1",
            "key:k2",
            "meta:prime_pool_key",
            "meta:aux_info_key",
        }
        assert store.rotate_kek(new) is True
        assert store.kek_fingerprint != old_fingerprint
        assert kek.hex()[:16] not in store.kek_fingerprint
        after = _wrapped_keys(data_dir)
        assert set(after) == set(before)
        files = _files_bytes(data_dir)
        for label, value in after.items():
            assert before[label] not in files  # the old wrapping left no copy
            with pytest.raises(InvalidTag):
                _unwrap(kek, value, _aad(label))  # the old KEK opens nothing
            assert _unwrap(new, value, _aad(label)) == _unwrap(kek, before[label], _aad(label))
        _assert_all_open(store)  # the running store uses the new KEK at once
        _key(store, "k3")
        assert store.rotate_kek(new) is False  # already current
        assert store.prime_pool_take(64, 1) == [(1 << 63) + 5]
    with pytest.raises(InvalidInput, match="KEK does not match") as info:
        KeyStore(data_dir, NODE, kek)
    assert kek.hex() not in str(info.value) and new.hex() not in str(info.value)


def test_kek_rotation_is_atomic(
    data_dir: Path, kek: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = os.urandom(32)
    with _populated(data_dir, kek) as store:
        before = _wrapped_keys(data_dir)
        real_seal = storage._seal
        calls = {"n": 0}

        def failing_seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
            calls["n"] += 1
            if calls["n"] == 4:  # in the middle: after the tenants and one key data key
                raise OSError("disk on fire")
            return real_seal(key, plaintext, aad)

        monkeypatch.setattr(storage, "_seal", failing_seal)
        with pytest.raises(OSError, match="disk on fire"):
            store.rotate_kek(new)
        monkeypatch.setattr(storage, "_seal", real_seal)
        assert _wrapped_keys(data_dir) == before  # nothing changed
        assert store.uses_kek(kek)
        _assert_all_open(store)
    with KeyStore(data_dir, NODE, kek) as store:
        _assert_all_open(store)
    with pytest.raises(InvalidInput, match="KEK does not match"):
        KeyStore(data_dir, NODE, new)


def test_restart_after_rotation_with_either_file_layout(data_dir: Path, kek: bytes) -> None:
    new = os.urandom(32)
    with _populated(
        data_dir,
        kek,
    ) as store:
        store.rotate_kek(new)
    # Before the operator swaps the files: kek_file is the old KEK, kek_next_file the new one.
    with KeyStore(data_dir, NODE, kek, next_kek=new) as store:
        assert store.uses_kek(new)
        _assert_all_open(store)
    # After the swap: only the new KEK.
    with KeyStore(data_dir, NODE, new) as store:
        _assert_all_open(store)
    with KeyStore(data_dir, NODE, new, next_kek=kek) as store:
        assert store.uses_kek(new)
    # Only the old KEK (or an unrelated one): refused, clearly, naming both files.
    for wrong in ((kek, None), (kek, os.urandom(32))):
        with pytest.raises(InvalidInput, match="neither kek_file nor kek_next_file") as info:
            KeyStore(data_dir, NODE, wrong[0], next_kek=wrong[1])
        assert kek.hex() not in str(info.value) and new.hex() not in str(info.value)


def test_older_database_without_fingerprint_opens_with_next_kek(data_dir: Path, kek: bytes) -> None:
    with _populated(data_dir, kek) as store:
        pass
    with _raw(data_dir) as raw:
        raw.execute("DELETE FROM meta WHERE name='kek_fingerprint'")
    with KeyStore(data_dir, NODE, os.urandom(32), next_kek=kek) as store:
        assert store.uses_kek(kek)
        _assert_all_open(store)
    with _raw(data_dir) as raw:
        assert raw.execute("SELECT 1 FROM meta WHERE name='kek_fingerprint'").fetchone()


def test_deleted_key_is_not_found_afterwards(data_dir: Path, kek: bytes) -> None:
    with KeyStore(data_dir, NODE, kek) as store:
        _key(store, "k")
        stored = store.get_active("k")
        assert stored is not None
        store.delete_key("k")
        with pytest.raises(KeyNotFound):
            stored.secret()
