"""Client authentication (JWT bearer tokens against a JWKS, mTLS common names) and the
authorization policy of coordinator/auth.py, with real tokens from a test issuer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import traceback
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from coordinator import auth
from coordinator.auth import (
    AuditScope,
    AuthConfig,
    Authenticator,
    KeyOwner,
    Principal,
    authorize_admin,
    authorize_audit,
    authorize_create,
    authorize_org_admin,
    authorize_use,
    list_view,
    visible_in_list,
)
from mpcnode.errors import InvalidInput, KeyNotFound, PermissionDenied, Unauthenticated
from tests.jwt_issuer import JwtIssuer, make_test_issuer, new_private_key, public_jwk

MTLS = {
    "ops-client": {"org": "org1", "roles": ["org:admin"]},
    "signer-a-client": {"org": "org1", "tenant": "A", "roles": ["tenant:signer"]},
}


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> JwtIssuer:
    return make_test_issuer(tmp_path_factory.mktemp("issuer"))


@pytest.fixture(scope="module")
def authn(issuer: JwtIssuer) -> Authenticator:
    return Authenticator(AuthConfig.from_dict(issuer.auth_config(mtls_principals=MTLS)))


def refused(authn: Authenticator, token: str, cn: str | None = None) -> Unauthenticated:
    """Authenticating with `token` fails, and the error never shows the token or a part of it."""
    with pytest.raises(Unauthenticated) as info:
        authn.authenticate([JwtIssuer.bearer(token)], cn)
    rendered = "".join(traceback.format_exception(info.value))
    for part in [token, *[p for p in token.split(".") if len(p) >= 8]]:
        assert part not in rendered
    return info.value


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], signature: bytes) -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


# ----------------------------------------------------------------- valid tokens


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_valid_token_of_each_algorithm(issuer: JwtIssuer, authn: Authenticator, alg: str) -> None:
    token = issuer.token(alg=alg, sub="alice", org="org1", tenant="A", roles=["tenant:signer"])
    p = authn.authenticate([issuer.bearer(token)], None)
    assert p == Principal("alice", "org1", "A", frozenset({"tenant:signer"}), "jwt")


def test_eddsa_jwk_is_an_okp_ed25519_key(issuer: JwtIssuer) -> None:
    jwks = json.loads(issuer.jwks_path.read_text())
    okp = [k for k in jwks["keys"] if k["kty"] == "OKP"]
    assert okp and okp[0]["crv"] == "Ed25519" and okp[0]["alg"] == "EdDSA"


def test_roles_as_space_separated_string_and_unknown_roles_ignored(
    issuer: JwtIssuer, authn: Authenticator
) -> None:
    token = issuer.token(roles="auditor  superuser tenant:signer root")
    p = authn.authenticate([issuer.bearer(token)], None)
    assert p.roles == frozenset({"auditor", "tenant:signer"})
    assert p.tenant is None  # no tenant claim: org-wide
    token = issuer.token(roles=["org:admin", "admin", 7])
    assert authn.authenticate([issuer.bearer(token)], None).roles == frozenset({"org:admin"})
    token = issuer.token(omit=["roles"])
    assert authn.authenticate([issuer.bearer(token)], None).roles == frozenset()


def test_bytes_metadata_and_case_insensitive_scheme(
    issuer: JwtIssuer, authn: Authenticator
) -> None:
    token = issuer.token()
    p = authn.authenticate([("authorization", f"bearer {token}".encode())], None)
    assert p.subject == "alice"


def test_audience_list_containing_ours(issuer: JwtIssuer, authn: Authenticator) -> None:
    token = issuer.token(claims={"aud": ["other", issuer.audience]})
    assert authn.authenticate([issuer.bearer(token)], None).org == "org1"


def test_no_kid_uses_the_single_key_of_that_type(issuer: JwtIssuer, authn: Authenticator) -> None:
    token = issuer.token(alg="EdDSA", include_kid=False)
    assert "kid" not in jwt.get_unverified_header(token)
    assert authn.authenticate([issuer.bearer(token)], None).subject == "alice"


def test_no_kid_with_two_keys_of_that_type_is_refused(tmp_path: Path) -> None:
    iss = make_test_issuer(tmp_path, algorithms=["ES256"])
    iss.add_key("ES256", "es256-2")
    a = Authenticator(AuthConfig.from_dict(iss.auth_config()))
    assert a.authenticate([iss.bearer(iss.token(kid="es256-2"))], None).subject == "alice"
    e = refused(a, iss.token(include_kid=False))
    assert "kid" in str(e)


def test_leeway_accepts_slightly_expired(issuer: JwtIssuer, authn: Authenticator) -> None:
    token = issuer.token(now=time.time() - 310, ttl=300)  # expired 10 s ago, leeway 30 s
    assert authn.authenticate([issuer.bearer(token)], None).subject == "alice"


# ----------------------------------------------------------------- refused tokens


def test_expired(issuer: JwtIssuer, authn: Authenticator) -> None:
    e = refused(authn, issuer.token(now=time.time() - 400, ttl=300))
    assert "expired" in str(e)


def test_not_yet_valid(issuer: JwtIssuer, authn: Authenticator) -> None:
    t = time.time()
    e = refused(authn, issuer.token(claims={"nbf": int(t) + 120}))
    assert "not valid yet" in str(e)
    e = refused(authn, issuer.token(now=t + 120))  # iat (and nbf) in the future
    assert "not valid yet" in str(e)


def test_wrong_issuer(issuer: JwtIssuer, authn: Authenticator) -> None:
    e = refused(authn, issuer.token(claims={"iss": "https://evil.example"}))
    assert "issuer" in str(e)


def test_wrong_audience(issuer: JwtIssuer, authn: Authenticator) -> None:
    e = refused(authn, issuer.token(claims={"aud": "another-service"}))
    assert "audience" in str(e)


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_wrong_signature_other_key_same_kid(
    issuer: JwtIssuer, authn: Authenticator, alg: str
) -> None:
    rogue = f"rogue-{alg}"
    if rogue not in issuer.keys:
        issuer.add_key(alg, rogue, published=False)
    token = issuer.token(kid=rogue, headers={"kid": issuer.kid_for(alg)})
    e = refused(authn, token)
    assert "signature" in str(e)


def test_tampered_payload(issuer: JwtIssuer, authn: Authenticator) -> None:
    h, _, s = issuer.token(org="org1").split(".")
    forged = issuer.token(org="org2").split(".")[1]
    e = refused(authn, f"{h}.{forged}.{s}")
    assert "signature" in str(e)


def test_unknown_kid(issuer: JwtIssuer, authn: Authenticator) -> None:
    e = refused(authn, issuer.token(headers={"kid": "no-such-key"}))
    assert "unknown key id" in str(e)


def test_alg_none(issuer: JwtIssuer, authn: Authenticator) -> None:
    payload = jwt.decode(issuer.token(), options={"verify_signature": False})
    for header in ({"alg": "none", "kid": "es256-1"}, {"alg": "none"}, {"alg": "None"}):
        token = hand_made(header, payload, b"")
        e = refused(authn, token)
        assert "algorithm" in str(e)
        refused(authn, token + "AAAA")


def test_hs256_signed_with_the_rsa_public_key(issuer: JwtIssuer, authn: Authenticator) -> None:
    """The classic key-confusion attack: HMAC keyed with the verifier's public key PEM."""
    payload = jwt.decode(issuer.token(), options={"verify_signature": False})
    public_pem = (
        issuer.keys["rs256-1"]
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    for header in (
        {"alg": "HS256", "typ": "JWT", "kid": "rs256-1"},
        {"alg": "HS256", "typ": "JWT"},
    ):
        h = b64(json.dumps(header).encode())
        p = b64(json.dumps(payload).encode())
        for secret in (public_pem, public_pem.strip()):
            sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
            e = refused(authn, f"{h}.{p}.{b64(sig)}")
            assert "algorithm" in str(e)


def test_algorithm_must_match_the_key(issuer: JwtIssuer, authn: Authenticator) -> None:
    """An ES256 token naming the RSA key's kid is refused before any verification."""
    token = issuer.token(alg="ES256", headers={"kid": "rs256-1"})
    e = refused(authn, token)
    assert "does not match" in str(e)


def test_algorithm_not_in_the_configured_list(issuer: JwtIssuer) -> None:
    a = Authenticator(AuthConfig.from_dict(issuer.auth_config(algorithms=["ES256"])))
    assert a.authenticate([issuer.bearer(issuer.token(alg="ES256"))], None).org == "org1"
    for alg in ("RS256", "EdDSA"):
        refused(a, issuer.token(alg=alg))


def test_crit_header_refused(issuer: JwtIssuer, authn: Authenticator) -> None:
    refused(authn, issuer.token(headers={"crit": ["exp"]}))
    refused(authn, issuer.token(headers={"crit": ["b64"], "b64": True}))


@pytest.mark.parametrize("claim", ["sub", "org", "exp", "iss", "aud"])
def test_missing_required_claim(issuer: JwtIssuer, authn: Authenticator, claim: str) -> None:
    refused(authn, issuer.token(omit=[claim]))


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": ""},
        {"sub": 42},
        {"org": ""},
        {"org": ["org1"]},
        {"org": "org\n1"},
        {"tenant": ""},
        {"tenant": 5},
        {"tenant": "x" * 129},
        {"roles": 3},
        {"roles": {"org:admin": True}},
        {"exp": "tomorrow"},
    ],
)
def test_malformed_claims(issuer: JwtIssuer, authn: Authenticator, claims: dict[str, Any]) -> None:
    refused(authn, issuer.token(claims=claims))


