"""The access token of an async client: cached, refreshed ahead of expiry, one refresh task.

:class:`AsyncAuth` is the asyncio shell around ``sdk._core.token``, the twin of
:class:`sdk.auth.Auth` (same decisions, outcomes and errors: ``sdk.auth.TokenKeeper``).
The task that finds a refresh due starts it as its own task; every caller, the starter
included, awaits that one task through ``asyncio.shield`` within its own timeout. So a
caller that is cancelled or times out never cancels the refresh the others wait for, and
each receives the refresh's real error as its own exception object.

The refresh RPCs get the config's ``default_timeout``, or the timeout of the call that
started the refresh if that is longer: the task belongs to no caller. The task that starts
a renewal while the old token is still valid goes on with the old token at once. A refresh
that ends without a verdict (its own deadline) holds nothing: a waiter with time left starts
the next one. Use an ``AsyncAuth`` from the event loop of its client only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Generator

import grpc
import grpc.aio

from protos.user.v1 import user_pb2, user_pb2_grpc
from sdk._core.token import (
    AuthenticateCall,
    CachedToken,
    Grant,
    RefreshFailure,
    Rejected,
    RenewCall,
    TokenAction,
)
from sdk._grpc.auth_calls import AUTHENTICATE, RENEW, TokenReply
from sdk.aio._channel import closed_under
from sdk.auth import TokenKeeper
from sdk.clock import Clock
from sdk.config import Config
from sdk.errors import DeadlineExceeded, RegistryError, client_closed, from_rpc_error

__all__ = ["AsyncAuth", "AsyncAuthCalls"]

_log = logging.getLogger("sdk.auth")
_Flow = Generator[RenewCall | AuthenticateCall, Grant | Rejected, CachedToken | RefreshFailure]


class AsyncAuthCalls:
    """AuthenticateClient and RenewToken on the bare ``grpc.aio`` transport."""

    __slots__ = ("_stub",)

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = user_pb2_grpc.ClientAuthServiceStub(channel)

    async def authenticate(self, client_key: str, client_secret: str, timeout: float) -> TokenReply:
        request = user_pb2.AuthenticateClientRequest(
            client_key=client_key, client_secret=client_secret
        )
        try:
            reply = await self._stub.AuthenticateClient(request, timeout=timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, AUTHENTICATE) from None
        except grpc.aio.UsageError as exc:
            raise client_closed(exc, AUTHENTICATE) or exc from None
        except asyncio.CancelledError:
            error = closed_under(AUTHENTICATE)
            if error is None:
                raise
            raise error from None
        return TokenReply(reply.access_token, int(reply.expires_at))

    async def renew(self, access_token: str, timeout: float) -> TokenReply:
        metadata = (("authorization", f"Bearer {access_token}"),)
        try:
            reply = await self._stub.RenewToken(
                user_pb2.RenewTokenRequest(), timeout=timeout, metadata=metadata
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, RENEW) from None
        except grpc.aio.UsageError as exc:
            raise client_closed(exc, RENEW) or exc from None
        except asyncio.CancelledError:
            error = closed_under(RENEW)
            if error is None:
                raise
            raise error from None
        return TokenReply(reply.access_token, int(reply.expires_at))

    def __repr__(self) -> str:
        return "AsyncAuthCalls()"


class AsyncAuth(TokenKeeper):
    """The async client's token manager (``client.auth``).

    Args:
        calls: the auth RPCs (on the bare transport).
        config: credentials, ``default_timeout`` and the token policy.
        clock: where token time comes from.
        rand: uniform ``[0, 1)`` numbers for retry jitter.
    """

    def __init__(
        self,
        calls: AsyncAuthCalls,
        config: Config,
        clock: Clock,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config, clock, rand)
        self._calls = calls
        self._flight: asyncio.Task[tuple[str, int]] | None = None
        self._flight_flow: _Flow | None = None

    async def token(self, timeout: float | None = None) -> str:
        """A token to send now, refreshing it first if due.

        Args:
            timeout: real seconds to wait for a refresh (this task's or a shared one);
                ``None`` uses the config's ``default_timeout``.

        Raises:
            DeadlineExceeded: no token within ``timeout``.
            Unauthenticated, InvalidArgument: bad credentials (final, G8).
            PermissionDenied: the credential is disabled.
            RegistryError: the refresh failed otherwise (``Unavailable``, ...).
        """
        return (await self.acquire(timeout))[0]

    def invalidate(self) -> None:
        """Drop the cached token: the next call authenticates afresh."""
        self._state.invalidate()

    async def acquire(self, timeout: float | None = None) -> tuple[str, int]:
        """A token and its generation (for :meth:`on_unauthenticated`); see :meth:`token`."""
        held = self.fresh()
        if held is not None:
            return held
        limit = self._default_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while True:
            now = self._clock.time()
            action = self._state.decide(now)
            if action is TokenAction.REFRESH:
                self._flight = self._start(now, max(limit, self._default_timeout))
            elif action is TokenAction.USE:
                usable = self._state.usable(now)
                assert usable is not None
                return usable.access_token, usable.generation
            if action is TokenAction.FAIL:
                raise self._failure()
            flight = self._flight
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"no token within {limit:g} s (a refresh is in flight)")
            if flight is None or flight.done():
                # The core waits for a flight that no task runs (one cancelled before it
                # started never reached its ``finally``): abandon it and decide again.
                self._abandon()
                await asyncio.sleep(0)
                continue
            self._waiters += 1
            try:
                # asyncio.wait, not wait_for: it never cancels the shared flight, and on
                # Python 3.11 wait_for can swallow a cancellation that lands as it ends.
                await asyncio.wait({flight}, timeout=left)
            finally:
                self._waiters -= 1
            if not flight.done():
                usable = self._state.usable(self._clock.time())
                if usable is not None:  # a slow renewal: the old token still works
                    return usable.access_token, usable.generation
                raise DeadlineExceeded(f"no token within {limit:g} s (a refresh is in flight)")
            if flight.cancelled() or isinstance(flight.exception(), _NoVerdict):
                continue  # nothing was learnt: decide again within what is left of ours
            if flight.exception() is not None:
                raise self._failure() from None  # our own object, not the shared one
            return flight.result()

    def on_unauthenticated(self, generation: int) -> None:
        """A call carrying the token of ``generation`` got UNAUTHENTICATED (G7)."""
        if self._state.on_unauthenticated(generation):
            _log.info("token rejected by the registry; re-authenticating")

    # --- the refresh task ---------------------------------------------------------------

    def _abandon(self) -> None:
        flow, self._flight_flow = self._flight_flow, None
        if flow is not None:
            flow.close()  # a no-op for a flow that finished

    def _start(self, now: float, timeout: float) -> asyncio.Task[tuple[str, int]]:
        flow = self._state.refresh_flow(now)
        step = next(flow)
        self._flight_flow = flow
        task = asyncio.get_running_loop().create_task(
            self._refresh(flow, step, timeout), name="sdk-token-refresh"
        )
        # Every outcome is read by a waiter, or here when all of them gave up.
        task.add_done_callback(_consume)
        return task

    async def _refresh(
        self, flow: _Flow, step: RenewCall | AuthenticateCall, timeout: float
    ) -> tuple[str, int]:
        renew_error: RegistryError | None = None
        try:
            while True:
                reply: TokenReply | None = None
                error: RegistryError | None = None
                deadline = time.monotonic() + timeout
                try:
                    if isinstance(step, AuthenticateCall):
                        reply = await self._calls.authenticate(self._key, self._secret, timeout)
                    else:
                        reply = await self._calls.renew(step.access_token, timeout)
                except RegistryError as exc:
                    if self._out_of_time(exc, deadline):
                        # No verdict: abandoned below; a waiter with time left starts afresh.
                        raise _NoVerdict from exc
                    error = exc
                try:
                    step = flow.send(self._outcome(reply, error))
                except StopIteration as stop:
                    return self._finish(stop.value, error, renew_error)
                renew_error = error  # Renew failed: Authenticate is next
        finally:
            flow.close()  # abandons a refresh left without an outcome (no-op after one)


class _NoVerdict(Exception):
    """A refresh ran out of its own time: the server said nothing, so nothing is held."""


def _consume(task: asyncio.Task[tuple[str, int]]) -> None:
    if not task.cancelled():
        task.exception()
