"""mpcnode.storage: sealed aux-info per committee, and presignatures consumed exactly once."""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mpcnode.errors import InvalidInput, KeyNotFound
from mpcnode.storage import (
    DB_NAME,
    ConsumedPresignature,
    KeyStore,
    PresignatureInfo,
    PresignatureUsed,
)

REPO = Path(__file__).resolve().parents[2]
NODE = "mpc-0"
SIGNERS = (1, 2, 3)
H1 = b"\x01" * 32
H2 = b"\x02" * 32


@pytest.fixture
def kek() -> bytes:
    return os.urandom(32)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "node"


@pytest.fixture
def store(data_dir: Path, kek: bytes) -> Iterator[KeyStore]:
    with KeyStore(data_dir, NODE, kek) as s:
        _active_key(s, "k1")
        yield s


def _active_key(store: KeyStore, key_id: str, generation: int = 0, tenant: str = "default") -> None:
    store.put_pending(key_id, generation, "secp256k1", b"pub-" + key_id.encode(), b"share", tenant)
    store.activate(key_id, generation, b"confirmations")


def _presig(
    store: KeyStore,
    key_id: str = "k1",
    signers: tuple[int, ...] = SIGNERS,
    generation: int = 0,
) -> tuple[bytes, bytes, bytes]:
    """Store a fresh presignature; returns (id, public, secret)."""
    pid, public, secret = os.urandom(32), os.urandom(40), os.urandom(64)
    store.put_presignature(pid, key_id, generation, signers, public, secret)
    return pid, public, secret


@contextmanager
def _raw(data_dir: Path) -> Iterator[sqlite3.Connection]:
    """A second, independent connection: what an attacker with the files could do."""
    conn = sqlite3.connect(data_dir / DB_NAME, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _state(data_dir: Path, pid: bytes) -> str | None:
    with _raw(data_dir) as raw:
        row = raw.execute(
            "SELECT state FROM presignatures WHERE presignature_id = ?", (pid,)
        ).fetchone()
    return None if row is None else str(row[0])


def _files_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(data_dir.iterdir()) if p.is_file())


# --------------------------------------------------------------------------- consume


def test_consume_then_resend_returns_the_cached_sigma(store: KeyStore) -> None:
    pid, public, secret = _presig(store, signers=(3, 1, 2))
    assert store.list_presignatures("k1") == [PresignatureInfo(pid, (1, 2, 3), 0)]

    first = store.consume_presignature(pid, "k1", H1)
    assert isinstance(first, ConsumedPresignature)
    assert (first.presignature_id, first.key_id, first.generation) == (pid, "k1", 0)
    assert first.signers == (1, 2, 3)
    assert (first.public, first.secret, first.cached_sigma) == (public, secret, None)
    assert store.list_presignatures("k1") == []
    assert store.count_presignatures("k1", SIGNERS) == 0

    # A resend before σ_i was recorded (e.g. a crash in between) gets the secret again.
    again = store.consume_presignature(pid, "k1", H1)
    assert (again.secret, again.cached_sigma) == (secret, None)

    sigma = os.urandom(32)
    store.record_partial(pid, sigma)
    resend = store.consume_presignature(pid, "k1", H1)
    assert resend.cached_sigma == sigma
    assert resend.secret is None  # erased once σ_i is recorded
    assert resend.public == public

    store.record_partial(pid, sigma)  # same σ_i again: harmless
    with pytest.raises(InvalidInput, match="another partial"):
        store.record_partial(pid, os.urandom(32))
    assert store.consume_presignature(pid, "k1", H1).cached_sigma == sigma


def test_another_request_is_refused_also_after_restart(data_dir: Path, kek: bytes) -> None:
    with KeyStore(data_dir, NODE, kek) as store:
        _active_key(store, "k1")
        before, _, _ = _presig(store)
        after, _, _ = _presig(store)
        store.consume_presignature(before, "k1", H1)
        store.consume_presignature(after, "k1", H1)
        store.record_partial(after, b"sigma")
        with pytest.raises(PresignatureUsed):
            store.consume_presignature(before, "k1", H2)
        with pytest.raises(PresignatureUsed):
            store.consume_presignature(after, "k1", H2)
    with KeyStore(data_dir, NODE, kek) as store:  # a restart
        for pid in (before, after):
            with pytest.raises(PresignatureUsed, match="another request"):
                store.consume_presignature(pid, "k1", H2)
        assert store.consume_presignature(before, "k1", H1).secret is not None
        assert store.consume_presignature(after, "k1", H1).cached_sigma == b"sigma"
    assert issubclass(PresignatureUsed, InvalidInput)


