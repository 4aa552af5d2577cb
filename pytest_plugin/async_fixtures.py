"""``async_registry_client``: an :class:`sdk.aio.AsyncClient` on the fake, for async tests.

It works under both async test runners:

- pytest-asyncio (``@pytest.mark.asyncio``): the client is made and closed on the test's
  event loop by a ``pytest_asyncio.fixture``;
- anyio's plugin (``@pytest.mark.anyio``, asyncio backend): anyio runs the same kind of
  async fixture on its test runner's loop.

``async_registry_client`` itself is a plain fixture that picks the variant for the
requesting test (anyio when the test uses ``anyio_backend``), because a ``grpc.aio``
client belongs to the loop it was made on and each runner owns its loop. It is skipped
on anyio's trio backend: grpc.aio runs on asyncio only.

This module imports only pytest and the standard library at import time, so the plugin
loads without pytest-asyncio, anyio or the ``testing`` extra.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pytest_plugin.targets import Credentials, Target

__all__ = [
    "_async_registry_client_anyio",
    "_async_registry_client_asyncio",
    "async_registry_client",
]

_ANYIO = "_async_registry_client_anyio"
_ASYNCIO = "_async_registry_client_asyncio"


async def _client(
    fake_registry: Any, registry_credentials: Credentials, fake_registry_target: Target
) -> AsyncIterator[Any]:
    """The client, made on the running loop, closed (and its registrations stopped) after."""
    from sdk import Config
    from sdk.aio import AsyncClient

    clock = fake_registry_target.clock if fake_registry_target.kind == "inprocess" else None
    config = Config(
        fake_registry.address, registry_credentials.client_key, registry_credentials.client_secret
    )
    client = AsyncClient(config, clock=clock)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def _async_registry_client_anyio(
    anyio_backend: Any,
    fake_registry: Any,
    registry_credentials: Credentials,
    fake_registry_target: Target,
) -> AsyncIterator[Any]:
    backend = anyio_backend if isinstance(anyio_backend, str) else anyio_backend[0]
    if backend != "asyncio":
        pytest.skip(f"async_registry_client needs asyncio (grpc.aio); anyio backend: {backend}")
    async for client in _client(fake_registry, registry_credentials, fake_registry_target):
        yield client


if importlib.util.find_spec("pytest_asyncio") is not None:
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def _async_registry_client_asyncio(
        fake_registry: Any, registry_credentials: Credentials, fake_registry_target: Target
    ) -> AsyncIterator[Any]:
        async for client in _client(fake_registry, registry_credentials, fake_registry_target):
            yield client

else:

    @pytest.fixture
    def _async_registry_client_asyncio() -> Any:
        _no_runner()


@pytest.fixture
def async_registry_client(request: pytest.FixtureRequest) -> Any:
    """An :class:`sdk.aio.AsyncClient` wired to the fake, closed after the test.

    Use it from ``async def`` tests marked ``@pytest.mark.asyncio`` (pytest-asyncio) or
    ``@pytest.mark.anyio`` (anyio's plugin, asyncio backend). In process it runs on the
    fake's manual clock (``registry_clock``), like ``registry_client``: advancing that
    clock moves the SDK's token renewals, heartbeat waits and cache ages too.
    """
    if "anyio_backend" in request.fixturenames:
        return request.getfixturevalue(_ANYIO)
    if not request.config.pluginmanager.has_plugin("asyncio"):
        _no_runner()
    return request.getfixturevalue(_ASYNCIO)


def _no_runner() -> None:
    pytest.fail(
        "async_registry_client needs an async test runner: install pytest-asyncio "
        "(and mark the test @pytest.mark.asyncio) or anyio (@pytest.mark.anyio)",
        pytrace=False,
    )
