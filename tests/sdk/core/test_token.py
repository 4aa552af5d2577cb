"""TokenState: lead, renew-then-authenticate, holds, single flight, generations.

CONTRACT 4.3 and 4.4 describe the Go SDK; G6, G7 and G8 what must change.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdk._core.backoff import Backoff
from sdk._core.token import (
    AuthenticateCall,
    CachedToken,
    Grant,
    RefreshFailure,
    RefreshStep,
    Rejected,
    RenewCall,
    TokenAction,
    TokenParams,
    TokenState,
)

T0 = 1_700_000_000.0
SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.secret-payload.signature"
Flow = Generator[RenewCall | AuthenticateCall, Grant | Rejected, CachedToken | RefreshFailure]


def new_state(params: TokenParams | None = None, rand: float = 0.5) -> TokenState:
    return TokenState(params, rand=lambda: rand)


def grant(now: float, lifetime: int, token: str = SECRET_TOKEN) -> Grant:
    return Grant(token, int(now) + lifetime, received_at=now, issued_at=now)


def install(state: TokenState, now: float, lifetime: int, token: str = SECRET_TOKEN) -> CachedToken:
    assert state.decide(now) is TokenAction.REFRESH
    state.plan_refresh(now)
    return state.on_granted(grant(now, lifetime, token))


def drive(flow: Flow, *replies: Grant | Rejected) -> tuple[list[object], object]:
    """Run a refresh flow, answering its calls in order; returns (calls, outcome)."""
    calls: list[object] = [next(flow)]
    try:
        for reply in replies:
            calls.append(flow.send(reply))
    except StopIteration as stop:
        return calls, stop.value
    raise AssertionError(f"flow wanted more replies after {calls!r}")


# --- lead and freshness (G6) ----------------------------------------------------------


def test_ten_second_tokens_do_not_refresh_on_every_call() -> None:
    state = new_state()
    token = install(state, T0, 10)
    assert token.refresh_at == T0 + 5  # lead = min(300, 10 / 2)
    assert all(state.fresh(T0 + dt) is token for dt in (0.0, 1.0, 4.99))
    assert state.fresh(T0 + 5) is None
    assert state.decide(T0 + 5) is TokenAction.REFRESH


def test_day_long_tokens_refresh_300_s_ahead() -> None:
    state = new_state()
    token = install(state, T0, 86_400)
    assert token.refresh_at == T0 + 86_400 - 300
    assert token.expires_local == T0 + 86_400
    assert not state.needs_refresh(T0 + 86_099)
    assert state.needs_refresh(T0 + 86_100)


def test_lead_is_configurable() -> None:
    state = new_state(TokenParams(lead_max=60.0, lead_fraction=0.25))
    assert install(state, T0, 3_600).refresh_at == T0 + 3_540
    state = new_state(TokenParams(lead_max=60.0, lead_fraction=0.25))
    assert install(state, T0, 100).refresh_at == T0 + 75


@given(lifetime=st.integers(1, 10 * 86_400))
def test_refresh_comes_in_the_second_half_and_at_most_300_s_early(lifetime: int) -> None:
    state = new_state()
    token = install(state, T0, lifetime)
    assert T0 + lifetime / 2 <= token.refresh_at < T0 + lifetime
    assert token.expires_local - token.refresh_at <= 300


def test_issued_at_makes_the_lifetime_immune_to_skew() -> None:
    state = new_state()
    state.plan_refresh(T0)
    # The server's clock runs 100 s ahead of ours: iat and exp are both 100 s "in the future".
    token = state.on_granted(Grant(SECRET_TOKEN, int(T0) + 100 + 3_600, T0, issued_at=T0 + 100))
    assert token.lifetime == 3_600
    assert token.expires_local == T0 + 3_600


def test_without_issued_at_the_server_expiry_is_compared_to_the_local_clock() -> None:
    state = new_state()
    state.plan_refresh(T0)
    token = state.on_granted(Grant(SECRET_TOKEN, int(T0) + 600, T0))
    assert (token.lifetime, token.expires_local, token.refresh_at) == (600, T0 + 600, T0 + 300)


# --- refresh flow (CONTRACT 4.3, G8) --------------------------------------------------


def test_first_refresh_authenticates() -> None:
    state = new_state()
    calls, outcome = drive(state.refresh_flow(T0), grant(T0, 3_600))
    assert calls == [AuthenticateCall()]
    assert isinstance(outcome, CachedToken)
    assert outcome.generation == 1
    assert state.current is outcome
    assert not state.refreshing


def test_renews_a_usable_token() -> None:
    state = new_state()
    install(state, T0, 3_600, "old")
    now = T0 + 3_400
    calls, outcome = drive(state.refresh_flow(now), grant(now, 3_600, "new"))
    assert calls == [RenewCall("old")]
    assert isinstance(outcome, CachedToken)
    assert (outcome.access_token, outcome.generation) == ("new", 2)


def test_expired_token_is_not_renewed() -> None:
    state = new_state()
    install(state, T0, 60)
    assert state.plan_refresh(T0 + 60) is RefreshStep.AUTHENTICATE


def test_renew_can_be_disabled() -> None:
    state = new_state(TokenParams(renew=False))
    install(state, T0, 3_600)
    assert state.plan_refresh(T0 + 3_500) is RefreshStep.AUTHENTICATE


@pytest.mark.parametrize("code", ["UNAVAILABLE", "UNAUTHENTICATED", "INTERNAL", "UNKNOWN"])
def test_any_renew_error_falls_back_to_authenticate(code: str) -> None:
    state = new_state()
    install(state, T0, 3_600)
    now = T0 + 3_500
    calls, outcome = drive(state.refresh_flow(now), Rejected(code, now), grant(now, 3_600, "fresh"))
    assert calls == [RenewCall(SECRET_TOKEN), AuthenticateCall()]
    assert isinstance(outcome, CachedToken)
    assert outcome.access_token == "fresh"


def test_permission_denied_on_renew_surfaces_when_authenticate_confirms() -> None:
    state = new_state()
    install(state, T0, 3_600)
    now = T0 + 3_500
    _, outcome = drive(
        state.refresh_flow(now),
        Rejected("PERMISSION_DENIED", now),
        Rejected("UNAUTHENTICATED", now),  # a disabled credential fails Authenticate this way
    )
    assert outcome == RefreshFailure(
        code="PERMISSION_DENIED", final=True, retry_at=now + 30, authenticate_code="UNAUTHENTICATED"
    )


def test_permission_denied_on_renew_is_forgotten_when_authenticate_works() -> None:
    state = new_state()
    install(state, T0, 3_600)
    now = T0 + 3_500
    _, outcome = drive(state.refresh_flow(now), Rejected("PERMISSION_DENIED", now), grant(now, 60))
    assert isinstance(outcome, CachedToken)
    assert state.last_failure is None


def test_permission_denied_with_an_unconfirmed_authenticate_is_retryable() -> None:
    state = new_state()
    install(state, T0, 3_600)
    now = T0 + 3_500
    _, outcome = drive(
        state.refresh_flow(now), Rejected("PERMISSION_DENIED", now), Rejected("UNAVAILABLE", now)
    )
    assert isinstance(outcome, RefreshFailure)
    assert (outcome.code, outcome.final, outcome.authenticate_code) == (
        "PERMISSION_DENIED",
        False,
        "UNAVAILABLE",
    )


def test_the_denial_is_not_carried_into_the_next_refresh() -> None:
    state = new_state()
    install(state, T0, 3_600)
    now = T0 + 3_500
    drive(state.refresh_flow(now), Rejected("PERMISSION_DENIED", now), Rejected("UNAVAILABLE", now))
    later = state.retry_at
    _, outcome = drive(
        state.refresh_flow(later), Rejected("UNAVAILABLE", later), Rejected("UNAVAILABLE", later)
    )
    assert isinstance(outcome, RefreshFailure)
    assert outcome.code == "UNAVAILABLE"


# --- holds: no tight loops (G8) -------------------------------------------------------


@pytest.mark.parametrize("code", ["UNAUTHENTICATED", "INVALID_ARGUMENT", "PERMISSION_DENIED"])
def test_bad_credentials_are_final_and_held(code: str) -> None:
    state = new_state()
    _, outcome = drive(state.refresh_flow(T0), Rejected(code, T0))
    assert outcome == RefreshFailure(code, True, T0 + 30, code)
    assert state.last_failure == outcome
    assert state.decide(T0 + 1) is TokenAction.FAIL
    assert state.decide(T0 + 29.9) is TokenAction.FAIL
    assert state.decide(T0 + 30) is TokenAction.REFRESH


def test_retryable_failures_back_off_and_success_resets() -> None:
    state = new_state(rand=0.0)  # equal jitter at 0: exactly half the ceiling
    now, holds = T0, []
    for _ in range(7):
        assert state.decide(now) is TokenAction.REFRESH
        _, outcome = drive(state.refresh_flow(now), Rejected("UNAVAILABLE", now))
        assert isinstance(outcome, RefreshFailure)
        assert not outcome.final
        holds.append(outcome.retry_at - now)
        assert state.decide(now) is TokenAction.FAIL
        now = outcome.retry_at
    assert holds == [0.5, 1, 2, 4, 8, 15, 15]
    drive(state.refresh_flow(now), grant(now, 3_600))
    assert state.retry_at == float("-inf")
    state.invalidate()
    _, outcome = drive(state.refresh_flow(now), Rejected("UNAVAILABLE", now))
    assert isinstance(outcome, RefreshFailure)
    assert outcome.retry_at - now == 0.5


def test_a_failed_refresh_keeps_serving_the_usable_token() -> None:
    state = new_state(TokenParams(retry=Backoff(jitter="none")))
    old = install(state, T0, 100)
    now = T0 + 60  # inside the lead window
    assert state.decide(now) is TokenAction.REFRESH
    _, outcome = drive(
        state.refresh_flow(now), Rejected("UNAVAILABLE", now), Rejected("UNAVAILABLE", now)
    )
    assert isinstance(outcome, RefreshFailure)
    assert state.current is old  # left untouched (CONTRACT 4.3)
    assert state.decide(now + 0.5) is TokenAction.USE  # held: no refresh per call
    assert state.decide(now + 1) is TokenAction.REFRESH
    assert state.decide(T0 + 100) is TokenAction.REFRESH  # expired: no longer served


# --- single flight --------------------------------------------------------------------


def test_callers_wait_while_a_refresh_is_in_flight() -> None:
    state = new_state()
    flow = state.refresh_flow(T0)
    assert next(flow) == AuthenticateCall()
    assert state.refreshing
    assert state.decide(T0) is TokenAction.WAIT
    with pytest.raises(RuntimeError, match="already in flight"):
        state.plan_refresh(T0)
    with pytest.raises(StopIteration):
        flow.send(grant(T0, 3_600))
    assert state.decide(T0) is TokenAction.USE


def test_callers_keep_using_a_usable_token_during_a_refresh() -> None:
    state = new_state()
    install(state, T0, 100)
    state.plan_refresh(T0 + 60)
    assert state.decide(T0 + 60) is TokenAction.USE


def test_closing_a_flow_early_abandons_the_refresh() -> None:
    state = new_state()
    flow = state.refresh_flow(T0)
    next(flow)
    flow.close()  # the leader was cancelled
    assert not state.refreshing
    assert state.last_failure is None
    assert state.decide(T0) is TokenAction.REFRESH


def test_an_exception_thrown_into_the_flow_abandons_the_refresh() -> None:
    state = new_state()
    flow = state.refresh_flow(T0)
    next(flow)
    with pytest.raises(KeyboardInterrupt):
        flow.throw(KeyboardInterrupt())
    assert not state.refreshing


# --- UNAUTHENTICATED from protected calls (G7) ----------------------------------------


def test_twenty_concurrent_failures_cause_one_reauthentication() -> None:
    state = new_state()
    sent = install(state, T0, 3_600)
    now = T0 + 10
    dropped = [state.on_unauthenticated(sent.generation) for _ in range(20)]
    assert dropped.count(True) == 1
    refreshes = 0
    for _ in range(20):  # each failed caller asks for a token again
        action = state.decide(now)
        if action is TokenAction.REFRESH:
            refreshes += 1
            assert (
                state.plan_refresh(now) is RefreshStep.AUTHENTICATE
            )  # never renew a rejected token
        else:
            assert action is TokenAction.WAIT
    assert refreshes == 1
    new = state.on_granted(grant(now, 3_600, "new"))
    assert state.on_unauthenticated(sent.generation) is False  # a late one: keep the new token
    assert state.current is new


def test_invalidate_forces_authenticate() -> None:
    state = new_state()
    install(state, T0, 3_600)
    state.invalidate()
    assert state.current is None
    assert state.fresh(T0) is None
    assert state.plan_refresh(T0 + 1) is RefreshStep.AUTHENTICATE


def test_held_failure_and_invalidate_fail_fast() -> None:
    state = new_state()
    install(state, T0, 100)
    now = T0 + 60
    drive(state.refresh_flow(now), Rejected("UNAVAILABLE", now), Rejected("UNAUTHENTICATED", now))
    assert state.decide(now) is TokenAction.USE
    state.invalidate()
    assert state.decide(now) is TokenAction.FAIL  # bad credentials: no re-auth storm


# --- secrets and values ---------------------------------------------------------------


def test_token_never_appears_in_a_repr() -> None:
    state = new_state()
    token = install(state, T0, 3_600)
    for text in (repr(state), repr(token), repr(grant(T0, 1)), repr(RenewCall(SECRET_TOKEN))):
        assert SECRET_TOKEN not in text
        assert "secret-payload" not in text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lead_max": -1.0},
        {"lead_fraction": 1.0},
        {"lead_fraction": -0.1},
        {"final_hold": float("nan")},
    ],
)
def test_invalid_params_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TokenParams(**kwargs)  # type: ignore[arg-type]
