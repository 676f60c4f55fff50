"""The end-to-end demo behind scripts/demo. Every step goes through `mpcctl`, like a user would."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import coincurve
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from nacl.signing import VerifyKey

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def cluster(args: argparse.Namespace, *command: str) -> None:
    subprocess.run(
        [
            PY,
            "-m",
            "coordinator.devcluster",
            *command,
            "--dir",
            args.dir,
            "--base-port",
            str(args.base_port),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


def mpcctl(args: argparse.Namespace, *command: str, expect_ok: bool = True) -> Any:
    proc = subprocess.run(
        [PY, "-m", "coordinator.cli", "--cluster", args.dir, *command],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if expect_ok and proc.returncode != 0:
        sys.exit(f"mpcctl {' '.join(command)} failed: {proc.stderr.strip()}")
    if not expect_ok:
        if proc.returncode == 0:
            sys.exit(f"mpcctl {' '.join(command)} unexpectedly succeeded")
        return json.loads(proc.stderr)
    return json.loads(proc.stdout)


def sign_and_verify(args: argparse.Namespace, key: dict[str, Any], message: bytes) -> list[str]:
    out = mpcctl(args, "sign", "--key-id", key["key_id"], "--message-hex", message.hex())
    public = bytes.fromhex(key["public_key"])
    signature = bytes.fromhex(out["signature"])
    VerifyKey(public).verify(message, signature)  # libsodium, not our code
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)  # OpenSSL
    return list(out["signers"])


def ecdsa_sign_and_verify(
    args: argparse.Namespace,
    key: dict[str, Any],
    *,
    message: bytes = b"",
    digest: bytes = b"",
    path: str = "",
) -> dict[str, Any]:
    """Sign a message (hashed by the nodes) or a digest (interactive); verify independently."""
    what = ["--digest-hex", digest.hex()] if digest else ["--message-hex", message.hex()]
    if path:
        what += ["--path", path]
    out: dict[str, Any] = mpcctl(args, "sign", "--key-id", key["key_id"], *what)
    digest = digest or hashlib.sha256(message).digest()
    public = bytes.fromhex(key["public_key"])
    der = bytes.fromhex(out["signature_der"])
    assert coincurve.PublicKey(public).verify(der, digest, hasher=None)  # libsecp256k1
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public).verify(
        der, digest, ec.ECDSA(Prehashed(hashes.SHA256()))
    )  # OpenSSL
    recoverable = bytes.fromhex(out["signature"]) + bytes([out["recovery_id"]])
    recovered = coincurve.PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    assert recovered.format() == public, "recovery id does not recover the key"
    return out


def ecdsa_part(args: argparse.Namespace) -> dict[str, Any]:
    say(
        "CGGMP ECDSA needs aux-info once per committee (Paillier keys and ring-Pedersen "
        "parameters, 4 safe primes per node, with their proofs); nodes make the primes in the "
        "background, so this waits for them first"
    )
    proc = subprocess.run(
        [PY, "-m", "coordinator.cli", "--cluster", args.dir, "aux-info"],
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )  # progress lines go straight to the terminal (stderr)
    if proc.returncode != 0:
        sys.exit("aux-info failed")
    say("generating a secp256k1 3-of-5 key")
    key = mpcctl(args, "keygen", "--scheme", "secp256k1", "--threshold", "3", "--parties", "5")
    print(json.dumps(key, indent=2))
    say(
        f"signing {args.ecdsa_messages} messages (the nodes hash them with SHA-256); each "
        "verified by libsecp256k1 and OpenSSL, and its recovery id recovers the key"
    )
    for _ in range(args.ecdsa_messages):
        out = ecdsa_sign_and_verify(args, key, message=os.urandom(48))
    print(json.dumps(out, indent=2))
    say("signing a caller's 32-byte digest: interactively, with a presignature made for it")
    out = ecdsa_sign_and_verify(args, key, digest=hashlib.sha256(b"an invoice").digest())
    print(f"ok, signers: {out['signers']}")
    print(json.dumps(mpcctl(args, "presign-status", "--key-id", key["key_id"]), indent=2))
    say("a BIP-32 child key m/44/0/7: any wallet holding the root xpub derives the same key")
    child = mpcctl(args, "pubkey", "--key-id", key["key_id"], "--path", "m/44/0/7")
    print(json.dumps(child, indent=2))
    out = ecdsa_sign_and_verify(
        args,
        {**key, "public_key": child["public_key"]},
        message=b"paid from a child key",
        path="m/44/0/7",
    )
    print(f"ok, signers: {out['signers']}")
    say(
        "killing mpc-0 and mpc-2: the ECDSA key still signs with the other three (a new signer "
        "set, so its first presignature is made on demand)"
    )
    cluster(args, "kill-node", "0")
    cluster(args, "kill-node", "2")
    out = ecdsa_sign_and_verify(args, key, message=b"two nodes are down")
    print(f"ok, signers: {out['signers']}")
    for index in ("0", "2"):
        cluster(args, "start-node", index)
    return key


def generation_fields(info: dict[str, Any]) -> str:
    return json.dumps({k: info[k] for k in ("public_key", "generation", "threshold", "parties")})


def stored_rows(args: argparse.Namespace, node: str, key_id: str) -> int:
    """How many generations of the key node `node`'s database file holds (read directly)."""
    path = Path(args.dir) / "nodes" / node / "keys.sqlite3"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM keys WHERE key_id = ?", (key_id,)).fetchone()
    return int(count)


