"""The asyncio SDK: :class:`AsyncClient` and the same surface as the sync SDK, awaited.

Built on ``grpc.aio`` and the same sans-IO core (``sdk._core``) as :mod:`sdk`, so both
flavours make the same decisions: token refresh and single flight, discovery caching and
balancing, the registration lease machine. Values, errors and the configuration are the
sync SDK's own (``sdk.Config``, ``sdk.models``, ``sdk.errors``)::

    import asyncio
    from sdk import Config
    from sdk.aio import AsyncClient

    async def main() -> None:
        async with AsyncClient(Config.from_env()) as client:
            pick = await client.discovery.pick("demo", "echo")
            ...

    asyncio.run(main())

The public names are listed in ``__all__`` (a test keeps it exact and checks that every
sync API has its async twin with the same parameters).
"""

from __future__ import annotations

from sdk.aio.auth import AsyncAuth
from sdk.aio.client import AsyncClient
from sdk.aio.discovery import AsyncDiscovery
from sdk.aio.registration import AsyncRegistration
from sdk.aio.registry import AsyncRegistryClient

__all__ = [
    "AsyncAuth",
    "AsyncClient",
    "AsyncDiscovery",
    "AsyncRegistration",
    "AsyncRegistryClient",
]