def test_consume_is_durable_across_kill_9(data_dir: Path, kek: bytes) -> None:
    with KeyStore(data_dir, NODE, kek) as store:
        _active_key(store, "k1")
        pid, _, secret = _presig(store)
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from mpcnode.storage import KeyStore\n"
        "s = KeyStore(Path(sys.argv[1]), 'mpc-0', bytes.fromhex(sys.argv[2]))\n"
        "c = s.consume_presignature(bytes.fromhex(sys.argv[3]), 'k1', b'\\x01' * 32)\n"
        "assert c.secret is not None\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data_dir), kek.hex(), pid.hex()],
        env=env,
        capture_output=True,
    )
    assert proc.returncode == -9, proc.stderr.decode()
    with KeyStore(data_dir, NODE, kek) as store:
        with pytest.raises(PresignatureUsed):
            store.consume_presignature(pid, "k1", H2)
        assert store.consume_presignature(pid, "k1", H1).secret == secret


def test_unknown_and_wrong_key_are_refused_without_consuming(
    store: KeyStore, data_dir: Path
) -> None:
    _active_key(store, "k2")
    pid, _, secret = _presig(store, "k1")
    with pytest.raises(KeyNotFound):
        store.consume_presignature(os.urandom(32), "k1", H1)
    with pytest.raises(KeyNotFound):
        store.record_partial(os.urandom(32), b"sigma")
    with pytest.raises(InvalidInput, match="another key") as refused:
        store.consume_presignature(pid, "k2", H1)
    assert not isinstance(refused.value, PresignatureUsed)
    with pytest.raises(InvalidInput, match="not been consumed"):
        store.record_partial(pid, b"sigma")
    assert _state(data_dir, pid) == "available"
    assert store.consume_presignature(pid, "k1", H2).secret == secret


@pytest.mark.parametrize(
    ("pid", "key_id", "request_hash"),
    [(b"", "k1", H1), ("id", "k1", H1), (b"id", "", H1), (b"id", "k1", b""), (b"id", "k1", "h")],
)
def test_consume_rejects_malformed_arguments(
    store: KeyStore, pid: object, key_id: object, request_hash: object
) -> None:
    with pytest.raises(InvalidInput):
        store.consume_presignature(pid, key_id, request_hash)  # type: ignore[arg-type]


def test_counts_and_listing_per_signer_set(store: KeyStore) -> None:
    _active_key(store, "k2")
    a, _, _ = _presig(store, signers=(1, 2, 3))
    b, _, _ = _presig(store, signers=(2, 1, 3))  # the same set
    c, _, _ = _presig(store, signers=(1, 2, 4))
    _presig(store, "k2", signers=(1, 2, 3))
    assert store.count_presignatures("k1", (1, 2, 3)) == 2
    assert store.count_presignatures("k1", (3, 2, 1)) == 2
    assert store.count_presignatures("k1", (1, 2, 4)) == 1
    assert store.count_presignatures("k1", (1, 2, 5)) == 0
    assert store.count_presignatures("k2", (1, 2, 3)) == 1
    assert store.count_presignatures("nope", (1, 2, 3)) == 0
    assert [p.presignature_id for p in store.list_presignatures("k1")] == [a, b, c]
    store.consume_presignature(b, "k1", H1)
    assert store.count_presignatures("k1", (1, 2, 3)) == 1
    assert [p.presignature_id for p in store.list_presignatures("k1")] == [a, c]
    assert store.list_presignatures("nope") == []


def test_put_refusals(store: KeyStore) -> None:
    pid, _, _ = _presig(store)
    with pytest.raises(InvalidInput, match="already stored"):
        store.put_presignature(pid, "k1", 0, SIGNERS, b"pub", b"sec")
    store.consume_presignature(pid, "k1", H1)
    with pytest.raises(InvalidInput, match="already stored"):  # a used id never comes back
        store.put_presignature(pid, "k1", 0, SIGNERS, b"pub", b"sec")
    with pytest.raises(KeyNotFound):
        store.put_presignature(os.urandom(32), "nope", 0, SIGNERS, b"pub", b"sec")
    with pytest.raises(KeyNotFound):
        store.put_presignature(os.urandom(32), "k1", 1, SIGNERS, b"pub", b"sec")
    store.put_pending("k1", 1, "secp256k1", b"pub", b"share")
    with pytest.raises(InvalidInput, match="not active"):
        store.put_presignature(os.urandom(32), "k1", 1, SIGNERS, b"pub", b"sec")
    for signers in [(), (1, 1, 2), (0, 1, 2), (True, 2, 3), (-1, 2), "123", (1 << 32, 1)]:
        with pytest.raises(InvalidInput):
            store.put_presignature(os.urandom(32), "k1", 0, signers, b"pub", b"sec")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        store.put_presignature(os.urandom(32), "k1", 0, SIGNERS, b"pub", b"")
    assert store.list_presignatures("k1") == []