@pytest.mark.parametrize(
    "value",
    [
        "Bearer",
        "Bearer ",
        "Bearer garbage",
        "Bearer a.b.c",
        "Bearer e30.e30.",
        "Basic dXNlcjpwYXNz",
        "Bearer " + "A" * 20000,
        "eyJhbGciOiJFUzI1NiJ9.e30.sig",
    ],
)
def test_garbage_authorization_header(authn: Authenticator, value: str) -> None:
    with pytest.raises(Unauthenticated) as info:
        authn.authenticate([("authorization", value)], "ops-client")  # the CN does not rescue
    if len(value) > 12:
        assert value[7:] not in str(info.value)


def test_non_ascii_header(authn: Authenticator) -> None:
    with pytest.raises(Unauthenticated):
        authn.authenticate([("authorization", "Bearer é".encode())], None)


def test_two_authorization_headers(issuer: JwtIssuer, authn: Authenticator) -> None:
    token = issuer.token()
    with pytest.raises(Unauthenticated, match="more than one"):
        authn.authenticate([issuer.bearer(token), issuer.bearer(token)], None)


def test_token_text_never_in_any_error(issuer: JwtIssuer, authn: Authenticator) -> None:
    """Every refusal path above uses `refused`, which checks this; here a few more shapes."""
    for token in [
        issuer.token(now=time.time() - 4000),
        issuer.token(claims={"aud": "x"}),
        issuer.token(omit=["org"]),
        issuer.token(headers={"kid": "nope"}),
        issuer.token() + "x",
        issuer.token()[:-8],
    ]:
        refused(authn, token)


