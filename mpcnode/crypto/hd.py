"""Non-hardened hierarchical derivation of child public keys (BIP-32 CKDpub and its Ed25519 twin).

A threshold key has no whole private key anywhere, so only public derivation is possible: each
step turns (parent public key K, chain code c, index i) into a public shift δ, a child key
K + δ·G and a child chain code. The tweak e of a path is Σδ mod the group order; every node
turns its Shamir share s_i into s_i + e, so the cluster signs under root key + e·G.

- secp256k1: BIP-32 CKDpub, I = HMAC-SHA512(c, ser_P(K) ‖ ser32(i)), δ = parse256(I_L).
- ed25519: the hd-wallet crate's "Edwards" scheme, I = HMAC-SHA512(c, K ‖ 0x00 ‖ ser32(i)),
  δ = int_be(I_L) mod L.
- Both: child chain code = I_R. If I_L >= n (secp256k1) or the child is the identity
  (probability ~2^-127) we raise `InvalidInput` naming the index instead of silently
  skipping to the next index as BIP-32 suggests: the caller chooses another index.

Hardened indices (>= 2^31) need the whole private key, which no node ever has; they are
refused with `HardenedPathError`. Everything in this module is public data.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from mpcnode.crypto.group import ED25519, GROUPS, SECP256K1, Group, Point
from mpcnode.errors import InvalidInput

HARDENED_OFFSET = 2**31
MAX_DEPTH = 255
"""BIP-32 serialises the depth in one byte."""
CHAIN_CODE_SIZE = 32
XPUB_VERSION = 0x0488B21E
"""BIP-32 mainnet public version bytes ("xpub")."""
TENANT_PATH_PURPOSE = 0x54454E
"""First level of every tenant path: ASCII "TEN"."""
TENANT_PATH_DOMAIN = b"mpc.v1.tenant-path"
MAX_TENANT_LENGTH = 128

_HARDENED_MARKERS = ("'", "h", "H")
_MAX_INDEX_DIGITS = 10  # 2^32 - 1 has 10 decimal digits
_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class HardenedPathError(InvalidInput):
    """A path asked for a hardened step, which needs the whole private key no node holds."""

    def __init__(self, index_text: str) -> None:
        super().__init__(
            f"hardened index {index_text} refused: hardened derivation needs the whole private "
            "key, which no node ever has; use non-hardened indices (< 2^31)"
        )


def _check_index(index: object) -> int:
    """A validated non-hardened child index (an int in [0, 2^31))."""
    if not isinstance(index, int) or isinstance(index, bool):
        raise InvalidInput("a path index must be an int")
    if index < 0 or index >= 2**32:
        raise InvalidInput(f"path index {index} is not a 32-bit unsigned integer")
    if index >= HARDENED_OFFSET:
        raise HardenedPathError(str(index))
    return index


def check_path(path: Sequence[int]) -> tuple[int, ...]:
    """The path as a tuple after checking every index (non-hardened: `HardenedPathError`) and
    the depth limit; for paths that arrive as integers (requests), `parse_path` for text."""
    if isinstance(path, str | bytes):
        raise InvalidInput("a path must be a sequence of ints; use parse_path for text")
    if len(path) > MAX_DEPTH:
        raise InvalidInput(f"path depth {len(path)} exceeds the maximum {MAX_DEPTH}")
    return tuple(_check_index(i) for i in path)


def parse_path(text: str) -> tuple[int, ...]:
    """Parse "m", "m/0/1/2" (or "" for the root) into indices; refuse hardened steps.

    Indices are canonical decimal (no sign, no leading zeros), so each path has one spelling
    and `format_path(parse_path(s)) == s` for every accepted s other than "".
    """
    if not isinstance(text, str):
        raise InvalidInput("a path must be a string")
    if text in ("", "m"):
        return ()
    if not text.startswith("m/"):
        raise InvalidInput("a path must be 'm' or start with 'm/'")
    parts = text[2:].split("/")
    if len(parts) > MAX_DEPTH:
        raise InvalidInput(f"path depth {len(parts)} exceeds the maximum {MAX_DEPTH}")
    path: list[int] = []
    for part in parts:
        if part[-1:] in _HARDENED_MARKERS and part[:-1].isascii() and part[:-1].isdigit():
            raise HardenedPathError(part[:40])
        if not part or not part.isascii() or not part.isdigit():
            raise InvalidInput("a path index must be a non-empty decimal number")
        if len(part) > 1 and part[0] == "0":
            raise InvalidInput("a path index must not have leading zeros")
        if len(part) > _MAX_INDEX_DIGITS:
            raise InvalidInput("path index is not a 32-bit unsigned integer")
        path.append(_check_index(int(part)))
    return tuple(path)


def format_path(path: Sequence[int]) -> str:
    """The canonical text of a non-hardened path: () -> "m", (0, 1) -> "m/0/1"."""
    checked = check_path(path)
    return "/".join(["m", *(str(i) for i in checked)])


def tenant_path(tenant: str) -> tuple[int, ...]:
    """The fixed 9-level path of a tenant: m/5522766/w1/.../w8.

    d = SHA-256(b"mpc.v1.tenant-path" ‖ UTF-8(tenant)); w_k is the k-th big-endian 32-bit word
    of d with its top bit cleared, so 248 hash bits spread over non-hardened levels (collisions
    ~2^124 work) and no allocation table is needed.
    """
    if not isinstance(tenant, str):
        raise InvalidInput("a tenant id must be a string")
    if not 1 <= len(tenant) <= MAX_TENANT_LENGTH:
        raise InvalidInput(f"a tenant id must have 1 to {MAX_TENANT_LENGTH} characters")
    if any(unicodedata.category(ch) == "Cc" for ch in tenant):
        raise InvalidInput("a tenant id must not contain control characters")
    try:
        encoded = tenant.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput("a tenant id must be valid Unicode text") from exc
    d = hashlib.sha256(TENANT_PATH_DOMAIN + encoded).digest()
    words = (int.from_bytes(d[k : k + 4], "big") & (HARDENED_OFFSET - 1) for k in range(0, 32, 4))
    return (TENANT_PATH_PURPOSE, *words)


@dataclass(frozen=True)
class ChildKey:
    """A derived public key with its chain code and the tweak e (child = root + e·G).

    `depth`, `parent_fingerprint` and `child_number` are counted from the key `derive` started
    at (the root for a stored key); they are the BIP-32 metadata `xpub` serialises.
    """

    scheme: str
    public_key: Point
    chain_code: bytes
    tweak: int
    path: tuple[int, ...]
    depth: int
    parent_fingerprint: bytes
    child_number: int

    def __post_init__(self) -> None:
        """Structural checks so a malformed ChildKey cannot be serialised."""
        if len(self.chain_code) != CHAIN_CODE_SIZE:
            raise InvalidInput("chain code must be 32 bytes")
        if len(self.parent_fingerprint) != 4:
            raise InvalidInput("parent fingerprint must be 4 bytes")
        if not 0 <= self.depth <= MAX_DEPTH:
            raise InvalidInput("depth out of range")
        if not 0 <= self.child_number < 2**32:
            raise InvalidInput("child number out of range")


def _hmac_sha512(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA512 (a separate function so tests can force the rare invalid-child branch)."""
    return hmac.new(key, msg, hashlib.sha512).digest()


