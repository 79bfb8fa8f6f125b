"""Per-user limits in the real local Redis: two app instances (two clients, two UsageLimits)
and many threads admit exactly as many requests and tokens as the limits allow."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
import redis

from memory import ChatMemoryError, RedisTarget, create_redis_client
from memory.limits import Limit, LimitExceeded, LimitPolicy, Reservation, UsageLimits
from tests.test_security import fill, full_redis  # noqa: F401  (fixture)


@pytest.fixture
def two_instances(redis_url: str, index_name: str) -> Iterator[tuple[UsageLimits, UsageLimits]]:
    clients = [create_redis_client(RedisTarget(url=redis_url)) for _ in range(2)]
    yield (
        UsageLimits(clients[0], index_name=index_name),
        UsageLimits(clients[1], index_name=index_name),
    )
    for client in clients:
        client.close()


def race(
    attempts: int, instances: tuple[UsageLimits, ...], attempt: Callable[[UsageLimits], object]
) -> tuple[int, list[LimitExceeded]]:
    """Run `attempts` calls at once across the instances; (admitted, refusals)."""
    admitted: list[int] = []
    refused: list[LimitExceeded] = []
    start = threading.Barrier(attempts)

    def run(index: int) -> None:
        start.wait()
        try:
            attempt(instances[index % len(instances)])
            admitted.append(index)
        except LimitExceeded as error:
            refused.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(admitted), refused


def test_requests_per_minute_hold_exactly_across_instances_and_threads(
    two_instances: tuple[UsageLimits, UsageLimits],
) -> None:
    policy = LimitPolicy(requests_per_minute=7, tokens_per_day=0)
    admitted, refused = race(24, two_instances, lambda limits: limits.acquire("ann", 10, policy))
    assert admitted == 7
    assert len(refused) == 17
    error = refused[0]
    assert error.limit is Limit.REQUESTS_PER_MINUTE
    assert 0 < error.resets_in <= 60
    assert "7 requests per minute" in str(error) and "resets in" in str(error)
    # Another user has their own minute.
    two_instances[1].acquire("bob", 10, policy)


def test_tokens_per_day_hold_exactly_and_settle_to_reported_usage(
    two_instances: tuple[UsageLimits, UsageLimits],
) -> None:
    policy = LimitPolicy(requests_per_minute=0, tokens_per_day=10_000)
    held: list[Reservation] = []
    lock = threading.Lock()

    def reserve(limits: UsageLimits) -> None:
        reservation = limits.acquire("ann", 1_000, policy)
        with lock:
            held.append(reservation)

    admitted, refused = race(25, two_instances, reserve)
    assert admitted == 10
    assert {error.limit for error in refused} == {Limit.TOKENS_PER_DAY}
    assert "midnight UTC" in str(refused[0]) and "10,000 tokens per day" in str(refused[0])
    assert 0 < refused[0].resets_in <= 86_400
    # The replies were short: settling to real usage frees the rest of each reservation.
    for index, reservation in enumerate(held):
        two_instances[index % 2].settle(reservation, 400)
    admitted_after, _ = race(20, two_instances, lambda limits: limits.acquire("ann", 1_000, policy))
    assert admitted_after == 6  # 10 x 400 used, 6,000 left


def test_a_request_larger_than_the_daily_limit_says_so(
    two_instances: tuple[UsageLimits, UsageLimits],
) -> None:
    with pytest.raises(LimitExceeded, match="more than your daily limit of 500"):
        two_instances[0].acquire("ann", 501, LimitPolicy(0, 500))


def test_a_refused_request_records_nothing(
    two_instances: tuple[UsageLimits, UsageLimits],
) -> None:
    first, second = two_instances
    first.acquire("ann", 900, LimitPolicy(0, 1_000))
    with pytest.raises(LimitExceeded):
        first.acquire("ann", 200, LimitPolicy(0, 1_000))
    second.acquire("ann", 100, LimitPolicy(0, 1_000))  # exactly the rest is still there


def test_admins_get_scaled_limits_or_none() -> None:
    policy = LimitPolicy(requests_per_minute=20, tokens_per_day=1_000)
    assert policy.scaled(5) == LimitPolicy(100, 5_000)
    assert policy.scaled(0).unlimited


@pytest.mark.usefixtures("full_redis")
def test_no_limit_still_refuses_when_redis_refuses_writes(
    redis_client: redis.Redis, index_name: str
) -> None:
    """The admission write is the check that the reply could be stored: with Redis full, the
    model is never called."""
    limits = UsageLimits(redis_client, index_name=index_name)
    fill(redis_client)
    with pytest.raises(ChatMemoryError, match="is full"):
        limits.acquire("ann", 10, LimitPolicy(0, 0))
