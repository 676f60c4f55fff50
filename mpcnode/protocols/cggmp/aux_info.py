"""CGGMP24 auxiliary-info generation (cggmp-spec.md §4, `cggmp24/src/key_refresh/aux_only.rs`).

Wire rounds of `CggmpAuxInfoSession` (parties P_1..P_n, execution id `eid`), our encodings:

1. broadcast V_i = SHA-256(tag, eid, i, N_i, N̂_i, s_i, t_i, ψ̂_i, ρ_i, u_i), where N_i = p·q,
   (N̂_i, s_i, t_i) are ring-Pedersen parameters over p̂·q̂ (λ discarded after ψ̂_i), ψ̂_i is
   Π-prm with {sid: eid, prover: i}, and ρ_i, u_i are 32 random bytes.
2. broadcast the echo h_i = SHA-256(tag, eid, V_1..V_n) together with the decommitment
   (N_i, N̂_i, s_i, t_i, ψ̂_i, ρ_i, u_i) (echo merged into this round as in frost/dkg.py).
3. on receipt: any echo differing from ours aborts with no culprit (the relay may have shown
   different commitments); each decommitment must open V_j, N_j and (N̂_j, s_j, t_j) must pass
   `validate(level)`, ψ̂_j must verify - else j is the culprit. ρ = ρ_1 ⊕ ... ⊕ ρ_n. Send to each
   j privately ψ_i = Π-mod(N_i) and ψ'_{i,j} = Π-fac(N_i) under R_j = (N̂_j, s_j, t_j), both with
   {sid: eid, prover: i} and ρ.
4. on receipt: verify Π-mod(N_j) and Π-fac(N_j) under our own R_i (culprit j); output `AuxInfo`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from mpcnode.crypto.bigint import RandomBytes, int_from_bytes, int_to_bytes, is_probable_prime
from mpcnode.crypto.encoding import decode_fields, decode_uint, encode_fields, encode_uint
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import (
    RingPedersenParams,
    RingPedersenSecret,
    generate_ring_pedersen,
)
from mpcnode.crypto.security import SECURITY_128, SecurityLevel
from mpcnode.crypto.zk import pi_fac, pi_mod, pi_prm
from mpcnode.crypto.zk._common import ProofContext
from mpcnode.errors import InternalBug, InvalidInput, InvalidProof, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, Incoming, Outgoing, Session, echo_digest

_COMMIT_TAG = b"mpc.v1.cggmp-aux-info.commitment"
_ECHO_TAG = b"mpc.v1.cggmp-aux-info.echo"
_AUX_TAG = b"mpc.v1.cggmp-aux-info.aux-info"
_PUBLIC_TAG = b"mpc.v1.cggmp-aux-info.public"
_DIGEST_SIZE = 32
_RANDOM_SIZE = 32  # ρ_i and u_i: 32 bytes each, as in cggmp24
_DECOMMIT_FIELDS = 7  # N, N̂, s, t, ψ̂, ρ, u


def _enc_int(x: int) -> bytes:
    return int_to_bytes(x)


def _dec_int(data: bytes) -> int:
    """A non-negative integer in its minimal encoding only (so every value has one encoding)."""
    value = int_from_bytes(data)
    if int_to_bytes(value) != data:
        raise InvalidInput("non-canonical integer encoding")
    return value


def _check_primes(primes: Sequence[int], level: SecurityLevel, allow_test_primes: bool) -> None:
    """p̂, q̂ get the same checks `PaillierSecretKey.from_primes` applies to p, q."""
    for prime in primes:
        if prime.bit_length() < level.prime_bits:
            raise InvalidInput(f"ring-Pedersen primes must have at least {level.prime_bits} bits")
        if not (is_probable_prime(prime) and is_probable_prime((prime - 1) // 2)):
            raise InvalidInput("ring-Pedersen primes must be safe primes")
        if not allow_test_primes:
            from mpcnode.crypto.primes import check_production_prime

            check_production_prime(prime)


def _check_parties(party: int, parties: Sequence[int]) -> tuple[int, ...]:
    ordered = tuple(sorted(parties))
    if len(set(ordered)) != len(ordered) or len(ordered) < 2:
        raise InvalidInput("parties must be at least two distinct indices")
    if any(p <= 0 for p in ordered):
        raise InvalidInput("party indices must be positive")
    if party not in ordered:
        raise InvalidInput("own party is not among the parties")
    return ordered


# --------------------------------------------------------------------------------------------
# Output


@dataclass(frozen=True)
class AuxInfoPublic:
    """Every party's Paillier key N_j and ring-Pedersen parameters (N̂_j, s_j, t_j)."""

    parties: tuple[int, ...]
    paillier: tuple[PaillierPublicKey, ...]
    ring_pedersen: tuple[RingPedersenParams, ...]

    def paillier_of(self, party: int) -> PaillierPublicKey:
        return self.paillier[self.parties.index(party)]

    def ring_pedersen_of(self, party: int) -> RingPedersenParams:
        return self.ring_pedersen[self.parties.index(party)]

    def validate(self, level: SecurityLevel) -> None:
        """Lengths equal n; every N_j, N̂_j of the level's size; s_j, t_j units of N̂_j."""
        n = len(self.parties)
        if len(self.paillier) != n or len(self.ring_pedersen) != n:
            raise InvalidInput("aux info lists must have one entry per party")
        if tuple(sorted(set(self.parties))) != self.parties or any(p <= 0 for p in self.parties):
            raise InvalidInput("aux info parties must be distinct, positive and sorted")
        for pk, rp in zip(self.paillier, self.ring_pedersen, strict=True):
            pk.validate(level)
            rp.validate(level)

    def encode(self) -> bytes:
        fields = [_PUBLIC_TAG, b"".join(encode_uint(p) for p in self.parties)]
        for pk, rp in zip(self.paillier, self.ring_pedersen, strict=True):
            fields.append(encode_fields([_enc_int(v) for v in (pk.n, rp.n, rp.s, rp.t)]))
        return encode_fields(fields)

    @classmethod
    def decode(cls, data: bytes, level: SecurityLevel = SECURITY_128) -> AuxInfoPublic:
        fields = decode_fields(data)
        if len(fields) < 2 or fields[0] != _PUBLIC_TAG or len(fields[1]) % 4:
            raise InvalidInput("malformed aux info")
        parties = tuple(decode_uint(fields[1][k : k + 4]) for k in range(0, len(fields[1]), 4))
        if len(fields) != 2 + len(parties):
            raise InvalidInput("malformed aux info: one entry per party required")
        paillier: list[PaillierPublicKey] = []
        ring: list[RingPedersenParams] = []
        for entry in fields[2:]:
            n, n_hat, s, t = (_dec_int(f) for f in decode_fields(entry, count=4))
            paillier.append(PaillierPublicKey(n))
            ring.append(RingPedersenParams(n_hat, s, t))
        public = cls(parties, tuple(paillier), tuple(ring))
        public.validate(level)
        return public