def test_repr_shows_no_secret(store: KeyStore) -> None:
    pid, _, secret = _presig(store)
    consumed = store.consume_presignature(pid, "k1", H1)
    sigma = os.urandom(32)
    store.record_partial(pid, sigma)
    resend = store.consume_presignature(pid, "k1", H1)
    for shown in (repr(consumed), str(consumed), repr(resend), str(resend)):
        assert secret.hex() not in shown and repr(secret) not in shown
        assert sigma.hex() not in shown and repr(sigma) not in shown
        assert "redacted" in shown and pid.hex() in shown


# --------------------------------------------------------------------------- at rest


def test_presignature_and_sigma_are_sealed_on_disk(store: KeyStore, data_dir: Path) -> None:
    pid, public, secret = _presig(store)
    sigma = os.urandom(48)
    store.consume_presignature(pid, "k1", H1)
    on_disk = _files_bytes(data_dir)
    assert public in on_disk  # public part in clear
    assert secret not in on_disk
    store.record_partial(pid, sigma)
    assert sigma not in _files_bytes(data_dir)


def test_tampered_sealed_secret_does_not_open(store: KeyStore, data_dir: Path) -> None:
    pid, _, _ = _presig(store)
    with _raw(data_dir) as raw:
        (sealed,) = raw.execute(
            "SELECT sealed_secret FROM presignatures WHERE presignature_id = ?", (pid,)
        ).fetchone()
        flipped = bytearray(sealed)
        flipped[-1] ^= 1
        raw.execute(
            "UPDATE presignatures SET sealed_secret = ? WHERE presignature_id = ?",
            (bytes(flipped), pid),
        )
    with pytest.raises(InvalidInput, match="authentication"):
        store.consume_presignature(pid, "k1", H1)
    assert _state(data_dir, pid) == "available"  # the failed consume was rolled back


@pytest.mark.parametrize("column", ["public", "signers", "generation"])
def test_sealed_secret_is_bound_to_its_row(store: KeyStore, data_dir: Path, column: str) -> None:
    """Moving a sealed record to another row, or editing the row's public fields, breaks it."""
    a, _, _ = _presig(store)
    b, _, _ = _presig(store, signers=(1, 2, 4))
    with _raw(data_dir) as raw:
        if column == "public":
            raw.execute("UPDATE presignatures SET public = ? WHERE presignature_id = ?", (b"x", a))
        elif column == "signers":
            raw.execute(
                "UPDATE presignatures SET signers = '1,2,4' WHERE presignature_id = ?", (a,)
            )
        else:  # swap the sealed records of two rows
            (sa,) = raw.execute(
                "SELECT sealed_secret FROM presignatures WHERE presignature_id = ?", (a,)
            ).fetchone()
            (sb,) = raw.execute(
                "SELECT sealed_secret FROM presignatures WHERE presignature_id = ?", (b,)
            ).fetchone()
            raw.execute(
                "UPDATE presignatures SET sealed_secret = ? WHERE presignature_id = ?", (sb, a)
            )
            raw.execute(
                "UPDATE presignatures SET sealed_secret = ? WHERE presignature_id = ?", (sa, b)
            )
    with pytest.raises(InvalidInput, match="authentication"):
        store.consume_presignature(a, "k1", H1)
    if column == "generation":
        with pytest.raises(InvalidInput, match="authentication"):
            store.consume_presignature(b, "k1", H1)
    else:
        assert store.consume_presignature(b, "k1", H1).secret is not None


def test_tampered_cached_sigma_does_not_open(store: KeyStore, data_dir: Path) -> None:
    a, _, _ = _presig(store)
    b, _, _ = _presig(store)
    for pid in (a, b):
        store.consume_presignature(pid, "k1", H1)
        store.record_partial(pid, os.urandom(32))
    with _raw(data_dir) as raw:  # move b's σ onto a
        (sb,) = raw.execute(
            "SELECT sealed_sigma FROM presignatures WHERE presignature_id = ?", (b,)
        ).fetchone()
        raw.execute("UPDATE presignatures SET sealed_sigma = ? WHERE presignature_id = ?", (sb, a))
    with pytest.raises(InvalidInput, match="authentication"):
        store.consume_presignature(a, "k1", H1)


