"""A throwaway JWT issuer for tests and the local cluster: signing keys, a JWKS file, tokens.

    issuer = make_test_issuer(tmp_path)                    # RS256, ES256 and EdDSA keys
    auth = issuer.auth_config()                            # the coordinator config's "auth"
    token = issuer.token(org="acme", tenant="t1", roles=["tenant:signer"])
    metadata = [issuer.bearer(token)]                      # ("authorization", "Bearer …")

The private keys live in `DIR/jwt-issuer/` (PEM, mode 0600) and the public JWKS in
`DIR/jwt-issuer/jwks.json`, so a second `make_test_issuer(DIR)` reuses the same keys (a
local cluster keeps accepting tokens across restarts). Test code only: never a real IdP.

From a shell: ``python -m tests.jwt_issuer DIR --org acme --tenant t1 --roles tenant:signer``
prints a token (and creates the keys on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

DEFAULT_ISSUER = "https://issuer.mpc.test"
DEFAULT_AUDIENCE = "mpc-coordinator"
ALGORITHMS = ("RS256", "ES256", "EdDSA")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def new_private_key(alg: str) -> PrivateKey:
    """A fresh key for `alg`: RSA 2048, P-256 or Ed25519."""
    if alg.startswith(("RS", "PS")):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"no test key type for {alg}")


def public_jwk(key: PrivateKey, kid: str | None, alg: str | None) -> dict[str, Any]:
    """The public JWK of `key` (with `kid` and `alg` when given, and ``use: sig``)."""
    public = key.public_key()
    jwk: dict[str, Any]
    if isinstance(public, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(public, ec.EllipticCurvePublicKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    jwk["use"] = "sig"
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    return jwk


def pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class IssuerKey:
    kid: str
    alg: str
    private_key: PrivateKey
    published: bool = True
    """Whether the JWKS file lists it (False: a key the coordinator does not know)."""


class JwtIssuer:
    """Signing keys, the JWKS file that publishes them, and a token minter."""

    def __init__(
        self,
        directory: str | Path,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        algorithms: Iterable[str] = ALGORITHMS,
    ) -> None:
        self.directory = Path(directory) / "jwt-issuer"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.issuer = issuer
        self.audience = audience
        self.keys: dict[str, IssuerKey] = {}
        for alg in algorithms:
            kid = f"{alg.lower()}-1"
            path = self.directory / f"{kid}.pem"
            if path.exists():
                loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
                assert isinstance(
                    loaded,
                    rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey,
                )
                self.keys[kid] = IssuerKey(kid, alg, loaded)
            else:
                self.add_key(alg, kid, write=False)
        self.write_jwks()

    @property
    def jwks_path(self) -> Path:
        return self.directory / "jwks.json"

    def kid_for(self, alg: str | None) -> str:
        """The first published key id for `alg` (None: of any algorithm, ES256 preferred)."""
        published = [k for k in self.keys.values() if k.published]
        if alg is None:
            preferred = [k for k in published if k.alg == "ES256"]
            alg = (preferred or published)[0].alg if published else "?"
        for k in published:
            if k.alg == alg:
                return k.kid
        raise KeyError(f"the test issuer publishes no {alg} key")

    def add_key(self, alg: str, kid: str, *, published: bool = True, write: bool = True) -> str:
        """A new signing key (key rotation); listed in the JWKS unless `published` is False."""
        key = new_private_key(alg)
        path = self.directory / f"{kid}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem(key))
        self.keys[kid] = IssuerKey(kid, alg, key, published)
        if write:
            self.write_jwks()
        return kid

    def jwks(self) -> dict[str, Any]:
        return {
            "keys": [
                public_jwk(k.private_key, k.kid, k.alg) for k in self.keys.values() if k.published
            ]
        }

    def write_jwks(self) -> None:
        """(Re)write the JWKS atomically, so a reloading coordinator never reads half a file."""
        tmp = self.jwks_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.jwks(), indent=2))
        tmp.replace(self.jwks_path)

    def auth_config(self, **extra: Any) -> dict[str, Any]:
        """The coordinator config's ``"auth"`` object for this issuer (plus `extra` fields)."""
        return {
            "jwks_file": str(self.jwks_path),
            "issuer": self.issuer,
            "audience": self.audience,
            **extra,
        }

    def token(
        self,
        *,
        sub: str = "alice",
        org: str | None = "org1",
        tenant: str | None = None,
        roles: Iterable[Any] | str = ("tenant:signer",),
        alg: str | None = None,
        kid: str | None = None,
        ttl: int = 300,
        now: float | None = None,
        claims: Mapping[str, Any] | None = None,
        omit: Iterable[str] = (),
        headers: Mapping[str, Any] | None = None,
        include_kid: bool = True,
    ) -> str:
        """A signed token: ``iss``, ``aud``, ``sub``, ``iat``, ``nbf``, ``exp`` = now + `ttl`,
        ``org``, ``tenant`` (if not None), ``roles``; `claims` override or add claims, and
        `omit` drops some. Signed with `kid`'s key (default: the first published key for
        `alg`; for no `alg` the ES256 key, else the first published key)."""
        kid = kid if kid is not None else self.kid_for(alg)
        key = self.keys[kid]
        t = int(time.time() if now is None else now)
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": sub,
            "iat": t,
            "nbf": t,
            "exp": t + ttl,
            "roles": roles if isinstance(roles, str) else list(roles),
        }
        if org is not None:
            payload["org"] = org
        if tenant is not None:
            payload["tenant"] = tenant
        payload.update(claims or {})
        for name in omit:
            payload.pop(name, None)
        header = dict(headers or {})
        if include_kid:
            header.setdefault("kid", kid)
        return jwt.encode(payload, key.private_key, algorithm=key.alg, headers=header or None)

    @staticmethod
    def bearer(token: str) -> tuple[str, str]:
        """The gRPC metadata entry that carries `token`."""
        return ("authorization", f"Bearer {token}")


def make_test_issuer(directory: str | Path, **kwargs: Any) -> JwtIssuer:
    """A `JwtIssuer` under `directory` (keys made on first use, reused afterwards)."""
    return JwtIssuer(directory, **kwargs)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Mint a test JWT for a local cluster.")
    p.add_argument("directory")
    p.add_argument("--org", default="org1")
    p.add_argument("--tenant")
    p.add_argument("--sub", default="dev")
    p.add_argument("--roles", default="org:admin tenant:signer auditor")
    p.add_argument("--alg", default="ES256", choices=ALGORITHMS)
    p.add_argument("--ttl", type=int, default=3600)
    args = p.parse_args(argv)
    issuer = make_test_issuer(args.directory)
    print(
        issuer.token(
            sub=args.sub,
            org=args.org,
            tenant=args.tenant,
            roles=args.roles,
            alg=args.alg,
            ttl=args.ttl,
        )
    )


if __name__ == "__main__":
    main()
