"""The rate limiter and request-size checks of coordinator.limits, with a fake clock."""

from __future__ import annotations

import threading

import pytest

from coordinator.limits import (
    CREATE_KEY_PER_CLIENT,
    DEFAULT_MAX_SIGN_MESSAGE_BYTES,
    MAX_KEY_ID_LENGTH,
    NODE_MAX_MESSAGE_BYTES,
    SIGN_PER_CLIENT,
    SIGN_PER_KEY,
    Limits,
    Rate,
    RateLimited,
    RateLimiter,
    check_create_key_request,
    check_sign_request,
)
from mpcnode import server as node_server
from mpcnode.errors import InvalidInput, ResourceExhausted
from mpcnode.rpc import status_of


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(clock: FakeClock, **limits: object) -> RateLimiter:
    return RateLimiter(Limits(**limits), clock=clock)  # type: ignore[arg-type]


def passes(lim: RateLimiter, charges: list[tuple[str, object]]) -> bool:
    try:
        lim.acquire(charges)  # type: ignore[arg-type]
    except RateLimited:
        return False
    return True


def test_burst_then_refused_with_the_limit_and_the_wait() -> None:
    clock = FakeClock()
    lim = limiter(clock, sign_per_client=Rate(2.0, 5.0))
    for _ in range(5):
        lim.check_sign_client("alice")
    with pytest.raises(RateLimited) as info:
        lim.check_sign_client("alice")
    exc = info.value
    assert exc.limit == SIGN_PER_CLIENT
    assert exc.retry_after == pytest.approx(0.5)  # one token at 2 per second
    assert "sign_per_client" in str(exc) and "retry after 0.50 s" in str(exc)
    assert isinstance(exc, ResourceExhausted)
    assert status_of(exc)[0].name == "RESOURCE_EXHAUSTED"


def test_refill_at_the_rate_never_above_burst() -> None:
    clock = FakeClock()
    lim = limiter(clock, sign_per_client=Rate(2.0, 3.0))
    for _ in range(3):
        lim.check_sign_client("alice")
    clock.advance(0.49)
    with pytest.raises(RateLimited) as info:
        lim.check_sign_client("alice")
    assert info.value.retry_after == pytest.approx(0.01)
    clock.advance(0.01)
    lim.check_sign_client("alice")  # exactly one token back
    with pytest.raises(RateLimited):
        lim.check_sign_client("alice")
    clock.advance(3600)  # a long pause saves up `burst` tokens, no more
    for _ in range(3):
        lim.check_sign_client("alice")
    with pytest.raises(RateLimited):
        lim.check_sign_client("alice")


def test_clients_and_keys_and_operations_are_isolated() -> None:
    clock = FakeClock()
    lim = limiter(
        clock,
        sign_per_client=Rate(1.0, 2.0),
        sign_per_key=Rate(1.0, 3.0),
        create_key_per_client=Rate(1.0, 1.0),
    )
    lim.check_sign_client("alice")
    lim.check_sign_client("alice")
    with pytest.raises(RateLimited):
        lim.check_sign_client("alice")
    lim.check_sign_client("bob")  # another client: its own bucket
    lim.check_create_key("alice")  # another operation: its own bucket
    with pytest.raises(RateLimited) as info:
        lim.check_create_key("alice")
    assert info.value.limit == CREATE_KEY_PER_CLIENT
    for _ in range(3):
        lim.check_sign_key("key-a")
    with pytest.raises(RateLimited) as info:
        lim.check_sign_key("key-a")
    assert info.value.limit == SIGN_PER_KEY
    lim.check_sign_key("key-b")  # another key
    # Client ids are (org, subject) pairs: the same subject in another org is another client.
    lim.check_sign_client(("org-1", "alice"))
    lim.check_sign_client(("org-2", "alice"))


def test_acquire_takes_all_or_nothing() -> None:
    clock = FakeClock()
    lim = limiter(clock, sign_per_client=Rate(1.0, 5.0), sign_per_key=Rate(1.0, 1.0))
    assert passes(lim, [(SIGN_PER_CLIENT, "alice"), (SIGN_PER_KEY, "k")])
    for _ in range(3):  # the key is empty: the client's tokens are not taken either
        assert not passes(lim, [(SIGN_PER_CLIENT, "alice"), (SIGN_PER_KEY, "k")])
    for _ in range(4):
        lim.check_sign_client("alice")
    with pytest.raises(RateLimited):
        lim.check_sign_client("alice")


def test_both_refused_report_the_longest_wait() -> None:
    clock = FakeClock()
    lim = limiter(clock, sign_per_client=Rate(1.0, 1.0), sign_per_key=Rate(0.25, 1.0))
    lim.acquire([(SIGN_PER_CLIENT, "alice"), (SIGN_PER_KEY, "k")])
    with pytest.raises(RateLimited) as info:
        lim.acquire([(SIGN_PER_CLIENT, "alice"), (SIGN_PER_KEY, "k")])
    assert info.value.limit == SIGN_PER_CLIENT
    assert info.value.retry_after == pytest.approx(4.0)


def test_a_limit_can_be_turned_off() -> None:
    clock = FakeClock()
    lim = RateLimiter(Limits.from_dict({"sign_per_key": None}), clock=clock)
    for _ in range(10_000):
        lim.check_sign_key("k")
    assert lim.bucket_count(SIGN_PER_KEY) == 0


