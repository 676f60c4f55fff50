"""Who is calling the coordinator, and what they may do with which key.

Two parts, both free of gRPC so they can be tested on their own:

* `Authenticator` turns a call's metadata and its mTLS peer into a `Principal`: a JWT bearer
  token (``authorization: Bearer <jwt>``) verified against a configured JWKS file (signature,
  ``iss``, ``aud``, ``exp``, ``nbf``/``iat`` with leeway; RS*/PS*/ES*/EdDSA only, never
  ``none`` or HMAC), or, without a token, a client-certificate common name listed in the
  configuration. Anything else is `Unauthenticated`. A token, when present, always wins: the
  certificate then only proves the channel. Error messages never contain the token.
* The policy functions (`authorize_create`, `authorize_admin`, `authorize_use`,
  `visible_in_list`, `list_view`, `authorize_audit`, `authorize_org_admin`) are pure. A key is
  owned by ``KeyOwner(org, tenant)``; tenant ``""`` is an org root key. `KeyNotFound` means
  "you may not even learn that it exists" (another org, another tenant), `PermissionDenied`
  means "you can see it but your roles do not allow this".

Visibility for a tenant-scoped principal (token with a tenant claim) of tenant T in org O:

* keys owned by (O, T): visible, at any path (or T's own tenant child);
* the org root keys (O, ""): visible *only* through T's tenant child (``tenant=T``, no path);
  the root itself, an explicit path under it, or another tenant's child is NOT_FOUND;
* keys of another tenant (O, U) and every key of another org: NOT_FOUND.

An org-wide principal (no tenant claim) sees every key of its org at any path or tenant.
Roles: ``org:admin`` creates keys and reshares, ``tenant:signer`` signs and derives,
``auditor`` reads the audit log; any of the three may read (GetKey/ListKeys) what it sees.
``org:admin`` alone does not sign (least privilege).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt import PyJWK
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    MissingRequiredClaimError,
    PyJWTError,
)

from mpcnode.crypto import hd
from mpcnode.errors import (
    InvalidInput,
    KeyNotFound,
    PermissionDenied,
    Unauthenticated,
)

log = logging.getLogger("coordinator.auth")

ROLE_ADMIN = "org:admin"
ROLE_SIGNER = "tenant:signer"
ROLE_AUDITOR = "auditor"
KNOWN_ROLES = frozenset({ROLE_ADMIN, ROLE_SIGNER, ROLE_AUDITOR})
"""Roles a credential can grant; any other role string is ignored."""

SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Asymmetric JWS algorithms a configuration may allow. Never ``none``, never HMAC (HS*):
a shared secret would let anyone who can verify tokens also mint them."""
DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")
DEFAULT_LEEWAY_SECONDS = 30
MAX_LEEWAY_SECONDS = 300
MAX_TOKEN_LENGTH = 16 * 1024
"""Longer bearer tokens are refused before any parsing."""
MIN_RSA_BITS = 2048
JWKS_RECHECK_SECONDS = 1.0
"""How often (at most) the JWKS file's mtime is checked for a rotation."""
MAX_NAME_LENGTH = 256
"""Upper bound of a subject, org or mTLS common name."""

_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_INFERRED_ALGORITHM: dict[tuple[object, object], str] = {
    ("RSA", None): "RS256",
    ("EC", "P-256"): "ES256",
    ("OKP", "Ed25519"): "EdDSA",
}

Via = Literal["jwt", "mtls"]
Action = Literal["sign", "derive", "read"]


# --- identities ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `tenant` None: org-wide; else confined to that tenant."""

    subject: str
    org: str
    tenant: str | None
    roles: frozenset[str]
    via: Via

    def has(self, role: str) -> bool:
        return role in self.roles


class KeyOwner(NamedTuple):
    """Who owns a key: an org and a tenant of it ("" for an org root key)."""

    org: str
    tenant: str = ""


class AuditScope(NamedTuple):
    """The audit-log entries an auditor may read: its org, and only its tenant if scoped."""

    org: str
    tenant: str | None


