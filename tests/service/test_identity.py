"""mpcnode.identity: identity files are private and round-trip; the roster refuses bad entries."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import nacl.public
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.signing import VerifyKey

from mpcnode.errors import InvalidInput
from mpcnode.identity import NodeIdentity, Roster, RosterEntry


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0: any file mode below comes from the code, not from the environment."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def identities() -> list[NodeIdentity]:
    return [NodeIdentity.generate(f"mpc-{k}", k + 1) for k in range(5)]


def _secret_hex(identity: NodeIdentity) -> list[str]:
    return [bytes(identity.signing_private).hex(), bytes(identity.box_private).hex()]


# --------------------------------------------------------------------------- NodeIdentity


def test_generate_makes_independent_keys() -> None:
    a = NodeIdentity.generate("mpc-0", 1)
    b = NodeIdentity.generate("mpc-0", 1)
    assert bytes(a.signing_private) != bytes(a.box_private)
    assert bytes(a.signing_private) != bytes(b.signing_private)
    assert bytes(a.box_private) != bytes(b.box_private)


def test_signature_verifies_with_independent_verifiers() -> None:
    identity = NodeIdentity.generate("mpc-0", 1)
    entry = identity.public_entry()
    message = b"attack at dawn"
    signature = identity.sign(message)
    assert len(signature) == 64
    VerifyKey(entry.signing_key).verify(message, signature)
    Ed25519PublicKey.from_public_bytes(entry.signing_key).verify(signature, message)


def test_public_entry_matches_keys() -> None:
    identity = NodeIdentity.generate("mpc-3", 4)
    entry = identity.public_entry()
    assert (entry.party, entry.name) == (4, "mpc-3")
    assert entry.signing_key == bytes(identity.signing_private.verify_key)
    assert entry.box_key == bytes(identity.box_private.public_key)


def test_save_load_round_trip(tmp_path: Path) -> None:
    identity = NodeIdentity.generate("mpc-2", 3)
    path = tmp_path / "identity.json"
    identity.save(path)
    loaded = NodeIdentity.load(path)
    assert (loaded.name, loaded.party) == ("mpc-2", 3)
    assert bytes(loaded.signing_private) == bytes(identity.signing_private)
    assert bytes(loaded.box_private) == bytes(identity.box_private)
    assert loaded.public_entry() == identity.public_entry()
    doc = json.loads(path.read_text())
    assert set(doc) == {"name", "party", "signing_seed", "box_secret"}
    assert doc["signing_seed"] == bytes(identity.signing_private).hex()


def test_saved_file_is_0600_whatever_the_umask(tmp_path: Path, permissive_umask: None) -> None:
    identity = NodeIdentity.generate("mpc-0", 1)
    path = tmp_path / "identity.json"
    identity.save(path)
    assert _mode(path) == 0o600
    identity.save(path)  # replacing keeps the mode and leaves no temp file behind
    assert _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["identity.json"]


def test_save_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    NodeIdentity.generate("mpc-0", 1).save(path)
    second = NodeIdentity.generate("mpc-0", 1)
    second.save(path)
    assert NodeIdentity.load(path).public_entry() == second.public_entry()


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_load_refuses_a_file_others_can_read(tmp_path: Path, mode: int) -> None:
    identity = NodeIdentity.generate("mpc-0", 1)
    path = tmp_path / "identity.json"
    identity.save(path)
    os.chmod(path, mode)
    with pytest.raises(InvalidInput, match="chmod 600") as info:
        NodeIdentity.load(path)
    for secret in _secret_hex(identity):
        assert secret not in str(info.value)
    os.chmod(path, 0o400)  # owner-only read is fine
    assert NodeIdentity.load(path).public_entry() == identity.public_entry()


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        NodeIdentity.load(tmp_path / "nope.json")


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.pop("box_secret"),
        lambda d: d.update(signing_seed=d["signing_seed"][:-2]),
        lambda d: d.update(box_secret="zz" + d["box_secret"][2:]),
        lambda d: d.update(party=0),
        lambda d: d.update(party=True),
        lambda d: d.update(name=""),
    ],
)
def test_load_rejects_malformed_content(tmp_path: Path, edit: object) -> None:
    identity = NodeIdentity.generate("mpc-0", 1)
    path = tmp_path / "identity.json"
    identity.save(path)
    doc = json.loads(path.read_text())
    assert callable(edit)
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput) as info:
        NodeIdentity.load(path)
    for secret in _secret_hex(identity):
        assert secret not in str(info.value)
        assert secret[2:-2] not in str(info.value)


def test_load_rejects_non_json(tmp_path: Path) -> None:
    path = tmp_path / "identity.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"\xff not json")
    os.close(fd)
    with pytest.raises(InvalidInput, match="not valid JSON"):
        NodeIdentity.load(path)


def test_repr_hides_keys() -> None:
    identity = NodeIdentity.generate("mpc-0", 1)
    text = repr(identity) + str(identity)
    assert "mpc-0" in text
    for secret in _secret_hex(identity):
        assert secret not in text
    assert repr(bytes(identity.signing_private))[2:20] not in text


def test_generate_rejects_bad_party() -> None:
    for party in (0, -1):
        with pytest.raises(InvalidInput):
            NodeIdentity.generate("mpc-0", party)


# --------------------------------------------------------------------------- Roster


def test_roster_lookups(identities: list[NodeIdentity]) -> None:
    roster = Roster(reversed([i.public_entry() for i in identities]))
    assert roster.parties == (1, 2, 3, 4, 5)
    assert roster.names == ("mpc-0", "mpc-1", "mpc-2", "mpc-3", "mpc-4")
    assert roster.by_party(3) == identities[2].public_entry()
    assert roster.by_name("mpc-4").party == 5
    assert roster.name_of(2) == "mpc-1"
    assert 5 in roster and 6 not in roster
    assert len(roster) == 5
    with pytest.raises(InvalidInput, match="unknown party"):
        roster.by_party(6)
    with pytest.raises(InvalidInput, match="unknown node"):
        roster.by_name("mpc-9")
    with pytest.raises(InvalidInput):
        roster.name_of(0)


def test_roster_file_round_trip(tmp_path: Path, identities: list[NodeIdentity]) -> None:
    roster = Roster(i.public_entry() for i in identities)
    path = tmp_path / "roster.json"
    roster.save(path)
    assert Roster.load(path) == roster
    doc = json.loads(path.read_text())
    assert doc["nodes"][0] == {
        "party": 1,
        "name": "mpc-0",
        "signing_key": bytes(identities[0].signing_private.verify_key).hex(),
        "box_key": bytes(identities[0].box_private.public_key).hex(),
    }


def test_roster_loads_the_contract_format(tmp_path: Path, identities: list[NodeIdentity]) -> None:
    """A roster.json written by hand in the CONTRACTS.md format loads."""
    nodes = [
        {
            "party": i.party,
            "name": i.name,
            "signing_key": bytes(i.signing_private.verify_key).hex(),
            "box_key": bytes(i.box_private.public_key).hex(),
        }
        for i in identities
    ]
    path = tmp_path / "roster.json"
    path.write_text(json.dumps({"nodes": nodes}))
    roster = Roster.load(path)
    assert [roster.by_party(i.party) for i in identities] == [i.public_entry() for i in identities]


def _entry(identity: NodeIdentity, **changes: object) -> dict[str, object]:
    e = identity.public_entry()
    fields: dict[str, object] = {
        "party": e.party,
        "name": e.name,
        "signing_key": e.signing_key,
        "box_key": e.box_key,
    }
    fields.update(changes)
    return fields


def test_roster_rejects_duplicate_party(identities: list[NodeIdentity]) -> None:
    entries = [i.public_entry() for i in identities[:2]]
    clash = RosterEntry(**_entry(identities[2], party=1))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="party 1 appears twice"):
        Roster([*entries, clash])


def test_roster_rejects_duplicate_name(identities: list[NodeIdentity]) -> None:
    entries = [i.public_entry() for i in identities[:2]]
    clash = RosterEntry(**_entry(identities[2], name="mpc-0"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="appears twice"):
        Roster([*entries, clash])


def test_roster_rejects_shared_keys(identities: list[NodeIdentity]) -> None:
    a = identities[0].public_entry()
    same_signing = RosterEntry(**_entry(identities[1], signing_key=a.signing_key))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="share a signing_key"):
        Roster([a, same_signing])
    same_box = RosterEntry(**_entry(identities[1], box_key=a.box_key))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="share a box_key"):
        Roster([a, same_box])


def test_roster_rejects_empty() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        Roster([])


@pytest.mark.parametrize(
    "changes",
    [
        {"party": 0},
        {"party": -1},
        {"party": True},
        {"name": ""},
        {"signing_key": b"\x01" * 31},
        {"box_key": b"\x01" * 33},
        {"signing_key": bytes(32)},  # not a point of the prime-order subgroup
        {"signing_key": b"\x01" + bytes(31)},  # the identity point: small order
        {"box_key": bytes(32)},  # low-order X25519 point
    ],
)
def test_roster_entry_validation(changes: dict[str, object]) -> None:
    identity = NodeIdentity.generate("mpc-0", 1)
    with pytest.raises(InvalidInput):
        RosterEntry(**_entry(identity, **changes))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"node": []},
        {"nodes": {}},
        {"nodes": [{"party": 1, "name": "mpc-0"}]},
        {"nodes": [{"party": 1, "name": "mpc-0", "signing_key": "ab", "box_key": "cd"}]},
        {
            "nodes": [
                {"party": "1", "name": "mpc-0", "signing_key": "00" * 32, "box_key": "00" * 32}
            ]
        },
    ],
)
def test_roster_load_rejects_malformed_files(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "roster.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidInput):
        Roster.load(path)


def test_roster_load_rejects_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "roster.json"
    path.write_text("{")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        Roster.load(path)
    with pytest.raises(InvalidInput, match="does not exist"):
        Roster.load(tmp_path / "missing.json")


def test_roster_box_keys_agree(identities: list[NodeIdentity]) -> None:
    """The pinned box keys are the ones a node's private key pairs with."""
    roster = Roster(i.public_entry() for i in identities)
    a, b = identities[0], identities[1]
    sealed = nacl.public.Box(
        a.box_private, nacl.public.PublicKey(roster.by_party(2).box_key)
    ).encrypt(b"hello")
    opened = nacl.public.Box(
        b.box_private, nacl.public.PublicKey(roster.by_party(1).box_key)
    ).decrypt(sealed)
    assert opened == b"hello"