def test_idle_buckets_are_dropped() -> None:
    clock = FakeClock()
    lim = limiter(clock, sign_per_key=Rate(10.0, 20.0))  # full again 2 s after the last use
    for k in range(100):
        lim.check_sign_key(f"key-{k}")
    assert lim.bucket_count(SIGN_PER_KEY) == 100
    clock.advance(1.0)
    lim.check_sign_key("fresh")
    assert lim.bucket_count(SIGN_PER_KEY) == 101  # not full yet: kept
    clock.advance(1.0)
    lim.check_sign_key("fresh")
    assert lim.bucket_count(SIGN_PER_KEY) == 1  # the 100 refilled completely: forgotten


def test_a_flood_of_distinct_ids_is_bounded() -> None:
    clock = FakeClock()
    lim = limiter(clock, sign_per_key=Rate(1.0, 2.0), max_buckets=50)
    for k in range(10_000):
        lim.check_sign_key(f"made-up-{k}")
        assert lim.bucket_count(SIGN_PER_KEY) <= 50
    # the most recently used buckets are the ones kept: an active key keeps its state
    lim.check_sign_key("busy")
    lim.check_sign_key("busy")
    for k in range(49):
        lim.check_sign_key(f"more-{k}")
    with pytest.raises(RateLimited):
        lim.check_sign_key("busy")


def test_thread_safety_no_token_granted_twice() -> None:
    clock = FakeClock()  # frozen: exactly `burst` calls may pass, however many threads try
    lim = limiter(clock, sign_per_client=Rate(1.0, 500.0), sign_per_key=Rate(1.0, 300.0))
    granted: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        start.wait()
        mine = 0
        for n in range(200):
            if passes(lim, [(SIGN_PER_CLIENT, "alice"), (SIGN_PER_KEY, f"k{n % 2}")]):
                mine += 1
        with lock:
            granted.append(mine)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(granted) == 500  # 1600 tries; the client's 500 tokens, the keys' 2 x 300 >= 500


def test_limits_from_config() -> None:
    assert Limits.from_dict(None) == Limits()
    assert Limits.from_dict({}) == Limits()
    limits = Limits.from_dict(
        {
            "sign_per_client": {"rate": 5, "burst": 10},
            "sign_per_key": {"rate": 0.5},
            "create_key_per_client": None,
            "max_buckets": 7,
            "max_message_bytes": 2 * 1024 * 1024,
            "max_sign_message_bytes": 1024,
        }
    )
    assert limits.sign_per_client == Rate(5.0, 10.0)
    assert limits.sign_per_key == Rate(0.5, 1.0)
    assert limits.create_key_per_client is None
    assert limits.max_buckets == 7
    assert limits.max_message_bytes == 2 * 1024 * 1024
    assert limits.max_sign_message_bytes == 1024
    for bad in (
        {"sign_per_clients": {"rate": 1}},
        {"sign_per_client": {"rate": 0, "burst": 1}},
        {"sign_per_client": {"rate": -1, "burst": 1}},
        {"sign_per_client": {"rate": 1, "burst": 0.5}},
        {"sign_per_client": {"burst": 1}},
        {"sign_per_client": {"rate": "1"}},
        {"sign_per_client": {"rate": 1, "burst": 2, "window": 3}},
        {"sign_per_client": 5},
        {"sign_per_client": {"rate": float("inf")}},
        {"max_buckets": 0},
        {"max_buckets": True},
        {"max_message_bytes": 1024},
        {"max_sign_message_bytes": 0},
        {"max_sign_message_bytes": NODE_MAX_MESSAGE_BYTES + 1},
        {"max_sign_message_bytes": 1024 * 1024},  # no room left under the 1 MiB request cap
        [],
    ):
        with pytest.raises(ValueError):
            Limits.from_dict(bad)


def test_defaults_are_safe_and_generous() -> None:
    limits = Limits()
    for rate in (limits.sign_per_client, limits.sign_per_key, limits.create_key_per_client):
        assert rate is not None
    assert limits.sign_per_client is not None and limits.sign_per_client.rate >= 20
    assert limits.max_sign_message_bytes == DEFAULT_MAX_SIGN_MESSAGE_BYTES == 64 * 1024
    assert limits.max_message_bytes == 1024 * 1024
    # the coordinator may never accept a message the nodes would refuse
    assert node_server.MAX_MESSAGE_BYTES == NODE_MAX_MESSAGE_BYTES


def test_sign_request_sizes() -> None:
    limits = Limits()
    ok = dict(key_id="k", message=b"m", digest=b"", path="")
    check_sign_request(limits, **ok)  # type: ignore[arg-type]
    check_sign_request(limits, "k" * MAX_KEY_ID_LENGTH, b"x" * (64 * 1024), b"", "m/1")
    check_sign_request(limits, "k", b"", b"d" * 32, "")
    for bad in (
        dict(ok, key_id=""),
        dict(ok, key_id="k" * (MAX_KEY_ID_LENGTH + 1)),
        dict(ok, message=b"x" * (64 * 1024 + 1)),
        dict(ok, message=b"", digest=b"d" * 31),
        dict(ok, message=b"", digest=b"d" * 33),
        dict(ok, path="m" + "/1" * 3000),
    ):
        with pytest.raises(InvalidInput):
            check_sign_request(limits, **bad)  # type: ignore[arg-type]
    check_create_key_request("ed25519")
    with pytest.raises(InvalidInput):
        check_create_key_request("x" * 33)
