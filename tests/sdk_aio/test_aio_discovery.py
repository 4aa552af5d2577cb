"""sdk.aio.AsyncDiscovery: what only asyncio has (shared scenarios: test_sdk_discovery.py).

One refresh task per service shared by every caller; a caller that is cancelled or gives
up never cancels it for the others, and the flight keeps its own deadline; ``close()``
cancels flights without any caller retrying. ``ListServices`` is held by the fake on the
shared manual clock, so "in flight" lasts exactly until the test advances the clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio

from fake_registry import FakeRegistry, ManualClock
from fake_registry.backends import BackendPool, start_backends
from sdk import Config
from sdk.aio import AsyncClient
from sdk.errors import ClientClosed, DeadlineExceeded, ServiceNotFound, Unavailable
from tests.conftest import CLIENT_KEY, CLIENT_SECRET

pytestmark = pytest.mark.asyncio

LIST = "/xiaozhizhang.registry.v1.RegistryService/ListServices"
HOLD = 5.0  # seconds of virtual time the fake holds a ListServices call


@pytest_asyncio.fixture
async def client(fake: FakeRegistry, clock: ManualClock) -> AsyncIterator[AsyncClient]:
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, default_timeout=10.0)
    async with AsyncClient(config, clock=clock) as c:
        await c.auth.token()  # keep authentication out of the races
        yield c


@pytest.fixture
def pool(fake: FakeRegistry) -> Iterator[BackendPool]:
    with start_backends(fake, 3) as p:
        yield p


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``predicate`` holds (``AssertionError`` after ``timeout``)."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "the condition did not hold in time"
        await asyncio.sleep(0.001)


async def _held(fake: FakeRegistry, count: int = 1) -> None:
    """Until the fake has received ``count`` ListServices calls (it journals arrivals)."""
    await _until(lambda: len(fake.calls(LIST)) >= count)


def _keys(view: object) -> list[str]:
    return [i.instance_key for i in view.instances]  # type: ignore[attr-defined]


async def test_a_thousand_concurrent_picks_share_one_list_services(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    fake.add_fault("ListServices", delay=HOLD, times=1)
    tasks = [asyncio.create_task(client.discovery.pick("demo", "echo")) for _ in range(1000)]
    await _held(fake)
    assert not any(t.done() for t in tasks)  # all of them wait for the one flight
    clock.advance(HOLD)
    picks = await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert len(fake.calls(LIST)) == 1
    counts = Counter(p.instance.instance_key for p in picks)
    assert counts == {"echo-0": 334, "echo-1": 333, "echo-2": 333}  # round-robin over all


async def test_a_cancelled_caller_does_not_cancel_the_shared_refresh(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    fake.add_fault("ListServices", delay=HOLD, times=1)
    starter = asyncio.create_task(client.discovery.resolve("demo", "echo"))
    await _held(fake)
    waiter = asyncio.create_task(client.discovery.resolve("demo", "echo"))
    await asyncio.sleep(0)  # the waiter joins the flight
    starter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter
    clock.advance(HOLD)
    view = await asyncio.wait_for(waiter, 10)
    assert _keys(view) == ["echo-0", "echo-1", "echo-2"]
    assert await client.discovery.resolve("demo", "echo") is view
    assert [c.code for c in fake.calls(LIST)] == ["OK"]  # one call, never cancelled


async def test_a_refresh_whose_only_caller_was_cancelled_still_fills_the_cache(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    fake.add_fault("ListServices", delay=HOLD, times=1)
    caller = asyncio.create_task(client.discovery.pick("demo", "echo"))
    await _held(fake)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    clock.advance(HOLD)
    await _until(lambda: fake.calls(LIST)[0].code is not None)
    pick = await client.discovery.pick("demo", "echo")
    assert pick.instance.instance_key == "echo-0"  # the cancelled caller picked nothing
    assert [c.code for c in fake.calls(LIST)] == ["OK"]


async def test_a_waiter_gives_up_at_its_own_timeout_and_the_refresh_goes_on(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    fake.add_fault("ListServices", delay=HOLD, times=1)
    patient = asyncio.create_task(client.discovery.resolve("demo", "echo"))
    await _held(fake)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="waiting for the refresh of demo/echo"):
        await client.discovery.resolve("demo", "echo", timeout=0.2)
    assert 0.15 < time.monotonic() - started < 3.0  # its own bound, in real seconds
    assert not patient.done()
    clock.advance(HOLD)
    assert _keys(await asyncio.wait_for(patient, 10)) == ["echo-0", "echo-1", "echo-2"]
    assert len(fake.calls(LIST)) == 1


async def test_the_refresh_outlives_the_short_timeout_of_the_call_that_started_it(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    fake.add_fault("ListServices", delay=HOLD, times=1)
    with pytest.raises(DeadlineExceeded):
        await client.discovery.resolve("demo", "echo", timeout=0.2)
    # The flight runs with the client's default deadline (10 s), not the starter's 0.2 s:
    # well past 0.2 s, the call is still held by the fake rather than ended by its deadline.
    with pytest.raises(DeadlineExceeded, match="waiting for the refresh of demo/echo"):
        await client.discovery.resolve("demo", "echo", timeout=0.5)
    assert fake.calls(LIST)[0].code is None
    clock.advance(HOLD)
    view = await client.discovery.resolve("demo", "echo", timeout=5)
    assert _keys(view) == ["echo-0", "echo-1", "echo-2"]
    assert [c.code for c in fake.calls(LIST)] == ["OK"]


async def test_every_waiter_gets_the_refresh_error_and_it_is_held_briefly(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    fake.add_fault("ListServices", code="UNAVAILABLE", delay=HOLD, times=1)
    tasks = [asyncio.create_task(client.discovery.resolve("demo", "echo")) for _ in range(20)]
    await _held(fake)
    clock.advance(HOLD)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert all(isinstance(r, Unavailable) for r in results), results
    with pytest.raises(Unavailable):  # failure_hold (1 s): no new call yet
        await client.discovery.resolve("demo", "echo")
    assert len(fake.calls(LIST)) == 1
    clock.advance(1.5)
    assert _keys(await client.discovery.resolve("demo", "echo")) == ["echo-0", "echo-1", "echo-2"]
    assert len(fake.calls(LIST)) == 2


async def test_callers_get_the_stale_entry_at_once_while_it_is_refreshed(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    view = await client.discovery.resolve("demo", "echo")
    clock.advance(31)
    fake.add_fault("ListServices", delay=HOLD, times=1)
    leader = asyncio.create_task(client.discovery.resolve("demo", "echo"))
    await _held(fake, 2)
    assert await asyncio.wait_for(client.discovery.resolve("demo", "echo"), 1) is view
    clock.advance(HOLD)
    fresh = await asyncio.wait_for(leader, 10)
    assert fresh is not view
    assert _keys(fresh) == _keys(view)
    assert await client.discovery.resolve("demo", "echo") is fresh


async def test_a_service_that_vanished_is_not_served_stale_and_its_records_go(
    client: AsyncClient, fake: FakeRegistry, clock: ManualClock, pool: BackendPool
) -> None:
    (await client.discovery.pick("demo", "echo")).failed()
    assert client.discovery.failure_records("demo", "echo") == 1
    fake.wipe()
    clock.advance(31)  # stale, well within max_stale: an outage would serve it
    with pytest.raises(ServiceNotFound):
        await client.discovery.resolve("demo", "echo")
    assert client.discovery.failure_records("demo", "echo") == 0
    with pytest.raises(ServiceNotFound):  # held for failure_hold: the registry is not asked
        await client.discovery.pick("demo", "echo")
    assert len(fake.calls(LIST)) == 2
    pool.start()  # ensure the service and register the backends again
    clock.advance(1.5)
    assert _keys(await client.discovery.resolve("demo", "echo")) == ["echo-0", "echo-1", "echo-2"]


async def test_close_cancels_a_refresh_in_flight_and_nobody_retries_it(
    client: AsyncClient, fake: FakeRegistry, pool: BackendPool
) -> None:
    fake.add_fault("ListServices", drop=True)  # never answered: only close() ends it
    waiters = [asyncio.create_task(client.discovery.resolve("demo", "echo")) for _ in range(3)]
    await _held(fake)
    started = time.monotonic()
    await client.discovery.close()
    results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), 5)
    assert time.monotonic() - started < 3.0
    assert all(isinstance(r, ClientClosed) for r in results), results
    assert len(fake.calls(LIST)) == 1
    with pytest.raises(ClientClosed):
        await client.discovery.resolve("demo", "echo")
    await client.discovery.close()  # idempotent


async def test_picks_report_from_any_thread(client: AsyncClient, pool: BackendPool) -> None:
    pick = await client.discovery.pick("demo", "echo")
    await asyncio.to_thread(pick.failed, RuntimeError("seen by a worker thread"))
    assert client.discovery.is_cooling("demo", "echo", pick.instance)
    assert [
        (await client.discovery.pick("demo", "echo")).instance.instance_key for _ in range(4)
    ] == [
        "echo-1",
        "echo-2",
        "echo-1",
        "echo-2",
    ]
    await asyncio.to_thread(pick.succeeded)
    assert client.discovery.failure_records("demo", "echo") == 0


async def test_reprs_name_the_env_and_the_cache_size(
    client: AsyncClient, pool: BackendPool
) -> None:
    assert repr(client.discovery) == "AsyncDiscovery(env='dev', cached=0)"
    await client.discovery.resolve("demo", "echo")
    assert repr(client.discovery) == "AsyncDiscovery(env='dev', cached=1)"


async def test_close_right_after_a_refresh_was_started_releases_it(
    client: AsyncClient, fake: FakeRegistry, pool: BackendPool
) -> None:
    waiter = asyncio.create_task(client.discovery.resolve("demo", "echo"))
    await asyncio.sleep(0)  # the waiter started the flight; the flight has not run yet
    await client.discovery.close()  # cancels the flight before its first step
    with pytest.raises(ClientClosed):
        await asyncio.wait_for(waiter, 5)
    assert fake.calls(LIST) == []
