"""The async_registry_client fixture under pytest-asyncio and under anyio's plugin."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = (
    "[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n"
    "addopts = -p no:cacheprovider\n"
)

SCENARIOS = """
import asyncio

import pytest

from sdk.aio import AsyncClient


{mark}
async def test_client_logs_in_and_lists(async_registry_client, fake_registry):
    assert isinstance(async_registry_client, AsyncClient)
    fake_registry.ensure_service("shop", "cart")
    (view,) = await async_registry_client.registry.list_services("shop")
    assert view.service.name == "cart"
    assert fake_registry.authentications == 1


{mark}
@pytest.mark.fake_registry(token_ttl=600)
async def test_client_shares_the_clock(async_registry_client, registry_clock, fake_registry):
    await async_registry_client.auth.token()
    registry_clock.advance(301)  # past min(300, 600 / 2): the next call renews
    await async_registry_client.registry.list_services()
    assert fake_registry.renewals == 1


{mark}
async def test_self_registration_beats_on_the_shared_clock(
    async_registry_client, registry_clock, fake_registry
):
    registration = await async_registry_client.registry.register_self(
        "shop", "api", host="10.0.0.7", grpc_port=9000, ttl_seconds=30
    )
    assert await registration.wait_registered()
    registry_clock.advance(registration.interval)
    assert await registration.wait_answers(1)
    # Left running on purpose: closing the client at teardown stops and deregisters it
    # on the test's own loop, before that loop closes.
    assert asyncio.get_running_loop().is_running()


{mark}
async def test_client_is_closed_after_the_test(async_registry_client, request):
    request.config.stash_client = async_registry_client


def test_previous_client_was_closed(request):
    assert request.config.stash_client.closed
"""


def test_async_registry_client_with_pytest_asyncio(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(SCENARIOS.format(mark="@pytest.mark.asyncio"))
    result = pytester.runpytest("-W", "error", "-p", "no:anyio")
    result.assert_outcomes(passed=5)


def test_async_registry_client_with_anyio(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")  # no pytest-asyncio keys
    pytester.makepyfile(
        SCENARIOS.format(mark="@pytest.mark.anyio")
        + """

@pytest.fixture
def anyio_backend():
    return "asyncio"
"""
    )
    result = pytester.runpytest("-W", "error", "-p", "no:asyncio")
    result.assert_outcomes(passed=5)


def test_both_runners_in_one_session(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(
        test_with_asyncio=SCENARIOS.format(mark="@pytest.mark.asyncio"),
        test_with_anyio=SCENARIOS.format(mark="@pytest.mark.anyio")
        + "\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n",
    )
    result = pytester.runpytest("-W", "error")
    result.assert_outcomes(passed=10)


def test_without_an_async_runner_the_failure_says_what_to_install(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(
        """
        def test_sync(async_registry_client):
            raise AssertionError("not reached")
        """
    )
    result = pytester.runpytest("-p", "no:asyncio", "-p", "no:anyio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*needs an async test runner: install pytest-asyncio*"])
