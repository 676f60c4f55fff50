"""Why presignatures are re-randomised before they sign for a child key (or a raw digest).

Groth & Shoup, "On the Security of ECDSA with Additive Key Derivation and Presignatures"
(Eurocrypt 2022, ePrint 2021/1330); /work/shared/notes/presignatures-hd.md §2.2-2.4, §6.1.

A presignature fixes the nonce point R (so r = C(R) = x(R) mod q) before the request is known.
The *naive* scheme signs from it with σ_i = h·k_i + C(R)·(χ_i + e·k_i); Σ σ_i = k·(h + r·(x + e)),
an ECDSA signature under the child key X + e·G. Whoever sees R (a corrupt node, the
coordinator) knows r in advance and can pick the request so that the one signature the signers
make is also valid for something they never approved:

* raw tweak (Attack B1): a signature (r, s) on h under X + e·G is also one on h* under X + e*·G
  whenever h + r·e = h* + r·e*; choose e = e* + (h* − h)/r and the signers' "benign" signature
  on m is a signature on m* under the victim key X + e*·G.
* raw digest (Attack A): ask for the digest h = h*·r/r* where r* = C(α·R); rescaling s gives a
  signature on m* with nonce point α·R.

Our `sign.partial_sign` first re-randomises: R″ = ρ·R with ρ = hash(request, R, X, X + e·G), so r″
is unknown until h and e are fixed and the attacker's equation no longer holds. Each attack below
is run on the naive arithmetic (defined only here, in the test) and then with the very same
presignature and request against `sign.partial_sign`. Signatures are checked by coincurve
(libsecp256k1), not by our code. The presignatures come from a trusted dealer (random k, x,
additive shares) so each test runs in milliseconds; the algebra is CGGMP's.
"""

from __future__ import annotations

import hashlib
import secrets

import coincurve
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from mpcnode.crypto.group import SECP256K1, Point
from mpcnode.protocols.cggmp import sign
from mpcnode.protocols.cggmp.presign import Presignature, PresignaturePublic

Q = SECP256K1.order
SIGNERS = (1, 2, 3)
BENIGN = b"send 1 coin to the tenant's savings account"
MALICIOUS = b"send everything to the attacker"


def h_of(digest: bytes) -> int:
    return int.from_bytes(digest, "big") % Q


def C(point: Point) -> int:
    """The ECDSA conversion function: x(P) mod q (compressed point = prefix ‖ x)."""
    return int.from_bytes(point.encode()[1:], "big") % Q


def random_scalar() -> int:
    return 1 + secrets.randbelow(Q - 1)


def additive_shares(value: int, n: int) -> list[int]:
    parts = [random_scalar() for _ in range(n - 1)]
    return [*parts, (value - sum(parts)) % Q]


def dealer_presignatures(x: int) -> dict[int, Presignature]:
    """A trusted dealer's presignature for X = x·G: random k, R = k⁻¹·G, additive k_i with
    Σ k_i = k and χ_i with Σ χ_i = k·x (§6). In CGGMP24's names R is Γ and (k_i, χ_i) are
    (k̃_i, χ̃_i); the public Δ̃_j = k_j·R and S̃_j = χ_j·R sum to G and X, as real presigning's do."""
    k = random_scalar()
    R = SECP256K1.base_mul(pow(k, -1, Q))
    ks = additive_shares(k, len(SIGNERS))
    chis = additive_shares(k * x % Q, len(SIGNERS))
    public = PresignaturePublic(
        SIGNERS,
        SECP256K1.base_mul(x),
        R,
        tuple(R * k_j for k_j in ks),
        tuple(R * chi_j for chi_j in chis),
    )
    public.validate()
    presigs = {p: Presignature(p, ks[i], chis[i], public) for i, p in enumerate(SIGNERS)}
    for presig in presigs.values():
        presig.validate()
    return presigs


def naive_partial(presig: Presignature, h: int, e: int) -> int:
    """The NAIVE (unsafe) partial signature: σ_i = h·k_i + C(R)·(χ_i + e·k_i), R as presigned."""
    return (h * presig.k + C(presig.public.Gamma) * (presig.chi + e * presig.k)) % Q