@dataclass(frozen=True, repr=False)
class AuxInfo:
    """One party's auxiliary info: its Paillier secret key and everyone's public parameters.

    The ring-Pedersen trapdoor λ (and p̂, q̂) are not kept.
    """

    party: int
    secret_key: PaillierSecretKey
    public: AuxInfoPublic

    @property
    def parties(self) -> tuple[int, ...]:
        return self.public.parties

    @property
    def ring_pedersen(self) -> RingPedersenParams:
        """Own (N̂_i, s_i, t_i): the parameters other provers commit under when proving to us."""
        return self.public.ring_pedersen_of(self.party)

    def validate(self, level: SecurityLevel) -> None:
        """Public checks, plus: own primes prime and of the level's size, N_i = p·q."""
        self.public.validate(level)
        if self.party not in self.public.parties:
            raise InvalidInput("own party is not among the aux info parties")
        for prime in (self.secret_key.p, self.secret_key.q):
            if prime.bit_length() < level.prime_bits or not is_probable_prime(prime):
                raise InvalidInput(f"own Paillier primes must be primes of {level.prime_bits} bits")
        if self.public.paillier_of(self.party).n != self.secret_key.p * self.secret_key.q:
            raise InvalidInput("own Paillier modulus is not p·q")

    def encode(self) -> bytes:
        """Secret: contains p and q. Store it only encrypted."""
        return encode_fields(
            [
                _AUX_TAG,
                encode_uint(self.party),
                _enc_int(self.secret_key.p),
                _enc_int(self.secret_key.q),
                self.public.encode(),
            ]
        )

    @classmethod
    def decode(cls, data: bytes, level: SecurityLevel = SECURITY_128) -> AuxInfo:
        fields = decode_fields(data)
        if len(fields) != 5 or fields[0] != _AUX_TAG:
            raise InvalidInput("malformed aux info")
        party = decode_uint(fields[1])
        secret_key = PaillierSecretKey(_dec_int(fields[2]), _dec_int(fields[3]))
        aux = cls(party, secret_key, AuxInfoPublic.decode(fields[4], level))
        aux.validate(level)
        return aux

    def __repr__(self) -> str:
        return f"AuxInfo(party={self.party}, parties={list(self.parties)}, <secret key redacted>)"


