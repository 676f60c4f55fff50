"""Child keys at the protocol layer: tweaked key packages and shares, FROST signing with them
(ed25519 and secp256k1), and CGGMP signing from root-key presignatures with `tweak=e`.

A child key is PK' = PK + e·G. FROST signs with every share s_i + e (Σ λ_j = 1 over any
signer set, so the shares interpolate to s + e); CGGMP keeps presignatures on the root key and
applies e at signing time. Every signature is checked by code that did not make it: PyNaCl and
`cryptography` for Ed25519, libsecp256k1 (coincurve) point arithmetic with py_ecc's
expand_message_xmd for FROST(secp256k1), coincurve and `cryptography` for ECDSA.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache

import coincurve
import pytest
from cryptography.exceptions import InvalidSignature as CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from nacl.bindings import crypto_scalarmult_ed25519_base_noclamp
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from py_ecc.bls.hash import expand_message_xmd as reference_expand_message_xmd

from mpcnode.crypto.ecdsa import EcdsaSignature
from mpcnode.crypto.group import ED25519, SECP256K1
from mpcnode.errors import InvalidInput, ProtocolAborted
from mpcnode.protocols.base import COORDINATOR, Outgoing, execution_id
from mpcnode.protocols.cggmp import sign
from mpcnode.protocols.cggmp.presign import CggmpPresignSession, Presignature
from mpcnode.protocols.frost.sign import FrostAggregator, FrostSignSession
from mpcnode.protocols.keys import KeyShare, PublicKeyPackage, trusted_dealer_keygen
from mpcnode.protocols.simulation import run_sessions
from tests.ecdsa_checks import check_ecdsa_signature
from tests.fixtures.aux_info import load_test_aux_info

MESSAGE = b"withdraw 3 coins from the tenant account"
SECRET = 0x1D2C3B4A59687766554433221100FFEEDDCCBBAA99887766554433221100ABCD
SCHEMES = ("ed25519", "secp256k1")
GROUPS = {"ed25519": ED25519, "secp256k1": SECP256K1}


def tweak_for(label: bytes, scheme: str) -> int:
    """A fixed, key-independent tweak (stands in for a path's Σ shifts)."""
    return int.from_bytes(hashlib.sha512(label).digest(), "big") % GROUPS[scheme].order


@lru_cache(maxsize=8)
def dealer(scheme: str, threshold: int, n: int) -> dict[int, KeyShare]:
    return trusted_dealer_keygen(scheme, threshold, range(1, n + 1), secret=SECRET)


def child_public_key_independently(scheme: str, tweak: int) -> bytes:
    """(s + e)·G computed by libsodium / libsecp256k1 from the dealer's secret."""
    order = GROUPS[scheme].order
    child_secret = (SECRET + tweak) % order
    if scheme == "ed25519":
        return bytes(crypto_scalarmult_ed25519_base_noclamp(child_secret.to_bytes(32, "little")))
    key = coincurve.PrivateKey(SECRET.to_bytes(32, "big")).public_key.add(tweak.to_bytes(32, "big"))
    assert key == coincurve.PrivateKey(child_secret.to_bytes(32, "big")).public_key
    return key.format(compressed=True)


# --------------------------------------------------------------------------------------------
# The tweaked package and share


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tweaked_package_is_the_child_key(scheme: str) -> None:
    shares = dealer(scheme, 3, 5)
    root = shares[1].public
    e = tweak_for(b"child-1", scheme)
    child = root.tweaked(e)
    assert child.public_key_bytes == child_public_key_independently(scheme, e)
    offset = GROUPS[scheme].base_mul(e)
    assert child.verifying_shares == tuple(y + offset for y in root.verifying_shares)
    assert (child.scheme, child.threshold, child.parties) == (scheme, 3, root.parties)
    assert (child.chain_code, child.generation) == (root.chain_code, root.generation)
    child.check_consistency()
    assert PublicKeyPackage.decode(child.encode()) == child  # decode re-checks consistency
    # The tweak is reduced mod the order; tweaks compose additively; 0 is the root.
    order = GROUPS[scheme].order
    assert root.tweaked(e + order) == child
    assert root.tweaked(e - order) == child
    assert root.tweaked(0) == root
    assert child.tweaked(order - e) == root
    f = tweak_for(b"child-2", scheme)
    assert root.tweaked(e).tweaked(f) == root.tweaked((e + f) % order)
    assert root.tweaked(f) != child


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tweaked_share_matches_tweaked_package(scheme: str) -> None:
    shares = dealer(scheme, 2, 3)
    e = tweak_for(b"child-share", scheme)
    order = GROUPS[scheme].order
    for party, share in shares.items():
        child = share.tweaked(e)
        assert child.party == party
        assert child.secret_share == (share.secret_share + e) % order
        assert child.public == share.public.tweaked(e)
        assert KeyShare.decode(child.encode()) == child  # s_i + e matches Y_i + e·G
        assert str(child.secret_share) not in repr(child)
        assert str(e) not in repr(child)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_tweak_to_identity_is_refused(scheme: str) -> None:
    shares = dealer(scheme, 2, 3)
    order = GROUPS[scheme].order
    with pytest.raises(InvalidInput, match="identity"):
        shares[1].public.tweaked(-SECRET % order)  # PK + e·G = O
    with pytest.raises(InvalidInput, match="identity"):
        shares[2].tweaked(-shares[2].secret_share % order)  # Y_2 + e·G = O (s_2 + e = 0)


# --------------------------------------------------------------------------------------------
# FROST with tweaked shares


def frost_sign(
    shares: dict[int, KeyShare], signers: Sequence[int], message: bytes
) -> tuple[PublicKeyPackage, bytes]:
    """One simulated FROST run (sessions + coordinator aggregator); returns (package, sig)."""
    public = next(iter(shares.values())).public
    eid = execution_id("frost-sign", b"sid", "key-1", signers, public.threshold, message)
    sessions = {p: FrostSignSession(shares[p], signers, message, eid) for p in signers}
    transcript: list[tuple[int, Outgoing]] = []
    collected = run_sessions(sessions, transcript=transcript)
    aggregator = FrostAggregator(public, signers, message)
    for sender, m in transcript:
        if m.round == 1:
            aggregator.add_commitment(sender, m.payload)
    for sender, messages in collected.items():
        (m,) = messages
        assert m.recipient == COORDINATOR
        aggregator.add_share(sender, m.payload)
    return public, aggregator.signature()


def ed25519_verifies(public_key: bytes, message: bytes, sig: bytes) -> bool:
    """PyNaCl and `cryptography` must agree; True iff both accept."""
    try:
        VerifyKey(public_key).verify(message, sig)
        nacl_ok = True
    except BadSignatureError:
        nacl_ok = False
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(sig, message)
        crypto_ok = True
    except CryptographyInvalidSignature:
        crypto_ok = False
    assert nacl_ok == crypto_ok
    return nacl_ok


def frost_secp256k1_verifies(public_key: bytes, message: bytes, sig: bytes) -> bool:
    """RFC 9591 verification z·G == R + c·PK with libsecp256k1 point arithmetic and
    c = H2(R ‖ PK ‖ msg) from py_ecc's expand_message_xmd (FROST-secp256k1-SHA256-v1 "chal")."""
    assert len(sig) == 33 + 32
    dst = b"FROST-secp256k1-SHA256-v1chal"
    data = sig[:33] + public_key + message
    # py_ecc annotates a hash object but calls the constructor: pass hashlib.sha256 itself.
    uniform: bytes = reference_expand_message_xmd(data, dst, 48, hashlib.sha256)  # type: ignore[arg-type]
    c = int.from_bytes(uniform, "big") % SECP256K1.order
    z = int.from_bytes(sig[33:], "big")
    assert 0 < z < SECP256K1.order and c != 0
    r_point = coincurve.PublicKey(sig[:33])
    c_pk = coincurve.PublicKey(public_key).multiply(c.to_bytes(32, "big"))
    lhs = coincurve.PublicKey.from_secret(z.to_bytes(32, "big"))
    try:
        rhs = coincurve.PublicKey.combine_keys([r_point, c_pk])
    except ValueError:  # R + c·PK = O
        return False
    return lhs.format() == rhs.format()


def frost_verifies(scheme: str, public_key: bytes, message: bytes, sig: bytes) -> bool:
    if scheme == "ed25519":
        return ed25519_verifies(public_key, message, sig)
    return frost_secp256k1_verifies(public_key, message, sig)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize(
    ("threshold", "n", "signers"),
    [(2, 3, (1, 2)), (2, 3, (2, 3)), (3, 5, (1, 3, 5)), (3, 5, (2, 3, 4, 5))],
)
def test_frost_with_tweaked_shares_signs_under_child_key(
    scheme: str, threshold: int, n: int, signers: tuple[int, ...]
) -> None:
    root_shares = dealer(scheme, threshold, n)
    root = root_shares[1].public
    e = tweak_for(b"frost-child", scheme)
    child_shares = {p: s.tweaked(e) for p, s in root_shares.items()}
    public, sig = frost_sign(child_shares, signers, MESSAGE)
    assert public == root.tweaked(e)
    child_pk = child_public_key_independently(scheme, e)
    assert public.public_key_bytes == child_pk
    assert frost_verifies(scheme, child_pk, MESSAGE, sig)
    assert not frost_verifies(scheme, child_pk, MESSAGE + b"!", sig)
    assert not frost_verifies(scheme, root.public_key_bytes, MESSAGE, sig)
    other = root.tweaked(tweak_for(b"a sibling", scheme)).public_key_bytes
    assert not frost_verifies(scheme, other, MESSAGE, sig)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_frost_root_shares_do_not_sign_for_child(scheme: str) -> None:
    """Control: untweaked shares give a root-key signature, not a child-key one."""
    root_shares = dealer(scheme, 2, 3)
    e = tweak_for(b"frost-child", scheme)
    public, sig = frost_sign(root_shares, (1, 3), MESSAGE)
    assert frost_verifies(scheme, public.public_key_bytes, MESSAGE, sig)
    assert not frost_verifies(scheme, child_public_key_independently(scheme, e), MESSAGE, sig)


def test_frost_mixing_root_and_child_shares_fails() -> None:
    """A signer using its root share inside a child-key session is caught (its share does not
    verify against the child package's Y_j + e·G)."""
    root_shares = dealer("ed25519", 2, 3)
    e = tweak_for(b"frost-child", "ed25519")
    mixed = {1: root_shares[1].tweaked(e), 2: root_shares[2]}
    with pytest.raises(ProtocolAborted) as info:
        frost_sign(mixed, (1, 2), MESSAGE)  # the aggregator holds party 1's child package
    assert info.value.culprits == (2,)


# --------------------------------------------------------------------------------------------
# CGGMP: root-key presignatures, child-key signatures (each presign run is ~5 s of CPU)

ECDSA_TWEAK = tweak_for(b"ecdsa-child", "secp256k1")


def child_ecdsa_key(root: PublicKeyPackage, tweak: int) -> bytes:
    """X + e·G by libsecp256k1 (independent of our group code), and equal to the package's."""
    key = coincurve.PublicKey(root.public_key_bytes).add(tweak.to_bytes(32, "big"))
    assert key.format(compressed=True) == root.tweaked(tweak).public_key_bytes
    return key.format(compressed=True)


def root_verifies(root: PublicKeyPackage, digest: bytes, sig: EcdsaSignature) -> bool:
    return bool(coincurve.PublicKey(root.public_key_bytes).verify(sig.der(), digest, hasher=None))


@pytest.fixture(scope="module")
def presigs_2_of_3() -> dict[int, Presignature]:
    shares = dealer("secp256k1", 2, 3)
    signers = (1, 3)
    eid = execution_id("cggmp-presign", b"c" * 16, "k", signers, 2)
    aux = load_test_aux_info()
    sessions = {p: CggmpPresignSession(shares[p], aux[p], signers, eid) for p in signers}
    run_sessions(sessions)
    return {p: s.output for p, s in sessions.items()}


def test_cggmp_pool_signature_with_tweak_verifies_under_child_key(
    presigs_2_of_3: dict[int, Presignature],
) -> None:
    root = dealer("secp256k1", 2, 3)[1].public
    public = presigs_2_of_3[1].public
    assert public.public_key == root.public_key  # presigned for the ROOT key
    req = sign.SignRequest(
        "k",
        b"p" * 16,
        b"r" * 16,
        (1, 3),
        sign.message_digest(MESSAGE),
        sign.SIGN_HASH,
        tweak=ECDSA_TWEAK,
    )
    partials = {p: sign.partial_sign(presigs_2_of_3[p], req) for p in (1, 3)}
    sig = sign.combine(public, req, partials)
    check_ecdsa_signature(child_ecdsa_key(root, ECDSA_TWEAK), req.digest, sig)
    assert not root_verifies(root, req.digest, sig)
    # The partials are bound to e: combining them as a request for another tweak names both.
    other = sign.SignRequest(
        "k", b"p" * 16, b"r" * 16, (1, 3), req.digest, sign.SIGN_HASH, tweak=ECDSA_TWEAK + 1
    )
    with pytest.raises(ProtocolAborted) as info:
        sign.combine(public, other, partials)
    assert info.value.culprits == (1, 3)


def test_cggmp_digest_session_with_tweak() -> None:
    shares = dealer("secp256k1", 2, 3)
    root = shares[1].public
    digest = hashlib.sha256(b"caller hashed this for a child key").digest()
    signers = (2, 3)
    eid = execution_id("cggmp-sign-digest", b"d" * 16, "k", signers, 2, digest)
    aux = load_test_aux_info()
    sessions = {
        p: sign.CggmpDigestSignSession(
            shares[p], aux[p], signers, eid, digest, "k", tweak=ECDSA_TWEAK
        )
        for p in signers
    }
    collected = run_sessions(sessions)
    partials: dict[int, int] = {}
    publics = set()
    for p in signers:
        (out,) = collected[p]
        assert out.recipient == COORDINATOR
        sigma, public = sign.decode_partial(out.payload)
        partials[p] = sigma
        publics.add(public)
    (public,) = publics
    assert sessions[2].request.tweak == ECDSA_TWEAK
    req = sign.digest_request("k", eid, signers, digest, ECDSA_TWEAK)
    sig = sign.combine(public, req, partials)
    check_ecdsa_signature(child_ecdsa_key(root, ECDSA_TWEAK), digest, sig)
    assert not root_verifies(root, digest, sig)
    with pytest.raises(ProtocolAborted):  # the coordinator must use the same tweak
        sign.combine(public, sign.digest_request("k", eid, signers, digest), partials)


@pytest.mark.parametrize("scheme", ["ed25519", "secp256k1"])
def test_tweaked_package_stays_consistent(scheme: str) -> None:
    """`tweaked` skips the (costly) consistency check because the shift preserves it: check."""
    shares = trusted_dealer_keygen(scheme, 3, (1, 2, 3, 4, 5))
    package = shares[1].public
    for tweak in (1, 12345, package.group.order - 1):
        package.tweaked(tweak).check_consistency()
