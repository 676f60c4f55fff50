"""Fixtures of the zero-knowledge proof tests (the data itself is in _setup.py)."""

from __future__ import annotations

import pytest

from tests.crypto.zk._setup import (
    MALFORMED_LISTS,
    Keys,
    force_alpha,
    keys,
    malformed_names,
    proof_field_names,
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize the shared suite (`_setup.ProofSuite` and mixins) from its class attributes."""
    cls = metafunc.cls
    names = metafunc.fixturenames
    if cls is None:
        return
    if "malformed" in names:
        points = cls.N_POINTS
        metafunc.parametrize(
            "malformed", MALFORMED_LISTS if points is None else malformed_names(points)
        )
    if "proof_field" in names:
        metafunc.parametrize("proof_field", proof_field_names(cls.PROOF))
    if "statement_value" in names:
        metafunc.parametrize("statement_value", cls.STATEMENT)


@pytest.fixture(scope="module", name="keys")
def keys_fixture() -> Keys:
    """The production-size keys and ring-Pedersen parameters, built once per session."""
    return keys()


@pytest.fixture
def forced_alpha(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The prover's next α ← I(2^(ℓ+ε)): push a value to choose it (see `force_alpha`)."""
    return force_alpha(monkeypatch)
