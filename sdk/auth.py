"""The access token of a client: cached, refreshed ahead of expiry, single flight (G6-G8).

:class:`Auth` is the sync shell around ``sdk._core.token``: the core decides (use, wait,
fail, refresh; renew or authenticate; how long to hold after a failure), this class does
the waiting and the RPCs. One refresh is in flight at a time for all threads; the thread
that finds a refresh due leads it, the others wait on a condition variable, each within
its own timeout, and receive the leader's real error, not a generic one.

Time: token expiry and failure holds read the client's :class:`~sdk.clock.Clock`
(``time()``), so a manual clock moves them. Timeouts are real seconds, like gRPC
deadlines.

Tokens and the client secret never appear in reprs, logs or error messages.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Generator

from sdk._core.token import (
    AuthenticateCall,
    CachedToken,
    Grant,
    RefreshFailure,
    Rejected,
    RenewCall,
    TokenAction,
    TokenParams,
    TokenState,
)
from sdk._grpc.auth_calls import AUTHENTICATE, AuthCalls, TokenReply
from sdk.clock import Clock
from sdk.config import Config
from sdk.errors import ClientClosed, DeadlineExceeded, RegistryError, Unknown, from_status

__all__ = ["Auth", "TokenKeeper", "jwt_issued_at"]

_log = logging.getLogger("sdk.auth")
_Flow = Generator[RenewCall | AuthenticateCall, Grant | Rejected, CachedToken | RefreshFailure]


def jwt_issued_at(token: str) -> float | None:
    """The ``iat`` claim of a JWT, read without verifying it; ``None`` if unreadable.

    Only the lifetime is derived from it (``expires_at - iat``, both server clock), which
    makes refresh timing immune to clock skew. The token is never trusted for anything.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    iat = claims.get("iat") if isinstance(claims, dict) else None
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        return None
    return float(iat)


class TokenKeeper:
    """What the sync and asyncio token managers share: the core state and its outcomes.

    The shells differ only in how they wait (a condition variable, a shared task) and call
    (blocking, awaited); every decision is ``sdk._core.token``'s, every outcome and error
    is built here.
    """

    def __init__(self, config: Config, clock: Clock, rand: Callable[[], float]) -> None:
        self._key = config.client_key
        self._secret = config.client_secret
        self._default_timeout = config.default_timeout
        self._clock = clock
        params = TokenParams(
            lead_max=config.token.refresh_lead_max,
            lead_fraction=config.token.refresh_lead_fraction,
        )
        self._state = TokenState(params, rand=rand)
        self._error: RegistryError | None = None  # what the last failed refresh raised
        self._waiters = 0  # callers waiting for a refresh in flight

    def __repr__(self) -> str:
        token = self._state.current
        held = "none" if token is None else f"generation {token.generation}"
        return f"{type(self).__name__}(client_key={self._key!r}, token={held})"

    # --- observability --------------------------------------------------------------------

    @property
    def expires_at(self) -> int | None:
        """Server-clock expiry (Unix seconds) of the cached token; ``None``: none cached."""
        token = self._state.current
        return None if token is None else token.expires_at

    @property
    def refresh_at(self) -> float | None:
        """Local clock time from which the cached token is refreshed; ``None``: none cached."""
        token = self._state.current
        return None if token is None else token.refresh_at

    @property
    def generation(self) -> int:
        """How many tokens were obtained so far (each authenticate or renew adds one)."""
        return self._state.generation

    @property
    def waiters(self) -> int:
        """How many callers wait for the refresh in flight right now."""
        return self._waiters

    def fresh(self) -> tuple[str, int] | None:
        """The cached token and its generation if no refresh is due; never waits or calls."""
        token = self._state.fresh(self._clock.time())
        return None if token is None else (token.access_token, token.generation)

    # --- outcomes ---------------------------------------------------------------------------

    def _outcome(self, reply: TokenReply | None, error: RegistryError | None) -> Grant | Rejected:
        """The core's input for one refresh RPC: its reply, or the error it raised."""
        if error is not None:
            return Rejected(_code(error), self._clock.time())
        assert reply is not None
        return Grant(
            access_token=reply.access_token,
            expires_at=reply.expires_at,
            received_at=self._clock.time(),
            issued_at=jwt_issued_at(reply.access_token),
        )

    def _finish(
        self,
        result: CachedToken | RefreshFailure,
        error: RegistryError | None,
        renew_error: RegistryError | None,
    ) -> tuple[str, int]:
        """Record how a refresh flow ended; the token, or raise its failure."""
        self._error = None if error is None else self._pick_error(result, error, renew_error)
        if isinstance(result, CachedToken):
            return result.access_token, result.generation
        _log.warning("token refresh failed: %s%s", result.code, " (final)" if result.final else "")
        raise self._failure() from None

    @staticmethod
    def _pick_error(
        result: CachedToken | RefreshFailure,
        error: RegistryError,
        renew_error: RegistryError | None,
    ) -> RegistryError:
        # G8: PERMISSION_DENIED from Renew (credential disabled), once Authenticate has
        # confirmed the credentials do not work, is the error to surface.
        if (
            isinstance(result, RefreshFailure)
            and result.code != result.authenticate_code
            and renew_error is not None
        ):
            return renew_error
        return error

    def _failure(self) -> RegistryError:
        """A new exception like the last refresh error (one object per raise: threads)."""
        error = self._error
        if error is None:
            return Unknown("token refresh failed", method=AUTHENTICATE)
        if isinstance(error, ClientClosed):
            return ClientClosed(error.details, method=error.method)
        return from_status(error.code, error.details, error.method)

    @staticmethod
    def _out_of_time(exc: RegistryError, deadline: float) -> bool:
        """The RPC hit our own deadline: no verdict on the server, so no hold."""
        return (
            exc.code is not None
            and exc.code.name == "DEADLINE_EXCEEDED"
            and time.monotonic() >= deadline
        )


