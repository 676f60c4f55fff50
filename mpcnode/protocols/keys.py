"""Threshold key material shared by every scheme: the public key package and one party's share.

`PublicKeyPackage` is everything public about a t-of-n key: the group key PK = s·G, every
party's verifying share Y_j = s_j·G, the threshold, the chain code for child keys and the
generation (bumped by resharing). `KeyShare` adds one party's secret share s_i.

Both encode to the canonical field encoding and decode with full validation: a decoded
package is a consistent Shamir sharing of exactly degree t-1 whose value at 0 is PK, and
a decoded share matches its verifying share. Storage and the service rely on that.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from mpcnode.crypto.encoding import decode_fields, decode_uint, encode_fields, encode_uint
from mpcnode.crypto.group import GROUPS, Group, Point
from mpcnode.crypto.sharing import Polynomial, check_indices, lagrange_coefficient
from mpcnode.errors import InvalidInput

_PACKAGE_TAG = b"mpc.v1.public-key-package"
_SHARE_TAG = b"mpc.v1.key-share"
_CONFIRMATION_TAG = b"mpc.v1.key-confirmation"
CHAIN_CODE_SIZE = 32
KEY_PROTOCOLS = frozenset({"frost-dkg", "reshare"})
"""Session protocols whose output is a new key generation, certified by every holder's signed
confirmation: a holder stores its share pending before it confirms and activates it only on
seeing every confirmation."""


def _group(scheme: str) -> Group:
    try:
        return GROUPS[scheme]
    except KeyError:
        raise InvalidInput(f"unknown scheme {scheme!r}") from None


def _interpolate_in_exponent(group: Group, points: dict[int, Point], at: int) -> Point:
    """sum_i lambda_i(at)·P_i: the value at `at` of the polynomial whose images are `points`."""
    indices = list(points)
    return group.sum_points(
        points[i] * lagrange_coefficient(group.order, i, indices, at) for i in indices
    )


@dataclass(frozen=True)
class PublicKeyPackage:
    """Public part of a t-of-n key. `verifying_shares[k]` belongs to `parties[k]`."""

    scheme: str
    threshold: int
    parties: tuple[int, ...]
    public_key: Point
    verifying_shares: tuple[Point, ...]
    chain_code: bytes
    generation: int = 0

    def __post_init__(self) -> None:
        """Cheap structural checks; `check_consistency` does the arithmetic ones."""
        group = _group(self.scheme)
        # Accept any sequence but store tuples, so packages compare and hash by value.
        object.__setattr__(self, "parties", tuple(self.parties))
        object.__setattr__(self, "verifying_shares", tuple(self.verifying_shares))
        parties = self.parties
        if any(not isinstance(p, int) or p <= 0 for p in parties):
            raise InvalidInput("party indices must be positive integers")
        check_indices(parties, group.order)
        if list(parties) != sorted(parties):
            raise InvalidInput("parties must be sorted")
        if len(self.verifying_shares) != len(parties):
            raise InvalidInput("one verifying share per party is required")
        if not 1 <= self.threshold <= len(parties):
            raise InvalidInput("threshold must be between 1 and the number of parties")
        if len(self.chain_code) != CHAIN_CODE_SIZE:
            raise InvalidInput("chain code must be 32 bytes")
        if self.generation < 0:
            raise InvalidInput("generation must be non-negative")
        for p in (self.public_key, *self.verifying_shares):
            if p.group is not group:
                raise InvalidInput("point from another group")
            if p.is_identity:
                raise InvalidInput("identity point in a public key package")

    @property
    def group(self) -> Group:
        return GROUPS[self.scheme]

    @property
    def public_key_bytes(self) -> bytes:
        return self.public_key.encode()

    def verifying_share(self, party: int) -> Point:
        """Y_party = s_party·G."""
        try:
            return self.verifying_shares[self.parties.index(party)]
        except ValueError:
            raise InvalidInput(f"party {party} holds no share of this key") from None

    def check_consistency(self) -> None:
        """Raise unless the verifying shares are a degree-(t-1) sharing of `public_key`.

        Interpolating the first t shares in the exponent must give PK at 0 and every other
        Y_j at j (so every t-subset agrees); and the first t shares must not already lie on a
        polynomial of degree t-2, so the threshold is exactly t (a random top coefficient is
        zero with probability 1/order).
        """
        group = self.group
        t = self.threshold
        first = {p: self.verifying_shares[k] for k, p in enumerate(self.parties[:t])}
        if _interpolate_in_exponent(group, first, 0) != self.public_key:
            raise InvalidInput("verifying shares do not interpolate to the public key")
        for k in range(t, len(self.parties)):
            j = self.parties[k]
            if _interpolate_in_exponent(group, first, j) != self.verifying_shares[k]:
                raise InvalidInput(f"verifying share of party {j} is inconsistent with threshold")
        if t >= 2:
            lower = {p: first[p] for p in self.parties[: t - 1]}
            last = self.parties[t - 1]
            if _interpolate_in_exponent(group, lower, last) == first[last]:
                raise InvalidInput("verifying shares have degree below threshold - 1")

    def encode(self) -> bytes:
        return encode_fields(
            [
                _PACKAGE_TAG,
                self.scheme.encode(),
                encode_uint(self.threshold),
                b"".join(encode_uint(p) for p in self.parties),
                self.public_key.encode(),
                b"".join(y.encode() for y in self.verifying_shares),
                self.chain_code,
                encode_uint(self.generation, 8),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> PublicKeyPackage:
        """Parse and fully validate (points, indices, threshold, chain code, consistency)."""
        fields = decode_fields(data, count=8)
        tag, scheme_raw, t_raw, parties_raw, pk_raw, shares_raw, chain_code, gen_raw = fields
        if tag != _PACKAGE_TAG:
            raise InvalidInput("not a public key package")
        try:
            scheme = scheme_raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidInput("bad scheme name") from None
        group = _group(scheme)
        if len(parties_raw) % 4:
            raise InvalidInput("bad party list")
        parties = tuple(decode_uint(parties_raw[k : k + 4]) for k in range(0, len(parties_raw), 4))
        size = group.point_size
        if len(shares_raw) != size * len(parties):
            raise InvalidInput("one verifying share per party is required")
        shares = tuple(
            group.decode_point(shares_raw[k : k + size]) for k in range(0, len(shares_raw), size)
        )
        package = cls(
            scheme=scheme,
            threshold=decode_uint(t_raw),
            parties=parties,
            public_key=group.decode_point(pk_raw),
            verifying_shares=shares,
            chain_code=chain_code,
            generation=decode_uint(gen_raw, 8),
        )
        package.check_consistency()
        return package

    def tweaked(self, tweak: int) -> PublicKeyPackage:
        """The package of the child key PK + e·G: every Y_j + e·G, all else unchanged.

        Adding the constant e to the Shamir polynomial keeps its degree and shifts its value at
        every point by e; since Σ λ_j = 1 over any signer set, t shares s_j + e interpolate to
        s + e. The chain code field stays the root's (the child's is in `hd.ChildKey`).
        Raises `InvalidInput` if the child key or a verifying share would be the identity
        (probability ~1/order for a derived tweak: choose another index).
        """
        if not isinstance(tweak, int):
            raise InvalidInput("tweak must be an integer")
        group = self.group
        offset = group.base_mul(tweak % group.order)
        public_key = self.public_key + offset
        if public_key.is_identity:
            raise InvalidInput("the tweaked public key is the identity; choose another index")
        shares = tuple(y + offset for y in self.verifying_shares)
        if any(y.is_identity for y in shares):
            raise InvalidInput("a tweaked verifying share is the identity; choose another index")
        # No `check_consistency` here: shifting a consistent sharing by a public constant keeps
        # it consistent (same polynomial plus e), and signing under a child key must cost what
        # signing under the root costs.
        return PublicKeyPackage(
            scheme=self.scheme,
            threshold=self.threshold,
            parties=self.parties,
            public_key=public_key,
            verifying_shares=shares,
            chain_code=self.chain_code,
            generation=self.generation,
        )

    def confirmation_digest(self, eid: bytes) -> bytes:
        """What every holder broadcasts to confirm it ended a key session with this package."""
        return hashlib.sha256(encode_fields([_CONFIRMATION_TAG, eid, self.encode()])).digest()


@dataclass(frozen=True, repr=False)
class KeyShare:
    """Party `party`'s secret share s_i of the key described by `public`. repr hides s_i."""

    public: PublicKeyPackage
    party: int
    secret_share: int

    def __post_init__(self) -> None:
        group = self.public.group
        if not 0 < self.secret_share < group.order:
            raise InvalidInput("secret share out of range")
        if group.base_mul(self.secret_share) != self.public.verifying_share(self.party):
            raise InvalidInput("secret share does not match its verifying share")

    @property
    def group(self) -> Group:
        return self.public.group

    @property
    def threshold(self) -> int:
        return self.public.threshold

    def tweaked(self, tweak: int) -> KeyShare:
        """Party `party`'s share s_i + e of the child key PK + e·G (package `public.tweaked(e)`).

        Any t holders of tweaked shares sign under the child key: Σ λ_j·(s_j + e) = s + e.
        """
        public = self.public.tweaked(tweak)
        share = (self.secret_share + tweak) % self.group.order
        if share == 0:
            raise InvalidInput("a tweaked secret share is zero; choose another index")
        return KeyShare(public, self.party, share)

    def encode(self) -> bytes:
        return encode_fields(
            [
                _SHARE_TAG,
                self.public.encode(),
                encode_uint(self.party),
                self.group.encode_scalar(self.secret_share),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> KeyShare:
        """Parse and validate (package consistency, scalar range, s_i·G == Y_i)."""
        tag, public_raw, party_raw, secret_raw = decode_fields(data, count=4)
        if tag != _SHARE_TAG:
            raise InvalidInput("not a key share")
        public = PublicKeyPackage.decode(public_raw)
        return cls(public, decode_uint(party_raw), public.group.decode_scalar(secret_raw))

    def __repr__(self) -> str:
        return (
            f"KeyShare(scheme={self.public.scheme}, party={self.party}, "
            f"threshold={self.public.threshold}, public_key={self.public.public_key_bytes.hex()}, "
            "secret_share=<redacted>)"
        )


def trusted_dealer_keygen(
    scheme: str,
    threshold: int,
    parties: Sequence[int],
    secret: int | None = None,
    chain_code: bytes | None = None,
    generation: int = 0,
) -> dict[int, KeyShare]:
    """RFC 9591 App. C trusted_dealer_keygen: Shamir-share `secret` (random if None) to `parties`.

    For tests and key import only; the cluster creates keys with a DKG so that no single
    process ever holds the secret.
    """
    group = _group(scheme)
    ordered = tuple(sorted(parties))
    check_indices(ordered, group.order)
    if not 1 <= threshold <= len(ordered):
        raise InvalidInput("threshold must be between 1 and the number of parties")
    if secret is not None and secret % group.order == 0:
        raise InvalidInput("secret must be non-zero")
    poly = Polynomial.random(group, threshold - 1, secret)
    shares = {p: poly(p) for p in ordered}
    public = PublicKeyPackage(
        scheme=scheme,
        threshold=threshold,
        parties=ordered,
        public_key=group.base_mul(poly.coefficients[0]),
        verifying_shares=tuple(group.base_mul(shares[p]) for p in ordered),
        chain_code=chain_code if chain_code is not None else secrets.token_bytes(CHAIN_CODE_SIZE),
        generation=generation,
    )
    return {p: KeyShare(public, p, shares[p]) for p in ordered}
