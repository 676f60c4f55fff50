"""Polynomials over a group's scalar field, Shamir shares, Feldman commitments, Lagrange.

Party indices (Shamir x-coordinates) are always non-zero and distinct; every
function that takes a set of indices checks it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mpcnode.crypto.group import Group, Point, RandomBytes
from mpcnode.errors import InvalidInput


def check_indices(indices: Sequence[int], order: int) -> None:
    """Raise unless the indices are non-zero mod `order` and pairwise distinct."""
    reduced = [i % order for i in indices]
    if any(i == 0 for i in reduced):
        raise InvalidInput("party index 0 is not allowed")
    if len(set(reduced)) != len(reduced):
        raise InvalidInput("party indices must be distinct")


@dataclass(frozen=True, repr=False)
class Polynomial:
    """f(x) = a_0 + a_1 x + ... + a_{t-1} x^{t-1} mod `group.order`. Secret: repr hides it."""

    group: Group
    coefficients: tuple[int, ...]

    @classmethod
    def random(
        cls,
        group: Group,
        degree: int,
        constant: int | None = None,
        rng: RandomBytes | None = None,
    ) -> Polynomial:
        """A uniformly random polynomial of `degree`; `constant` fixes a_0 if given."""
        if degree < 0:
            raise InvalidInput("degree must be non-negative")
        a0 = group.random_scalar(rng) if constant is None else constant % group.order
        rest = tuple(group.random_scalar(rng) for _ in range(degree))
        return cls(group, (a0, *rest))

    def __call__(self, x: int) -> int:
        q = self.group.order
        acc = 0
        for a in reversed(self.coefficients):
            acc = (acc * x + a) % q
        return acc

    def commit(self) -> tuple[Point, ...]:
        """Feldman commitment C_k = a_k * G for every coefficient."""
        return tuple(self.group.base_mul(a) for a in self.coefficients)

    def __repr__(self) -> str:
        return f"<Polynomial degree={len(self.coefficients) - 1} (secret)>"


def evaluate_commitment(commitment: Sequence[Point], x: int) -> Point:
    """sum_k C_k * x^k: the public image f(x)*G of a Feldman-committed polynomial."""
    if not commitment:
        raise InvalidInput("empty commitment")
    group = commitment[0].group
    total = group.identity()
    power = 1
    for c in commitment:
        total = total + c * power
        power = power * x % group.order
    return total


def verify_share(commitment: Sequence[Point], x: int, share: int) -> bool:
    """Feldman check share*G == sum_k C_k * x^k."""
    group = commitment[0].group
    return group.base_mul(share) == evaluate_commitment(commitment, x)


def lagrange_coefficient(order: int, i: int, indices: Sequence[int], at: int = 0) -> int:
    """lambda_i = prod_{j != i} (at - j) / (i - j) mod `order`, for interpolation at `at`."""
    check_indices(indices, order)
    if i not in indices:
        raise InvalidInput("index not in the interpolation set")
    num = 1
    den = 1
    for j in indices:
        if j == i:
            continue
        num = num * (at - j) % order
        den = den * (i - j) % order
    return num * pow(den, -1, order) % order


def interpolate_at_zero(order: int, shares: dict[int, int]) -> int:
    """Recombine Shamir shares {index: value} into f(0). For tests and key import only."""
    indices = list(shares)
    return sum(lagrange_coefficient(order, i, indices) * v for i, v in shares.items()) % order
