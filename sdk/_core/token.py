"""The token manager's decisions (CONTRACT 2, 4.3, 4.4; G6, G7, G8).

Rules:
    lifetime          expires_at - issued_at (server clock, skew-free) when the shell read
                      the JWT's ``iat``, else expires_at - received_at (assumes synced clocks)
    local expiry      received_at + lifetime
    refresh_at        local expiry - lead, lead = min(lead_max, lead_fraction * lifetime):
                      a 10 s token refreshes after 5 s, not on every call (G6)
    decide   usable token, before refresh_at             -> USE
             usable token, refresh in flight or held     -> USE (the old token still works)
             no usable token, refresh in flight          -> WAIT for it (single flight)
             no usable token, held after a failure       -> FAIL with the last failure
             otherwise                                   -> REFRESH (caller leads)
    plan_refresh     usable token (and renew enabled)    -> RENEW, else AUTHENTICATE
    renew failed     any code                            -> AUTHENTICATE; PERMISSION_DENIED
                                                            (credential disabled) is remembered
    authenticate ok                                      -> install, generation += 1
    authenticate failed  UNAUTHENTICATED, INVALID_ARGUMENT, PERMISSION_DENIED
                                                         -> final: held for final_hold (G8:
                                                            bad credentials, no tight loop)
                         other codes                     -> retryable: held for a backoff delay
                         renew said PERMISSION_DENIED    -> surface PERMISSION_DENIED
                      the old token is left untouched (served while it is usable)
    UNAUTHENTICATED from a call made with generation g   -> invalidate iff g is still current:
                      20 concurrent failures drop the token once and cause one re-auth (G7)

``refresh_flow`` is the renew-then-authenticate sequence as one generator, driven by the
sync and async shells alike (httpx's ``auth_flow`` pattern). Codes are gRPC status names as
plain strings (``"UNAVAILABLE"``), which keeps grpc out of this package. Tokens never appear
in a repr.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from sdk._core.backoff import Backoff

__all__ = [
    "FINAL_AUTH_CODES",
    "RETRY_BACKOFF",
    "AuthenticateCall",
    "CachedToken",
    "Grant",
    "RefreshFailure",
    "RefreshStep",
    "Rejected",
    "RenewCall",
    "TokenAction",
    "TokenParams",
    "TokenState",
]

#: Authenticate errors that mean "these credentials will not work": never retried at once.
FINAL_AUTH_CODES: frozenset[str] = frozenset(
    {"UNAUTHENTICATED", "INVALID_ARGUMENT", "PERMISSION_DENIED"}
)
_DENIED = "PERMISSION_DENIED"
#: Hold after retryable refresh failures: 1 s doubling to 30 s, never under half of that.
RETRY_BACKOFF = Backoff(initial=1.0, multiplier=2.0, maximum=30.0, jitter="equal")


@dataclass(frozen=True, slots=True)
class TokenParams:
    """When to refresh and how long to hold back after failures.

    Attributes:
        lead_max: Longest refresh lead, in seconds (the Go SDK's fixed 300 s).
        lead_fraction: Lead as a fraction of the observed lifetime; ``0.5`` refreshes a
            token halfway through its life when that comes before ``lead_max``.
        retry: Hold after a retryable refresh failure, by consecutive failure count.
        final_hold: Hold after a final failure (bad or disabled credentials).
        renew: Try RenewToken before AuthenticateClient while the token is usable.
    """

    lead_max: float = 300.0
    lead_fraction: float = 0.5
    retry: Backoff = RETRY_BACKOFF
    final_hold: float = 30.0
    renew: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lead_max) and self.lead_max >= 0):
            raise ValueError(f"lead_max must be a finite number >= 0, got {self.lead_max!r}")
        if not 0 <= self.lead_fraction < 1:
            raise ValueError(f"lead_fraction must be in [0, 1), got {self.lead_fraction!r}")
        if not (math.isfinite(self.final_hold) and self.final_hold >= 0):
            raise ValueError(f"final_hold must be a finite number >= 0, got {self.final_hold!r}")

    def lead(self, lifetime: float) -> float:
        """Seconds before expiry at which a token with ``lifetime`` is refreshed."""
        return min(self.lead_max, self.lead_fraction * lifetime)


@dataclass(frozen=True, slots=True)
class Grant:
    """A token as AuthenticateClient or RenewToken returned it.

    Attributes:
        access_token: The JWT (opaque here).
        expires_at: Expiry on the server clock, Unix seconds.
        received_at: Local clock when the reply arrived.
        issued_at: The token's ``iat`` (server clock) if the shell could read it; it makes
            the lifetime immune to clock skew. ``None``: unknown.
    """

    access_token: str = field(repr=False)
    expires_at: int
    received_at: float
    issued_at: float | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A failed AuthenticateClient or RenewToken call: its status code name and local time."""

    code: str
    at: float


@dataclass(frozen=True, slots=True)
class CachedToken:
    """The installed token, as one immutable snapshot (read without a lock).

    Attributes:
        access_token: The JWT.
        expires_at: Server-clock expiry, as issued.
        lifetime: Observed lifetime in seconds (see the module rules).
        refresh_at: Local time from which a refresh is due.
        expires_local: Local time after which the token is no longer sent.
        generation: Increases with every installed token; calls remember it (G7).
    """

    access_token: str = field(repr=False)
    expires_at: int
    lifetime: float
    refresh_at: float
    expires_local: float
    generation: int


class TokenAction(enum.Enum):
    """What a caller that wants a token should do."""

    USE = "use"
    REFRESH = "refresh"
    WAIT = "wait"
    FAIL = "fail"


class RefreshStep(enum.Enum):
    """Which RPC a refresh calls next."""

    RENEW = "renew"
    AUTHENTICATE = "authenticate"


@dataclass(frozen=True, slots=True)
class RefreshFailure:
    """The outcome of a failed refresh.

    Attributes:
        code: The status to surface (PERMISSION_DENIED when Renew said so, G8).
        final: Bad or disabled credentials: retrying soon cannot help.
        retry_at: Local time before which no new refresh is attempted.
        authenticate_code: What AuthenticateClient itself answered.
    """

    code: str
    final: bool
    retry_at: float
    authenticate_code: str


@dataclass(frozen=True, slots=True)
class RenewCall:
    """Flow step: call RenewToken with ``authorization: Bearer <access_token>``."""

    access_token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthenticateCall:
    """Flow step: call AuthenticateClient with the configured credentials."""


class TokenState:
    """Cached token, single-flight flag, generation and failure hold; no I/O, no lock.

    Args:
        params: Refresh timing.
        rand: Uniform numbers in ``[0, 1)`` for retry jitter (the shell passes
            ``random.random``; tests a constant).
    """

    __slots__ = (
        "_failures",
        "_generation",
        "_last_failure",
        "_params",
        "_rand",
        "_refreshing",
        "_renew_denied",
        "_retry_at",
        "_token",
    )

    def __init__(self, params: TokenParams | None = None, *, rand: Callable[[], float]) -> None:
        self._params = params or TokenParams()
        self._rand = rand
        self._token: CachedToken | None = None
        self._generation = 0
        self._refreshing = False
        self._renew_denied = False
        self._failures = 0  # consecutive failed refreshes
        self._retry_at = -math.inf  # hold: no refresh before this local time
        self._last_failure: RefreshFailure | None = None

    def __repr__(self) -> str:
        return (
            f"TokenState(token={self._token!r}, refreshing={self._refreshing}, "
            f"last_failure={self._last_failure!r})"
        )

    # --- reading --------------------------------------------------------------------------

    @property
    def params(self) -> TokenParams:
        return self._params

    @property
    def current(self) -> CachedToken | None:
        """The installed token, expired or not; ``None`` before the first or after invalidate."""
        return self._token

    @property
    def generation(self) -> int:
        """Number of tokens installed so far."""
        return self._generation

    @property
    def refreshing(self) -> bool:
        """Whether a refresh is in flight (waiters wait until this is false)."""
        return self._refreshing

    @property
    def last_failure(self) -> RefreshFailure | None:
        """The failure of the latest refresh, cleared by a successful one."""
        return self._last_failure

    @property
    def retry_at(self) -> float:
        """Local time before which no refresh is attempted (``-inf``: no hold)."""
        return self._retry_at

    def fresh(self, now: float) -> CachedToken | None:
        """The token when no refresh is due: the lock-free fast path of every call."""
        token = self._token
        if token is not None and now < token.refresh_at:
            return token
        return None

    def usable(self, now: float) -> CachedToken | None:
        """The token while the local clock says it is unexpired, refresh due or not."""
        token = self._token
        if token is not None and now < token.expires_local:
            return token
        return None

    def needs_refresh(self, now: float) -> bool:
        """Whether there is no token or its refresh is due (ignoring any hold)."""
        return self.fresh(now) is None

    def decide(self, now: float) -> TokenAction:
        """What a caller wanting a token at ``now`` should do (see the module rules)."""
        token = self.usable(now)
        if token is not None and (
            now < token.refresh_at or self._refreshing or now < self._retry_at
        ):
            return TokenAction.USE
        if self._refreshing:
            return TokenAction.WAIT
        if now < self._retry_at:
            return TokenAction.FAIL
        return TokenAction.REFRESH

    # --- refreshing -----------------------------------------------------------------------

    def plan_refresh(self, now: float) -> RefreshStep:
        """Start a refresh (this caller leads) and say which RPC comes first.

        Raises:
            RuntimeError: A refresh is already in flight (the shell broke single flight).
        """
        if self._refreshing:
            raise RuntimeError("a token refresh is already in flight")
        self._refreshing = True
        self._renew_denied = False
        if self._params.renew and self.usable(now) is not None:
            return RefreshStep.RENEW
        return RefreshStep.AUTHENTICATE

    def on_granted(self, grant: Grant) -> CachedToken:
        """Install a token from either RPC; ends the flight and any hold."""
        base = grant.issued_at if grant.issued_at is not None else grant.received_at
        lifetime = max(0.0, grant.expires_at - base)
        expires_local = grant.received_at + lifetime
        self._generation += 1
        token = CachedToken(
            access_token=grant.access_token,
            expires_at=grant.expires_at,
            lifetime=lifetime,
            refresh_at=expires_local - self._params.lead(lifetime),
            expires_local=expires_local,
            generation=self._generation,
        )
        self._token = token
        self._refreshing = False
        self._renew_denied = False
        self._failures = 0
        self._retry_at = -math.inf
        self._last_failure = None
        return token

    def on_renew_failed(self, code: str) -> RefreshStep:
        """RenewToken failed with ``code``: always fall back to AuthenticateClient."""
        if code == _DENIED:
            self._renew_denied = True
        return RefreshStep.AUTHENTICATE

    def on_authenticate_failed(self, code: str, now: float) -> RefreshFailure:
        """AuthenticateClient failed with ``code`` at ``now``; ends the flight.

        The cached token, if any, is left as it was: it is still served while usable.
        """
        final = code in FINAL_AUTH_CODES
        if final:
            hold = self._params.final_hold
        else:
            hold = self._params.retry.delay(self._failures, self._rand())
        self._failures += 1
        failure = RefreshFailure(
            code=_DENIED if self._renew_denied else code,
            final=final,
            retry_at=now + hold,
            authenticate_code=code,
        )
        self._retry_at = failure.retry_at
        self._last_failure = failure
        self._refreshing = False
        self._renew_denied = False
        return failure

    def abandon_refresh(self) -> None:
        """End the flight without an outcome (the leader was cancelled); no hold is set."""
        self._refreshing = False
        self._renew_denied = False

    def refresh_flow(
        self, now: float
    ) -> Generator[RenewCall | AuthenticateCall, Grant | Rejected, CachedToken | RefreshFailure]:
        """The whole refresh as one flow: yields calls, receives their outcomes.

        Send a ``Grant`` or a ``Rejected`` for every yielded call; the flow returns the
        installed token or the failure. Closing the flow early abandons the refresh.
        Call it only after ``decide`` answered ``REFRESH``.
        """
        step = self.plan_refresh(now)
        try:
            if step is RefreshStep.RENEW:
                token = self._token
                assert token is not None  # plan_refresh only renews a usable token
                reply = yield RenewCall(token.access_token)
                if isinstance(reply, Grant):
                    return self.on_granted(reply)
                self.on_renew_failed(reply.code)
            reply = yield AuthenticateCall()
            if isinstance(reply, Grant):
                return self.on_granted(reply)
            return self.on_authenticate_failed(reply.code, reply.at)
        finally:
            if self._refreshing:  # closed or thrown into before an outcome
                self.abandon_refresh()

    # --- reacting to UNAUTHENTICATED ---------------------------------------------------------

    def invalidate(self) -> None:
        """Drop the cached token: the next caller authenticates (not renews) (G7)."""
        self._token = None

    def on_unauthenticated(self, generation: int) -> bool:
        """A protected call sent the token of ``generation`` and got UNAUTHENTICATED.

        Returns:
            Whether the token was dropped. ``False`` means a newer token is already
            installed (or none is): the caller simply retries once with the current one.
        """
        token = self._token
        if token is not None and token.generation == generation:
            self._token = None
            return True
        return False
