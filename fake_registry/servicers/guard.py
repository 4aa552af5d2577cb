"""One place that turns exceptions into statuses, so the fake never answers UNKNOWN.

A :class:`~fake_registry.errors.FakeRegistryError` becomes its own code. Any
other exception is a bug in the fake: it is answered with INTERNAL, logged and
kept in :class:`ErrorSink`, so a test harness can re-raise it at teardown.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from grpc import aio

from fake_registry.errors import FakeRegistryError

__all__ = ["ErrorSink", "guard_stream", "guard_unary"]

log = logging.getLogger("fake_registry")

S = TypeVar("S", bound="GuardedServicer")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
Context = aio.ServicerContext[Any, Any]


class ErrorSink:
    """Unexpected exceptions raised inside the fake, in arrival order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._errors: list[BaseException] = []

    def record(self, error: BaseException) -> None:
        with self._lock:
            self._errors.append(error)

    def take(self) -> list[BaseException]:
        """Return and forget the recorded errors."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors


class GuardedServicer:
    """Base for servicers whose methods are wrapped by the guards below."""

    def __init__(self, errors: ErrorSink) -> None:
        self.errors = errors


async def _answer(servicer: GuardedServicer, context: Context, exc: Exception) -> None:
    if isinstance(exc, FakeRegistryError):
        await context.abort(grpc.StatusCode[exc.code], exc.message)
    servicer.errors.record(exc)
    log.exception("unexpected error inside the fake", exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error in the fake: {type(exc).__name__}"
    )


def guard_unary(
    method: Callable[[S, Req, Context], Awaitable[Resp]],
) -> Callable[[S, Req, Context], Awaitable[Resp]]:
    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: Context) -> Resp:
        try:
            return await method(self, request, context)
        except aio.AbortError:
            raise
        except Exception as exc:
            await _answer(self, context, exc)
            raise  # pragma: no cover - _answer always aborts

    return wrapper


def guard_stream(
    method: Callable[[S, Req, Context], AsyncIterator[Resp]],
) -> Callable[[S, Req, Context], AsyncIterator[Resp]]:
    @functools.wraps(method)
    async def wrapper(self: S, request: Req, context: Context) -> AsyncIterator[Resp]:
        try:
            async for item in method(self, request, context):
                yield item
        except aio.AbortError:
            raise
        except Exception as exc:
            await _answer(self, context, exc)

    return wrapper
