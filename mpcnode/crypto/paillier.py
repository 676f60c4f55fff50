"""Paillier encryption over N = p·q with safe primes p, q (CGGMP21 conventions).

enc_N(m; r) = (1 + m·N)·r^N mod N², with m a signed integer taken mod N and r ∈ Z*_N.
Decryption (CRT) returns the signed representative in [-floor(N/2), floor(N/2)].
C1 ⊕ C2 = C1·C2 mod N²; a ⊙ C = C^a mod N² (negative a through the inverse).
Everything heavy is a plain function of plain ints, so a worker process can run it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mpcnode.crypto.bigint import (
    RandomBytes,
    invert,
    is_probable_prime,
    is_unit,
    powmod,
    random_unit,
    signed_mod,
)
from mpcnode.crypto.security import SecurityLevel
from mpcnode.errors import InvalidInput


@dataclass(frozen=True)
class PaillierPublicKey:
    n: int
    n_squared: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_squared", self.n * self.n)

    def validate(self, level: SecurityLevel) -> None:
        """Checks on a received key: odd, and at least the level's modulus size (Alpha-Rays).

        Blum structure and the absence of small factors are proved by Π-mod and Π-fac.
        """
        if self.n % 2 == 0 or self.n < 3:
            raise InvalidInput("Paillier modulus must be odd")
        if self.n.bit_length() < level.min_modulus_bits:
            raise InvalidInput(
                f"Paillier modulus has {self.n.bit_length()} bits, "
                f"at least {level.min_modulus_bits} required"
            )

    def is_ciphertext(self, c: int) -> bool:
        """c ∈ Z*_{N²}."""
        return is_unit(c, self.n_squared)

    def encrypt_with(self, m: int, r: int) -> int:
        """enc_N(m; r); r must be in Z*_N."""
        if not is_unit(r, self.n):
            raise InvalidInput("Paillier randomness must be a unit mod N")
        return (1 + (m % self.n) * self.n) * powmod(r, self.n, self.n_squared) % self.n_squared

    def encrypt(self, m: int, rng: RandomBytes | None = None) -> tuple[int, int]:
        """(ciphertext, randomness r) for plaintext m."""
        r = random_unit(self.n, rng)
        return self.encrypt_with(m, r), r

    def add(self, c1: int, c2: int) -> int:
        """C1 ⊕ C2: encrypts the sum of the plaintexts."""
        return c1 * c2 % self.n_squared

    def mul(self, a: int, c: int) -> int:
        """a ⊙ C: encrypts a times the plaintext (a may be negative)."""
        return powmod(c, a, self.n_squared)


@dataclass(frozen=True, repr=False)
class PaillierSecretKey:
    """The factorisation p, q of N; p ≡ q ≡ 3 mod 4 (safe primes satisfy this)."""

    p: int
    q: int
    public: PaillierPublicKey = field(init=False, compare=False)
    phi: int = field(init=False, compare=False)
    _hp: int = field(init=False, compare=False)
    _hq: int = field(init=False, compare=False)

    def __post_init__(self) -> None:
        p, q = self.p, self.q
        if p == q or p < 3 or q < 3 or p % 4 != 3 or q % 4 != 3:
            raise InvalidInput("Paillier primes must be distinct and 3 mod 4")
        n = p * q
        object.__setattr__(self, "public", PaillierPublicKey(n))
        object.__setattr__(self, "phi", (p - 1) * (q - 1))
        # h_p = L_p(g^(p-1) mod p²)^-1 mod p with g = 1 + N; likewise for q.
        object.__setattr__(self, "_hp", invert(self._l(powmod(n + 1, p - 1, p * p), p), p))
        object.__setattr__(self, "_hq", invert(self._l(powmod(n + 1, q - 1, q * q), q), q))

    @classmethod
    def from_primes(
        cls, p: int, q: int, level: SecurityLevel, allow_test_primes: bool = False
    ) -> PaillierSecretKey:
        """A production key: both primes safe, of the level's size, not test fixtures."""
        for prime in (p, q):
            if prime.bit_length() < level.prime_bits:
                raise InvalidInput(f"Paillier primes must have at least {level.prime_bits} bits")
            if not (is_probable_prime(prime) and is_probable_prime((prime - 1) // 2)):
                raise InvalidInput("Paillier primes must be safe primes")
            if not allow_test_primes:
                from mpcnode.crypto.primes import check_production_prime

                check_production_prime(prime)
        key = cls(p, q)
        key.public.validate(level)
        return key

    @staticmethod
    def _l(u: int, prime: int) -> int:
        return (u - 1) // prime

    @property
    def n(self) -> int:
        return self.public.n

    def decrypt(self, c: int) -> int:
        """The signed plaintext of c (CRT over p² and q²)."""
        if not self.public.is_ciphertext(c):
            raise InvalidInput("not a Paillier ciphertext under this key")
        p, q = self.p, self.q
        mp = self._l(powmod(c % (p * p), p - 1, p * p), p) * self._hp % p
        mq = self._l(powmod(c % (q * q), q - 1, q * q), q) * self._hq % q
        m = (mp + p * ((mq - mp) * invert(p, q) % q)) % self.n
        return signed_mod(m, self.n)

    def encrypt_with(self, m: int, r: int) -> int:
        """enc_N(m; r) with r^N computed by CRT (same result as the public key's)."""
        if not is_unit(r, self.n):
            raise InvalidInput("Paillier randomness must be a unit mod N")
        p2, q2 = self.p * self.p, self.q * self.q
        n2 = self.public.n_squared
        # r^N mod p² needs the exponent mod φ(p²) = p(p-1).
        rp = powmod(r % p2, self.n % (self.p * (self.p - 1)), p2)
        rq = powmod(r % q2, self.n % (self.q * (self.q - 1)), q2)
        rn = (rp + p2 * ((rq - rp) * invert(p2, q2) % q2)) % n2
        return (1 + (m % self.n) * self.n) * rn % n2

    def __repr__(self) -> str:
        return f"PaillierSecretKey(<redacted>, {self.n.bit_length()} bits)"