# --------------------------------------------------------------------------- lifetime


def test_reshare_activation_and_retire_erase_old_presignatures(
    store: KeyStore, data_dir: Path
) -> None:
    old, _, _ = _presig(store)
    store.put_pending("k1", 1, "secp256k1", b"pub1", b"share1")
    # Generation 0 is still the active one until generation 1 is certified.
    assert store.count_presignatures("k1", SIGNERS) == 1
    store.activate("k1", 1, b"c1")
    assert store.list_presignatures("k1") == []
    with pytest.raises(KeyNotFound):
        store.consume_presignature(old, "k1", H1)
    new, _, _ = _presig(store, generation=1)
    assert store.retire("k1", 2) == 1
    assert _state(data_dir, new) is None


def test_drop_presignatures(store: KeyStore) -> None:
    used, _, _ = _presig(store)
    store.consume_presignature(used, "k1", H1)
    _presig(store)
    store.put_pending("k1", 1, "secp256k1", b"pub1", b"share1")
    assert store.drop_presignatures("k1", below_generation=0) == 0
    assert store.drop_presignatures("k1", below_generation=1) == 2  # consumed ones too
    with pytest.raises(KeyNotFound):
        store.consume_presignature(used, "k1", H1)
    _presig(store)
    _presig(store)
    assert store.drop_presignatures("k1") == 2
    assert store.drop_presignatures("k1") == 0
    with pytest.raises(InvalidInput):
        store.drop_presignatures("k1", below_generation=-1)


def test_delete_tenant_deletes_its_presignatures(store: KeyStore, data_dir: Path) -> None:
    _active_key(store, "t1", tenant="acme")
    mine, _, secret = _presig(store, "t1")
    used, _, _ = _presig(store, "t1")
    store.consume_presignature(used, "t1", H1)
    other, _, _ = _presig(store, "k1")
    store.delete_tenant("acme")
    assert _state(data_dir, mine) is None and _state(data_dir, used) is None
    with pytest.raises(KeyNotFound):
        store.consume_presignature(mine, "t1", H1)
    assert secret not in _files_bytes(data_dir)
    assert store.consume_presignature(other, "k1", H1).secret is not None


# --------------------------------------------------------------------------- concurrency