# ----------------------------------------------------------------- mTLS and precedence


def test_no_credentials(authn: Authenticator) -> None:
    with pytest.raises(Unauthenticated):
        authn.authenticate([], None)
    with pytest.raises(Unauthenticated):
        authn.authenticate([("x-other", "1")], "unmapped-client")
    with pytest.raises(Unauthenticated):
        authn.authenticate(None, "mpc-0")  # a node's certificate is not a client identity


def test_mapped_common_name(authn: Authenticator) -> None:
    p = authn.authenticate([("x-request-id", "7")], "ops-client")
    assert p == Principal("mtls:ops-client", "org1", None, frozenset({"org:admin"}), "mtls")
    p = authn.authenticate([], "signer-a-client")
    assert (p.org, p.tenant, p.roles) == ("org1", "A", frozenset({"tenant:signer"}))


def test_token_beats_common_name(issuer: JwtIssuer, authn: Authenticator) -> None:
    token = issuer.token(sub="bob", org="org2", tenant="Z", roles=["auditor"])
    p = authn.authenticate([issuer.bearer(token)], "ops-client")
    assert (p.subject, p.org, p.tenant, p.via) == ("bob", "org2", "Z", "jwt")
    # a bad token is refused even over a channel whose certificate maps to a principal
    refused(authn, issuer.token(now=time.time() - 4000), cn="ops-client")


