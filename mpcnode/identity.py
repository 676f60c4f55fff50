"""Node identity keys and the cluster roster.

Each node has two independent long-term keys: an Ed25519 key that signs every
envelope it sends, and an X25519 key that point-to-point payloads are sealed to.
The roster (roster.json, pinned in every node's and the coordinator's config) lists
the public halves; a payload is accepted only when signed by a roster member.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.signing

from mpcnode.errors import InvalidInput
from mpcnode.storage import read_private_file, write_file_atomic

__all__ = ["NodeIdentity", "Roster", "RosterEntry"]

KEY_SIZE = 32


def _check_party(party: object) -> int:
    if isinstance(party, bool) or not isinstance(party, int):
        raise InvalidInput("party index must be an integer")
    if not 0 < party < 1 << 31:
        raise InvalidInput(f"party index {party} out of range (parties are non-zero)")
    return party


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("node name must be a non-empty string")
    return name


def _hex_key(value: object, what: str) -> bytes:
    """Decode a 32-byte key from hex without echoing the value in errors."""
    if not isinstance(value, str) or len(value) != 2 * KEY_SIZE:
        raise InvalidInput(f"{what} must be {2 * KEY_SIZE} hex characters")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidInput(f"{what} is not valid hex") from None


@dataclass(frozen=True)
class RosterEntry:
    """Public identity of one node: party index, name, Ed25519 and X25519 public keys."""

    party: int
    name: str
    signing_key: bytes
    box_key: bytes

    def __post_init__(self) -> None:
        _check_party(self.party)
        _check_name(self.name)
        if not isinstance(self.signing_key, bytes) or len(self.signing_key) != KEY_SIZE:
            raise InvalidInput(f"signing key of {self.name} must be {KEY_SIZE} bytes")
        if not isinstance(self.box_key, bytes) or len(self.box_key) != KEY_SIZE:
            raise InvalidInput(f"box key of {self.name} must be {KEY_SIZE} bytes")
        # A small-order or off-curve key would let signatures or sealed payloads be
        # forged or read without any secret; refuse it when the roster is built.
        if not nacl.bindings.crypto_core_ed25519_is_valid_point(self.signing_key):
            raise InvalidInput(f"signing key of {self.name} is not a valid Ed25519 point")
        try:
            nacl.bindings.crypto_scalarmult(b"\x01" * KEY_SIZE, self.box_key)
        except nacl.exceptions.CryptoError:
            raise InvalidInput(f"box key of {self.name} is a low-order X25519 point") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "party": self.party,
            "name": self.name,
            "signing_key": self.signing_key.hex(),
            "box_key": self.box_key.hex(),
        }

    @classmethod
    def from_json(cls, obj: object) -> RosterEntry:
        if not isinstance(obj, dict):
            raise InvalidInput("roster entry must be a JSON object")
        missing = {"party", "name", "signing_key", "box_key"} - obj.keys()
        if missing:
            raise InvalidInput(f"roster entry lacks {sorted(missing)}")
        name = _check_name(obj["name"])
        return cls(
            party=_check_party(obj["party"]),
            name=name,
            signing_key=_hex_key(obj["signing_key"], f"signing_key of {name}"),
            box_key=_hex_key(obj["box_key"], f"box_key of {name}"),
        )


class NodeIdentity:
    """A node's name, party index and private identity keys. repr never shows the keys."""

    def __init__(
        self,
        name: str,
        party: int,
        signing_private: nacl.signing.SigningKey,
        box_private: nacl.public.PrivateKey,
    ) -> None:
        self.name = _check_name(name)
        self.party = _check_party(party)
        if not isinstance(signing_private, nacl.signing.SigningKey):
            raise InvalidInput("signing key must be a nacl.signing.SigningKey")
        if not isinstance(box_private, nacl.public.PrivateKey):
            raise InvalidInput("box key must be a nacl.public.PrivateKey")
        self.signing_private = signing_private
        self.box_private = box_private

    @classmethod
    def generate(cls, name: str, party: int) -> NodeIdentity:
        """Fresh, independent Ed25519 and X25519 keys from the OS CSPRNG."""
        return cls(
            name, party, nacl.signing.SigningKey.generate(), nacl.public.PrivateKey.generate()
        )

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message` under this node's identity key."""
        signature: bytes = self.signing_private.sign(message).signature
        return signature

    def public_entry(self) -> RosterEntry:
        return RosterEntry(
            party=self.party,
            name=self.name,
            signing_key=bytes(self.signing_private.verify_key),
            box_key=bytes(self.box_private.public_key),
        )

    def secret_file_bytes(self) -> bytes:
        """The identity file's content (JSON, private keys included): for `save` and for
        a Kubernetes Secret, nothing else."""
        doc = {
            "name": self.name,
            "party": self.party,
            "signing_seed": bytes(self.signing_private).hex(),
            "box_secret": bytes(self.box_private).hex(),
        }
        return json.dumps(doc, indent=2).encode() + b"\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the identity as JSON, atomically, with mode 0600 from creation."""
        write_file_atomic(path, self.secret_file_bytes(), 0o600)

    @classmethod
    def load(cls, path: str | os.PathLike[str], group_readable: bool = False) -> NodeIdentity:
        """Read an identity file; refuse one that others (or group, see
        `read_private_file`) can access."""
        raw = read_private_file(path, "identity file", group_readable)
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInput(f"identity file {os.fspath(path)} is not valid JSON") from None
        if not isinstance(doc, dict):
            raise InvalidInput(f"identity file {os.fspath(path)} must hold a JSON object")
        missing = {"name", "party", "signing_seed", "box_secret"} - doc.keys()
        if missing:
            raise InvalidInput(f"identity file {os.fspath(path)} lacks {sorted(missing)}")
        return cls(
            _check_name(doc["name"]),
            _check_party(doc["party"]),
            nacl.signing.SigningKey(_hex_key(doc["signing_seed"], "signing_seed")),
            nacl.public.PrivateKey(_hex_key(doc["box_secret"], "box_secret")),
        )

    def __repr__(self) -> str:
        return f"NodeIdentity(name={self.name!r}, party={self.party}, keys=<redacted>)"


class Roster:
    """The pinned list of cluster nodes, indexed by party and by name."""

    def __init__(self, entries: Iterable[RosterEntry]) -> None:
        given = list(entries)
        if not given:
            raise InvalidInput("roster is empty")
        if not all(isinstance(e, RosterEntry) for e in given):
            raise InvalidInput("roster entries must be RosterEntry values")
        ordered = sorted(given, key=lambda e: e.party)
        self._by_party: dict[int, RosterEntry] = {}
        self._by_name: dict[str, RosterEntry] = {}
        for e in ordered:
            if e.party in self._by_party:
                raise InvalidInput(f"party {e.party} appears twice in the roster")
            if e.name in self._by_name:
                raise InvalidInput(f"node name {e.name!r} appears twice in the roster")
            self._by_party[e.party] = e
            self._by_name[e.name] = e
        for attr in ("signing_key", "box_key"):
            if len({getattr(e, attr) for e in ordered}) != len(ordered):
                raise InvalidInput(f"two roster entries share a {attr}")

    @classmethod
    def from_json(cls, doc: object) -> Roster:
        if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
            raise InvalidInput('roster must be a JSON object with a "nodes" list')
        return cls(RosterEntry.from_json(item) for item in doc["nodes"])

    def to_json(self) -> dict[str, Any]:
        return {"nodes": [e.to_json() for e in self]}

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Roster:
        try:
            with open(path, "rb") as f:
                doc = json.load(f)
        except FileNotFoundError:
            raise InvalidInput(f"roster file {os.fspath(path)} does not exist") from None
        except OSError as exc:
            raise InvalidInput(
                f"cannot read roster file {os.fspath(path)}: {exc.strerror}"
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidInput(f"roster file {os.fspath(path)} is not valid JSON") from None
        return cls.from_json(doc)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write roster.json atomically (public data: mode 0644)."""
        write_file_atomic(path, json.dumps(self.to_json(), indent=2).encode() + b"\n", 0o644)

    def by_party(self, party: int) -> RosterEntry:
        try:
            return self._by_party[party]
        except KeyError:
            raise InvalidInput(f"unknown party {party}") from None

    def by_name(self, name: str) -> RosterEntry:
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidInput(f"unknown node {name!r}") from None

    def name_of(self, party: int) -> str:
        return self.by_party(party).name

    def __contains__(self, party: object) -> bool:
        return party in self._by_party

    @property
    def parties(self) -> tuple[int, ...]:
        """Party indices in increasing order."""
        return tuple(self._by_party)

    @property
    def names(self) -> tuple[str, ...]:
        """Node names in party order."""
        return tuple(e.name for e in self._by_party.values())

    def __iter__(self) -> Iterator[RosterEntry]:
        return iter(self._by_party.values())

    def __len__(self) -> int:
        return len(self._by_party)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Roster) and list(self) == list(other)

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Roster({', '.join(f'{e.party}:{e.name}' for e in self)})"
