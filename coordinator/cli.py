"""mpcctl: the command-line client of the coordinator's public gRPC API.

Results go to stdout as JSON. Every failure (a gRPC status from the server, bad
local input, a usage error, an unexpected exception) exits with status 1 and
writes exactly one JSON object ``{"error": "<gRPC status name>", "message": ...}``
to stderr, never a traceback, so scripts can parse both outcomes. The one exception
is ``aux-info``, which follows a long operation: it writes plain progress lines to
stderr while it waits, and the JSON error (if any) is then the last line.
``audit verify`` reads local files only (no connection); a log that does not verify is
``DATA_LOSS`` with ``ok``, ``kind``, ``seq`` and ``line`` added to the error object.

Connection: ``--cluster DIR`` (or ``$MPC_CLUSTER``) reads ``DIR/cluster.json``
written by ``scripts/cluster``; ``--coordinator HOST:PORT --ca --cert --key``
(flag names as in grpcurl) give the same explicitly and override the file.
The channel is always mutual TLS. ``--token JWT`` (or ``$MPCCTL_TOKEN``) sends a bearer token
(``authorization: Bearer …``) with every call; the token is never printed. Without one the
coordinator identifies the caller by its client certificate (if its config maps it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

# gRPC's C core prints handshake and connection diagnostics straight to fd 2, which
# would break "one JSON object on stderr". Silence it unless the user asked for it.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

import grpc  # noqa: E402

from mpcnode.audit import Trusted, verify_log  # noqa: E402
from mpcnode.crypto.hd import parse_path, tenant_path  # noqa: E402
from mpcnode.errors import InvalidInput  # noqa: E402
from mpcnode.identity import Roster  # noqa: E402
from mpcnode.tls import channel_credentials  # noqa: E402
from protos.mpc.v1 import coordinator_pb2, coordinator_pb2_grpc  # noqa: E402

DEFAULT_TIMEOUT = 120.0
KEYGEN_ECDSA_TIMEOUT = 3600.0
"""Default deadline of a secp256k1 keygen: it may first make the committee's aux-info, which
waits for every node's safe primes (minutes on a fresh cluster)."""
POLL_INTERVAL = 1.0
CLUSTER_ENV = "MPC_CLUSTER"
TOKEN_ENV = "MPCCTL_TOKEN"
DIGEST_BYTES = 32