@dataclass(frozen=True)
class MtlsIdentity:
    """What a configured client-certificate common name stands for."""

    org: str
    tenant: str | None
    roles: frozenset[str]


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthConfig:
    """The coordinator config's ``"auth"`` object.

    ```json
    "auth": {
      "jwks_file": "jwks.json", "issuer": "https://idp.example", "audience": "mpc-coordinator",
      "algorithms": ["RS256", "ES256", "EdDSA"], "leeway_seconds": 30,
      "claims": {"org": "org", "tenant": "tenant", "roles": "roles"},
      "mtls_principals": {"ops-client": {"org": "acme", "roles": ["org:admin"]}}
    }
    ```
    `jwks_file` (with `issuer` and `audience`) or `mtls_principals` (or both) must be given.
    """

    jwks_file: Path | None = None
    issuer: str | None = None
    audience: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS
    mtls_principals: Mapping[str, MtlsIdentity] = field(default_factory=dict)
    org_claim: str = "org"
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"

    @classmethod
    def from_dict(cls, raw: Any, base_dir: str | Path | None = None) -> AuthConfig:
        """Parse and check the ``"auth"`` object; a relative `jwks_file` is taken relative to
        `base_dir` when given (e.g. the config file's directory). Errors: InvalidInput."""
        try:
            return cls._parse(raw, base_dir)
        except InvalidInput:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InvalidInput(f"bad auth config: {exc.__class__.__name__}: {exc}") from None

    @classmethod
    def _parse(cls, raw: Any, base_dir: str | Path | None) -> AuthConfig:
        if not isinstance(raw, Mapping):
            raise InvalidInput("bad auth config: 'auth' must be an object")
        known = {
            "jwks_file", "issuer", "audience", "algorithms", "leeway_seconds",
            "mtls_principals", "claims",
        }  # fmt: skip
        unknown = sorted(set(raw) - known)
        if unknown:
            raise InvalidInput(f"bad auth config: unknown field(s) {unknown}")

        jwks_file: Path | None = None
        issuer = audience = None
        if raw.get("jwks_file") is not None:
            jwks_file = Path(_string(raw["jwks_file"], "jwks_file"))
            if base_dir is not None and not jwks_file.is_absolute():
                jwks_file = Path(base_dir) / jwks_file
            issuer = _string(raw.get("issuer"), "issuer")
            audience = _string(raw.get("audience"), "audience")

        algorithms = raw.get("algorithms", list(DEFAULT_ALGORITHMS))
        if not isinstance(algorithms, list) or not algorithms:
            raise InvalidInput("bad auth config: algorithms must be a non-empty list")
        for alg in algorithms:
            if not isinstance(alg, str) or alg not in SUPPORTED_ALGORITHMS:
                raise InvalidInput(
                    f"bad auth config: algorithm {alg!r} is not accepted "
                    f"(allowed: {sorted(SUPPORTED_ALGORITHMS)}; never 'none' or HS*)"
                )

        leeway = raw.get("leeway_seconds", DEFAULT_LEEWAY_SECONDS)
        if isinstance(leeway, bool) or not isinstance(leeway, int):
            raise InvalidInput("bad auth config: leeway_seconds must be an integer")
        if not 0 <= leeway <= MAX_LEEWAY_SECONDS:
            raise InvalidInput(f"bad auth config: leeway_seconds must be 0..{MAX_LEEWAY_SECONDS}")

        claims = raw.get("claims", {})
        if not isinstance(claims, Mapping) or set(claims) - {"org", "tenant", "roles"}:
            raise InvalidInput("bad auth config: claims may only name 'org', 'tenant', 'roles'")
        names = {k: _string(claims.get(k, k), f"claims.{k}") for k in ("org", "tenant", "roles")}

        principals: dict[str, MtlsIdentity] = {}
        mtls = raw.get("mtls_principals", {})
        if not isinstance(mtls, Mapping):
            raise InvalidInput("bad auth config: mtls_principals must be an object")
        for cn, entry in mtls.items():
            principals[_string(cn, "mtls_principals key")] = _mtls_identity(cn, entry)

        if jwks_file is None and not principals:
            raise InvalidInput(
                "bad auth config: give jwks_file (with issuer, audience) or mtls_principals"
            )
        return cls(
            jwks_file=jwks_file,
            issuer=issuer,
            audience=audience,
            algorithms=tuple(dict.fromkeys(algorithms)),
            leeway_seconds=leeway,
            mtls_principals=principals,
            org_claim=names["org"],
            tenant_claim=names["tenant"],
            roles_claim=names["roles"],
        )


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"bad auth config: {what} must be a non-empty string")
    return value