def test_mtls_only_config_refuses_tokens(issuer: JwtIssuer) -> None:
    a = Authenticator(AuthConfig.from_dict({"mtls_principals": MTLS}))
    assert a.authenticate([], "ops-client").via == "mtls"
    refused(a, issuer.token())


# ----------------------------------------------------------------- JWKS rotation


def test_jwks_reload_on_change(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "JWKS_RECHECK_SECONDS", 0.0)
    iss = make_test_issuer(tmp_path, algorithms=["EdDSA"])
    a = Authenticator(AuthConfig.from_dict(iss.auth_config()))
    old = iss.token()
    assert a.authenticate([iss.bearer(old)], None)
    iss.add_key("EdDSA", "eddsa-2", published=False, write=True)
    new = iss.token(kid="eddsa-2")
    refused(a, new)
    iss.keys["eddsa-2"].published = True
    iss.keys["eddsa-1"].published = False  # rotate the old key out
    iss.write_jwks()
    assert a.authenticate([iss.bearer(new)], None).subject == "alice"
    refused(a, old)
    iss.jwks_path.write_text("{ not json")  # a broken update keeps the keys in force
    assert a.authenticate([iss.bearer(new)], None).subject == "alice"


# ----------------------------------------------------------------- configuration


def write_jwks(tmp_path: Path, keys: list[dict[str, Any]]) -> str:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


def cfg(jwks_file: str, **extra: Any) -> dict[str, Any]:
    return {"jwks_file": jwks_file, "issuer": "i", "audience": "a", **extra}


@pytest.mark.parametrize(
    "extra",
    [
        {"algorithms": ["none"]},
        {"algorithms": ["RS256", "HS256"]},
        {"algorithms": ["HS512"]},
        {"algorithms": []},
        {"algorithms": "RS256"},
        {"leeway_seconds": -1},
        {"leeway_seconds": 3600},
        {"leeway_seconds": "30"},
        {"claims": {"org": ""}},
        {"claims": {"subject": "sub"}},
        {"mtls_principals": {"c": {"roles": ["org:admin"]}}},
        {"mtls_principals": {"c": {"org": "o", "roles": ["org:admn"]}}},
        {"mtls_principals": {"c": {"org": "o", "tenant": ""}}},
        {"unknown_field": 1},
    ],
)
def test_bad_config(issuer: JwtIssuer, extra: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="bad auth config"):
        AuthConfig.from_dict(cfg(str(issuer.jwks_path), **extra))


def test_config_needs_issuer_audience_or_mtls(issuer: JwtIssuer) -> None:
    with pytest.raises(InvalidInput, match="issuer"):
        AuthConfig.from_dict({"jwks_file": str(issuer.jwks_path), "audience": "a"})
    with pytest.raises(InvalidInput, match="audience"):
        AuthConfig.from_dict({"jwks_file": str(issuer.jwks_path), "issuer": "i"})
    with pytest.raises(InvalidInput, match="jwks_file"):
        AuthConfig.from_dict({})
    with pytest.raises(InvalidInput):
        AuthConfig.from_dict(["not", "an", "object"])


def test_relative_jwks_path_and_defaults(issuer: JwtIssuer) -> None:
    c = AuthConfig.from_dict(
        {"jwks_file": "jwks.json", "issuer": "i", "audience": "a"}, base_dir=issuer.directory
    )
    assert c.jwks_file == issuer.jwks_path
    assert c.algorithms == ("RS256", "ES256", "EdDSA") and c.leeway_seconds == 30
    assert (c.org_claim, c.tenant_claim, c.roles_claim) == ("org", "tenant", "roles")
    Authenticator(c)


def test_custom_claim_names(issuer: JwtIssuer) -> None:
    a = Authenticator(
        AuthConfig.from_dict(
            issuer.auth_config(claims={"org": "https://mpc/org", "tenant": "tid", "roles": "scope"})
        )
    )
    token = issuer.token(
        org=None, roles=[], claims={"https://mpc/org": "o9", "tid": "T", "scope": "auditor x"}
    )
    p = a.authenticate([issuer.bearer(token)], None)
    assert (p.org, p.tenant, p.roles) == ("o9", "T", frozenset({"auditor"}))