class Auth(TokenKeeper):
    """The client's token manager (``client.auth``).

    Args:
        calls: the auth RPCs (on the bare transport).
        config: credentials, ``default_timeout`` and the token policy.
        clock: where token time comes from.
        rand: uniform ``[0, 1)`` numbers for retry jitter.
    """

    def __init__(
        self,
        calls: AuthCalls,
        config: Config,
        clock: Clock,
        *,
        rand: Callable[[], float] = random.random,
    ) -> None:
        super().__init__(config, clock, rand)
        self._calls = calls
        self._cond = threading.Condition()

    # --- the API --------------------------------------------------------------------------

    def token(self, timeout: float | None = None) -> str:
        """A token to send now, refreshing it first if due.

        Args:
            timeout: real seconds to wait for a refresh (own or another thread's);
                ``None`` uses the config's ``default_timeout``.

        Raises:
            DeadlineExceeded: no token within ``timeout``.
            Unauthenticated, InvalidArgument: bad credentials (final: not retried
                until the hold ends; calls meanwhile raise it at once, G8).
            PermissionDenied: the credential is disabled (RenewToken said so and
                AuthenticateClient confirmed it).
            RegistryError: the refresh failed otherwise (``Unavailable``, ...).
        """
        return self.acquire(timeout)[0]

    def invalidate(self) -> None:
        """Drop the cached token: the next call authenticates afresh."""
        with self._cond:
            self._state.invalidate()

    def acquire(self, timeout: float | None = None) -> tuple[str, int]:
        """A token and its generation (for :meth:`on_unauthenticated`); see :meth:`token`."""
        token = self._state.fresh(self._clock.time())
        if token is not None:  # the lock-free fast path of every call
            return token.access_token, token.generation
        limit = self._default_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        with self._cond:
            while True:
                now = self._clock.time()
                action = self._state.decide(now)
                if action is TokenAction.USE:
                    usable = self._state.usable(now)
                    assert usable is not None
                    return usable.access_token, usable.generation
                if action is TokenAction.FAIL:
                    raise self._failure()
                if action is TokenAction.REFRESH:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeadlineExceeded(f"no token within {limit:g} s (a refresh is in flight)")
                self._waiters += 1
                self._cond.notify_all()  # for _wait_waiters
                try:
                    self._cond.wait(left)
                finally:
                    self._waiters -= 1
            flow = self._state.refresh_flow(now)
            step = next(flow)
        try:
            return self._lead(flow, step, deadline)
        except DeadlineExceeded:
            usable = self._state.usable(self._clock.time())
            if usable is None:
                raise
            return usable.access_token, usable.generation  # a slow renewal: the old one works

    def on_unauthenticated(self, generation: int) -> None:
        """A call carrying the token of ``generation`` got UNAUTHENTICATED (G7)."""
        with self._cond:
            if self._state.on_unauthenticated(generation):
                _log.info("token rejected by the registry; re-authenticating")

    # --- leading a refresh ------------------------------------------------------------------

    def _lead(
        self, flow: _Flow, step: RenewCall | AuthenticateCall, deadline: float
    ) -> tuple[str, int]:
        """Run the core's refresh flow: RPCs outside the lock, state changes inside it."""
        renew_error: RegistryError | None = None
        try:
            while True:
                reply: TokenReply | None = None
                error: RegistryError | None = None
                try:
                    reply = self._call(step, deadline)
                except RegistryError as exc:
                    if self._out_of_time(exc, deadline):
                        raise  # a waiter with time left leads the next attempt
                    error = exc
                outcome = self._outcome(reply, error)
                with self._cond:
                    try:
                        step = flow.send(outcome)
                    except StopIteration as stop:
                        self._cond.notify_all()
                        return self._finish(stop.value, error, renew_error)
                renew_error = error  # Renew failed: Authenticate is next
        except BaseException:
            with self._cond:
                flow.close()  # abandons a refresh left without an outcome (no-op after one)
                self._cond.notify_all()
            raise

    def _call(self, step: RenewCall | AuthenticateCall, deadline: float) -> TokenReply:
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("no time left to refresh the token")
        if isinstance(step, AuthenticateCall):
            return self._calls.authenticate(self._key, self._secret, left)
        return self._calls.renew(step.access_token, left)

    def _wait_waiters(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` threads wait for a refresh (tests); ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiters >= count, timeout)


def _code(exc: RegistryError) -> str:
    return exc.code.name if exc.code is not None else "UNKNOWN"
