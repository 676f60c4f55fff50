"""The key owner at the node layer: its execution-id binding, its storage encoding, and
`key_record` / `verify_key_record` carrying it."""

from __future__ import annotations

import pytest

from mpcnode.protocols.base import execution_id, owner_binding
from mpcnode.protocols.reshare import reshare_execution_id
from mpcnode.storage import (
    DEFAULT_TENANT,
    KeyStore,
    owner_of_store_tenant,
    store_tenant_of_owner,
)


def test_no_owner_binds_nothing_so_old_records_stay_valid() -> None:
    assert owner_binding("", "") == b""
    sid = bytes(16)
    plain = execution_id("frost-dkg", sid, "k", [1, 2, 3], 2)
    assert execution_id("frost-dkg", sid, "k", [1, 2, 3], 2, owner_binding("", "")) == plain
    ids = {
        execution_id("frost-dkg", sid, "k", [1, 2, 3], 2, owner_binding(org, tenant))
        for org, tenant in [("o", ""), ("o", "t"), ("o/", "t"), ("o", "/t"), ("p", "t"), ("", "")]
    }
    assert len(ids) == 6  # every owner gives another execution


@pytest.mark.parametrize(
    "owner",
    [("org1", ""), ("org1", "A"), ("a/b", "c/d"), ("%2F", "ü ñ/%"), ("default", ""), ("o", "-")],
)
def test_storage_tenant_encoding_is_reversible(owner: tuple[str, str]) -> None:
    name = store_tenant_of_owner(*owner)
    assert name != DEFAULT_TENANT and name.startswith("owner:")
    assert owner_of_store_tenant(name) == owner


def test_unowned_keys_use_the_default_storage_tenant() -> None:
    assert store_tenant_of_owner("", "") == DEFAULT_TENANT
    assert owner_of_store_tenant(DEFAULT_TENANT) == ("", "")
    assert owner_of_store_tenant("t1") == ("", "")
    assert owner_of_store_tenant("owner:no-separator") == ("", "")


def test_distinct_owners_get_distinct_data_keys(tmp_path: object) -> None:
    from pathlib import Path

    store = KeyStore(Path(str(tmp_path)), "mpc-0", bytes(32))
    try:
        for n, owner in enumerate([("o", ""), ("o", "A"), ("o", "B")]):
            store.put_pending(
                f"k{n}", 0, "ed25519", b"pub", b"secret", store_tenant_of_owner(*owner)
            )
        with pytest.raises(Exception, match="another tenant"):
            store.put_pending(
                "k1", 1, "ed25519", b"pub", b"secret", store_tenant_of_owner("o", "B")
            )
        owners = {s.key_id: owner_of_store_tenant(s.tenant) for s in store.pending_keys()}
        assert owners == {"k0": ("o", ""), "k1": ("o", "A"), "k2": ("o", "B")}
    finally:
        store.close()


def test_reshare_eid_binds_the_owner() -> None:
    from mpcnode.crypto.group import GROUPS
    from mpcnode.protocols.keys import PublicKeyPackage

    group = GROUPS["ed25519"]
    g = group.base_mul(1)
    package = PublicKeyPackage(
        scheme="ed25519",
        threshold=2,
        parties=(1, 2, 3),
        public_key=g,
        verifying_shares=(g, g, g),
        chain_code=bytes(32),
        generation=0,
    )
    args = (bytes(16), "k", package, [1, 2], [1, 2, 3], 2)
    assert reshare_execution_id(*args) == reshare_execution_id(*args, b"")
    assert reshare_execution_id(*args) != reshare_execution_id(*args, owner_binding("o", "A"))
    assert reshare_execution_id(*args, owner_binding("o", "A")) != reshare_execution_id(
        *args, owner_binding("o", "B")
    )