def _ckd_pub(
    group: Group, parent: Point, chain_code: bytes, index: int
) -> tuple[int, Point, bytes]:
    """One public derivation step: (shift δ, child key parent + δ·G, child chain code)."""
    raw = parent.encode()
    ser_i = index.to_bytes(4, "big")
    if group is SECP256K1:
        digest = _hmac_sha512(chain_code, raw + ser_i)
        shift = int.from_bytes(digest[:32], "big")
        if shift >= group.order:
            raise InvalidInput(
                f"child index {index} gives I_L >= n (probability ~2^-127); choose another index"
            )
    elif group is ED25519:
        digest = _hmac_sha512(chain_code, raw + b"\x00" + ser_i)
        shift = int.from_bytes(digest[:32], "big") % group.order
    else:
        raise InvalidInput(f"no derivation defined for group {group.name}")
    child = parent + group.base_mul(shift)
    if child.is_identity:
        raise InvalidInput(
            f"child index {index} gives the identity key (probability ~2^-127); "
            "choose another index"
        )
    return shift, child, digest[32:]


def derive(scheme: str, public_key: Point, chain_code: bytes, path: Sequence[int]) -> ChildKey:
    """Derive the child of (public_key, chain_code) along a non-hardened path.

    The empty path gives the key itself with tweak 0 (depth 0, zero fingerprint), which is what
    `xpub` needs for the master xpub.
    """
    group = GROUPS.get(scheme)
    if group is None:
        raise InvalidInput(f"unknown scheme {scheme!r}")
    if not isinstance(public_key, Point) or public_key.group is not group:
        raise InvalidInput(f"public key is not a {scheme} point")
    if public_key.is_identity:
        raise InvalidInput("public key is the identity")
    if not isinstance(chain_code, bytes) or len(chain_code) != CHAIN_CODE_SIZE:
        raise InvalidInput("chain code must be 32 bytes")
    checked = check_path(path)
    key, code, tweak = public_key, chain_code, 0
    fingerprint = b"\x00" * 4
    for index in checked:
        fingerprint = fingerprint_of(key)
        shift, key, code = _ckd_pub(group, key, code, index)
        tweak = (tweak + shift) % group.order
    return ChildKey(
        scheme=scheme,
        public_key=key,
        chain_code=code,
        tweak=tweak,
        path=checked,
        depth=len(checked),
        parent_fingerprint=fingerprint,
        child_number=checked[-1] if checked else 0,
    )