def test_concurrent_consumes_in_threads_exactly_one_wins(data_dir: Path, kek: bytes) -> None:
    """Two stores (two SQLite connections) on one directory race for every presignature."""
    with KeyStore(data_dir, NODE, kek) as setup:
        _active_key(setup, "k1")
        ids = [_presig(setup)[0] for _ in range(40)]
    stores = [KeyStore(data_dir, NODE, kek), KeyStore(data_dir, NODE, kek)]
    barrier = threading.Barrier(2)
    outcomes: dict[int, list[str]] = {0: [], 1: []}

    def race(me: int) -> None:
        request = bytes([me + 1]) * 32
        for pid in ids:
            barrier.wait()
            try:
                stores[me].consume_presignature(pid, "k1", request)
                outcomes[me].append("won")
            except PresignatureUsed:
                outcomes[me].append("refused")
            except Exception as exc:  # anything else is a failure of the test
                outcomes[me].append(f"error: {exc!r}")

    try:
        threads = [threading.Thread(target=race, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for s in stores:
            s.close()
    assert len(outcomes[0]) == len(outcomes[1]) == len(ids)
    for mine, theirs in zip(outcomes[0], outcomes[1], strict=True):
        assert sorted([mine, theirs]) == ["refused", "won"]


def _consume_all(
    data_dir: str,
    kek: bytes,
    ids: list[bytes],
    request: bytes,
    barrier: threading.Barrier,
    results: multiprocessing.queues.Queue[tuple[bytes, list[str]]],
) -> None:
    """Runs in a separate process: race the other process for every id, one id at a time."""
    outcomes: list[str] = []
    with KeyStore(data_dir, NODE, kek) as store:
        for pid in ids:
            barrier.wait(60)
            try:
                store.consume_presignature(pid, "k1", request)
                outcomes.append("won")
            except PresignatureUsed:
                outcomes.append("refused")
            except Exception as exc:
                outcomes.append(f"error: {exc!r}")
    results.put((request, outcomes))


def test_concurrent_consumes_in_processes_exactly_one_wins(data_dir: Path, kek: bytes) -> None:
    with KeyStore(data_dir, NODE, kek) as setup:
        _active_key(setup, "k1")
        ids = [_presig(setup)[0] for _ in range(40)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results: multiprocessing.queues.Queue[tuple[bytes, list[str]]] = ctx.Queue()
    requests = [H1, H2]
    procs = [
        ctx.Process(target=_consume_all, args=(str(data_dir), kek, ids, r, barrier, results))
        for r in requests
    ]
    for proc in procs:
        proc.start()
    try:
        outcomes = dict(results.get(timeout=120) for _ in procs)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    for mine, theirs in zip(outcomes[H1], outcomes[H2], strict=True):
        assert sorted([mine, theirs]) == ["refused", "won"]
    # Every presignature went to the process that won it, and only to that one.
    with KeyStore(data_dir, NODE, kek) as store:
        for pid, mine in zip(ids, outcomes[H1], strict=True):
            winner, loser = (H1, H2) if mine == "won" else (H2, H1)
            assert store.consume_presignature(pid, "k1", winner).secret is not None
            with pytest.raises(PresignatureUsed):
                store.consume_presignature(pid, "k1", loser)


# --------------------------------------------------------------------------- aux-info


def test_aux_info_put_get_replace_and_reopen(data_dir: Path, kek: bytes) -> None:
    first, second, other = os.urandom(200), os.urandom(200), os.urandom(100)
    with KeyStore(data_dir, NODE, kek) as store:
        assert store.get_aux_info((1, 2, 3, 4, 5)) is None
        store.put_aux_info((1, 2, 3, 4, 5), first)
        store.put_aux_info((1, 2, 3), other)
        assert store.get_aux_info((5, 4, 3, 2, 1)) == first  # a committee is a set
        store.put_aux_info((1, 2, 3, 4, 5), second)  # replaces
        assert store.get_aux_info((1, 2, 3, 4, 5)) == second
    with KeyStore(data_dir, NODE, kek) as store:
        assert store.get_aux_info((1, 2, 3, 4, 5)) == second
        assert store.get_aux_info((1, 2, 3)) == other
        assert store.get_aux_info((1, 2, 4)) is None
        with _raw(data_dir) as raw:
            names = sorted(r[0] for r in raw.execute("SELECT committee FROM aux_info"))
        assert names == ["1,2,3", "1,2,3,4,5"]
        for bad in [(), (1, 1), (0, 1), "12345", (1, True)]:
            with pytest.raises(InvalidInput):
                store.put_aux_info(bad, first)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput):
            store.put_aux_info((1, 2), b"")
    on_disk = _files_bytes(data_dir)
    assert first not in on_disk and second not in on_disk and other not in on_disk


def test_aux_info_is_bound_to_its_committee(store: KeyStore, data_dir: Path) -> None:
    store.put_aux_info((1, 2, 3, 4, 5), os.urandom(64))
    store.put_aux_info((1, 2, 3), os.urandom(64))
    with _raw(data_dir) as raw:
        (sealed,) = raw.execute(
            "SELECT sealed FROM aux_info WHERE committee = '1,2,3,4,5'"
        ).fetchone()
        raw.execute("UPDATE aux_info SET sealed = ? WHERE committee = '1,2,3'", (sealed,))
        flipped = bytearray(sealed)
        flipped[20] ^= 0x80
        raw.execute(
            "UPDATE aux_info SET sealed = ? WHERE committee = '1,2,3,4,5'", (bytes(flipped),)
        )
    with pytest.raises(InvalidInput, match="authentication"):
        store.get_aux_info((1, 2, 3))
    with pytest.raises(InvalidInput, match="authentication"):
        store.get_aux_info((1, 2, 3, 4, 5))


def test_aux_info_of_another_node_does_not_open(tmp_path: Path, kek: bytes) -> None:
    """The same KEK and a copied record: the AAD names the node, so it does not open."""
    blob = os.urandom(64)
    with KeyStore(tmp_path / "a", "mpc-0", kek) as a:
        a.put_aux_info((1, 2, 3), blob)
    with KeyStore(tmp_path / "b", "mpc-1", kek) as b:
        b.put_aux_info((1, 2, 3), os.urandom(64))
    with _raw(tmp_path / "a") as raw_a, _raw(tmp_path / "b") as raw_b:
        for name in ("aux_info_key",):
            (value,) = raw_a.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
            raw_b.execute("UPDATE meta SET value = ? WHERE name = ?", (value, name))
        (sealed,) = raw_a.execute("SELECT sealed FROM aux_info").fetchone()
        raw_b.execute("UPDATE aux_info SET sealed = ?", (sealed,))
    with KeyStore(tmp_path / "b", "mpc-1", kek) as b, pytest.raises(InvalidInput):
        b.get_aux_info((1, 2, 3))
