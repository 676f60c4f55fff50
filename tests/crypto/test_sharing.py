"""mpcnode.crypto.sharing: index checks, polynomials, Feldman commitments, Shamir/Lagrange."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpcnode.crypto.group import ED25519, SECP256K1, Group
from mpcnode.crypto.sharing import (
    Polynomial,
    check_indices,
    evaluate_commitment,
    interpolate_at_zero,
    lagrange_coefficient,
    verify_share,
)
from mpcnode.errors import InvalidInput

L = ED25519.order
FEW = settings(max_examples=30, deadline=None)
GROUPS = [ED25519, SECP256K1]


@st.composite
def sharings(draw: st.DrawFn, group: Group = ED25519) -> tuple[Polynomial, list[int]]:
    """A random polynomial of degree t-1 and n >= t distinct non-zero indices."""
    t = draw(st.integers(min_value=1, max_value=5))
    n = draw(st.integers(min_value=t, max_value=7))
    indices = draw(
        st.lists(st.integers(min_value=1, max_value=2**32 - 1), min_size=n, max_size=n, unique=True)
    )
    coefficients = draw(
        st.lists(st.integers(min_value=0, max_value=group.order - 1), min_size=t, max_size=t)
    )
    return Polynomial(group, tuple(coefficients)), indices


@pytest.mark.parametrize(
    "indices",
    [[0], [1, 0, 2], [1, 1], [3, 2, 3], [1, 1 + L], [L], [2 * L, 1]],
)
def test_check_indices_rejects(indices: list[int]) -> None:
    with pytest.raises(InvalidInput):
        check_indices(indices, L)


def test_check_indices_accepts() -> None:
    check_indices([1, 2, 3, 257, 2**32 - 1], L)
    check_indices([], L)


def test_polynomial_evaluation_matches_naive() -> None:
    poly = Polynomial(ED25519, (5, 7, 11))
    for x in (0, 1, 2, 10, L - 1):
        assert poly(x) == (5 + 7 * x + 11 * x * x) % L


def test_polynomial_random() -> None:
    poly = Polynomial.random(ED25519, 2)
    assert len(poly.coefficients) == 3
    assert all(0 < a < L for a in poly.coefficients)
    fixed = Polynomial.random(ED25519, 3, constant=L + 9)
    assert fixed.coefficients[0] == 9 and fixed(0) == 9
    assert Polynomial.random(ED25519, 0, constant=4).coefficients == (4,)
    with pytest.raises(InvalidInput):
        Polynomial.random(ED25519, -1)


def test_polynomial_repr_hides_coefficients() -> None:
    poly = Polynomial.random(ED25519, 2)
    text = repr(poly) + str(poly)
    assert "degree=2" in text
    for a in poly.coefficients:
        for form in (str(a), format(a, "x"), ED25519.encode_scalar(a).hex()):
            assert form not in text


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_feldman(group: Group) -> None:
    poly = Polynomial.random(group, 2)
    commitment = poly.commit()
    assert commitment[0] == group.base_mul(poly.coefficients[0])
    for x in (1, 2, 5, 1000):
        assert evaluate_commitment(commitment, x) == group.base_mul(poly(x))
        assert verify_share(commitment, x, poly(x))
        assert not verify_share(commitment, x, poly(x) + 1)
        assert not verify_share(commitment, x + 1, poly(x))
    # A commitment vector with a different coefficient does not match.
    other = (commitment[0], commitment[1], commitment[2] + group.generator())
    assert not verify_share(other, 3, poly(3))
    with pytest.raises(InvalidInput):
        evaluate_commitment([], 1)


def test_feldman_zero_constant_term() -> None:
    """Refresh polynomials have a_0 = 0: C_0 is the identity and everything still works."""
    poly = Polynomial(ED25519, (0, 3, 4))
    commitment = poly.commit()
    assert commitment[0].is_identity
    assert verify_share(commitment, 7, poly(7))


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.name)
def test_shamir_any_t_shares_recover(group: Group) -> None:
    @FEW
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        poly, indices = data.draw(sharings(group))
        t = len(poly.coefficients)
        q = group.order
        subset = data.draw(st.permutations(indices)).__getitem__(slice(0, t))
        shares = {i: poly(i) for i in subset}
        assert interpolate_at_zero(q, shares) == poly(0)
        # Lagrange at another point recovers f there; the coefficients sum to 1.
        at = data.draw(st.integers(min_value=0, max_value=q - 1))
        value = sum(lagrange_coefficient(q, i, subset, at) * v for i, v in shares.items()) % q
        assert value == poly(at)
        assert sum(lagrange_coefficient(q, i, subset) for i in subset) % q == 1
        # Fewer than t shares of a polynomial with a non-zero top coefficient miss the secret.
        if t >= 2 and poly.coefficients[-1] != 0:
            fewer = {i: poly(i) for i in subset[: t - 1]}
            assert interpolate_at_zero(q, fewer) != poly(0)

    check()


def test_lagrange_index_checks() -> None:
    with pytest.raises(InvalidInput):
        lagrange_coefficient(L, 4, [1, 2, 3])  # not in the set
    with pytest.raises(InvalidInput):
        lagrange_coefficient(L, 1, [1, 1, 2])
    with pytest.raises(InvalidInput):
        lagrange_coefficient(L, 1, [0, 1, 2])
    with pytest.raises(InvalidInput):
        interpolate_at_zero(L, {0: 5, 1: 6})
    assert lagrange_coefficient(L, 1, [1]) == 1
    # lambda_1 over {1, 3}: 3 / (3 - 1) = 3/2 mod L.
    assert lagrange_coefficient(L, 1, [1, 3]) == 3 * pow(2, -1, L) % L
