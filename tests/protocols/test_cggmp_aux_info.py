"""CGGMP24 aux-info generation at production size (SECURITY_128, 1536-bit fixture primes).

The honest run (seeded randomness, transcript recorded) is shared through a module-scoped
fixture, so the expensive proofs run once. The bad Π-mod test replays that transcript into one
fresh, identically seeded party instead of rerunning all three; the tests that abort in round 2
run all parties (cheap: no Π-mod/Π-fac proofs).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest

from mpcnode.crypto.encoding import decode_fields, encode_fields
from mpcnode.crypto.paillier import PaillierSecretKey
from mpcnode.crypto.security import SECURITY_128, SecurityLevel
from mpcnode.crypto.zk.pi_mod import ModProof
from mpcnode.errors import InvalidInput, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, Incoming, Outgoing, execution_id
from mpcnode.protocols.cggmp import AuxInfo, AuxInfoPublic, CggmpAuxInfoSession
from mpcnode.protocols.cggmp.aux_info import commitment
from mpcnode.protocols.simulation import run_sessions
from tests.fixtures.primes import load_test_primes

PARTIES = [1, 2, 3]
EID = execution_id("cggmp-aux-info", b"sid", "aux-1", PARTIES, 0)
Tamper = Callable[[int, int, Outgoing], Outgoing]

# A level with 1024-bit primes: a party built with it sends a modulus too small for SECURITY_128.
SMALL_LEVEL = replace(SECURITY_128, name="test-1024", prime_bits=1024, min_modulus_bits=2047)


def primes_of(party: int) -> tuple[int, int, int, int]:
    primes = load_test_primes(1536)
    p, q, p_hat, q_hat = primes[4 * (party - 1) : 4 * party]
    return p, q, p_hat, q_hat


def seeded(seed: bytes) -> Callable[[int], bytes]:
    """A deterministic byte stream (SHA-256 in counter mode), so a run can be replayed."""
    counter = 0

    def rng(size: int) -> bytes:
        nonlocal counter
        out = b""
        while len(out) < size:
            out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
            counter += 1
        return out[:size]

    return rng


def session_for(party: int, seed: bytes | None = None) -> CggmpAuxInfoSession:
    rng = seeded(seed + bytes([party])) if seed is not None else None
    return CggmpAuxInfoSession(
        party, PARTIES, EID, primes_of(party), allow_test_primes=True, randomness=rng
    )


def make_sessions(
    overrides: dict[int, CggmpAuxInfoSession] | None = None,
) -> dict[int, CggmpAuxInfoSession]:
    sessions = {k: session_for(k) for k in PARTIES}
    sessions.update(overrides or {})
    return sessions


def run_aborting(tamper: Tamper | None = None, **kw: CggmpAuxInfoSession) -> ProtocolAborted:
    sessions = make_sessions({int(k[1:]): s for k, s in kw.items()})
    with pytest.raises(ProtocolAborted) as info:
        run_sessions(sessions, tamper)
    return info.value


SEED = b"cggmp-aux-info-test"


@dataclass
class HonestRun:
    outputs: dict[int, AuxInfo]
    transcript: list[tuple[int, Outgoing]]


@pytest.fixture(scope="module")
def honest() -> HonestRun:
    sessions = {k: session_for(k, SEED) for k in PARTIES}
    transcript: list[tuple[int, Outgoing]] = []
    run_sessions(sessions, transcript=transcript)
    assert all(s.done for s in sessions.values())
    # The ring-Pedersen trapdoor λ is dropped once Π-prm is made.
    assert all(s._rp_secret is None for s in sessions.values())
    return HonestRun({k: s.output for k, s in sessions.items()}, transcript)


@pytest.fixture(scope="module")
def outputs(honest: HonestRun) -> dict[int, AuxInfo]:
    return honest.outputs


def replay(party: int, honest: HonestRun, tamper: Tamper) -> CggmpAuxInfoSession:
    """Drive a fresh copy of `party` (same seed) with the recorded messages of the others.

    Its own messages must equal the recorded ones (same seed), so the others' recorded
    replies fit it; `tamper` rewrites those before delivery.
    """
    session = session_for(party, SEED)
    sent = session.start()
    for rnd in (1, 2, 3):
        recorded = [m for s, m in honest.transcript if s == party and m.round == rnd]
        assert sent == recorded
        delivered = [(s, tamper(s, rnd, m)) for s, m in honest.transcript if m.round == rnd]
        inbox = [
            Incoming(rnd, s, m.recipient == BROADCAST, m.payload)
            for s, m in delivered
            if s != party and m.recipient in (BROADCAST, party)
        ]
        sent = session.receive(inbox)
    return session


# ------------------------------------------------------------------------------- honest run


def test_outputs_agree_on_public_parts(outputs: dict[int, AuxInfo]) -> None:
    publics = {k: a.public for k, a in outputs.items()}
    assert publics[1] == publics[2] == publics[3]
    assert publics[1].encode() == publics[2].encode() == publics[3].encode()
    public = publics[1]
    assert public.parties == (1, 2, 3)
    for k in PARTIES:
        p, q, p_hat, q_hat = primes_of(k)
        assert public.paillier_of(k).n == p * q
        assert public.ring_pedersen_of(k).n == p_hat * q_hat
        assert public.paillier_of(k).n.bit_length() >= SECURITY_128.min_modulus_bits


def test_own_key_and_params(outputs: dict[int, AuxInfo]) -> None:
    for k, aux in outputs.items():
        assert aux.party == k
        assert aux.secret_key.n == aux.public.paillier_of(k).n
        assert aux.ring_pedersen == aux.public.ring_pedersen_of(k)
        # The key works: another party's encryption decrypts under the own secret key.
        c, _ = aux.public.paillier_of(k).encrypt(-12345)
        assert aux.secret_key.decrypt(c) == -12345
        aux.validate(SECURITY_128)


def test_repr_redacted(outputs: dict[int, AuxInfo]) -> None:
    aux = outputs[1]
    text = repr(aux) + str(aux)
    for secret in (aux.secret_key.p, aux.secret_key.q):
        assert str(secret) not in text and hex(secret)[2:] not in text
    assert "redacted" in text


def test_aux_info_round_trip(outputs: dict[int, AuxInfo]) -> None:
    aux = outputs[2]
    decoded = AuxInfo.decode(aux.encode())
    assert decoded.party == 2
    assert decoded.public == aux.public
    assert (decoded.secret_key.p, decoded.secret_key.q) == (aux.secret_key.p, aux.secret_key.q)
    assert AuxInfoPublic.decode(aux.public.encode()) == aux.public


def test_aux_info_decode_rejects_foreign_key(outputs: dict[int, AuxInfo]) -> None:
    # Party 1's record carrying party 2's primes: N_1 != p·q.
    forged = AuxInfo(1, outputs[2].secret_key, outputs[1].public)
    with pytest.raises(InvalidInput, match="p·q"):
        AuxInfo.decode(forged.encode())


def test_aux_info_decode_rejects_bad_public(outputs: dict[int, AuxInfo]) -> None:
    public = outputs[1].public
    bad_s = replace(public.ring_pedersen[1], s=public.ring_pedersen[1].n)  # not a unit
    bad = replace(public, ring_pedersen=(public.ring_pedersen[0], bad_s, public.ring_pedersen[2]))
    with pytest.raises(InvalidInput):
        AuxInfoPublic.decode(bad.encode())
    small = PaillierSecretKey(*load_test_primes(1024)[:2]).public
    bad = replace(public, paillier=(public.paillier[0], small, public.paillier[2]))
    with pytest.raises(InvalidInput, match="bits"):
        AuxInfoPublic.decode(bad.encode())
    short = replace(public, paillier=public.paillier[:2], ring_pedersen=public.ring_pedersen[:2])
    with pytest.raises(InvalidInput):
        AuxInfoPublic.decode(short.encode())
    with pytest.raises(InvalidInput):
        AuxInfo.decode(outputs[1].encode()[:-1])


# ------------------------------------------------------------------------------- misbehaviour


def test_bad_pi_mod_names_sender(honest: HonestRun) -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 3:
            assert m.recipient != BROADCAST
            psi, psi_prime = decode_fields(m.payload, count=2)
            proof = ModProof.decode(psi)
            bad = replace(proof, z=(proof.z[0] + 1, *proof.z[1:]))
            return replace(m, payload=encode_fields([bad.encode(), psi_prime]))
        return m

    with pytest.raises(ProtocolAborted) as info:
        replay(1, honest, tamper)
    assert info.value.culprits == (2,)
    assert "Π-mod" in info.value.reason


def test_bad_decommitment_names_sender() -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 3 and rnd == 2:
            echo, raw = decode_fields(m.payload, count=2)
            fields = decode_fields(raw)
            fields[-1] = bytes(32)  # another u_3: no longer opens V_3
            return replace(m, payload=encode_fields([echo, encode_fields(fields)]))
        return m

    err = run_aborting(tamper)
    assert err.culprits == (3,)
    assert "commitment" in err.reason


def test_echo_mismatch_aborts_without_culprit() -> None:
    def tamper(sender: int, rnd: int, m: Outgoing) -> Outgoing:
        if sender == 2 and rnd == 2:
            echo, raw = decode_fields(m.payload, count=2)
            return replace(m, payload=encode_fields([bytes(32), raw]))
        return m

    err = run_aborting(tamper)
    assert err.culprits == ()
    assert "differ" in err.reason


@pytest.mark.parametrize("small", ["paillier", "ring-pedersen"])
def test_too_small_modulus_names_sender(small: str) -> None:
    # Party 3 runs with 1024-bit primes (for one of its moduli) under a weaker level; it
    # commits and decommits honestly, and the others reject the modulus size.
    p, q, p_hat, q_hat = primes_of(3)
    small_p, small_q = load_test_primes(1024)[:2]
    primes = (small_p, small_q, p_hat, q_hat) if small == "paillier" else (p, q, small_p, small_q)
    weak = CggmpAuxInfoSession(3, PARTIES, EID, primes, SMALL_LEVEL, allow_test_primes=True)
    err = run_aborting(s3=weak)
    assert err.culprits == (3,)
    assert ("Paillier" if small == "paillier" else "ring-Pedersen") in err.reason


@pytest.mark.parametrize("which", ["paillier", "ring-pedersen"])
def test_small_primes_refused_at_construction(which: str) -> None:
    p, q, p_hat, q_hat = primes_of(1)
    small_p, small_q = load_test_primes(1024)[:2]
    primes = (small_p, small_q, p_hat, q_hat) if which == "paillier" else (p, q, small_p, small_q)
    with pytest.raises(InvalidInput, match="1536 bits"):
        CggmpAuxInfoSession(1, PARTIES, EID, primes, SECURITY_128, allow_test_primes=True)


def test_production_mode_refuses_fixture_primes() -> None:
    with pytest.raises(InvalidInput, match="test-only"):
        CggmpAuxInfoSession(1, PARTIES, EID, primes_of(1))


def test_construction_checks() -> None:
    with pytest.raises(InvalidInput):
        CggmpAuxInfoSession(4, PARTIES, EID, primes_of(1), allow_test_primes=True)
    with pytest.raises(InvalidInput):
        CggmpAuxInfoSession(1, PARTIES, b"", primes_of(1), allow_test_primes=True)
    p, q, p_hat, _ = primes_of(1)
    with pytest.raises(InvalidInput, match="distinct"):
        CggmpAuxInfoSession(1, PARTIES, EID, (p, q, p_hat, p), allow_test_primes=True)


def test_commitment_binds_eid_party_and_fields() -> None:
    fields = [b"a", b"b"]
    v = commitment(EID, 1, fields)
    assert v != commitment(EID, 2, fields)
    assert v != commitment(b"other", 1, fields)
    assert v != commitment(EID, 1, [b"ab"])


def test_level_fixture_is_weaker() -> None:
    assert isinstance(SMALL_LEVEL, SecurityLevel)
    assert SMALL_LEVEL.min_modulus_bits < SECURITY_128.min_modulus_bits