def reshare_part(
    args: argparse.Namespace, key: dict[str, Any], ecdsa_key: dict[str, Any] | None
) -> None:
    key_id = key["key_id"]
    tenant_key = mpcctl(args, "pubkey", "--key-id", key_id, "--tenant", "acme-corp")["public_key"]
    say("resharing the ed25519 key from 3-of-5 to 4-of-5: same public key, fresh shares")
    out = mpcctl(args, "reshare", "--key-id", key_id, "--threshold", "4")
    print(generation_fields(out))
    assert out["public_key"] == key["public_key"] and out["threshold"] == 4
    signers = sign_and_verify(args, key, b"four of five sign now")
    assert len(signers) == 4
    print(f"ok, signers: {signers}")
    say("with mpc-3 and mpc-4 down, three nodes are no longer enough")
    cluster(args, "kill-node", "3")
    cluster(args, "kill-node", "4")
    error = mpcctl(args, "sign", "--key-id", key_id, "--message-hex", "00", expect_ok=False)
    print(json.dumps(error, indent=2))
    assert error["error"] == "UNAVAILABLE", error
    for index in ("3", "4"):
        cluster(args, "start-node", index)
    if ecdsa_key is not None:
        say("the secp256k1 key too, 3-of-5 -> 4-of-5 (its old presignatures are discarded)")
        out = mpcctl(args, "reshare", "--key-id", ecdsa_key["key_id"], "--threshold", "4")
        print(generation_fields(out))
        signed = ecdsa_sign_and_verify(args, ecdsa_key, message=b"four ECDSA signers")
        assert len(signed["signers"]) == 4
        print(f"ok, signers: {signed['signers']}")
    say(
        "a sixth node joins (new identity, added to the roster) and replaces mpc-4: the ed25519 "
        "key moves to mpc-0..3 and mpc-5, 3-of-5"
    )
    cluster(args, "add-node")
    out = mpcctl(args, "reshare", "--key-id", key_id, "--parties", "0,1,2,3,5", "--threshold", "3")
    print(generation_fields(out))
    assert out["public_key"] == key["public_key"]
    print(f"mpc-4's database now holds {stored_rows(args, 'mpc-4', key_id)} records of the key")
    assert stored_rows(args, "mpc-4", key_id) == 0
    signers = sign_and_verify(args, key, b"signed with the new holders")
    print(f"ok, signers: {signers}")
    child = mpcctl(args, "pubkey", "--key-id", key_id, "--tenant", "acme-corp")["public_key"]
    assert child == tenant_key
    print("the tenant's child key is unchanged")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default=str(ROOT / ".cluster-demo"))
    parser.add_argument("--base-port", type=int, default=50050)
    parser.add_argument("--messages", type=int, default=20)
    parser.add_argument("--ecdsa-messages", type=int, default=5)
    parser.add_argument("--skip-ecdsa", action="store_true", help="only the ed25519 part")
    args = parser.parse_args()
    args.dir = os.path.abspath(args.dir)
    try:
        say(f"starting 5 nodes and a coordinator in {args.dir}")
        cluster(args, "up")
        say("generating an ed25519 3-of-5 key (every node gets one share)")
        key = mpcctl(args, "keygen", "--scheme", "ed25519", "--threshold", "3", "--parties", "5")
        print(json.dumps(key, indent=2))
        say(f"signing {args.messages} random messages; each verified by libsodium and OpenSSL")
        for _ in range(args.messages):
            signers = sign_and_verify(args, key, os.urandom(48))
        print(f"ok, last signers: {signers}")
        say("killing mpc-0 and mpc-1 (SIGKILL): 3 of 5 remain")
        cluster(args, "kill-node", "0")
        cluster(args, "kill-node", "1")
        signers = sign_and_verify(args, key, b"still signing with two nodes down")
        print(f"ok, signers: {signers}")
        say("killing mpc-2 too: 2 of 5 remain, below the threshold")
        cluster(args, "kill-node", "2")
        error = mpcctl(
            args, "sign", "--key-id", key["key_id"], "--message-hex", "00", expect_ok=False
        )
        print(json.dumps(error, indent=2))
        assert error["error"] == "UNAVAILABLE", error
        say("restarting the three nodes; the same key signs again")
        for index in ("0", "1", "2"):
            cluster(args, "start-node", index)
        signers = sign_and_verify(args, key, b"back to full strength")
        print(f"ok, signers: {signers}")
        print(json.dumps(mpcctl(args, "pubkey", "--key-id", key["key_id"]), indent=2))
        say("a tenant's child key of the same root: derived, not generated; signs the same way")
        child = mpcctl(args, "pubkey", "--key-id", key["key_id"], "--tenant", "acme-corp")
        print(json.dumps(child, indent=2))
        out = mpcctl(
            args, "sign", "--key-id", key["key_id"], "--tenant", "acme-corp", "--message-hex", "00"
        )
        child_key = bytes.fromhex(child["public_key"])
        VerifyKey(child_key).verify(b"\x00", bytes.fromhex(out["signature"]))
        Ed25519PublicKey.from_public_bytes(child_key).verify(
            bytes.fromhex(out["signature"]), b"\x00"
        )
        print(f"ok, signed under {out['path'][:24]}… by {out['signers']}")
        ecdsa_key = None if args.skip_ecdsa else ecdsa_part(args)
        reshare_part(args, key, ecdsa_key)
        say("demo finished")
        return 0
    finally:
        cluster(args, "down", "--purge")


if __name__ == "__main__":
    sys.exit(main())
