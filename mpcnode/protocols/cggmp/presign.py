"""CGGMP24 presigning for secp256k1 ECDSA (cggmp-spec.md §6, `cggmp24/src/signing.rs`).

The t signers S of a t-of-n key first turn their Shamir shares into additive ones:
x′_i = λ_i·x_i and X′_j = λ_j·X_j (λ the Lagrange coefficients of S at 0), so Σ x′_j = x and
Σ X′_j = X. Wire rounds of `CggmpPresignSession` (party i, execution id `eid`):

1. k_i, γ_i, a_i, b_i, y_i ← Z_q; K_i = enc_i(k_i), G_i = enc_i(γ_i); Y_i = y_i·G;
   A_{i,1} = a_i·G, A_{i,2} = a_i·Y_i + k_i·G, B_{i,1} = b_i·G, B_{i,2} = b_i·Y_i + γ_i·G.
   Broadcast (K_i, G_i, Y_i, A_{i,1}, A_{i,2}, B_{i,1}, B_{i,2}); send each j Π-enc-elg proofs
   ψ⁰ (for K_i) and ψ¹ (for G_i) under j's ring-Pedersen parameters.
2. verify the proofs received (culprit: the prover); broadcast the echo: a hash of every
   signer's round-1 broadcast.
3. every echo must equal ours (else abort, no culprit: the relay may have shown different
   broadcasts). Γ_i = γ_i·G with Π-elog ψ̃_i tying it to (B_{i,1}, B_{i,2}); for each j the MtA
   ciphertexts D_{j,i} = γ_i ⊙ K_j ⊕ enc_j(−β_{ij}), F_{j,i} = enc_i(−β_{ij}) and the hatted
   pair for x′_i, each with a Π-aff-g proof under j's parameters; sent to j privately.
4. verify ψ̃_j and both Π-aff-g proofs (before decrypting: Alpha-Rays); Γ = Σ Γ_j,
   Δ_i = k_i·Γ, δ_i = γ_i·k_i + Σ_j (α_{i,j} + β_{i,j}), χ_i = x′_i·k_i + Σ_j (α̂_{i,j} + β̂_{i,j}),
   S_i = χ_i·Γ; broadcast (δ_i, S_i, Δ_i) with Π-elog ψ′_i tying Δ_i to (A_{i,1}, A_{i,2}).
Output: after verifying every ψ′_j, δ = Σ δ_j must satisfy δ·G = Σ Δ_j and δ·X = Σ S_j
(else abort: cggmp24 has no culprit for this). The presignature is (Γ, k̃_i = k_i/δ, χ̃_i = χ_i/δ)
with public Δ̃_j = Δ_j/δ, S̃_j = S_j/δ: the ECDSA nonce point is Γ, since
Σ k̃_j·(m + r·x) + ... = (m + r·x)/γ (see sign.py for the re-randomised use).

`sign.CggmpDigestSignSession` runs the same rounds with a caller's digest bound into `eid` before
round 1, then sends its partial signature to the coordinator: interactive signing, the only
way a bare digest is signed (ePrint 2021/1330 §1.1.2, CVE-2025-66017).

Each proof's `ProofContext.instance` names its place ("psi0", "psi1", "psi", "psi_hat",
"psi_tilde", "psi_prime"), so no proof verifies in another's place.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from mpcnode.crypto.bigint import RandomBytes, random_signed, random_unit, signed_mod
from mpcnode.crypto.encoding import decode_fields, decode_uint, encode_fields, encode_uint
from mpcnode.crypto.group import SECP256K1, Point
from mpcnode.crypto.paillier import PaillierPublicKey
from mpcnode.crypto.ring_pedersen import RingPedersenParams
from mpcnode.crypto.security import SECURITY_128, SecurityLevel
from mpcnode.crypto.sharing import check_indices, lagrange_coefficient
from mpcnode.crypto.zk import pi_aff_g, pi_elog, pi_enc_elg
from mpcnode.crypto.zk._common import ProofContext, decode_ints, encode_ints
from mpcnode.errors import InternalBug, InvalidInput, InvalidProof, ProtocolAborted
from mpcnode.protocols.base import BROADCAST, Incoming, Outgoing, Session, echo_digest
from mpcnode.protocols.cggmp.aux_info import AuxInfo
from mpcnode.protocols.keys import KeyShare

CURVE = SECP256K1
_Q = CURVE.order
_PUBLIC_TAG = b"mpc.v1.cggmp-presignature.public"
_SECRET_TAG = b"mpc.v1.cggmp-presignature"
_ECHO_TAG = b"mpc.v1.cggmp-presign.echo"
_AUX_TAG = b"mpc.v1.cggmp-presign.aux-info"
_DIGEST_SIZE = 32

T = TypeVar("T")


def _parties_field(parties: Sequence[int]) -> bytes:
    return b"".join(encode_uint(p) for p in parties)


def _decode_parties(data: bytes) -> tuple[int, ...]:
    if not data or len(data) % 4:
        raise InvalidInput("malformed party list")
    return tuple(decode_uint(data[k : k + 4]) for k in range(0, len(data), 4))


def _decode_scalar(data: bytes) -> int:
    return CURVE.decode_scalar(data)


# --------------------------------------------------------------------------------------------
# Output


@dataclass(frozen=True)
class PresignaturePublic:
    """What every signer (and the combiner) knows of one presignature.

    `Delta[k]`, `S[k]` are Δ̃_j = k̃_j·Γ and S̃_j = χ̃_j·Γ of signer `signers[k]`; they let the
    combiner check each partial signature (CGGMP24) and sum to G and X respectively.
    """

    signers: tuple[int, ...]
    public_key: Point
    Gamma: Point
    Delta: tuple[Point, ...]
    S: tuple[Point, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "signers", tuple(self.signers))
        object.__setattr__(self, "Delta", tuple(self.Delta))
        object.__setattr__(self, "S", tuple(self.S))

    def validate(self) -> None:
        """Structure plus Σ Δ̃_j = G and Σ S̃_j = X (so the presignature fits this key)."""
        n = len(self.signers)
        if n < 1 or len(self.Delta) != n or len(self.S) != n:
            raise InvalidInput("presignature lists must have one entry per signer")
        if tuple(sorted(set(self.signers))) != self.signers or self.signers[0] <= 0:
            raise InvalidInput("presignature signers must be distinct, positive and sorted")
        points = [self.public_key, self.Gamma, *self.Delta, *self.S]
        if any(p.group is not CURVE or p.is_identity for p in points):
            raise InvalidInput("presignature points must be non-identity secp256k1 points")
        if CURVE.sum_points(self.Delta) != CURVE.generator():
            raise InvalidInput("presignature: the Δ̃_j do not sum to G")
        if CURVE.sum_points(self.S) != self.public_key:
            raise InvalidInput("presignature: the S̃_j do not sum to the public key")

    def of(self, party: int) -> tuple[Point, Point]:
        """(Δ̃_j, S̃_j) of signer `party`."""
        k = self.signers.index(party)
        return self.Delta[k], self.S[k]

    def encode(self) -> bytes:
        return encode_fields(
            [
                _PUBLIC_TAG,
                _parties_field(self.signers),
                self.public_key.encode(),
                self.Gamma.encode(),
                encode_fields([p.encode() for p in self.Delta]),
                encode_fields([p.encode() for p in self.S]),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> PresignaturePublic:
        fields = decode_fields(data)
        if len(fields) != 6 or fields[0] != _PUBLIC_TAG:
            raise InvalidInput("malformed presignature public data")
        public = cls(
            _decode_parties(fields[1]),
            CURVE.decode_point(fields[2]),
            CURVE.decode_point(fields[3]),
            tuple(CURVE.decode_point(f) for f in decode_fields(fields[4])),
            tuple(CURVE.decode_point(f) for f in decode_fields(fields[5])),
        )
        public.validate()
        return public


@dataclass(frozen=True, repr=False)
class Presignature:
    """One signer's presignature (Γ, k̃_i, χ̃_i). Secret: single use, store only sealed."""

    party: int
    k: int
    chi: int
    public: PresignaturePublic

    def validate(self) -> None:
        self.public.validate()
        if self.party not in self.public.signers:
            raise InvalidInput("presignature party is not among its signers")
        if not (0 < self.k < _Q and 0 <= self.chi < _Q):
            raise InvalidInput("presignature scalars out of range")
        delta, s = self.public.of(self.party)
        if self.public.Gamma * self.k != delta or self.public.Gamma * self.chi != s:
            raise InvalidInput("presignature secrets do not match their public values")

    def encode(self) -> bytes:
        return encode_fields(
            [
                _SECRET_TAG,
                encode_uint(self.party),
                CURVE.encode_scalar(self.k),
                CURVE.encode_scalar(self.chi),
                self.public.encode(),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Presignature:
        fields = decode_fields(data)
        if len(fields) != 5 or fields[0] != _SECRET_TAG:
            raise InvalidInput("malformed presignature")
        presig = cls(
            decode_uint(fields[1]),
            _decode_scalar(fields[2]),
            _decode_scalar(fields[3]),
            PresignaturePublic.decode(fields[4]),
        )
        presig.validate()
        return presig

    def __repr__(self) -> str:
        return f"Presignature(party={self.party}, signers={list(self.public.signers)}, <secret>)"


# --------------------------------------------------------------------------------------------
# Round data


@dataclass(frozen=True)
class _Round1:
    """A signer's round-1 broadcast (K, G, Y, A₁, A₂, B₁, B₂), with the digest of the aux info
    it uses (all signers must use the same, else proofs would fail and blame honest parties)."""

    aux_digest: bytes
    K: int
    G: int
    Y: Point
    A1: Point
    A2: Point
    B1: Point
    B2: Point

    def encode(self) -> bytes:
        points = [self.Y, self.A1, self.A2, self.B1, self.B2]
        return encode_fields(
            [self.aux_digest, encode_ints([self.K, self.G]), *(p.encode() for p in points)]
        )

    @classmethod
    def decode(cls, data: bytes, pk: PaillierPublicKey) -> _Round1:
        aux_digest, *fields = decode_fields(data, count=7)
        try:
            K, G = decode_ints(fields[0], count=2, name="round-1")
        except InvalidProof as exc:
            raise InvalidInput(str(exc)) from None
        if not (pk.is_ciphertext(K) and pk.is_ciphertext(G)):
            raise InvalidInput("K or G is not a ciphertext under the sender's Paillier key")
        Y, A1, A2, B1, B2 = (CURVE.decode_point(f) for f in fields[1:])
        return cls(aux_digest, K, G, Y, A1, A2, B1, B2)


@dataclass(frozen=True)
class _Round3:
    """What signer j sends signer i in round 3 (p2p): Γ_j, the MtA ciphertexts, three proofs."""

    Gamma: Point
    D: int
    F: int
    D_hat: int
    F_hat: int
    psi_tilde: pi_elog.ElogProof
    psi: pi_aff_g.AffGProof
    psi_hat: pi_aff_g.AffGProof

    def encode(self) -> bytes:
        return encode_fields(
            [
                self.Gamma.encode(),
                encode_ints([self.D, self.F, self.D_hat, self.F_hat]),
                self.psi_tilde.encode(),
                self.psi.encode(),
                self.psi_hat.encode(),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> _Round3:
        fields = decode_fields(data, count=5)
        Gamma = CURVE.decode_point(fields[0])
        D, F, D_hat, F_hat = decode_ints(fields[1], count=4, name="round-3")
        return cls(
            Gamma,
            D,
            F,
            D_hat,
            F_hat,
            pi_elog.ElogProof.decode(fields[2]),
            pi_aff_g.AffGProof.decode(fields[3]),
            pi_aff_g.AffGProof.decode(fields[4]),
        )


@dataclass(frozen=True)
class _Round4:
    """A signer's round-4 broadcast (δ_j, S_j, Δ_j, ψ′_j)."""

    delta: int
    S: Point
    Delta: Point
    psi_prime: pi_elog.ElogProof

    def encode(self) -> bytes:
        return encode_fields(
            [
                CURVE.encode_scalar(self.delta),
                self.S.encode(),
                self.Delta.encode(),
                self.psi_prime.encode(),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> _Round4:
        fields = decode_fields(data, count=4)
        return cls(
            _decode_scalar(fields[0]),
            CURVE.decode_point(fields[1]),
            CURVE.decode_point(fields[2]),
            pi_elog.ElogProof.decode(fields[3]),
        )


@dataclass(repr=False)
class _Secrets:
    """Party i's secrets during presigning (never encoded, never logged)."""

    k: int
    gamma: int
    rho: int
    nu: int
    a: int
    b: int
    x_prime: int
    beta: dict[int, int]
    beta_hat: dict[int, int]


# --------------------------------------------------------------------------------------------
# Sessions


class _PresignRounds(Session[T], Generic[T]):
    """The four presigning rounds; subclasses decide what happens with the presignature."""

    def __init__(
        self,
        key_share: KeyShare,
        aux: AuxInfo,
        signers: Sequence[int],
        eid: bytes,
        level: SecurityLevel = SECURITY_128,
        randomness: RandomBytes | None = None,
    ) -> None:
        super().__init__()
        self._rng: RandomBytes = randomness if randomness is not None else secrets.token_bytes
        public = key_share.public
        if public.group is not CURVE:
            raise InvalidInput("CGGMP presigning needs a secp256k1 key")
        ordered = tuple(sorted(signers))
        if len(set(ordered)) != len(ordered) or len(ordered) != public.threshold:
            raise InvalidInput(f"presigning needs exactly {public.threshold} distinct signers")
        check_indices(ordered, _Q)
        if any(p not in public.parties for p in ordered):
            raise InvalidInput("every signer must hold a share of the key")
        if key_share.party not in ordered:
            raise InvalidInput("own party is not among the signers")
        if aux.party != key_share.party or any(p not in aux.parties for p in ordered):
            raise InvalidInput("aux info does not cover the signers")
        if not eid:
            raise InvalidInput("execution id must not be empty")
        self.party = key_share.party
        self.signers = ordered
        self.eid = bytes(eid)
        self.level = level
        self._others = [j for j in ordered if j != self.party]
        self._aux = aux
        self._aux_digest = hashlib.sha256(_AUX_TAG + aux.public.encode()).digest()
        self._sk = aux.secret_key
        self._public_key = public.public_key
        # Additive shares over S: x′_i = λ_i·x_i, X′_j = λ_j·X_j, Σ X′_j = X.
        self._X_prime = {
            j: public.verifying_share(j) * lagrange_coefficient(_Q, j, ordered) for j in ordered
        }
        if CURVE.sum_points(self._X_prime.values()) != self._public_key:
            raise InvalidInput("the key's verifying shares do not interpolate to its public key")
        self._secrets: _Secrets | None = _Secrets(
            k=0,
            gamma=0,
            rho=0,
            nu=0,
            a=0,
            b=0,
            x_prime=key_share.secret_share * lagrange_coefficient(_Q, self.party, ordered) % _Q,
            beta={},
            beta_hat={},
        )
        self._round1: dict[int, _Round1] = {}
        self._echo = b""
        self._Gamma_i: dict[int, Point] = {}
        self._Gamma: Point | None = None
        self._own_round4: _Round4 | None = None
        self._chi = 0

    # -- helpers -----------------------------------------------------------------------------

    def _ctx(self, prover: int, instance: str) -> ProofContext:
        return ProofContext(sid=self.eid, prover=prover, level=self.level, instance=instance)

    def _pk(self, party: int) -> PaillierPublicKey:
        return self._aux.public.paillier_of(party)

    def _rp(self, party: int) -> RingPedersenParams:
        return self._aux.public.ring_pedersen_of(party)

    def _secret(self) -> _Secrets:
        if self._secrets is None:
            raise InternalBug("presigning secrets already used")
        return self._secrets

    def _parse(
        self, payloads: dict[int, bytes], parse: type[_Round3] | type[_Round4]
    ) -> tuple[dict[int, _Round3 | _Round4], dict[int, str]]:
        parsed: dict[int, _Round3 | _Round4] = {}
        faults: dict[int, str] = {}
        for sender, payload in payloads.items():
            try:
                parsed[sender] = parse.decode(payload)
            except (InvalidInput, InvalidProof) as exc:
                faults[sender] = f"malformed message: {exc}"
        return parsed, faults

    # -- round 1 -----------------------------------------------------------------------------

    def _start(self) -> list[Outgoing]:
        s = self._secret()
        rng = self._rng
        s.k, s.gamma = CURVE.random_scalar(rng), CURVE.random_scalar(rng)
        s.a, s.b = CURVE.random_scalar(rng), CURVE.random_scalar(rng)
        n_i = self._sk.n
        s.rho, s.nu = random_unit(n_i, rng), random_unit(n_i, rng)
        G = CURVE.generator()
        Y = G * CURVE.random_scalar(rng)  # y_i itself is never needed
        mine = _Round1(
            aux_digest=self._aux_digest,
            K=self._sk.encrypt_with(signed_mod(s.k, _Q), s.rho),
            G=self._sk.encrypt_with(signed_mod(s.gamma, _Q), s.nu),
            Y=Y,
            A1=G * s.a,
            A2=Y * s.a + G * s.k,
            B1=G * s.b,
            B2=Y * s.b + G * s.gamma,
        )
        self._round1[self.party] = mine
        pk_i = self._sk.public
        out = [Outgoing(1, BROADCAST, mine.encode())]
        for j in self._others:
            psi0 = pi_enc_elg.prove(
                self._ctx(self.party, "psi0"),
                pk_i,
                mine.K,
                mine.Y,
                mine.A1,
                mine.A2,
                signed_mod(s.k, _Q),
                s.rho,
                s.a,
                self._rp(j),
                rng,
                sk=self._sk,
            )
            psi1 = pi_enc_elg.prove(
                self._ctx(self.party, "psi1"),
                pk_i,
                mine.G,
                mine.Y,
                mine.B1,
                mine.B2,
                signed_mod(s.gamma, _Q),
                s.nu,
                s.b,
                self._rp(j),
                rng,
                sk=self._sk,
            )
            out.append(Outgoing(1, j, encode_fields([psi0.encode(), psi1.encode()])))
        return out

    # -- rounds 2..4 -------------------------------------------------------------------------

    def _receive(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        if self.round == 1:
            return self._after_round1(messages)
        if self.round == 2:
            return self._after_echo(messages)
        if self.round == 3:
            return self._after_round3(messages)
        if self.round == 4:
            return self._after_round4(messages)
        raise InternalBug(f"unexpected round {self.round}")

    def _check_round1(self, sender: int, broadcast: bytes, proofs: bytes) -> str | None:
        """Parse j's broadcast and verify ψ⁰_{i,j}, ψ¹_{i,j} under our own parameters."""
        pk_j = self._pk(sender)
        try:
            r1 = _Round1.decode(broadcast, pk_j)
            raw0, raw1 = decode_fields(proofs, count=2)
            psi0 = pi_enc_elg.EncElgProof.decode(raw0)
            psi1 = pi_enc_elg.EncElgProof.decode(raw1)
        except (InvalidInput, InvalidProof) as exc:
            return f"malformed round-1 message: {exc}"
        own_rp = self._rp(self.party)
        try:
            pi_enc_elg.verify(
                self._ctx(sender, "psi0"), pk_j, r1.K, r1.Y, r1.A1, r1.A2, own_rp, psi0
            )
            pi_enc_elg.verify(
                self._ctx(sender, "psi1"), pk_j, r1.G, r1.Y, r1.B1, r1.B2, own_rp, psi1
            )
        except InvalidProof as exc:
            return f"invalid Π-enc-elg proof: {exc}"
        self._round1[sender] = r1
        return None

    def _aux_differs(self, broadcast: bytes) -> bool:
        """True if a well-formed round-1 broadcast names other aux info than ours."""
        try:
            fields = decode_fields(broadcast, count=7)
        except InvalidInput:
            return False  # malformed: `_check_round1` blames the sender
        return fields[0] != self._aux_digest

    def _after_round1(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        broadcasts = self.by_sender(messages, self._others, broadcast=True)
        proofs = self.by_sender(messages, self._others, broadcast=False)
        if any(self._aux_differs(b) for b in broadcasts.values()):
            # One side has stale aux info (e.g. an aux-info run that finished on some nodes
            # only): which side cannot be told, so nobody is blamed. Run aux-info again.
            raise ProtocolAborted("signers hold different aux info for the committee")
        faults = {}
        for sender in self._others:
            fault = self._check_round1(sender, broadcasts[sender], proofs[sender])
            if fault is not None:
                faults[sender] = fault
        self.raise_faults(faults)
        self._echo = echo_digest(
            _ECHO_TAG, self.eid, {j: r.encode() for j, r in self._round1.items()}, self.signers
        )
        return [Outgoing(2, BROADCAST, self._echo)]

    def _after_echo(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        echoes = self.only(messages, self._others, broadcast=True)
        self.raise_faults(
            {p: "malformed echo" for p, e in echoes.items() if len(e) != _DIGEST_SIZE}
        )
        if any(e != self._echo for e in echoes.values()):
            # The relay may have shown different broadcasts to different signers: no culprit.
            raise ProtocolAborted("round-1 broadcasts differ between signers")
        s = self._secret()
        rng = self._rng
        me = self._round1[self.party]
        G = CURVE.generator()
        Gamma_i = G * s.gamma
        self._Gamma_i[self.party] = Gamma_i
        psi_tilde = pi_elog.prove(
            self._ctx(self.party, "psi_tilde"), me.B1, me.B2, me.Y, Gamma_i, G, s.gamma, s.b, rng
        )
        pk_i = self._sk.public
        gamma_bar = signed_mod(s.gamma, _Q)
        x_bar = signed_mod(s.x_prime, _Q)
        bound = 2**self.level.ell_prime
        out = []
        for j in self._others:
            pk_j, rp_j, K_j = self._pk(j), self._rp(j), self._round1[j].K
            beta, beta_hat = random_signed(bound, rng), random_signed(bound, rng)
            s.beta[j], s.beta_hat[j] = beta, beta_hat
            proofs = []
            ciphertexts = []
            for instance, x, y, X in (
                ("psi", gamma_bar, -beta, Gamma_i),
                ("psi_hat", x_bar, -beta_hat, self._X_prime[self.party]),
            ):
                s_ij, r_ij = random_unit(pk_j.n, rng), random_unit(pk_i.n, rng)
                D = pk_j.add(pk_j.mul(x, K_j), pk_j.encrypt_with(y, s_ij))
                F = self._sk.encrypt_with(y, r_ij)
                proof = pi_aff_g.prove(
                    self._ctx(self.party, instance),
                    pk_j,
                    pk_i,
                    K_j,
                    D,
                    F,
                    X,
                    x,
                    y,
                    s_ij,
                    r_ij,
                    rp_j,
                    rng,
                    sk_i=self._sk,
                )
                ciphertexts += [D, F]
                proofs.append(proof)
            D, F, D_hat, F_hat = ciphertexts
            message = _Round3(Gamma_i, D, F, D_hat, F_hat, psi_tilde, proofs[0], proofs[1])
            out.append(Outgoing(3, j, message.encode()))
        return out

    def _check_round3(self, sender: int, m: _Round3) -> str | None:
        """Verify ψ̃_j, ψ_{i,j}, ψ̂_{i,j} (before anything is decrypted)."""
        r1 = self._round1[sender]
        G = CURVE.generator()
        pk_i, pk_j, own_rp = self._sk.public, self._pk(sender), self._rp(self.party)
        K_i = self._round1[self.party].K
        try:
            pi_elog.verify(
                self._ctx(sender, "psi_tilde"), r1.B1, r1.B2, r1.Y, m.Gamma, G, m.psi_tilde
            )
        except InvalidProof as exc:
            return f"invalid Π-elog proof for Γ_j: {exc}"
        try:
            pi_aff_g.verify(
                self._ctx(sender, "psi"),
                pk_i,
                pk_j,
                K_i,
                m.D,
                m.F,
                m.Gamma,
                own_rp,
                m.psi,
                sk_j=self._sk,
            )
            pi_aff_g.verify(
                self._ctx(sender, "psi_hat"),
                pk_i,
                pk_j,
                K_i,
                m.D_hat,
                m.F_hat,
                self._X_prime[sender],
                own_rp,
                m.psi_hat,
                sk_j=self._sk,
            )
        except InvalidProof as exc:
            return f"invalid Π-aff-g proof: {exc}"
        return None

    def _after_round3(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        payloads = self.only(messages, self._others, broadcast=False)
        parsed, faults = self._parse(payloads, _Round3)
        for sender, m in parsed.items():
            assert isinstance(m, _Round3)
            fault = self._check_round3(sender, m)
            if fault is not None:
                faults[sender] = fault
        self.raise_faults(faults)
        round3 = {j: m for j, m in parsed.items() if isinstance(m, _Round3)}
        for j, m in round3.items():
            self._Gamma_i[j] = m.Gamma
        Gamma = CURVE.sum_points(self._Gamma_i[j] for j in self.signers)
        if Gamma.is_identity:
            raise ProtocolAborted("Γ is the identity")
        self._Gamma = Gamma
        s = self._secret()
        delta = s.gamma * s.k
        chi = s.x_prime * s.k
        for j, m in round3.items():
            alpha = self._sk.decrypt(m.D)
            alpha_hat = self._sk.decrypt(m.D_hat)
            delta += alpha + s.beta[j]
            chi += alpha_hat + s.beta_hat[j]
        delta %= _Q
        chi %= _Q
        Delta_i = Gamma * s.k
        me = self._round1[self.party]
        psi_prime = pi_elog.prove(
            self._ctx(self.party, "psi_prime"),
            me.A1,
            me.A2,
            me.Y,
            Delta_i,
            Gamma,
            s.k,
            s.a,
            self._rng,
        )
        mine = _Round4(delta, Gamma * chi, Delta_i, psi_prime)
        self._own_round4 = mine
        # Keep only what the output needs: k_i and χ_i.
        s.gamma = s.a = s.b = s.rho = s.nu = s.x_prime = 0
        s.beta.clear()
        s.beta_hat.clear()
        self._chi = chi
        return [Outgoing(4, BROADCAST, mine.encode())]

    def _after_round4(self, messages: Sequence[Incoming]) -> list[Outgoing]:
        payloads = self.only(messages, self._others, broadcast=True)
        parsed, faults = self._parse(payloads, _Round4)
        Gamma = self._Gamma
        if Gamma is None:
            raise InternalBug("Γ missing in round 4")
        for sender, m in parsed.items():
            assert isinstance(m, _Round4)
            r1 = self._round1[sender]
            try:
                pi_elog.verify(
                    self._ctx(sender, "psi_prime"), r1.A1, r1.A2, r1.Y, m.Delta, Gamma, m.psi_prime
                )
            except InvalidProof as exc:
                faults[sender] = f"invalid Π-elog proof for Δ_j: {exc}"
        self.raise_faults(faults)
        round4 = {j: m for j, m in parsed.items() if isinstance(m, _Round4)}
        if self._own_round4 is None:
            raise InternalBug("own round-4 message missing")
        round4[self.party] = self._own_round4
        delta = sum(round4[j].delta for j in self.signers) % _Q
        Delta = CURVE.sum_points(round4[j].Delta for j in self.signers)
        S = CURVE.sum_points(round4[j].S for j in self.signers)
        G = CURVE.generator()
        if delta == 0 or G * delta != Delta or self._public_key * delta != S:
            # cggmp24 identifies no culprit here (it would need the full CGGMP21 blame round).
            raise ProtocolAborted("presignature consistency check failed (δ·G ≠ Δ or δ·X ≠ S)")
        s = self._secret()
        delta_inv = pow(delta, -1, _Q)
        public = PresignaturePublic(
            signers=self.signers,
            public_key=self._public_key,
            Gamma=Gamma,
            Delta=tuple(round4[j].Delta * delta_inv for j in self.signers),
            S=tuple(round4[j].S * delta_inv for j in self.signers),
        )
        presig = Presignature(self.party, s.k * delta_inv % _Q, self._chi * delta_inv % _Q, public)
        self._secrets = None
        self._chi = 0
        try:
            presig.validate()
        except InvalidInput as exc:
            raise InternalBug(f"presigning produced an inconsistent presignature: {exc}") from None
        return self._presigned(presig)

    @abstractmethod
    def _presigned(self, presig: Presignature) -> list[Outgoing]:
        """Round-4 output of a finished presignature (the session's last messages)."""

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} party={self.party} signers={list(self.signers)} "
            f"round={self.round} done={self.done}>"
        )


class CggmpPresignSession(_PresignRounds[Presignature]):
    """One signer's run of CGGMP24 presigning; output is its `Presignature` (to be stored)."""

    protocol = "cggmp-presign"

    def _presigned(self, presig: Presignature) -> list[Outgoing]:
        self._finish(presig)
        return []