def naive_sign(presigs: dict[int, Presignature], h: int, e: int) -> tuple[int, int]:
    """(r, s) = (C(R), Σ σ_i): what the signers of the naive scheme hand out for (h, e)."""
    s = sum(naive_partial(p, h, e) for p in presigs.values()) % Q
    return C(next(iter(presigs.values())).public.Gamma), s


def safe_sign(presigs: dict[int, Presignature], request: sign.SignRequest) -> tuple[int, int]:
    """(r, s) from our re-randomised `sign.partial_sign` (combined and self-checked)."""
    public = next(iter(presigs.values())).public
    partials = {p: sign.partial_sign(presigs[p], request) for p in SIGNERS}
    sig = sign.combine(public, request, partials)
    return sig.r, sig.s


def key_of(x: int, tweak: int = 0) -> coincurve.PublicKey:
    """X + e·G computed by libsecp256k1."""
    key = coincurve.PrivateKey(x.to_bytes(32, "big")).public_key
    return key.add(tweak.to_bytes(32, "big")) if tweak else key


def verifies(key: coincurve.PublicKey, h: int, r: int, s: int) -> bool:
    """libsecp256k1 ECDSA verification of (r, ±s) over the 32-byte digest h."""
    if not (0 < r < Q and 0 < s < Q):
        return False
    s = min(s, Q - s)  # libsecp256k1 accepts low-S only; (r, s) and (r, q − s) are equivalent
    der = encode_dss_signature(r, s)
    return bool(key.verify(der, h.to_bytes(32, "big"), hasher=None))


def request(digest: bytes, tweak: int, hash_kind: str = sign.SIGN_HASH) -> sign.SignRequest:
    return sign.SignRequest("key", b"presig-1", b"request-1", SIGNERS, digest, hash_kind, tweak)


# --------------------------------------------------------------------------------------------


def test_naive_scheme_is_a_correct_signing_scheme() -> None:
    """Control: the naive arithmetic signs honestly under X + e·G, so the forgeries below are
    about what it *also* signs, not about a broken toy."""
    x, e = random_scalar(), random_scalar()
    h = h_of(hashlib.sha256(BENIGN).digest())
    r, s = naive_sign(dealer_presignatures(x), h, e)
    assert verifies(key_of(x, e), h, r, s)
    assert not verifies(key_of(x), h, r, s)


@pytest.mark.parametrize("victim", ["root key", "another child key"])
def test_raw_tweak_chosen_after_R_forges_on_naive_scheme(victim: str) -> None:
    """Attack B1: one request for the benign message under an attacker-chosen tweak e yields a
    valid signature on the malicious message under the victim key X + e*·G (never requested)."""
    x = random_scalar()
    presigs = dealer_presignatures(x)
    e_star = 0 if victim == "root key" else random_scalar()
    h, h_star = h_of(hashlib.sha256(BENIGN).digest()), h_of(hashlib.sha256(MALICIOUS).digest())
    t = C(presigs[1].public.Gamma)  # public before the request: the whole problem
    e = (e_star + (h_star - h) * pow(t, -1, Q)) % Q  # so that h + t·e = h* + t·e*

    r, s = naive_sign(presigs, h, e)  # the signers approve BENIGN under "child" e
    assert verifies(key_of(x, e), h, r, s)  # what they meant to sign
    assert verifies(key_of(x, e_star), h_star, r, s)  # FORGERY: MALICIOUS under the victim key
    assert e != e_star


@pytest.mark.parametrize("victim", ["root key", "another child key"])
def test_raw_tweak_attack_fails_against_rerandomised_signing(victim: str) -> None:
    """The same presignature and the same attacker-chosen (m, e) through `sign.partial_sign`:
    the signature is honest (BENIGN under X + e·G) and r″ ≠ C(R), so it says nothing about
    MALICIOUS under X + e*·G. (Nodes also never take a raw tweak; they derive e from a path.)"""
    x = random_scalar()
    presigs = dealer_presignatures(x)
    e_star = 0 if victim == "root key" else random_scalar()
    digest, h_star = hashlib.sha256(BENIGN).digest(), h_of(hashlib.sha256(MALICIOUS).digest())
    t = C(presigs[1].public.Gamma)
    e = (e_star + (h_star - h_of(digest)) * pow(t, -1, Q)) % Q

    r, s = safe_sign(presigs, request(digest, e))
    assert verifies(key_of(x, e), h_of(digest), r, s)
    assert r != t
    assert not verifies(key_of(x, e_star), h_star, r, s)