def fingerprint_of(public_key: Point) -> bytes:
    """BIP-32 key fingerprint: the first 4 bytes of HASH160 of the key's encoding.

    For secp256k1 that is the 33-byte compressed key, as BIP-32 says; for ed25519 the 32-byte
    point (no standard exists; used only as metadata).
    """
    return hash160(public_key.encode())[:4]


def xpub(child: ChildKey) -> str:
    """BIP-32 serialisation (mainnet "xpub", Base58Check) of a secp256k1 child key."""
    if child.scheme != SECP256K1.name:
        raise InvalidInput("xpub serialisation exists only for secp256k1 keys")
    payload = (
        XPUB_VERSION.to_bytes(4, "big")
        + bytes([child.depth])
        + child.parent_fingerprint
        + child.child_number.to_bytes(4, "big")
        + child.chain_code
        + child.public_key.encode()
    )
    return b58check_encode(payload)


def b58check_encode(payload: bytes) -> str:
    """Base58Check: Base58 of payload ‖ first 4 bytes of SHA-256(SHA-256(payload))."""
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    digits: list[str] = []
    while n:
        n, r = divmod(n, 58)
        digits.append(_B58_ALPHABET[r])
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(digits))


def hash160(data: bytes) -> bytes:
    """RIPEMD-160(SHA-256(data)), Bitcoin's key hash."""
    return ripemd160(hashlib.sha256(data).digest())


def ripemd160(data: bytes) -> bytes:
    """RIPEMD-160 from OpenSSL when it offers it (OpenSSL 3 may not), else pure Python."""
    try:
        h = hashlib.new("ripemd160")
    except ValueError:
        return _ripemd160_py(data)
    h.update(data)
    return h.digest()