def _mtls_identity(cn: str, entry: Any) -> MtlsIdentity:
    if not isinstance(entry, Mapping) or set(entry) - {"org", "tenant", "roles"}:
        raise InvalidInput(f"bad auth config: mtls_principals[{cn!r}] takes org, tenant, roles")
    org = _name(entry.get("org"))
    tenant = entry.get("tenant")
    if org is None:
        raise InvalidInput(f"bad auth config: mtls_principals[{cn!r}].org must be a name")
    if tenant is not None and _tenant(tenant) is None:
        raise InvalidInput(f"bad auth config: mtls_principals[{cn!r}].tenant is not a tenant id")
    roles = entry.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidInput(f"bad auth config: mtls_principals[{cn!r}].roles must be a list")
    unknown = sorted(set(roles) - KNOWN_ROLES)
    if unknown:  # a typo in our own config is an error, not a silently missing right
        raise InvalidInput(f"bad auth config: mtls_principals[{cn!r}] has unknown roles {unknown}")
    return MtlsIdentity(org, tenant, frozenset(roles))


def _name(value: Any) -> str | None:
    """A subject/org/CN: a non-empty string without control characters, or None."""
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_LENGTH:
        return None
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return None
    return value


def _tenant(value: Any) -> str | None:
    """A tenant id by the rule of `hd.tenant_path` (1-128 characters, no control
    characters), or None."""
    try:
        hd.tenant_path(value)
    except InvalidInput:
        return None
    return str(value)


# --- the JWKS --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _KeySet:
    by_kid: Mapping[str, PyJWK]
    keys: tuple[PyJWK, ...]


