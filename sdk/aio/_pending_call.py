"""A streaming call that opens later, once what it needs (a token, a picked instance) is known.

The registry's token channel (``sdk.aio._channel``) and the discovery channel
(``sdk.aio._discovery_channel``) hand one out when they cannot open the real ``grpc.aio``
call at once: it opens on first use and then forwards to that call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

__all__ = ["PendingCall"]


class PendingCall:
    """A streaming call that opens once a token is obtained (when first used).

    Offers what ``grpc.aio`` streaming calls offer: async iteration and ``read()`` (server
    streams), ``write()`` / ``done_writing()`` (client streams), ``await`` (stream-unary),
    ``cancel()``, and the status accessors. A token failure is raised from the first use.
    Cancelling a task while it waits for the call to open cancels the call, as cancelling
    a task that reads a ``grpc.aio`` call does.
    """

    def __init__(self, open_call: Callable[[], Awaitable[Any]]) -> None:
        self._open_call = open_call
        self._opening: asyncio.Future[Any] | None = None
        self._cancelled = False
        #: The generation of the token the call opened with, once known (``None`` before,
        #: and for calls that carry no registry token).
        self.token_generation: int | None = None

    async def _call(self) -> Any:
        if self._cancelled:
            raise asyncio.CancelledError("the call was cancelled before it opened")
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open_call())
        # Not shielded: as with a grpc.aio call, a user cancelled while the call opens
        # cancels the call, so no stream is opened that nobody reads or cancels.
        return await self._opening

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        call = await self._call()
        async for message in call:
            yield message

    async def read(self) -> Any:
        return await (await self._call()).read()

    async def write(self, request: Any) -> None:
        await (await self._call()).write(request)

    async def done_writing(self) -> None:
        await (await self._call()).done_writing()

    def __await__(self) -> Any:
        return self._result().__await__()

    async def _result(self) -> Any:
        return await (await self._call())

    def cancel(self) -> bool:
        opening = self._opening
        if (
            opening is not None
            and opening.done()
            and not opening.cancelled()
            and opening.exception() is None
        ):
            return bool(opening.result().cancel())
        self._cancelled = True
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        return True

    def cancelled(self) -> bool:
        return self._cancelled

    def done(self) -> bool:
        if self._opening is None or not self._opening.done():
            return self._cancelled
        if self._opening.cancelled() or self._opening.exception() is not None:
            return True
        return bool(self._opening.result().done())

    async def code(self) -> grpc.StatusCode:
        return await (await self._call()).code()  # type: ignore[no-any-return]

    async def details(self) -> str:
        return await (await self._call()).details()  # type: ignore[no-any-return]

    async def initial_metadata(self) -> Any:
        return await (await self._call()).initial_metadata()

    async def trailing_metadata(self) -> Any:
        return await (await self._call()).trailing_metadata()

    async def wait_for_connection(self) -> None:
        await (await self._call()).wait_for_connection()

    def __repr__(self) -> str:
        state = "opening" if self._opening is None or not self._opening.done() else "open"
        return f"PendingCall({state})"