# RIPEMD-160 (Dobbertin, Bosselaers, Preneel 1996): message word order r/r', rotations s/s',
# constants K/K' for the left and right lines.
_RL = (
    *range(16),
    *(7, 4, 13, 1, 10, 6, 15, 3, 12, 0, 9, 5, 2, 14, 11, 8),
    *(3, 10, 14, 4, 9, 15, 8, 1, 2, 7, 0, 6, 13, 11, 5, 12),
    *(1, 9, 11, 10, 0, 8, 12, 4, 13, 3, 7, 15, 14, 5, 6, 2),
    *(4, 0, 5, 9, 7, 12, 2, 10, 14, 1, 3, 8, 11, 6, 15, 13),
)
_RR = (
    *(5, 14, 7, 0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12),
    *(6, 11, 3, 7, 0, 13, 5, 10, 14, 15, 8, 12, 4, 9, 1, 2),
    *(15, 5, 1, 3, 7, 14, 6, 9, 11, 8, 12, 2, 10, 0, 4, 13),
    *(8, 6, 4, 1, 3, 11, 15, 0, 5, 12, 2, 13, 9, 7, 10, 14),
    *(12, 15, 10, 4, 1, 5, 8, 7, 6, 2, 13, 14, 0, 3, 9, 11),
)
_SL = (
    *(11, 14, 15, 12, 5, 8, 7, 9, 11, 13, 14, 15, 6, 7, 9, 8),
    *(7, 6, 8, 13, 11, 9, 7, 15, 7, 12, 15, 9, 11, 7, 13, 12),
    *(11, 13, 6, 7, 14, 9, 13, 15, 14, 8, 13, 6, 5, 12, 7, 5),
    *(11, 12, 14, 15, 14, 15, 9, 8, 9, 14, 5, 6, 8, 6, 5, 12),
    *(9, 15, 5, 11, 6, 8, 13, 12, 5, 12, 13, 14, 11, 8, 5, 6),
)
_SR = (
    *(8, 9, 9, 11, 13, 15, 15, 5, 7, 7, 8, 11, 14, 14, 12, 6),
    *(9, 13, 15, 7, 12, 8, 9, 11, 7, 7, 12, 7, 6, 15, 13, 11),
    *(9, 7, 15, 11, 8, 6, 6, 14, 12, 13, 5, 14, 13, 13, 7, 5),
    *(15, 5, 8, 11, 14, 14, 6, 14, 6, 9, 12, 9, 12, 5, 15, 8),
    *(8, 5, 12, 9, 12, 5, 14, 6, 8, 13, 6, 5, 15, 13, 11, 11),
)
_KL = (0x00000000, 0x5A827999, 0x6ED9EBA1, 0x8F1BBCDC, 0xA953FD4E)
_KR = (0x50A28BE6, 0x5C4DD124, 0x6D703EF3, 0x7A6D76E9, 0x00000000)
_M32 = 0xFFFFFFFF


def _rmd_f(j: int, x: int, y: int, z: int) -> int:
    """The five RIPEMD-160 boolean functions f_0..f_4."""
    if j == 0:
        return x ^ y ^ z
    if j == 1:
        return (x & y) | (~x & z)
    if j == 2:
        return (x | ~y) ^ z
    if j == 3:
        return (x & z) | (y & ~z)
    return x ^ (y | ~z)


def _rol(x: int, n: int) -> int:
    return ((x << n) | (x >> (32 - n))) & _M32


def _ripemd160_py(data: bytes) -> bytes:
    """Pure-Python RIPEMD-160 for OpenSSL builds without it (public data only; not fast)."""
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    padded = (
        data + b"\x80" + b"\x00" * ((55 - len(data)) % 64) + (8 * len(data)).to_bytes(8, "little")
    )
    for off in range(0, len(padded), 64):
        X = [int.from_bytes(padded[off + 4 * k : off + 4 * k + 4], "little") for k in range(16)]
        al, bl, cl, dl, el = h
        ar, br, cr, dr, er = h
        for j in range(80):
            r = j // 16
            t = (al + (_rmd_f(r, bl, cl, dl) & _M32) + X[_RL[j]] + _KL[r]) & _M32
            t = (_rol(t, _SL[j]) + el) & _M32
            al, el, dl, cl, bl = el, dl, _rol(cl, 10), bl, t
            t = (ar + (_rmd_f(4 - r, br, cr, dr) & _M32) + X[_RR[j]] + _KR[r]) & _M32
            t = (_rol(t, _SR[j]) + er) & _M32
            ar, er, dr, cr, br = er, dr, _rol(cr, 10), br, t
        t = (h[1] + cl + dr) & _M32
        h[1] = (h[2] + dl + er) & _M32
        h[2] = (h[3] + el + ar) & _M32
        h[3] = (h[4] + al + br) & _M32
        h[4] = (h[0] + bl + cr) & _M32
        h[0] = t
    return b"".join(v.to_bytes(4, "little") for v in h)
