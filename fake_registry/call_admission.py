"""Admission, the pipeline's stages 3 and 4: fault rules, then the token check.

:class:`CallAdmission` lets a call through, or ends it: the first matching
fault rule acts (abort with a status, hold for a delay, drop: never answer),
then a protected method needs a valid token (CONTRACT 2.5), UNAUTHENTICATED
otherwise. Calls held by a delay or drop end with UNAVAILABLE when the fake
stops. The fake's own control service (:data:`CONTROL_SERVICE_PREFIX`) is
never subject to either: faults and tokens never lock a test out of its
controls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeAlias

import grpc
from grpc import aio

from fake_registry.call_record import Call
from fake_registry.clock import Clock
from fake_registry.errors import FakeRegistryError
from fake_registry.faults import Abort, Delay, FaultSet
from fake_registry.journal import Journal
from fake_registry.metadata import lenient_token
from fake_registry.state.world import World
from fake_registry.timers import cancel_and_wait, pause

__all__ = ["CONTROL_SERVICE_PREFIX", "DEFAULT_EXEMPT_METHODS", "CallAdmission"]

#: Methods callable without a token. The fake registers the health service,
#: which the real server does not (there, Check answers UNIMPLEMENTED).
DEFAULT_EXEMPT_METHODS: tuple[str, ...] = (
    "/xiaozhizhang.user.v1.ClientAuthService/AuthenticateClient",
    "grpc.health.v1.Health/Check",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
)
#: The fake's own control service: neither journaled nor subject to faults or tokens.
CONTROL_SERVICE_PREFIX = "/fakecontrol.v1.FakeControlService/"

Context: TypeAlias = "aio.ServicerContext[Any, Any]"
Metadata: TypeAlias = "Sequence[tuple[str, Any]]"


class CallAdmission:
    """Faults, then auth, for one fake; see the module doc."""

    def __init__(
        self,
        faults: FaultSet,
        journal: Journal,
        world: World,
        clock: Clock,
        *,
        exempt: Sequence[str] = DEFAULT_EXEMPT_METHODS,
        signing_key: str | None = None,
    ) -> None:
        # In stage order: fault rules (their events journaled), then tokens.
        self._faults = faults
        self._journal = journal
        self._world = world
        self._clock = clock
        self._signing_key = signing_key  # a node with its own secret; None = shared
        self._stopping: asyncio.Event | None = None  # set when the server stops
        self._exempt_cache: dict[str, bool] = {}
        self._exempt: tuple[str, ...] = ()
        self.exempt = tuple(exempt)

    @property
    def exempt(self) -> tuple[str, ...]:
        """Method paths (or path suffixes) that need no token."""
        return self._exempt

    @exempt.setter
    def exempt(self, methods: Sequence[str]) -> None:
        self._exempt = tuple(methods)
        self._exempt_cache = {}

    def is_exempt(self, method: str) -> bool:
        """Whether calls to ``method`` need no token (cached per method)."""
        cached = self._exempt_cache.get(method)
        if cached is None:
            cached = any(method == e or method.endswith(e) for e in self._exempt)
            self._exempt_cache[method] = cached
        return cached

    async def admit(
        self, method: str, metadata: Metadata, context: Context, call: Call | None
    ) -> None:
        """Faults, then auth. Aborts the call (raising) when either says so."""
        if method.startswith(CONTROL_SERVICE_PREFIX):
            return  # faults and registry tokens never lock a test out of its controls
        taken = self._faults.take(method, metadata)
        if taken is not None:
            rule, action = taken
            hold = None
            if isinstance(action, Abort) and action.delay:
                hold = pause(self._clock, action.delay, action.virtual)
            elif isinstance(action, Delay):
                hold = pause(self._clock, action.seconds, action.virtual)
            # Journaled once the hold's end is fixed: a test that sees the
            # event and then advances the clock always releases the call.
            self._journal.fault(call, rule.name, action.describe())
            if hold is not None:
                await self._held(hold, context)
            if isinstance(action, Abort):
                await context.abort(grpc.StatusCode[action.code], action.details)
            elif not isinstance(action, Delay):
                # Drop: never answer; the client's deadline (or cancel) ends the call
                await self._held(asyncio.Event().wait(), context)
        if not self._world.auth_enabled or self.is_exempt(method):
            return
        token = lenient_token(metadata)
        try:
            with self._world.lock:
                self._world.auth.verify(self._clock.time(), token, self._signing_key)
        except FakeRegistryError as exc:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)

    async def _held(self, wait: Coroutine[Any, Any, Any], context: Context) -> None:
        """Run ``wait``, unless the fake stops first: then the call ends UNAVAILABLE.

        A call held by a fault must not outlive its server: it would be left
        pending on a closed loop, its journal entry forever in flight.
        """
        if self._stopping is None:
            self._stopping = asyncio.Event()
        waiter = asyncio.ensure_future(wait)
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({waiter, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not waiter.done():
                await cancel_and_wait(waiter)
        if waiter.cancelled():
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the fake is shutting down")
        waiter.result()  # re-raise what the wait raised, if anything

    async def release_held_calls(self) -> None:
        """End every call held by a delay or drop fault (run on the server loop)."""
        if self._stopping is None:
            self._stopping = asyncio.Event()
        self._stopping.set()
        await asyncio.sleep(0)  # let the held calls see it

    def rearm(self) -> None:
        """Forget a previous stop, before the server starts (on a new loop)."""
        self._stopping = None