def test_raw_digest_forges_on_naive_scheme() -> None:
    """Attack A: knowing R, ask for a signature on the crafted digest h = h*·t/t* (t* = C(α·R),
    no known preimage) and rescale: (t*, s·t*/(α·t)) signs MALICIOUS under the root key."""
    x = random_scalar()
    presigs = dealer_presignatures(x)
    R = presigs[1].public.Gamma
    h_star = h_of(hashlib.sha256(MALICIOUS).digest())
    alpha = random_scalar()
    t, t_star = C(R), C(R * alpha)
    h = h_star * t * pow(t_star, -1, Q) % Q

    r, s = naive_sign(presigs, h, 0)
    assert r == t and verifies(key_of(x), h, r, s)
    s_star = s * t_star * pow(alpha * t, -1, Q) % Q
    assert verifies(key_of(x), h_star, t_star, s_star)  # FORGERY: MALICIOUS was never signed


def test_raw_digest_attack_fails_against_rerandomised_signing() -> None:
    """The crafted digest through our digest path: the nonce point is R″ = ρ·R, not R. Neither
    the precomputed forgery nor the same rescaling redone on R″ (after seeing the signature)
    verifies, because h was fixed before r″ existed."""
    x = random_scalar()
    presigs = dealer_presignatures(x)
    R = presigs[1].public.Gamma
    h_star = h_of(hashlib.sha256(MALICIOUS).digest())
    alpha = random_scalar()
    t, t_star = C(R), C(R * alpha)
    h = h_star * t * pow(t_star, -1, Q) % Q

    req = request(h.to_bytes(32, "big"), 0, sign.DIGEST_KIND)
    public = presigs[1].public
    partials = {p: sign.partial_sign(presigs[p], req) for p in SIGNERS}
    sig = sign.combine(public, req, partials)
    assert verifies(key_of(x), h, sig.r, sig.s)
    assert sig.r != t
    # The precomputed forgery (pretending r was t) and the one adapted to the real R″.
    assert not verifies(key_of(x), h_star, t_star, sig.s * t_star * pow(alpha * t, -1, Q) % Q)
    # The attacker rebuilds R″ from the signature itself (x = r, y parity = recovery id bit 0).
    assert sig.recovery_id < 2  # x(R″) < q, true except with probability ~2^-127
    R2 = SECP256K1.decode_point(bytes([2 + (sig.recovery_id & 1)]) + sig.r.to_bytes(32, "big"))
    r2_star = C(R2 * alpha)
    adapted = sig.s * r2_star * pow(alpha * sig.r, -1, Q) % Q
    assert not verifies(key_of(x), h_star, r2_star, adapted)
    # The rescaling itself works (so R″ was rebuilt right), but only for h·r2*/r″: a digest
    # fixed after the request, which the attacker cannot steer to h* or to any preimage.
    assert verifies(key_of(x), h * r2_star * pow(sig.r, -1, Q) % Q, r2_star, adapted)


def test_transfer_between_sibling_keys_is_inherent() -> None:
    """What re-randomisation does NOT change (§2.3, T3): any ECDSA signature (r, s) on h under
    X + e₁·G is also one on h + r·(e₁ − e₂) under X + e₂·G. That second digest has no known
    preimage, so it matters only to verifiers of bare digests; hence nodes hash messages
    themselves and take paths, never raw tweaks."""
    x = random_scalar()
    e1, e2 = random_scalar(), random_scalar()
    h = h_of(hashlib.sha256(BENIGN).digest())
    for r, s in (
        naive_sign(dealer_presignatures(x), h, e1),
        safe_sign(dealer_presignatures(x), request(h.to_bytes(32, "big"), e1)),
    ):
        assert verifies(key_of(x, e1), h, r, s)
        assert verifies(key_of(x, e2), (h + r * (e1 - e2)) % Q, r, s)