def test_bad_jwks_files(tmp_path: Path) -> None:
    rsa_small = public_jwk(_small_rsa(), "small", "RS256")
    ed = public_jwk(new_private_key("EdDSA"), "ed", "EdDSA")
    private_ed = dict(ed, d=b64(b"\x01" * 32))
    cases: list[tuple[Any, str]] = [
        ([{"kty": "oct", "k": b64(b"secret"), "kid": "h"}], "symmetric"),
        ([private_ed], "private"),
        ([ed, dict(ed)], "two keys"),
        ([rsa_small], "2048"),
        ([], "no usable"),
        ([dict(ed, use="enc")], "no usable"),
        ([dict(ed, alg="HS256")], "no usable"),
        ([{"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "bad"}], "not a usable"),
        (["nope"], "not an object"),
    ]
    for keys, message in cases:
        path = write_jwks(tmp_path, keys)
        with pytest.raises(InvalidInput, match=message):
            Authenticator(AuthConfig.from_dict(cfg(path)))
    (tmp_path / "jwks.json").write_text("not json")
    with pytest.raises(InvalidInput, match="JSON"):
        Authenticator(AuthConfig.from_dict(cfg(str(tmp_path / "jwks.json"))))
    with pytest.raises(InvalidInput, match="cannot read"):
        Authenticator(AuthConfig.from_dict(cfg(str(tmp_path / "missing.json"))))


def _small_rsa() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


# ----------------------------------------------------------------- the policy


def P(org: str, tenant: str | None, *roles: str) -> Principal:
    return Principal(f"{org}/{tenant}/{'+'.join(roles)}", org, tenant, frozenset(roles), "jwt")


ADMIN, SIGNER, AUDITOR = "org:admin", "tenant:signer", "auditor"
PRINCIPALS = {
    "admin": P("org1", None, ADMIN),  # org-wide admin
    "orgsigner": P("org1", None, SIGNER),  # org-wide signer
    "auditor": P("org1", None, AUDITOR),  # org-wide auditor
    "signerA": P("org1", "A", SIGNER),
    "signerB": P("org1", "B", SIGNER),
    "adminA": P("org1", "A", ADMIN),
    "auditorA": P("org1", "A", AUDITOR),
    "nobodyA": P("org1", "A"),  # authenticated, no known role
    "org2signerA": P("org2", "A", SIGNER),  # same tenant name, other org
}
KEYS = {
    "root1": KeyOwner("org1", ""),
    "key1A": KeyOwner("org1", "A"),
    "key1B": KeyOwner("org1", "B"),
    "key2A": KeyOwner("org2", "A"),
}
REQUESTS = {"self": ("", ""), "t=A": ("A", ""), "t=B": ("B", ""), "path": ("", "m/0/1")}

# One row per (principal, key): for each request (self, t=A, t=B, path) the outcomes of
# (sign, derive, read): + allowed, N KeyNotFound (may not know it exists), P PermissionDenied.
USE_TABLE = """
admin        root1   PP+ PP+ PP+ PP+
admin        key1A   PP+ PP+ PP+ PP+
admin        key1B   PP+ PP+ PP+ PP+
admin        key2A   NNN NNN NNN NNN
orgsigner    root1   +++ +++ +++ +++
orgsigner    key1A   +++ +++ +++ +++
orgsigner    key1B   +++ +++ +++ +++
orgsigner    key2A   NNN NNN NNN NNN
auditor      root1   PP+ PP+ PP+ PP+
auditor      key1A   PP+ PP+ PP+ PP+
auditor      key1B   PP+ PP+ PP+ PP+
auditor      key2A   NNN NNN NNN NNN
signerA      root1   NNN +++ NNN NNN
signerA      key1A   +++ +++ PPP +++
signerA      key1B   NNN NNN NNN NNN
signerA      key2A   NNN NNN NNN NNN
signerB      root1   NNN NNN +++ NNN
signerB      key1A   NNN NNN NNN NNN
signerB      key1B   +++ PPP +++ +++
signerB      key2A   NNN NNN NNN NNN
adminA       root1   NNN PP+ NNN NNN
adminA       key1A   PP+ PP+ PPP PP+
adminA       key1B   NNN NNN NNN NNN
adminA       key2A   NNN NNN NNN NNN
auditorA     root1   NNN PP+ NNN NNN
auditorA     key1A   PP+ PP+ PPP PP+
auditorA     key1B   NNN NNN NNN NNN
auditorA     key2A   NNN NNN NNN NNN
nobodyA      root1   NNN PPP NNN NNN
nobodyA      key1A   PPP PPP PPP PPP
nobodyA      key1B   NNN NNN NNN NNN
nobodyA      key2A   NNN NNN NNN NNN
org2signerA  root1   NNN NNN NNN NNN
org2signerA  key1A   NNN NNN NNN NNN
org2signerA  key1B   NNN NNN NNN NNN
org2signerA  key2A   +++ +++ PPP +++
"""


def _use_cells() -> list[tuple[str, str, str, str, str]]:
    cells = []
    for line in USE_TABLE.strip().splitlines():
        who, key, *outcomes = line.split()
        assert len(outcomes) == len(REQUESTS)
        for request, triple in zip(REQUESTS, outcomes, strict=True):
            for action, outcome in zip(("sign", "derive", "read"), triple, strict=True):
                cells.append((who, key, request, action, outcome))
    return cells


USE_CELLS = _use_cells()


def test_use_table_is_complete() -> None:
    seen = {(w, k, r, a) for w, k, r, a, _ in USE_CELLS}
    assert len(seen) == len(USE_CELLS) == len(PRINCIPALS) * len(KEYS) * len(REQUESTS) * 3


@pytest.mark.parametrize(("who", "key", "request_", "action", "outcome"), USE_CELLS)
def test_authorize_use(who: str, key: str, request_: str, action: Any, outcome: str) -> None:
    principal, owner = PRINCIPALS[who], KEYS[key]
    tenant, path = REQUESTS[request_]
    if outcome == "+":
        assert authorize_use(principal, owner, tenant, path, action, key_id="k") == (tenant, path)
    elif outcome == "N":
        with pytest.raises(KeyNotFound) as info:
            authorize_use(principal, owner, tenant, path, action, key_id="k")
        assert str(info.value) == "no key 'k'"  # the text of a key that does not exist
    else:
        with pytest.raises(PermissionDenied):
            authorize_use(principal, owner, tenant, path, action, key_id="k")


def test_tenant_cannot_sign_derive_or_see_another_tenants_key() -> None:
    """The issue's acceptance rule, spelled out."""
    a = PRINCIPALS["signerA"]
    for owner, tenant in [
        (KEYS["key1B"], ""),  # B's own key
        (KEYS["key1B"], "A"),  # ... even asking for A's child of it
        (KEYS["root1"], "B"),  # B's child of the org root
        (KEYS["root1"], ""),  # the org root itself
        (KEYS["key2A"], ""),  # a key of tenant "A" of another org
    ]:
        for action in ("sign", "derive", "read"):
            with pytest.raises(KeyNotFound):
                authorize_use(a, owner, tenant, "", action)
        assert owner == KEYS["root1"] or not visible_in_list(a, owner)
        with pytest.raises(KeyNotFound):
            authorize_admin(a, owner)


ADMIN_TABLE = """
            root1 key1A key1B key2A
admin       +     +     +     N
orgsigner   P     P     P     N
auditor     P     P     P     N
signerA     N     P     N     N
signerB     N     N     P     N
adminA      N     +     N     N
auditorA    N     P     N     N
nobodyA     N     P     N     N
org2signerA N     N     N     P
"""


def _table(text: str) -> list[tuple[str, str, str]]:
    header, *rows = text.strip().splitlines()
    columns = header.split()
    return [
        (who, col, cell)
        for who, *cells in (row.split() for row in rows)
        for col, cell in zip(columns, cells, strict=True)
    ]


@pytest.mark.parametrize(("who", "key", "outcome"), _table(ADMIN_TABLE))
def test_authorize_admin(who: str, key: str, outcome: str) -> None:
    principal, owner = PRINCIPALS[who], KEYS[key]
    if outcome == "+":
        authorize_admin(principal, owner, key_id="k")
    else:
        with pytest.raises(KeyNotFound if outcome == "N" else PermissionDenied):
            authorize_admin(principal, owner, key_id="k")


CREATE_TABLE = """
            ""         A          B
admin       org1/      org1/A     org1/B
orgsigner   P          P          P
auditor     P          P          P
signerA     P          P          P
adminA      org1/A     org1/A     P
auditorA    P          P          P
nobodyA     P          P          P
org2signerA P          P          P
"""


@pytest.mark.parametrize(("who", "tenant", "outcome"), _table(CREATE_TABLE))
def test_authorize_create(who: str, tenant: str, outcome: str) -> None:
    tenant = "" if tenant == '""' else tenant
    if outcome == "P":
        with pytest.raises(PermissionDenied):
            authorize_create(PRINCIPALS[who], tenant)
    else:
        org, _, owner_tenant = outcome.partition("/")
        assert authorize_create(PRINCIPALS[who], tenant) == KeyOwner(org, owner_tenant)


def test_create_refuses_a_malformed_tenant() -> None:
    with pytest.raises(InvalidInput):
        authorize_create(PRINCIPALS["admin"], "bad\x00tenant")


LIST_TABLE = """
            root1 key1A key1B key2A
admin       self  self  self  -
orgsigner   self  self  self  -
auditor     self  self  self  -
signerA     A     self  -     -
signerB     B     -     self  -
adminA      A     self  -     -
auditorA    A     self  -     -
nobodyA     -     -     -     -
org2signerA -     -     -     self
"""


@pytest.mark.parametrize(("who", "key", "outcome"), _table(LIST_TABLE))
def test_list_view(who: str, key: str, outcome: str) -> None:
    expected = {"self": "", "-": None}.get(outcome, outcome)
    principal, owner = PRINCIPALS[who], KEYS[key]
    assert list_view(principal, owner) == expected
    assert visible_in_list(principal, owner) == (expected is not None)
    if expected is not None:  # what the list shows, GetKey ("read") also allows
        authorize_use(principal, owner, expected, "", "read")


def test_authorize_audit() -> None:
    assert authorize_audit(PRINCIPALS["auditor"]) == AuditScope("org1", None)
    assert authorize_audit(PRINCIPALS["auditorA"]) == AuditScope("org1", "A")
    for who in ("admin", "orgsigner", "signerA", "adminA", "nobodyA"):
        with pytest.raises(PermissionDenied):
            authorize_audit(PRINCIPALS[who])


def test_authorize_org_admin() -> None:
    assert authorize_org_admin(PRINCIPALS["admin"]) == "org1"
    for who in ("adminA", "orgsigner", "auditor", "signerA"):
        with pytest.raises(PermissionDenied):
            authorize_org_admin(PRINCIPALS[who])


def test_admin_with_signer_role_signs() -> None:
    both = P("org1", None, ADMIN, SIGNER)
    assert authorize_use(both, KEYS["key1B"], "", "", "sign") == ("", "")
    authorize_admin(both, KEYS["root1"])


def test_end_to_end_token_to_decision(issuer: JwtIssuer, authn: Authenticator) -> None:
    """Real tokens through authenticate and the policy: A signs under its child of the org
    root, B's child and B's key are NOT_FOUND to A, and A's token cannot create keys."""
    a = authn.authenticate(
        [issuer.bearer(issuer.token(org="org1", tenant="A", roles=["tenant:signer"]))], None
    )
    assert authorize_use(a, KEYS["root1"], "A", "", "sign") == ("A", "")
    for owner, tenant in [(KEYS["root1"], "B"), (KEYS["key1B"], "")]:
        with pytest.raises(KeyNotFound):
            authorize_use(a, owner, tenant, "", "sign")
    with pytest.raises(PermissionDenied):
        authorize_create(a, "A")
    admin = authn.authenticate([issuer.bearer(issuer.token(alg="EdDSA", roles="org:admin"))], None)
    assert authorize_create(admin, "B") == KeyOwner("org1", "B")
    with pytest.raises(PermissionDenied):
        authorize_use(admin, KEYS["key1B"], "", "", "sign")
