"""Limits of the coordinator's public API: rate limits and request sizes.

Rate limits are token buckets (`Rate`: `rate` tokens per second, at most `burst` saved up),
one bucket per client and limit, and for signing one per key as well:

* ``sign_per_client``: Sign calls of one client (an authenticated principal: org and subject;
  without one, the mTLS peer's certificate common name);
* ``sign_per_key``: Sign calls naming one key id, whoever makes them (a key's signers and its
  presignature pool are shared by every client of the key);
* ``create_key_per_client``: CreateKey calls of one client.

`RateLimiter.acquire` takes one token from each bucket it is given, all or none. The coordinator
(`CoordinatorApi`) charges the client's bucket once the caller is authenticated, before any
other work (before the key record is even looked up), and the key's bucket once the caller is
known to be allowed to sign with that key (so nobody can drain the bucket of a key they cannot
use), still before any signing session starts or a presignature is taken. A refusal is
`RateLimited`, RESOURCE_EXHAUSTED on the wire, naming the limit and the seconds until a retry
can succeed (also as ``retry-after`` trailing metadata in whole seconds, `mpcnode.rpc`).

Memory is bounded: a bucket that has refilled completely is the same as no bucket, so idle
buckets are dropped (oldest first, on every call), and each limit keeps at most
`Limits.max_buckets` buckets, evicting the least recently used one beyond that. A flood of
made-up key ids (each charged to its sender's client bucket first) can therefore not grow the
coordinator's memory. The limits are per coordinator process: with N coordinator replicas a
client gets up to N times the configured rates.

Sizes: the public gRPC server accepts requests of at most `Limits.max_message_bytes` (the
node-facing channels keep `mpcnode.rpc.MAX_MESSAGE_BYTES`: aux-info proofs are large), and
`check_sign_request` / `check_create_key_request` refuse oversize fields (INVALID_ARGUMENT)
before any node is contacted. The coordinator config's ``"limits"`` object (every entry
optional; a rate limit ``null`` turns it off):

```json
"limits": {
  "sign_per_client": {"rate": 50, "burst": 100},
  "sign_per_key": {"rate": 50, "burst": 100},
  "create_key_per_client": {"rate": 1, "burst": 50},
  "max_buckets": 10000,
  "max_message_bytes": 1048576,
  "max_sign_message_bytes": 65536
}
```
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mpcnode.errors import InvalidInput, ResourceExhausted

SIGN_PER_CLIENT = "sign_per_client"
SIGN_PER_KEY = "sign_per_key"
CREATE_KEY_PER_CLIENT = "create_key_per_client"
RATE_LIMITS = (SIGN_PER_CLIENT, SIGN_PER_KEY, CREATE_KEY_PER_CLIENT)
"""The names of the rate limits (config keys and the names refusals carry)."""

DEFAULT_MAX_BUCKETS = 10_000
"""Buckets kept per rate limit at most (least recently used evicted beyond)."""
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
"""Largest request the public gRPC server accepts."""
DEFAULT_MAX_SIGN_MESSAGE_BYTES = 64 * 1024
"""Longest message a Sign request may carry (hash a longer document and sign the hash)."""
NODE_MAX_MESSAGE_BYTES = 1024 * 1024
"""The nodes' own cap on a message to sign (mpcnode.server.MAX_MESSAGE_BYTES): the largest
`max_sign_message_bytes` a configuration may set."""
MIN_MESSAGE_BYTES = 64 * 1024
"""The smallest `max_message_bytes` a configuration may set."""
REQUEST_OVERHEAD_BYTES = 16 * 1024
"""Room for a Sign request's other fields (key id, path, tenant) next to its message."""
DIGEST_BYTES = 32
MAX_KEY_ID_LENGTH = 128
"""Key ids are UUIDs; the nodes refuse ids longer than this."""
MAX_PATH_LENGTH = 4096
"""Characters of a path text ("m/0/1/..."): 255 levels of 10-digit indices fit."""
MAX_SCHEME_LENGTH = 32