# --------------------------------------------------------------------------------------------
# Session


def commitment(eid: bytes, party: int, decommitment: Sequence[bytes]) -> bytes:
    """V_i = SHA-256(tag, eid, i, N_i, N̂_i, s_i, t_i, ψ̂_i, ρ_i, u_i)."""
    return hashlib.sha256(
        encode_fields([_COMMIT_TAG, eid, encode_uint(party), *decommitment])
    ).digest()


class CggmpAuxInfoSession(Session[AuxInfo]):
    """One party's run of CGGMP24 aux-info generation; output is its `AuxInfo`."""

    protocol = "cggmp-aux-info"

    def __init__(
        self,
        party: int,
        parties: Sequence[int],
        eid: bytes,
        primes: tuple[int, int, int, int],
        level: SecurityLevel = SECURITY_128,
        allow_test_primes: bool = False,
        randomness: RandomBytes | None = None,
    ) -> None:
        super().__init__()
        self._rng: RandomBytes = randomness if randomness is not None else secrets.token_bytes
        self.parties = _check_parties(party, parties)
        self.party = party
        if not eid:
            raise InvalidInput("execution id must not be empty")
        self.eid = bytes(eid)
        self.level = level
        if len(primes) != 4 or len(set(primes)) != 4:
            raise InvalidInput("four distinct primes (p, q, p̂, q̂) are required")
        p, q, p_hat, q_hat = primes
        self._others = [j for j in self.parties if j != party]
        # Secrets: the Paillier key is kept (it is the output), the trapdoor is dropped in round 1.
        self._secret_key = PaillierSecretKey.from_primes(p, q, level, allow_test_primes)
        _check_primes((p_hat, q_hat), level, allow_test_primes)
        self._rp_secret: RingPedersenSecret | None = generate_ring_pedersen(p_hat, q_hat, self._rng)
        self._ring = self._rp_secret.params
        self._ring.validate(level)
        # Public transcript.
        self._decommitment: list[bytes] = []
        self._commitments: dict[int, bytes] = {}
        self._echo = b""
        self._paillier: dict[int, PaillierPublicKey] = {party: self._secret_key.public}
        self._rings: dict[int, RingPedersenParams] = {party: self._ring}
        self._rho = b""

    def _ctx(self, prover: int) -> ProofContext:
        return ProofContext(sid=self.eid, prover=prover, level=self.level)

    # -- round 1 -----------------------------------------------------------------------------

    def _start(self) -> list[Outgoing]:
        secret, self._rp_secret = self._rp_secret, None
        if secret is None:
            raise InternalBug("ring-Pedersen secret already used")
        psi_hat = pi_prm.prove(self._ctx(self.party), self._ring, secret, self._rng)
        del secret  # λ is discarded: nothing of the trapdoor is kept
        rho_i = self._rng(_RANDOM_SIZE)
        u_i = self._rng(_RANDOM_SIZE)
        ring = self._ring
        self._decommitment = [
            _enc_int(self._secret_key.n),
            _enc_int(ring.n),
            _enc_int(ring.s),
            _enc_int(ring.t),
            psi_hat.encode(),
            rho_i,
            u_i,
        ]
        self._rho = rho_i
        v_i = commitment(self.eid, self.party, self._decommitment)
        self._commitments[self.party] = v_i
        return [Outgoing(1, BROADCAST, v_i)]

    # -- rounds 2..4 -------------------------------------------------------------------------

    def _receive(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        if self.round == 1:
            return self._after_round1(messages)
        if self.round == 2:
            return self._after_round2(messages)
        if self.round == 3:
            return self._after_round3(messages)
        raise InternalBug(f"unexpected round {self.round}")

    def _after_round1(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        received = self.only(messages, self._others, broadcast=True)
        self.raise_faults(
            {p: "malformed commitment" for p, v in received.items() if len(v) != _DIGEST_SIZE}
        )
        self._commitments.update(received)
        self._echo = echo_digest(_ECHO_TAG, self.eid, self._commitments, self.parties)
        payload = encode_fields([self._echo, encode_fields(self._decommitment)])
        return [Outgoing(2, BROADCAST, payload)]

    def _check_decommitment(self, sender: int, raw: bytes) -> str | None:
        """Check one decommitment and record N_j, R_j, ρ_j; return the fault, or None."""
        try:
            fields = decode_fields(raw, count=_DECOMMIT_FIELDS)
        except InvalidInput:
            return "malformed decommitment"
        if commitment(self.eid, sender, fields) != self._commitments[sender]:
            return "decommitment does not match its commitment"
        n_raw, n_hat_raw, s_raw, t_raw, psi_raw, rho_j, _u = fields
        if len(rho_j) != _RANDOM_SIZE or len(_u) != _RANDOM_SIZE:
            return "malformed decommitment"
        try:
            pk = PaillierPublicKey(_dec_int(n_raw))
            ring = RingPedersenParams(_dec_int(n_hat_raw), _dec_int(s_raw), _dec_int(t_raw))
        except InvalidInput:
            return "malformed decommitment"
        try:
            pk.validate(self.level)
        except InvalidInput as exc:
            return f"bad Paillier key: {exc}"
        try:
            ring.validate(self.level)
        except InvalidInput as exc:
            return f"bad ring-Pedersen parameters: {exc}"
        try:
            pi_prm.verify(self._ctx(sender), ring, pi_prm.PrmProof.decode(psi_raw))
        except InvalidProof as exc:
            return f"invalid Π-prm proof: {exc}"
        self._paillier[sender] = pk
        self._rings[sender] = ring
        self._rho = bytes(a ^ b for a, b in zip(self._rho, rho_j, strict=True))
        return None

    def _after_round2(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        received = self.only(messages, self._others, broadcast=True)
        parsed: dict[int, tuple[bytes, bytes]] = {}
        faults: dict[int, str] = {}
        for sender, payload in received.items():
            try:
                echo, raw = decode_fields(payload, count=2)
            except InvalidInput:
                faults[sender] = "malformed round-2 message"
                continue
            if len(echo) != _DIGEST_SIZE:
                faults[sender] = "malformed echo"
                continue
            parsed[sender] = (echo, raw)
        self.raise_faults(faults)
        if any(echo != self._echo for echo, _ in parsed.values()):
            # The relay may have shown different commitments to different parties: no culprit.
            raise ProtocolAborted("round-1 commitments differ between parties")
        for sender in sorted(parsed):
            fault = self._check_decommitment(sender, parsed[sender][1])
            if fault is not None:
                faults[sender] = fault
        self.raise_faults(faults)
        sk = self._secret_key
        ctx = self._ctx(self.party)
        psi = pi_mod.prove(ctx, sk.n, sk.p, sk.q, self._rng, rho=self._rho).encode()
        out = []
        for j in self._others:
            psi_prime = pi_fac.prove(
                ctx, sk.n, sk.p, sk.q, self._rings[j], self._rng, rho=self._rho
            )
            out.append(Outgoing(3, j, encode_fields([psi, psi_prime.encode()])))
        return out

    def _after_round3(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        received = self.only(messages, self._others, broadcast=False)
        faults: dict[int, str] = {}
        for sender in sorted(received):
            try:
                psi_raw, psi_prime_raw = decode_fields(received[sender], count=2)
            except InvalidInput:
                faults[sender] = "malformed round-3 message"
                continue
            ctx = self._ctx(sender)
            n_j = self._paillier[sender].n
            try:
                pi_mod.verify(ctx, n_j, pi_mod.ModProof.decode(psi_raw), rho=self._rho)
            except InvalidProof as exc:
                faults[sender] = f"invalid Π-mod proof: {exc}"
                continue
            try:
                proof = pi_fac.FacProof.decode(psi_prime_raw)
                pi_fac.verify(ctx, n_j, self._ring, proof, rho=self._rho)
            except InvalidProof as exc:
                faults[sender] = f"invalid Π-fac proof: {exc}"
        self.raise_faults(faults)
        public = AuxInfoPublic(
            self.parties,
            tuple(self._paillier[p] for p in self.parties),
            tuple(self._rings[p] for p in self.parties),
        )
        self._finish(AuxInfo(self.party, self._secret_key, public))
        self._decommitment = []
        return []

    def __repr__(self) -> str:
        return (
            f"<CggmpAuxInfoSession party={self.party} parties={list(self.parties)} "
            f"round={self.round} done={self.done}>"
        )