def parse_jwks(text: str | bytes, algorithms: Iterable[str]) -> _KeySet:
    """The verification keys of a JWKS document. Refused (InvalidInput): private or symmetric
    keys, duplicate kids, RSA under 2048 bits, no usable key. Skipped with a warning: keys
    for other uses (``use`` not ``sig``) or for algorithms not allowed."""
    allowed = set(algorithms)
    try:
        doc = json.loads(text)
    except ValueError:
        raise InvalidInput("JWKS is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise InvalidInput("JWKS must be an object with a 'keys' list")
    by_kid: dict[str, PyJWK] = {}
    keys: list[PyJWK] = []
    for n, jwk_data in enumerate(doc["keys"]):
        where = f"JWKS key #{n}"
        if not isinstance(jwk_data, dict):
            raise InvalidInput(f"{where} is not an object")
        kid = jwk_data.get("kid")
        if kid is not None:
            if not isinstance(kid, str) or not kid:
                raise InvalidInput(f"{where}: kid must be a non-empty string")
            where = f"JWKS key {kid!r}"
        kty = jwk_data.get("kty")
        if kty == "oct":
            raise InvalidInput(f"{where} is a symmetric key; only public keys are accepted")
        private = sorted(_PRIVATE_JWK_MEMBERS & set(jwk_data))
        if private:
            raise InvalidInput(f"{where} holds private key members {private}: publish public keys")
        if jwk_data.get("use", "sig") != "sig" or (
            "key_ops" in jwk_data and "verify" not in (jwk_data.get("key_ops") or [])
        ):
            log.warning("%s skipped: not a signature-verification key", where)
            continue
        alg = jwk_data.get("alg")
        if alg is None:
            crv = jwk_data.get("crv") if kty != "RSA" else None
            alg = _INFERRED_ALGORITHM.get((kty, crv))
        if not isinstance(alg, str) or alg not in allowed:
            log.warning("%s skipped: its algorithm %r is not allowed", where, alg)
            continue
        try:
            key = PyJWK(jwk_data, alg)
        except PyJWTError as exc:
            raise InvalidInput(f"{where} is not a usable {alg} key: {exc}") from None
        if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
            raise InvalidInput(f"{where}: RSA keys need at least {MIN_RSA_BITS} bits")
        if kid is not None:
            if kid in by_kid:
                raise InvalidInput(f"JWKS has two keys with kid {kid!r}")
            by_kid[kid] = key
        keys.append(key)
    if not keys:
        raise InvalidInput("JWKS holds no usable signature key for the allowed algorithms")
    return _KeySet(by_kid, tuple(keys))


class _JwksFile:
    """The JWKS file, re-read when its mtime/size/inode changes (key rotation). A new version
    that does not parse is logged and the previous keys stay in force."""

    def __init__(self, path: Path, algorithms: Sequence[str]) -> None:
        self._path = path
        self._algorithms = tuple(algorithms)
        self._lock = threading.Lock()
        try:
            stamp = self._stamp()
            self._keys = parse_jwks(path.read_bytes(), self._algorithms)
        except OSError as exc:
            raise InvalidInput(f"cannot read JWKS file {path}: {exc.strerror}") from None
        except InvalidInput as exc:
            raise InvalidInput(f"bad JWKS file {path}: {exc}") from None
        self._loaded = stamp
        self._checked = time.monotonic()

    def _stamp(self) -> tuple[int, int, int]:
        st = self._path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def current(self) -> _KeySet:
        now = time.monotonic()
        if now - self._checked < JWKS_RECHECK_SECONDS:
            return self._keys
        with self._lock:
            if now - self._checked < JWKS_RECHECK_SECONDS:
                return self._keys
            self._checked = now
            try:
                stamp = self._stamp()
                if stamp != self._loaded:
                    self._keys = parse_jwks(self._path.read_bytes(), self._algorithms)
                    self._loaded = stamp
                    log.info("JWKS reloaded from %s (%d keys)", self._path, len(self._keys.keys))
            except (OSError, InvalidInput) as exc:
                log.warning("JWKS file %s not reloaded, keeping the old keys: %s", self._path, exc)
                # retried on the next check: _loaded still names the old version
        return self._keys


# --- authentication --------------------------------------------------------------------------


_TOKEN_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (ExpiredSignatureError, "bearer token has expired"),
    (ImmatureSignatureError, "bearer token is not valid yet"),
    (InvalidAudienceError, "bearer token is not for this audience"),
    (InvalidIssuerError, "bearer token is from an issuer that is not accepted"),
    (InvalidIssuedAtError, "bearer token has a malformed iat claim"),
    (InvalidSubjectError, "bearer token has a malformed sub claim"),
    (MissingRequiredClaimError, "bearer token lacks a required claim"),
    (InvalidAlgorithmError, "bearer token algorithm is not accepted"),
    (InvalidSignatureError, "bearer token signature does not verify"),
    (DecodeError, "bearer token is malformed"),
    (InvalidTokenError, "bearer token is not valid"),
)