class CliError(Exception):
    """A failure reported as ``{"error": code, "message": message}``; never carries secrets.

    `extra` adds fields to that object (``audit verify`` names the bad entry with them)."""

    def __init__(self, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = dict(extra or {})


def _invalid(message: str) -> CliError:
    return CliError("INVALID_ARGUMENT", message)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors become INVALID_ARGUMENT instead of exit(2)."""

    def error(self, message: str) -> NoReturn:
        raise _invalid(f"{self.prog}: {message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be between 1 and 2^32-1: {value}")
    return value


def _node_indices(text: str) -> list[int]:
    """ "0,1,2,3,5" -> node indices (distinct, >= 0)."""
    try:
        indices = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected node indices like 0,1,2,3, got {text!r}"
        ) from None
    if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise argparse.ArgumentTypeError(f"node indices must be distinct and >= 0, got {text!r}")
    return indices


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text}")
    return value


def _add_connection_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Add the global options; on subcommands with SUPPRESS defaults so they don't reset them."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("connection")
    group.add_argument(
        "--cluster",
        metavar="DIR",
        default=default(None),
        help=f"local cluster directory holding cluster.json (default: ${CLUSTER_ENV})",
    )
    group.add_argument(
        "--coordinator", metavar="HOST:PORT", default=default(None), help="coordinator address"
    )
    group.add_argument(
        "--ca", "--cacert", dest="ca", metavar="FILE", default=default(None), help="CA cert (PEM)"
    )
    group.add_argument(
        "--cert", metavar="FILE", default=default(None), help="client certificate (PEM)"
    )
    group.add_argument("--key", metavar="FILE", default=default(None), help="client key (PEM)")
    group.add_argument(
        "--token",
        metavar="JWT",
        default=default(None),
        help=f"bearer token sent with every call (default: ${TOKEN_ENV}); never printed",
    )
    group.add_argument(
        "--server-name",
        metavar="NAME",
        default=default(None),
        help="name to verify in the server certificate instead of HOST",
    )
    group.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=default(None),
        help=f"deadline of each call (default {DEFAULT_TIMEOUT:g}; "
        f"keygen --scheme secp256k1 and reshare: {KEYGEN_ECDSA_TIMEOUT:g})",
    )


def _add_child_options(parser: argparse.ArgumentParser, what: str) -> None:
    """--path / --tenant (mutually exclusive): select a non-hardened child key of --key-id."""
    child = parser.add_mutually_exclusive_group()
    child.add_argument(
        "--path", metavar="PATH", help=f'{what} at this non-hardened path, e.g. "m/0/1/2"'
    )
    child.add_argument(
        "--tenant",
        metavar="TENANT",
        help=f"{what} of this tenant id (mapped to a non-hardened path by a fixed hash rule)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The mpcctl argument parser (global options are accepted before or after the subcommand)."""
    parser = _Parser(prog="mpcctl", description="Client of the threshold-signing coordinator.")
    _add_connection_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = sub.add_parser(
        "keygen",
        help="create a key by distributed key generation",
        description="Create a key shared by every node. A secp256k1 key first needs the "
        "committee's CGGMP aux-info; the coordinator makes it if a node lacks it (see aux-info).",
    )
    keygen.add_argument(
        "--scheme", required=True, help='signature scheme: "ed25519" (FROST) or "secp256k1" (ECDSA)'
    )
    keygen.add_argument("--threshold", type=_positive_int, default=3, help="signers needed")
    keygen.add_argument("--parties", type=_positive_int, default=5, help="share holders")
    keygen.add_argument(
        "--owner-tenant",
        metavar="TENANT",
        default="",
        help="tenant that owns the key (default: an org root key; a tenant-scoped admin's "
        "keys are always its tenant's)",
    )

    sign = sub.add_parser(
        "sign",
        help="sign a message (or, secp256k1, a 32-byte digest) with a key",
        description="Sign with a key. ed25519 signs the message. secp256k1 signs SHA-256 of "
        "the message, computed by the nodes, using a pooled presignature; --digest-hex signs a "
        "caller's 32-byte digest instead, interactively with a presignature made after the "
        "digest is fixed (never from the pool: CVE-2025-66017), which is slower.",
    )
    sign.add_argument("--key-id", required=True)
    _add_child_options(sign, "sign with the child key")
    message = sign.add_mutually_exclusive_group(required=True)
    message.add_argument("--message-hex", metavar="HEX", help="message as hex")
    message.add_argument("--message", metavar="TEXT", help="message as text (UTF-8)")
    message.add_argument("--message-file", metavar="FILE", help="message file, raw bytes (- stdin)")
    message.add_argument(
        "--digest-hex",
        metavar="HEX",
        help="secp256k1 only: a 32-byte digest as hex, signed as is (interactive signing, "
        "never from the presignature pool)",
    )

    pubkey = sub.add_parser(
        "pubkey",
        help="show a key's (or a child key's) public information",
        description="Show a key's public key, chain code, path and, for secp256k1, its BIP-32 "
        "extended public key (xpub). --path or --tenant shows a non-hardened child key instead; "
        "hardened indices (' or h, or >= 2^31) are refused: they need the whole private key.",
    )
    pubkey.add_argument("--key-id", required=True)
    _add_child_options(pubkey, "show the child key")

    sub.add_parser("keys", help="list all keys")

    reshare = sub.add_parser(
        "reshare",
        help="move a key to new holders and/or a new threshold, or refresh its shares",
        description="Reshare a key without ever reconstructing it: the public key, chain code "
        "and child keys stay the same. The current threshold of holders deal; every new holder "
        "must be up. The old generation keeps signing until every new holder has stored its "
        "share; then the old shares are erased (also on a removed node). Without --parties and "
        "--threshold the shares are refreshed for the same holders.",
    )
    reshare.add_argument("--key-id", required=True)
    reshare.add_argument(
        "--parties",
        type=_node_indices,
        default=None,
        metavar="I,J,...",
        help="new holders as node indices (node mpc-k is k), e.g. 0,1,2,3,5; "
        "default: the current holders",
    )
    reshare.add_argument(
        "--threshold", type=_positive_int, default=None, help="new threshold (default: current)"
    )

    delete_key = sub.add_parser(
        "delete-key",
        help="crypto-shred a key on every node (irreversible)",
        description="Erase every share, pending share and presignature of the key on every node "
        "and destroy its data key, so no copy of its records opens any more. A node that is "
        "down makes it fail with UNAVAILABLE naming the node: run it again when it is back.",
    )
    delete_key.add_argument("--key-id", required=True)
    delete_tenant = sub.add_parser(
        "delete-tenant",
        help="crypto-shred every key of a tenant on every node (irreversible)",
    )
    delete_tenant.add_argument("--tenant", required=True)
    rotate = sub.add_parser(
        "rotate-kek",
        help="each node rewraps its data keys under the KEK in its kek_next_file",
        description="No downtime: each node rewraps every data key in one transaction and uses "
        "the new KEK at once; it then starts with either kek_file or kek_next_file.",
    )
    rotate.add_argument(
        "--node", action="append", default=[], metavar="NAME", help="only this node (repeatable)"
    )

    status = sub.add_parser("presign-status", help="show a secp256k1 key's presignature pools")
    status.add_argument("--key-id", required=True)

    aux = sub.add_parser(
        "aux-info",
        help="make the committee's CGGMP aux-info (Paillier keys) and follow its progress",
        description="Start the aux-info operation (or join the one running) and print progress "
        "lines on stderr until it ends; the final operation is printed as JSON on stdout.",
    )
    aux.add_argument(
        "--no-wait", action="store_true", help="print the started operation as JSON and return"
    )

    audit = sub.add_parser(
        "audit",
        help="check an audit log (offline: needs no coordinator)",
        description="Audit-trail tools. They read local files and never connect.",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    verify = audit_sub.add_parser(
        "verify",
        help="check an audit log end to end against its signed head",
        description="Check every entry's hash, the hash chain and the sequence numbers, and "
        'that the log ends exactly at its signed head. Prints {"ok": true, ...} or fails '
        "with DATA_LOSS naming the first bad entry (seq, line, kind). Without --public-key or "
        "--roster the head is checked under its own key only (trusted_key: false).",
    )
    verify.add_argument("log", metavar="LOG", help="the audit.log file")
    verify.add_argument(
        "--head", metavar="FILE", help="the signed head (default: audit.head.json next to LOG)"
    )
    trust = verify.add_mutually_exclusive_group()
    trust.add_argument("--public-key", metavar="HEX", help="the signer's Ed25519 public key")
    trust.add_argument(
        "--roster", metavar="FILE", help="roster.json: the key of the node named in the head"
    )

    fetch = audit_sub.add_parser(
        "fetch",
        help="download the coordinator's audit log (role auditor) for `audit verify`",
        description="Write the coordinator's audit.log and audit.head.json into a new "
        "directory. Entries outside your org (or tenant) come redacted: their place in the "
        "chain and their signature, not their content. Then check them with `audit verify "
        "DIR/audit.log --public-key <the coordinator's audit key>`.",
    )
    fetch.add_argument("--out", required=True, metavar="DIR", help="a new directory")
    _add_connection_options(fetch, suppress=True)

    for subparser in sub.choices.values():
        _add_connection_options(subparser, suppress=True)
    return parser


@dataclass(frozen=True)
class Connection:
    """Where the coordinator is and the PEM files for mutual TLS (paths only, no key bytes)."""

    address: str
    ca: str
    cert: str
    key: str
    server_name: str | None = None


def _read_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise _invalid(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}") from None


def _load_cluster(directory: str) -> dict[str, str]:
    """Address and TLS file paths from DIR/cluster.json (relative paths are taken from DIR)."""
    base = Path(directory)
    path = base / "cluster.json"
    raw = _read_file(path, "cluster file")
    try:
        doc = json.loads(raw)
        address = doc["coordinator"]["address"]
        tls = doc["tls"]
        files = {"ca": tls["ca"], "cert": tls["client_cert"], "key": tls["client_key"]}
    except (ValueError, KeyError, TypeError) as exc:
        raise _invalid(f"malformed cluster file {str(path)!r}: missing or bad {exc}") from None
    values = {"address": address, **files}
    if not all(isinstance(v, str) and v for v in values.values()):
        raise _invalid(f"malformed cluster file {str(path)!r}: empty or non-string field")
    for name in files:
        values[name] = str(base / values[name])
    return values


def resolve_connection(args: argparse.Namespace) -> Connection:
    """Merge explicit flags over the cluster file; complain about whatever is still missing.

    An explicit ``--cluster`` is always read; ``$MPC_CLUSTER`` only when a flag is missing.
    """
    explicit = {"address": args.coordinator, "ca": args.ca, "cert": args.cert, "key": args.key}
    cluster_dir = args.cluster
    if cluster_dir is None and any(v is None for v in explicit.values()):
        cluster_dir = os.environ.get(CLUSTER_ENV) or None
    values: dict[str, str] = _load_cluster(cluster_dir) if cluster_dir is not None else {}
    values.update({k: v for k, v in explicit.items() if v is not None})
    flags = {"address": "--coordinator", "ca": "--ca", "cert": "--cert", "key": "--key"}
    missing = [flag for name, flag in flags.items() if name not in values]
    if missing:
        raise _invalid(
            f"no coordinator connection: missing {', '.join(missing)} (pass --cluster DIR, "
            f"set ${CLUSTER_ENV}, or --coordinator HOST:PORT --ca --cert --key)"
        )
    return Connection(
        address=values["address"],
        ca=values["ca"],
        cert=values["cert"],
        key=values["key"],
        server_name=args.server_name,
    )


def _hex_bytes(text: str, flag: str) -> bytes:
    text = text.strip()
    if text[:2] in ("0x", "0X"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise _invalid(f"{flag} is not valid hex (an even number of 0-9a-f digits)") from None


def _digest_bytes(args: argparse.Namespace) -> bytes:
    digest = _hex_bytes(args.digest_hex, "--digest-hex")
    if len(digest) != DIGEST_BYTES:
        raise _invalid(f"--digest-hex must be {DIGEST_BYTES} bytes ({2 * DIGEST_BYTES} hex digits)")
    return digest


def _message_bytes(args: argparse.Namespace) -> bytes:
    """The message to sign, exactly as given: hex decoded, UTF-8 text, or the file's raw bytes."""
    if args.message is not None:
        return str(args.message).encode()
    if args.message_file is not None:
        if args.message_file == "-":
            return sys.stdin.buffer.read()
        return _read_file(Path(args.message_file), "message file")
    return _hex_bytes(args.message_hex, "--message-hex")


def key_info_to_json(info: Any) -> dict[str, Any]:
    """A KeyInfo as printed by keygen, pubkey, keys and reshare: "generation", "threshold" and
    "parties" of the active generation and its "holders" (node names); adds "path" ("m" for the
    root key), "xpub" (secp256k1) and "tenant" (when looked up by tenant) when the server sets
    them."""
    result: dict[str, Any] = {
        "key_id": info.key_id,
        "scheme": info.scheme,
        "public_key": info.public_key.hex(),
        "threshold": info.threshold,
        # Node indices of the active generation's holders (node mpc-k is party k+1), the form
        # `reshare --parties` takes; only the count from a server that does not list them.
        "parties": [p - 1 for p in info.holder_parties] if info.holder_parties else info.parties,
        "chain_code": info.chain_code.hex(),
        "generation": info.generation,
    }
    if info.holders:
        result["holders"] = list(info.holders)
    if info.org:  # the owner: an org and its tenant ("" for an org root key)
        result["org"] = info.org
        result["owner_tenant"] = info.owner_tenant
    for name in ("path", "xpub", "tenant"):
        value = getattr(info, name)
        if value:
            result[name] = value
    return result


def _open_channel(conn: Connection) -> grpc.Channel:
    """A mutual-TLS channel; an unreadable PEM file raises InvalidInput before any connection."""
    credentials = channel_credentials(conn.ca, conn.cert, conn.key)
    options: list[tuple[str, Any]] = []
    if conn.server_name:
        options.append(("grpc.ssl_target_name_override", conn.server_name))
    return grpc.secure_channel(conn.address, credentials, options=options)


def _sign_reply_to_json(reply: Any) -> dict[str, Any]:
    """Ed25519: key_id, signature, public_key, signers. secp256k1 adds scheme, signature_der,
    recovery_id and digest (signature is r||s, 64 bytes, low-S). Both add "path", the path of the
    key that signed ("m" for the root key), when the server reports it; public_key is that key."""
    result = _sign_fields(reply)
    if reply.path:
        result["path"] = reply.path
    return result


def _sign_fields(reply: Any) -> dict[str, Any]:
    if reply.scheme != "secp256k1":
        return {
            "key_id": reply.key_id,
            "signature": reply.signature.hex(),
            "public_key": reply.public_key.hex(),
            "signers": list(reply.signers),
        }
    return {
        "key_id": reply.key_id,
        "scheme": reply.scheme,
        "signature": reply.signature.hex(),
        "signature_der": reply.signature_der.hex(),
        "recovery_id": reply.recovery_id,
        "public_key": reply.public_key.hex(),
        "digest": reply.digest.hex(),
        "signers": list(reply.signers),
    }


def _node_outcomes_to_json(reply: Any) -> dict[str, Any]:
    return {
        "nodes": [
            {"node": n.node, "outcome": n.outcome}
            | ({"kek_fingerprint": n.kek_fingerprint} if n.kek_fingerprint else {})
            for n in reply.nodes
        ]
    }


def _delete_reply_to_json(reply: Any) -> dict[str, Any]:
    return {"key_ids": list(reply.key_ids)} | _node_outcomes_to_json(reply)


def _presign_status_to_json(reply: Any) -> dict[str, Any]:
    return {
        "key_id": reply.key_id,
        "target": reply.target,
        "pools": [
            {
                "signers": list(pool.signers),
                "ready": pool.ready,
                "in_flight": pool.in_flight,
                "made": pool.made,
                "used": pool.used,
            }
            for pool in reply.pools
        ],
    }


def operation_to_json(op: Any) -> dict[str, Any]:
    """An Operation as printed by aux-info."""
    return {
        "operation_id": op.operation_id,
        "kind": op.kind,
        "state": op.state,
        "stage": op.stage,
        "round": op.round,
        "rounds": op.rounds,
        "error": op.error,
        "culprits": list(op.culprits),
        "primes_ready": dict(sorted(op.primes_ready.items())),
    }


def _progress_line(op: Any) -> str:
    stage = f", {op.stage}" if op.stage and op.stage != op.state else ""
    return f"aux-info {op.operation_id}: {op.state}{stage}"


def _keys_reply_to_json(reply: Any) -> list[dict[str, Any]]:
    return [key_info_to_json(k) for k in reply.keys]


def _child_fields(args: argparse.Namespace) -> tuple[str, str]:
    """The request's (path, tenant) fields ("" when absent), checked locally with hd's messages
    so a hardened or malformed path never reaches the server; the server checks again."""
    path = args.path or ""
    tenant = args.tenant if args.tenant is not None else ""
    if path:
        parse_path(path)
    if args.tenant is not None:
        tenant_path(tenant)
    return path, tenant


def prepare(args: argparse.Namespace) -> tuple[str, Any, Callable[[Any], Any]]:
    """Validate local input and build (RPC method name, request, reply formatter) for a command."""
    if args.command == "keygen":
        if args.threshold > args.parties:
            raise _invalid(f"--threshold {args.threshold} exceeds --parties {args.parties}")
        if args.owner_tenant:
            tenant_path(args.owner_tenant)  # a valid tenant id, checked before connecting
        request = coordinator_pb2.CreateKeyRequest(
            scheme=args.scheme,
            threshold=args.threshold,
            parties=args.parties,
            owner_tenant=args.owner_tenant,
        )
        return "CreateKey", request, key_info_to_json
    if args.command == "sign":
        path, tenant = _child_fields(args)
        if args.digest_hex is not None:
            request = coordinator_pb2.SignRequest(
                key_id=args.key_id, digest=_digest_bytes(args), path=path, tenant=tenant
            )
        else:
            request = coordinator_pb2.SignRequest(
                key_id=args.key_id, message=_message_bytes(args), path=path, tenant=tenant
            )
        return "Sign", request, _sign_reply_to_json
    if args.command == "pubkey":
        path, tenant = _child_fields(args)
        request = coordinator_pb2.GetKeyRequest(key_id=args.key_id, path=path, tenant=tenant)
        return "GetKey", request, key_info_to_json
    if args.command == "keys":
        return "ListKeys", coordinator_pb2.ListKeysRequest(), _keys_reply_to_json
    if args.command == "presign-status":
        request = coordinator_pb2.PresignStatusRequest(key_id=args.key_id)
        return "PresignStatus", request, _presign_status_to_json
    if args.command == "reshare":
        parties = args.parties or []
        threshold = args.threshold or 0
        if parties and threshold > len(parties):
            raise _invalid(f"--threshold {threshold} exceeds the {len(parties)} --parties")
        request = coordinator_pb2.ReshareRequest(
            key_id=args.key_id, parties=[i + 1 for i in parties], threshold=threshold
        )
        return "Reshare", request, key_info_to_json
    if args.command == "aux-info":
        return "StartAuxInfo", coordinator_pb2.StartAuxInfoRequest(), operation_to_json
    if args.command == "delete-key":
        request = coordinator_pb2.DeleteKeyRequest(key_id=args.key_id)
        return "DeleteKey", request, _delete_reply_to_json
    if args.command == "delete-tenant":
        request = coordinator_pb2.DeleteTenantRequest(tenant=args.tenant)
        return "DeleteTenant", request, _delete_reply_to_json
    if args.command == "rotate-kek":
        request = coordinator_pb2.RotateNodeKeksRequest(nodes=args.node)
        return "RotateNodeKeks", request, _node_outcomes_to_json
    raise CliError("INTERNAL", f"unhandled command {args.command!r}")  # argparse admits no other


def _timeout(args: argparse.Namespace) -> float:
    if args.timeout is not None:
        return float(args.timeout)
    if args.command == "keygen" and args.scheme == "secp256k1":
        return KEYGEN_ECDSA_TIMEOUT
    if args.command == "reshare":  # a secp256k1 key may first need the committee's aux-info
        return KEYGEN_ECDSA_TIMEOUT
    return DEFAULT_TIMEOUT


def call_metadata(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: the bearer token of ``--token`` / ``$MPCCTL_TOKEN``.

    A token that cannot be a JWS compact serialization is refused locally; the error never
    repeats the token."""
    token = getattr(args, "token", None)
    if token is None:
        token = os.environ.get(TOKEN_ENV) or None
    if token is None:
        return ()
    token = token.strip()
    if not token or not all(33 <= ord(ch) < 127 for ch in token):
        raise _invalid(f"the bearer token (--token or ${TOKEN_ENV}) is malformed")
    return (("authorization", f"Bearer {token}"),)


def _follow_operation(
    stub: Any, op: Any, timeout: float, metadata: tuple[tuple[str, str], ...] = ()
) -> Any:
    """Poll GetOperation until the operation ends, a progress line on stderr per change.

    A failed operation becomes an ABORTED error carrying its message and culprits.
    """
    last = ""
    while True:
        line = _progress_line(op)
        if line != last:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
            last = line
        if op.state in ("done", "failed"):
            break
        time.sleep(POLL_INTERVAL)
        request = coordinator_pb2.GetOperationRequest(operation_id=op.operation_id)
        op = stub.GetOperation(request, timeout=timeout, metadata=metadata)
    if op.state == "failed":
        message = op.error or "aux-info failed"
        if op.culprits:
            message += f" (culprits: {', '.join(op.culprits)})"
        raise CliError("ABORTED", message)
    return op


def audit_verify(args: argparse.Namespace) -> dict[str, Any]:
    """``audit verify``: the report of a good log, or DATA_LOSS naming the first bad entry."""
    trusted: Trusted = None
    if args.public_key is not None:
        trusted = _hex_bytes(args.public_key, "--public-key")
        if len(trusted) != 32:
            raise _invalid("--public-key must be 32 bytes (64 hex digits)")
    elif args.roster is not None:
        trusted = Roster.load(args.roster)
    report = verify_log(args.log, args.head, trusted)
    if not report.ok:
        result = report.to_json()
        raise CliError("DATA_LOSS", str(result.pop("error")), result)
    return report.to_json()


def audit_fetch(args: argparse.Namespace) -> dict[str, Any]:
    """``audit fetch``: page through GetAuditLog into DIR/audit.log and DIR/audit.head.json."""
    out = Path(args.out)
    if out.exists():
        raise _invalid(f"{out} exists; give a new directory")
    conn = resolve_connection(args)
    timeout = _timeout(args)
    metadata = call_metadata(args)
    lines: list[str] = []
    head = ""
    public_key = b""
    with _open_channel(conn) as channel:
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)  # type: ignore[no-untyped-call]
        while True:
            request = coordinator_pb2.GetAuditLogRequest(from_seq=len(lines))
            page = stub.GetAuditLog(request, timeout=timeout, metadata=metadata)
            if not head:  # the first page's head fixes where the log ends
                head, count, public_key = page.head, int(page.count), bytes(page.public_key)
            lines.extend(page.lines)
            if len(lines) >= count or not page.lines:
                break
    lines = lines[:count]
    out.mkdir(mode=0o700, parents=True)
    (out / "audit.log").write_text("".join(line + "\n" for line in lines))
    (out / "audit.head.json").write_text(head)
    redacted = sum(1 for line in lines if '"redacted":true' in line)
    return {
        "log": str(out / "audit.log"),
        "head": str(out / "audit.head.json"),
        "entries": len(lines),
        "redacted": redacted,
        "public_key": public_key.hex(),
    }


def run(args: argparse.Namespace) -> Any:
    """Execute one parsed command and return its JSON-able result.

    All local input (message, cluster file, TLS files) is checked before the
    first connection attempt, so bad input never reaches the server.
    """
    if args.command == "audit" and args.audit_command == "verify":
        return audit_verify(args)  # offline: no connection
    if args.command == "audit":
        return audit_fetch(args)
    method, request, to_json = prepare(args)
    conn = resolve_connection(args)
    timeout = _timeout(args)
    metadata = call_metadata(args)
    with _open_channel(conn) as channel:
        # The generated stub is untyped; its methods return the reply message.
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)  # type: ignore[no-untyped-call]
        reply = getattr(stub, method)(request, timeout=timeout, metadata=metadata)
        if args.command == "aux-info" and not args.no_wait:
            reply = _follow_operation(stub, reply, timeout, metadata)
    return to_json(reply)


def _rpc_error(exc: grpc.RpcError) -> CliError:
    """The status name and details of a failed call (RpcError from a call is also a grpc.Call)."""
    code = getattr(exc, "code", None)
    details = getattr(exc, "details", None)
    status = code() if callable(code) else None
    name = status.name if isinstance(status, grpc.StatusCode) else "UNKNOWN"
    message = details() if callable(details) else None
    return CliError(name, message if isinstance(message, str) and message else str(exc))


def _report(error: CliError) -> int:
    obj = {"error": error.code, "message": error.message}
    obj.update((k, v) for k, v in error.extra.items() if k not in obj)
    sys.stderr.write(json.dumps(obj) + "\n")
    sys.stderr.flush()
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mpcctl``: 0 with JSON on stdout, or 1 with one JSON error on stderr."""
    try:
        args = build_parser().parse_args(argv)
        result = run(args)
    except CliError as exc:
        return _report(exc)
    except InvalidInput as exc:
        return _report(_invalid(str(exc)))
    except grpc.RpcError as exc:
        return _report(_rpc_error(exc))
    except KeyboardInterrupt:
        return _report(CliError("CANCELLED", "interrupted"))
    except Exception as exc:  # the contract: never a traceback
        return _report(CliError("INTERNAL", f"{type(exc).__name__}: {exc}"))
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
