"""Shared setup for the Paillier-based proof tests (Π-enc, Π-enc-elg, Π-log*).

Production parameters: the prover's Paillier key N₀ = p·q and the verifier's ring-Pedersen
parameters N̂ = p̂·q̂, from four 1536-bit safe primes of tests/fixtures/safe_primes.json
(3072-bit moduli, SECURITY_128).

Also an undersized key and ring-Pedersen parameters (2048-bit moduli, from 1024-bit primes)
for the Alpha-Rays modulus-size checks. Everything is computed once per test session.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cache
from typing import Any

from mpcnode.crypto.group import SECP256K1, Point
from mpcnode.crypto.paillier import PaillierPublicKey, PaillierSecretKey
from mpcnode.crypto.ring_pedersen import (
    RingPedersenParams,
    RingPedersenSecret,
    generate_ring_pedersen,
)
from mpcnode.crypto.security import SECURITY_128
from mpcnode.crypto.zk._common import ProofContext
from tests.fixtures.primes import load_test_primes

LEVEL = SECURITY_128
CTX = ProofContext(sid=b"zk-test-session", prover=2, level=LEVEL, instance="test")
"""The context every test proof is made under; `OTHER_CONTEXTS` each differ in one field."""

OTHER_CONTEXTS = {
    "sid": dataclasses.replace(CTX, sid=b"zk-test-session-2"),
    "prover": dataclasses.replace(CTX, prover=3),
    "instance": dataclasses.replace(CTX, instance="test-2"),
}

Q = SECP256K1.order
G = SECP256K1.generator()


@dataclass(frozen=True)
class PaillierSetup:
    sk: PaillierSecretKey
    """The prover's Paillier key (N₀)."""
    rp: RingPedersenSecret
    """The verifier's ring-Pedersen parameters (aux = rp.params) with their trapdoor."""
    small_sk: PaillierSecretKey
    """A 2048-bit Paillier key: below `min_modulus_bits`, must be refused (Alpha-Rays)."""
    small_rp: RingPedersenSecret
    """2048-bit ring-Pedersen parameters, likewise too small."""

    @property
    def pk(self) -> PaillierPublicKey:
        return self.sk.public

    @property
    def aux(self) -> RingPedersenParams:
        return self.rp.params

    @property
    def other_pk(self) -> PaillierPublicKey:
        """Another full-size odd modulus (N̂), to tamper with N₀ in a statement."""
        return PaillierPublicKey(self.rp.params.n)


@cache
def paillier_setup() -> PaillierSetup:
    p, q, p_hat, q_hat = load_test_primes(LEVEL.prime_bits)[:4]
    a, b, c, d = load_test_primes(1024)[:4]
    return PaillierSetup(
        sk=PaillierSecretKey.from_primes(p, q, LEVEL, allow_test_primes=True),
        rp=generate_ring_pedersen(p_hat, q_hat),
        small_sk=PaillierSecretKey(a, b),
        small_rp=generate_ring_pedersen(c, d),
    )


def tampered(value: Any) -> Any:
    """A different value of the same kind: a point plus G, an integer plus one."""
    if isinstance(value, Point):
        return value + G
    assert isinstance(value, int)
    return value + 1


def proof_field_names(proof: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(proof)]