@dataclass(frozen=True)
class Rate:
    """A token bucket's refill rate (tokens per second) and capacity (`burst`)."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError("a rate limit's rate must be a positive number (per second)")
        if not (math.isfinite(self.burst) and self.burst >= 1):
            raise ValueError("a rate limit's burst must be at least 1")

    @classmethod
    def from_dict(cls, raw: Any, name: str) -> Rate | None:
        if raw is None:
            return None
        if not isinstance(raw, Mapping) or set(raw) - {"rate", "burst"} or "rate" not in raw:
            raise ValueError(f"limits.{name} must be null or {{'rate': r, 'burst': b}}")
        for value in raw.values():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"limits.{name}: rate and burst must be numbers")
        rate = float(raw["rate"])
        return cls(rate, float(raw.get("burst", max(1.0, rate))))

    @property
    def seconds_to_fill(self) -> float:
        """How long an empty bucket takes to fill up: after this idle time it can be dropped."""
        return self.burst / self.rate


@dataclass(frozen=True)
class Limits:
    """The coordinator config's ``"limits"`` (see the module doc); the defaults are safe."""

    sign_per_client: Rate | None = Rate(50.0, 100.0)
    sign_per_key: Rate | None = Rate(50.0, 100.0)
    create_key_per_client: Rate | None = Rate(1.0, 50.0)
    max_buckets: int = DEFAULT_MAX_BUCKETS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_sign_message_bytes: int = DEFAULT_MAX_SIGN_MESSAGE_BYTES

    def __post_init__(self) -> None:
        if self.max_buckets < 1:
            raise ValueError("limits.max_buckets must be at least 1")
        if not 1 <= self.max_sign_message_bytes <= NODE_MAX_MESSAGE_BYTES:
            raise ValueError(
                f"limits.max_sign_message_bytes must be between 1 and {NODE_MAX_MESSAGE_BYTES}"
            )
        if self.max_message_bytes < max(
            MIN_MESSAGE_BYTES, self.max_sign_message_bytes + REQUEST_OVERHEAD_BYTES
        ):
            raise ValueError(
                "limits.max_message_bytes must be at least 64 KiB and leave 16 KiB above "
                "max_sign_message_bytes"
            )

    @classmethod
    def from_dict(cls, raw: Any) -> Limits:
        """Parse the config's ``"limits"`` object (absent or null: the defaults)."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ValueError("limits must be an object")
        known = {*RATE_LIMITS, "max_buckets", "max_message_bytes", "max_sign_message_bytes"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(map(str, unknown))}")
        values: dict[str, Any] = {}
        for name in RATE_LIMITS:
            if name in raw:
                values[name] = Rate.from_dict(raw[name], name)
        for name in ("max_buckets", "max_message_bytes", "max_sign_message_bytes"):
            if name in raw:
                value = raw[name]
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"limits.{name} must be an integer")
                values[name] = value
        return cls(**values)

    def rate(self, name: str) -> Rate | None:
        value: Rate | None = getattr(self, name)
        return value


class RateLimited(ResourceExhausted):
    """A call over a rate limit: RESOURCE_EXHAUSTED; `retry_after` seconds until it may pass."""

    def __init__(self, limit: str, retry_after: float) -> None:
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(f"rate limit {limit} exceeded; retry after {retry_after:.2f} s")


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class _Table:
    """The buckets of one rate limit, least recently used first."""

    rate: Rate
    max_buckets: int
    buckets: OrderedDict[Hashable, _Bucket] = field(default_factory=OrderedDict)

    def level(self, key: Hashable, now: float) -> float:
        """Tokens in `key`'s bucket now (a bucket not kept is full)."""
        bucket = self.buckets.get(key)
        if bucket is None:
            return self.rate.burst
        elapsed = max(0.0, now - bucket.updated)
        return min(self.rate.burst, bucket.tokens + elapsed * self.rate.rate)

    def take(self, key: Hashable, now: float, level: float) -> None:
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(level - 1.0, now)
        else:
            bucket.tokens = level - 1.0
            bucket.updated = max(bucket.updated, now)
        self.buckets.move_to_end(key)
        while len(self.buckets) > self.max_buckets:
            self.buckets.popitem(last=False)

    def drop_idle(self, now: float) -> None:
        """Drop buckets that have refilled completely, oldest first (amortised O(1) a call:
        stops at the first one still refilling)."""
        while self.buckets:
            key, bucket = next(iter(self.buckets.items()))
            if now - bucket.updated < self.rate.seconds_to_fill:
                return
            del self.buckets[key]