class Authenticator:
    """Turns a call's credentials into a `Principal` (thread-safe)."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self._jwks = (
            _JwksFile(config.jwks_file, config.algorithms) if config.jwks_file is not None else None
        )

    def authenticate(
        self,
        metadata: Sequence[tuple[str, str | bytes]] | None,
        peer_common_name: str | None,
    ) -> Principal:
        """The caller of a call with this invocation metadata over a TLS channel whose client
        certificate has this common name (None: no certificate or none to trust).

        A bearer token in ``authorization`` decides alone (valid → its principal, else
        Unauthenticated); without one the common name must be listed in `mtls_principals`.
        """
        values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
        if len(values) > 1:
            raise Unauthenticated("more than one authorization header")
        if values:
            return self._from_token(_bearer_token(values[0]))
        if peer_common_name is not None:
            identity = self.config.mtls_principals.get(peer_common_name)
            if identity is not None:
                return Principal(
                    subject=f"mtls:{peer_common_name}",
                    org=identity.org,
                    tenant=identity.tenant,
                    roles=identity.roles,
                    via="mtls",
                )
            log.info("client certificate %r maps to no principal", peer_common_name[:64])
        raise Unauthenticated("no credentials: send 'authorization: Bearer <token>'")

    def _from_token(self, token: str) -> Principal:
        if self._jwks is None:
            raise Unauthenticated("bearer tokens are not accepted here (no JWKS configured)")
        try:
            claims = self._verify(token)
        except Unauthenticated:
            raise
        except Exception as exc:  # PyJWT, cryptography and json raise many kinds
            log.info("bearer token refused: %s", exc.__class__.__name__)
            raise Unauthenticated(_token_error_message(exc)) from None
        return self._principal(claims)

    def _verify(self, token: str) -> dict[str, Any]:
        assert self._jwks is not None
        header = jwt.get_unverified_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise Unauthenticated("bearer token algorithm is not accepted")
        if "crit" in header or "b64" in header:
            raise Unauthenticated("bearer token uses JWS extensions that are not accepted")
        keys = self._jwks.current()
        kid = header.get("kid")
        if kid is not None:
            if not isinstance(kid, str) or kid not in keys.by_kid:
                raise Unauthenticated("bearer token names an unknown key id")
            key = keys.by_kid[kid]
        else:
            candidates = [k for k in keys.keys if k.algorithm_name == alg]
            if len(candidates) != 1:
                raise Unauthenticated("bearer token has no kid and no single key matches it")
            key = candidates[0]
        if key.algorithm_name != alg:  # a key is only ever used with its own algorithm
            raise Unauthenticated("bearer token algorithm does not match its key")
        claims: dict[str, Any] = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=self.config.audience,
            issuer=self.config.issuer,
            leeway=self.config.leeway_seconds,
            options={"require": ["exp", "iss", "aud", "sub"], "strict_aud": False},
        )
        return claims

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = _name(claims.get("sub"))
        if subject is None:
            raise Unauthenticated("bearer token has a missing or malformed sub claim")
        org = _name(claims.get(self.config.org_claim))
        if org is None:
            raise Unauthenticated(
                f"bearer token has a missing or malformed {self.config.org_claim!r} claim"
            )
        raw_tenant = claims.get(self.config.tenant_claim)
        tenant: str | None = None
        if raw_tenant is not None:
            # an empty or malformed tenant is refused, never widened to org-wide
            tenant = _tenant(raw_tenant)
            if tenant is None:
                raise Unauthenticated(
                    f"bearer token has a malformed {self.config.tenant_claim!r} claim"
                )
        raw_roles = claims.get(self.config.roles_claim, [])
        if isinstance(raw_roles, str):
            roles_list: list[Any] = raw_roles.split()
        elif isinstance(raw_roles, list):
            roles_list = raw_roles
        else:
            raise Unauthenticated(f"bearer token has a malformed {self.config.roles_claim!r} claim")
        roles = frozenset(r for r in roles_list if isinstance(r, str) and r in KNOWN_ROLES)
        return Principal(subject=subject, org=org, tenant=tenant, roles=roles, via="jwt")


def _bearer_token(value: str | bytes) -> str:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise Unauthenticated("authorization header is not ASCII") from None
    if len(value) > MAX_TOKEN_LENGTH + 16:
        raise Unauthenticated("authorization header is too long")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("authorization header must be 'Bearer <token>'")
    return token


def _token_error_message(exc: Exception) -> str:
    """A fixed message per error kind: never the token, nor PyJWT's own text."""
    for kind, message in _TOKEN_ERRORS:
        if isinstance(exc, kind):
            return message
    return "bearer token is not valid"


# --- authorization policy --------------------------------------------------------------------


def _not_found(key_id: str) -> KeyNotFound:
    # the same text the coordinator uses for a key that does not exist at all
    return KeyNotFound(f"no key {key_id!r}")


def _sees(
    principal: Principal, owner: KeyOwner, requested_tenant: str, requested_path: str
) -> bool:
    """May `principal` know that this key (at this tenant/path) exists?"""
    if owner.org != principal.org:
        return False
    if principal.tenant is None:
        return True
    if owner.tenant == principal.tenant:
        return True
    if owner.tenant == "":  # the org root: only through the principal's own tenant child
        return requested_tenant == principal.tenant and not requested_path
    return False


