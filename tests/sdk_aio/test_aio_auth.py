"""sdk.aio.AsyncAuth: what only asyncio has (the shared scenarios run in test_sdk_auth.py).

One refresh task shared by every caller; a caller that is cancelled or gives up never
cancels it for the others; 1,000 concurrent calls through a token expiry cause one refresh.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from fake_registry import FakeRegistry, ManualClock
from sdk import Config
from sdk.aio import AsyncClient
from sdk.errors import DeadlineExceeded, Unavailable
from tests.conftest import CLIENT_KEY, CLIENT_SECRET
from tests.flavours import settled

pytestmark = pytest.mark.asyncio

AUTHENTICATE = "AuthenticateClient"
RENEW = "RenewToken"
CALLS = 1_000


@pytest_asyncio.fixture
async def client(fake: FakeRegistry, clock: ManualClock) -> AsyncIterator[AsyncClient]:
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, default_timeout=10.0)
    async with AsyncClient(config, clock=clock) as c:
        yield c


async def _authenticating(fake: FakeRegistry, method: str = AUTHENTICATE) -> None:
    """Until the fake has received a ``method`` call (it journals calls as they arrive)."""
    await asyncio.to_thread(fake.wait_for, lambda call: call.method.endswith(method), timeout=5)


async def test_a_thousand_calls_through_a_due_renewal_renew_once(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient
) -> None:
    fake.set_token_ttl(10)
    await client.registry.list_services()
    clock.advance(6)  # past the 5 s lead: a renewal is due, the old token still works
    results = await asyncio.gather(
        *(client.registry.list_services() for _ in range(CALLS)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (fake.authentications, fake.renewals) == (1, 1)
    assert client.auth.generation == 2
    assert len(fake.calls("ListServices")) == CALLS + 1


async def test_a_thousand_calls_through_an_expired_token_authenticate_once(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient
) -> None:
    fake.set_token_ttl(10)
    await client.registry.list_services()
    clock.advance(11)  # expired: every call waits for the one new token
    results = await asyncio.gather(
        *(client.registry.list_services() for _ in range(CALLS)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert (fake.authentications, fake.renewals) == (2, 0)
    assert client.auth.generation == 2
    codes = {call.code for call in fake.calls("ListServices")}
    assert codes == {"OK"}  # no call went out with the expired token


async def test_a_cancelled_caller_does_not_cancel_the_shared_refresh(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    fake.add_fault(AUTHENTICATE, delay=0.3, real_time=True, times=1)
    starter = asyncio.ensure_future(client.auth.token())
    await _authenticating(fake)
    waiter = asyncio.ensure_future(client.auth.token())
    assert await settled(lambda: client.auth.waiters >= 2)
    starter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starter
    token = await waiter
    assert token
    assert fake.authentications == 1
    assert await client.auth.token() == token  # the refresh completed and was cached


async def test_a_waiter_that_times_out_leaves_the_refresh_to_the_others(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    fake.add_fault(AUTHENTICATE, delay=0.3, real_time=True, times=1)
    patient = asyncio.ensure_future(client.auth.token(timeout=10))
    await _authenticating(fake)
    with pytest.raises(DeadlineExceeded):
        await client.auth.token(timeout=0.05)
    assert await patient
    assert fake.authentications == 1


async def test_every_waiter_gets_its_own_exception_object(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient
) -> None:
    fake.add_fault(AUTHENTICATE, code="UNAVAILABLE", delay=1.0, times=1)
    tasks = [asyncio.ensure_future(client.auth.token()) for _ in range(3)]
    await _authenticating(fake)
    assert await settled(lambda: client.auth.waiters >= 3)
    clock.advance(1.0)  # releases the virtual delay: the refresh fails
    errors = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(e, Unavailable) for e in errors)
    assert len({id(e) for e in errors}) == 3
    assert len(fake.calls(AUTHENTICATE)) == 1


async def test_a_refresh_cancelled_before_it_ran_does_not_wedge_the_token(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    starter = asyncio.ensure_future(client.auth.token())
    await asyncio.sleep(0)  # the starter made the refresh task, which has not run yet
    flight = client.auth._flight
    assert flight is not None
    flight.cancel()
    # The starter was not cancelled itself: it starts a new refresh instead of waiting
    # forever for the abandoned one, or raising a CancelledError that is not its own.
    assert await asyncio.wait_for(starter, 5)
    assert client.auth._flight is not flight
    assert fake.authentications == 1  # the cancelled refresh never reached the server


async def test_a_refresh_that_runs_out_of_time_is_retried_within_the_callers_deadline(
    fake: FakeRegistry, clock: ManualClock
) -> None:
    config = Config(fake.address, CLIENT_KEY, CLIENT_SECRET, default_timeout=0.3)
    fake.add_fault(AUTHENTICATE, drop=True, times=1)  # the first answer never comes
    async with AsyncClient(config, clock=clock) as client:
        hasty = asyncio.ensure_future(client.auth.token(timeout=0.3))  # starts the refresh
        await _authenticating(fake)
        patient = asyncio.ensure_future(client.auth.token(timeout=5))
        with pytest.raises(DeadlineExceeded):
            await hasty
        assert await patient  # the refresh ended without a verdict: it started another
    assert len(fake.calls(AUTHENTICATE)) == 2
    assert fake.authentications == 1


async def test_a_slow_renewal_does_not_fail_a_call_while_the_old_token_works(
    fake: FakeRegistry, clock: ManualClock, client: AsyncClient
) -> None:
    fake.set_token_ttl(10)
    old = await client.auth.token()
    clock.advance(6)  # renewal due; the token is valid for 4 more seconds
    fake.add_fault(RENEW, delay=0.5, real_time=True, times=1)
    assert await client.auth.token(timeout=0.05) == old  # not DeadlineExceeded
    assert await settled(lambda: client.auth.generation == 2)  # the renewal lands later
    assert await client.auth.token() != old
    assert (fake.authentications, fake.renewals) == (1, 1)


async def test_a_cancelled_waiter_is_cancelled_even_as_the_refresh_lands(
    fake: FakeRegistry, client: AsyncClient
) -> None:
    # Python 3.11's wait_for could return the result instead of raising when both happen
    # in one loop step; the waiter must see its own cancellation.
    fake.add_fault(AUTHENTICATE, delay=0.2, real_time=True, times=1)
    starter = asyncio.ensure_future(client.auth.token())
    await _authenticating(fake)
    flight = client.auth._flight
    assert flight is not None
    waiter = asyncio.ensure_future(client.auth.token())
    assert await settled(lambda: client.auth.waiters >= 2)
    flight.add_done_callback(lambda _: waiter.cancel())  # cancelled in the step it lands
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await starter