class RateLimiter:
    """Every rate limit's buckets, behind one lock (gRPC threads and trio may both call).

    `clock` (seconds, monotonic) is injectable for tests.
    """

    def __init__(
        self, limits: Limits | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = Limits() if limits is None else limits
        self._clock = clock
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        for name in RATE_LIMITS:
            rate = self.limits.rate(name)
            if rate is not None:
                self._tables[name] = _Table(rate, self.limits.max_buckets)

    def acquire(self, charges: Sequence[tuple[str, Hashable]]) -> None:
        """Take one token from each (limit, key) bucket, all or none; `RateLimited` (naming
        the first limit refused, with the longest wait of those refused) if any is empty.
        Limits that are turned off are skipped."""
        with self._lock:
            now = self._clock()
            levels: list[tuple[_Table, Hashable, float]] = []
            refused: list[tuple[str, float]] = []
            for name, key in charges:
                table = self._tables.get(name)
                if table is None:
                    continue
                table.drop_idle(now)
                level = table.level(key, now)
                if level < 1.0:
                    refused.append((name, (1.0 - level) / table.rate.rate))
                levels.append((table, key, level))
            if refused:
                raise RateLimited(refused[0][0], max(wait for _, wait in refused))
            for table, key, level in levels:
                table.take(key, now, level)

    def check_sign_client(self, client: Hashable) -> None:
        """Charge a Sign call to its client (RateLimited if over `sign_per_client`)."""
        self.acquire([(SIGN_PER_CLIENT, client)])

    def check_sign_key(self, key_id: str) -> None:
        """Charge a Sign call to its key (RateLimited if over `sign_per_key`)."""
        self.acquire([(SIGN_PER_KEY, key_id)])

    def check_create_key(self, client: Hashable) -> None:
        """Charge a CreateKey call of `client` (RateLimited if over its limit)."""
        self.acquire([(CREATE_KEY_PER_CLIENT, client)])

    def bucket_count(self, name: str) -> int:
        """Buckets `name` keeps right now (tests, diagnostics)."""
        with self._lock:
            table = self._tables.get(name)
            return 0 if table is None else len(table.buckets)


def check_key_id(key_id: str) -> str:
    """A key id named in a request: 1-128 characters (InvalidInput otherwise)."""
    if not key_id:
        raise InvalidInput("key id is required")
    if len(key_id) > MAX_KEY_ID_LENGTH:
        raise InvalidInput(f"key id longer than {MAX_KEY_ID_LENGTH} characters")
    return key_id


def check_path_text(path: str) -> str:
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(f"path longer than {MAX_PATH_LENGTH} characters")
    return path


def check_sign_request(
    limits: Limits, key_id: str, message: bytes, digest: bytes, path: str
) -> None:
    """The size checks of a Sign request, before any node is contacted (InvalidInput).

    The message is at most `limits.max_sign_message_bytes`, a digest exactly 32 bytes, the key
    id 1-128 characters, the path text at most 4096 characters (the tenant's 1-128 characters
    are checked by `hd.tenant_path`).
    """
    check_key_id(key_id)
    if len(message) > limits.max_sign_message_bytes:
        raise InvalidInput(
            f"message longer than {limits.max_sign_message_bytes} bytes; sign its hash instead"
        )
    if digest and len(digest) != DIGEST_BYTES:
        raise InvalidInput(f"digest must be {DIGEST_BYTES} bytes")
    check_path_text(path)


def check_create_key_request(scheme: str) -> None:
    if len(scheme) > MAX_SCHEME_LENGTH:
        raise InvalidInput(f"scheme longer than {MAX_SCHEME_LENGTH} characters")