def authorize_create(principal: Principal, tenant: str = "") -> KeyOwner:
    """The owner of a key `principal` asks to create for `tenant` ("" = an org root key).

    Needs ``org:admin``. A tenant-scoped admin creates keys of its own tenant only (an empty
    `tenant` means its own); an org-wide admin any tenant of its org or a root key.
    """
    if not principal.has(ROLE_ADMIN):
        raise PermissionDenied("creating a key needs the org:admin role")
    if tenant and _tenant(tenant) is None:
        raise InvalidInput("a tenant id must have 1 to 128 characters and no control characters")
    if principal.tenant is not None:
        if tenant not in ("", principal.tenant):
            raise PermissionDenied("a tenant-scoped admin creates keys of its own tenant only")
        return KeyOwner(principal.org, principal.tenant)
    return KeyOwner(principal.org, tenant)


def authorize_admin(principal: Principal, owner: KeyOwner, *, key_id: str = "") -> None:
    """Reshare, presignature and other per-key admin operations: ``org:admin`` of the owner.

    Another org's key, or (for a tenant-scoped admin) a key that is not its tenant's — the org
    root included, since resharing it touches every tenant — is NOT_FOUND.
    """
    if owner.org != principal.org:
        raise _not_found(key_id)
    if principal.tenant is not None and owner.tenant != principal.tenant:
        raise _not_found(key_id)
    if not principal.has(ROLE_ADMIN):
        raise PermissionDenied("this operation needs the org:admin role")


def authorize_org_admin(principal: Principal) -> str:
    """Operations not tied to one key (aux-info for the committee): an org-wide ``org:admin``.
    Returns the org."""
    if not principal.has(ROLE_ADMIN) or principal.tenant is not None:
        raise PermissionDenied("this operation needs the org:admin role without a tenant scope")
    return principal.org


_ACTION_ROLES: Mapping[str, frozenset[str]] = {
    "sign": frozenset({ROLE_SIGNER}),
    "derive": frozenset({ROLE_SIGNER}),
    "read": KNOWN_ROLES,
}


def authorize_use(
    principal: Principal,
    owner: KeyOwner,
    requested_tenant: str,
    requested_path: str,
    action: Action,
    *,
    key_id: str = "",
) -> tuple[str, str]:
    """Check a sign / derive / read of the key owned by `owner`, at `requested_tenant`'s child
    key or at `requested_path` (neither: the key itself). Returns the (tenant, path) to use.

    Raises KeyNotFound when the caller may not know the key (see the module doc), then
    PermissionDenied when its roles do not allow `action` (sign/derive: ``tenant:signer``;
    read: any role) or a tenant-scoped caller names another tenant's child of its own key.
    """
    if action not in _ACTION_ROLES:
        raise InvalidInput(f"unknown action {action!r}")
    if not _sees(principal, owner, requested_tenant, requested_path):
        raise _not_found(key_id)
    if not principal.roles & _ACTION_ROLES[action]:
        needed = "tenant:signer" if action != "read" else "org:admin, tenant:signer or auditor"
        raise PermissionDenied(f"{action} needs the role {needed}")
    if (
        principal.tenant is not None
        and owner.tenant == principal.tenant
        and requested_tenant not in ("", principal.tenant)
    ):
        raise PermissionDenied("a tenant-scoped caller may use only its own tenant's child key")
    return requested_tenant, requested_path


def list_view(principal: Principal, owner: KeyOwner) -> str | None:
    """How ListKeys shows a key to `principal`: None (hidden), "" (the key itself) or a tenant
    id (only that tenant's child key: a tenant sees an org root key only that way)."""
    if not principal.roles & KNOWN_ROLES or owner.org != principal.org:
        return None
    if principal.tenant is None or owner.tenant == principal.tenant:
        return ""
    if owner.tenant == "":
        return principal.tenant
    return None


def visible_in_list(principal: Principal, owner: KeyOwner) -> bool:
    """Whether ListKeys shows this key to `principal` at all (see `list_view` for how)."""
    return list_view(principal, owner) is not None


def authorize_audit(principal: Principal) -> AuditScope:
    """Reading the audit log needs ``auditor``; it sees its org's entries (its tenant's only,
    when tenant-scoped)."""
    if not principal.has(ROLE_AUDITOR):
        raise PermissionDenied("reading the audit log needs the auditor role")
    return AuditScope(principal.org, principal.tenant)
