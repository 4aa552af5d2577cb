"""Run the sync SDK's behaviour tests against the asyncio SDK as well.

A test written against ``sdk.Client`` takes ``make_client`` instead of calling ``Client``;
parametrized over the two flavours, it gets either a real ``sdk.Client`` or a
:class:`Blocking` view of a real ``sdk.aio.AsyncClient`` running on an event loop in a
background thread. The view only changes how results are waited for: every coroutine
method of the async object runs on its loop and the test thread blocks on the result;
sync methods and properties run there too. Nothing is mocked: the async client talks
``grpc.aio`` to the fake like it would in production.

The flavour shows in the test id (``[sync]`` / ``[async]``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Protocol, TypeVar

import grpc
import grpc.aio
import pytest

from sdk import Client, Config, registration
from sdk.aio import AsyncClient
from sdk.aio import registration as aio_registration
from sdk.clock import Clock

__all__ = [
    "FLAVOURS",
    "Blocking",
    "LoopThread",
    "MakeClient",
    "awaited",
    "eventually",
    "settled",
    "start_registration",
    "unwrapped",
]

FLAVOURS = ("sync", "async")
_T = TypeVar("_T")
_WAIT = 60.0


def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds; ``False`` after ``timeout`` real seconds.

    For effects that happen on another thread or loop and signal nothing to wait on.
    """
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= end:
            return False
        time.sleep(0.001)
    return True


async def settled(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """:func:`eventually` inside a running loop: yields to the other tasks between polls."""
    end = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= end:
            return False
        await asyncio.sleep(0.001)


class LoopThread:
    """An asyncio loop running in a daemon thread; :meth:`run` blocks on a coroutine."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float = _WAIT) -> _T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a plain function on the loop thread (the async SDK is single-threaded)."""

        async def inline() -> _T:
            return fn(*args, **kwargs)

        return self.run(inline())

    def close(self) -> None:
        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def _is_sdk_aio(value: object) -> bool:
    return type(value).__module__.startswith("sdk.aio")


class Blocking:
    """A blocking view of an ``sdk.aio`` object (see the module docs)."""

    def __init__(self, target: Any, loop: LoopThread) -> None:
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_loop", loop)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, grpc.aio.Channel):
            return BlockingChannel(value, self._loop)
        if _is_sdk_aio(value):
            return Blocking(value, self._loop)
        return value

    def __getattr__(self, name: str) -> Any:
        value = self._loop.call(getattr, self._target, name)
        if inspect.iscoroutinefunction(value):

            @functools.wraps(value)
            def blocking(*args: Any, **kwargs: Any) -> Any:
                return self._wrap(self._loop.run(value(*args, **kwargs)))

            return blocking
        if inspect.ismethod(value) or inspect.isfunction(value):

            @functools.wraps(value)
            def on_loop(*args: Any, **kwargs: Any) -> Any:
                return self._wrap(self._loop.call(value, *args, **kwargs))

            return on_loop
        return self._wrap(value)

    def __setattr__(self, name: str, value: Any) -> None:
        self._loop.call(setattr, self._target, name, value)

    def __enter__(self) -> Blocking:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._target)

    def __str__(self) -> str:
        return str(self._target)

    @property
    def unwrapped(self) -> Any:
        return self._target


def unwrapped(value: Any) -> Any:
    """The object itself: a :class:`Blocking` view's target, anything else unchanged.

    For identity checks against the SDK's internals (``reg._close_hook in
    client._on_close``): a view hands out wrappers, never the bound methods themselves.
    """
    return value.unwrapped if isinstance(value, Blocking) else value


def awaited(view: Blocking, fn: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any) -> Any:
    """Await ``fn(view.unwrapped, *args, **kwargs)`` on the view's loop; the result is
    wrapped like a method's (an ``sdk.aio`` object comes back as a :class:`Blocking` view).

    For the async SDK's module functions that take the object as their first argument,
    such as ``sdk.aio.registration.start_registration(client, ...)``.
    """
    loop: LoopThread = object.__getattribute__(view, "_loop")

    async def call() -> Any:
        return await fn(view.unwrapped, *args, **kwargs)

    return view._wrap(loop.run(call()))


def start_registration(client: Any, **options: Any) -> Any:
    """``start_registration`` of the client's flavour, with the same parameters.

    An ``sdk.Client`` gets ``sdk.registration.start_registration`` (a ``Registration``);
    a :class:`Blocking` view of an ``AsyncClient`` gets ``sdk.aio.registration``'s, awaited
    on the view's loop (a :class:`Blocking` view of the ``AsyncRegistration``).
    """
    if isinstance(client, Blocking):
        return awaited(client, aio_registration.start_registration, **options)
    return registration.start_registration(client, **options)


class BlockingChannel(grpc.Channel):
    """A sync ``grpc.Channel`` over an async one: unary-unary calls, for generated stubs."""

    def __init__(self, channel: grpc.aio.Channel, loop: LoopThread) -> None:
        self._channel = channel
        self._loop = loop

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:
        multicallable = self._channel.unary_unary(method, *args, **kwargs)

        def call(request: Any, timeout: float | None = None, metadata: Any = None) -> Any:
            async def send() -> Any:
                return await multicallable(request, timeout=timeout, metadata=metadata)

            return self._loop.run(send())

        return call

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:
        def call(*call_args: Any, **call_kwargs: Any) -> Any:
            raise TypeError(f"BlockingChannel carries unary calls only, not {method}")

        return call  # stubs build every multicallable up front; only calling one fails

    stream_unary = stream_stream = unary_stream

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("BlockingChannel does not report connectivity")

    unsubscribe = subscribe

    def close(self) -> None:
        """The client owns the channel."""

    def __getattr__(self, name: str) -> Any:  # what the async channel adds (``current``)
        return getattr(self._channel, name)


class MakeClient(Protocol):
    """``make_client(config, clock=None)``: a client of the test's flavour."""

    flavour: str

    def __call__(self, config: Config, clock: Clock | None = None) -> Any: ...


class _Factory:
    def __init__(self, flavour: str) -> None:
        self.flavour = flavour
        self._loop: LoopThread | None = None
        self._clients: list[Any] = []

    @property
    def loop(self) -> LoopThread:
        if self._loop is None:
            self._loop = LoopThread()
        return self._loop

    def __call__(self, config: Config, clock: Clock | None = None) -> Any:
        if self.flavour == "sync":
            client: Any = Client(config, clock=clock)
        else:

            async def build() -> AsyncClient:
                return AsyncClient(config, clock=clock)

            client = Blocking(self.loop.run(build()), self.loop)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()
        if self._loop is not None:
            self._loop.close()


@pytest.fixture(params=FLAVOURS)
def make_client(request: pytest.FixtureRequest) -> Iterator[MakeClient]:
    """Clients of the test's flavour; every one is closed at teardown."""
    factory = _Factory(request.param)
    yield factory  # type: ignore[misc]
    factory.close()
