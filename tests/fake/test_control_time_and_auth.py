"""Control API over real gRPC: time, credentials and tokens (CONTRACT 5.1-5.3).

Every control is turned through the in-process API and observed through the
generated stubs on loopback gRPC. Time moves only through the fake's clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import cast

import grpc
import pytest

from fake_registry import FakeRegistry, InvalidArgument, ManualClock, NotFound, SystemClock
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

CLIENT_KEY = "test-key"
CLIENT_SECRET = "test-secret-value"
Metadata = tuple[tuple[str, str], ...]
AuthStub = user_pb2_grpc.ClientAuthServiceStub
RegistryStub = registry_pb2_grpc.RegistryServiceStub
OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
DAY = 86_400


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as exc:
        return cast(grpc.Call, exc).code()
    return OK


def authenticate(
    stub: AuthStub, key: str = CLIENT_KEY, secret: str = CLIENT_SECRET
) -> user_pb2.AuthenticateClientResponse:
    return stub.AuthenticateClient(
        user_pb2.AuthenticateClientRequest(client_key=key, client_secret=secret), timeout=5
    )


def auth_status(
    stub: AuthStub, key: str = CLIENT_KEY, secret: str = CLIENT_SECRET
) -> grpc.StatusCode:
    return status_of(lambda: authenticate(stub, key, secret))


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def renew(stub: AuthStub, token: str) -> user_pb2.RenewTokenResponse:
    return stub.RenewToken(user_pb2.RenewTokenRequest(), metadata=bearer(token), timeout=5)


def renew_status(stub: AuthStub, token: str) -> grpc.StatusCode:
    return status_of(lambda: renew(stub, token))


def list_status(stub: RegistryStub, token: str) -> grpc.StatusCode:
    """The status of a protected call (ListServices) presenting ``token``."""
    return status_of(
        lambda: stub.ListServices(
            registry_pb2.ListServicesRequest(), metadata=bearer(token), timeout=5
        )
    )


# --- time -------------------------------------------------------------------


def test_advance_clock_moves_the_fakes_time_and_returns_it(
    fake: FakeRegistry, clock: ManualClock
) -> None:
    start = clock.time()
    assert fake.now() == start
    assert fake.advance_clock(90.5) == start + 90.5
    assert clock.time() == start + 90.5
    assert fake.now() == start + 90.5


def test_set_time_jumps_both_ways(fake: FakeRegistry, clock: ManualClock) -> None:
    assert fake.set_time(2_000_000_000) == 2_000_000_000
    assert clock.time() == 2_000_000_000
    assert fake.set_time(1_000_000_000) == 1_000_000_000
    assert clock.time() == 1_000_000_000


@pytest.mark.parametrize("seconds", [-1, float("nan")])
def test_advance_clock_rejects_negative_or_nan(fake: FakeRegistry, seconds: float) -> None:
    before = fake.now()
    with pytest.raises(InvalidArgument):
        fake.advance_clock(seconds)
    assert fake.now() == before


def test_a_fake_on_a_clock_that_cannot_move_says_so() -> None:
    fake = FakeRegistry(clock=SystemClock())
    with pytest.raises(TypeError, match="cannot be moved"):
        fake.advance_clock(1)
    with pytest.raises(TypeError, match="cannot be moved"):
        fake.set_time(2_000_000_000)


def test_a_24h_token_expires_after_advance_clock_86400_without_sleeping(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub
) -> None:
    fake.set_token_ttl(DAY)
    issued_at = int(fake.now())
    reply = authenticate(auth_stub)
    assert reply.expires_at == issued_at + DAY
    real_start = time.monotonic()

    fake.advance_clock(DAY - 1)
    assert list_status(registry_stub, reply.access_token) == OK
    fake.advance_clock(1)  # now == exp: no leeway
    assert list_status(registry_stub, reply.access_token) == UNAUTHENTICATED
    assert renew_status(auth_stub, reply.access_token) == UNAUTHENTICATED
    assert time.monotonic() - real_start < 5  # a day passed, no real waiting


def test_set_time_before_issue_makes_a_token_not_yet_valid(
    fake: FakeRegistry, registry_stub: RegistryStub, token: str
) -> None:
    now = fake.now()
    fake.set_time(now - 10)
    assert list_status(registry_stub, token) == UNAUTHENTICATED
    fake.set_time(now)
    assert list_status(registry_stub, token) == OK


def test_default_clock_is_real_time_plus_an_offset_that_advance_clock_moves() -> None:
    with FakeRegistry(token_ttl=DAY) as fake, grpc.insecure_channel(fake.address) as channel:
        auth = user_pb2_grpc.ClientAuthServiceStub(channel)
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        assert abs(fake.now() - time.time()) < 5
        reply = authenticate(auth, "demo-key", "demo-secret")
        assert abs(reply.expires_at - (time.time() + DAY)) < 5
        assert list_status(registry, reply.access_token) == OK

        moved_to = fake.advance_clock(DAY)
        assert abs(moved_to - (time.time() + DAY)) < 5
        assert abs(fake.now() - (time.time() + DAY)) < 5
        assert list_status(registry, reply.access_token) == UNAUTHENTICATED

        target = time.time() + 10 * DAY
        fake.set_time(target)
        assert abs(fake.now() - target) < 5
        assert fake.errors.take() == []


def test_default_clock_serves_virtual_delays_moved_by_advance_clock() -> None:
    with FakeRegistry() as fake, grpc.insecure_channel(fake.address) as channel:
        auth = user_pb2_grpc.ClientAuthServiceStub(channel)
        fault = fake.add_fault("AuthenticateClient", delay=3600, times=1)
        future = auth.AuthenticateClient.future(
            user_pb2.AuthenticateClientRequest(client_key="demo-key", client_secret="demo-secret"),
            timeout=5,
        )
        fake.wait_for(lambda c: bool(c.faults))
        assert not future.done()
        fake.advance_clock(3600)
        assert future.result(timeout=5).access_token
        assert fault.hits == 1
        assert fake.errors.take() == []


# --- credentials ------------------------------------------------------------


def test_add_client_is_accepted_at_once(fake: FakeRegistry, auth_stub: AuthStub) -> None:
    assert auth_status(auth_stub, "new-key", "new-secret") == UNAUTHENTICATED
    fake.add_client("new-key", "new-secret")
    assert fake.clients() == sorted([CLIENT_KEY, "new-key"])
    assert authenticate(auth_stub, "new-key", "new-secret").access_token
    assert auth_status(auth_stub, "new-key", "wrong") == UNAUTHENTICATED


def test_remove_client_rejects_authentication_and_renewal_but_not_tokens(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.remove_client(CLIENT_KEY)
    assert fake.clients() == []
    assert auth_status(auth_stub) == UNAUTHENTICATED
    assert renew_status(auth_stub, token) == UNAUTHENTICATED
    assert list_status(registry_stub, token) == OK  # CONTRACT 2.7: not rejected
    with pytest.raises(NotFound):
        fake.remove_client(CLIENT_KEY)


def test_disable_client_gives_unauthenticated_on_auth_and_permission_denied_on_renew(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.disable_client(CLIENT_KEY)
    assert auth_status(auth_stub) == UNAUTHENTICATED
    assert renew_status(auth_stub, token) == PERMISSION_DENIED
    assert list_status(registry_stub, token) == OK

    fake.enable_client(CLIENT_KEY)
    assert auth_status(auth_stub) == OK
    assert renew_status(auth_stub, token) == OK


def test_credential_expiry_on_the_fakes_clock(
    fake: FakeRegistry, auth_stub: AuthStub, token: str
) -> None:
    fake.set_client_expiry(CLIENT_KEY, fake.now() + 100)
    assert auth_status(auth_stub) == OK
    fake.advance_clock(99)
    assert auth_status(auth_stub) == OK
    assert renew_status(auth_stub, token) == OK
    fake.advance_clock(1)
    assert auth_status(auth_stub) == UNAUTHENTICATED
    assert renew_status(auth_stub, token) == PERMISSION_DENIED

    fake.set_client_expiry(CLIENT_KEY, None)
    assert auth_status(auth_stub) == OK


def test_add_client_with_an_expiry(fake: FakeRegistry, auth_stub: AuthStub) -> None:
    fake.add_client("temp", "temp-secret", expires_at=fake.now() + 10)
    assert auth_status(auth_stub, "temp", "temp-secret") == OK
    fake.advance_clock(10)
    assert auth_status(auth_stub, "temp", "temp-secret") == UNAUTHENTICATED


def test_rotate_secret_replaces_the_secret_and_keeps_tokens(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    new_secret = fake.rotate_secret(CLIENT_KEY)
    assert new_secret
    assert new_secret != CLIENT_SECRET
    assert auth_status(auth_stub) == UNAUTHENTICATED
    assert auth_status(auth_stub, CLIENT_KEY, new_secret) == OK
    assert list_status(registry_stub, token) == OK
    assert renew_status(auth_stub, token) == OK  # same credential id

    assert fake.rotate_secret(CLIENT_KEY, "chosen") == "chosen"
    assert auth_status(auth_stub, CLIENT_KEY, new_secret) == UNAUTHENTICATED
    assert auth_status(auth_stub, CLIENT_KEY, "chosen") == OK


def test_credential_controls_reject_unknown_clients(fake: FakeRegistry) -> None:
    for control in (fake.disable_client, fake.enable_client, fake.rotate_secret):
        with pytest.raises(NotFound):
            control("nobody")
    with pytest.raises(NotFound):
        fake.set_client_expiry("nobody", None)


# --- tokens -----------------------------------------------------------------


def test_set_token_ttl_applies_to_tokens_issued_from_now_on(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.set_token_ttl(5)
    assert fake.token_ttl == 5
    now = int(fake.now())
    short = authenticate(auth_stub)
    assert short.expires_at == now + 5
    renewed = renew(auth_stub, short.access_token)
    assert renewed.expires_at == now + 5

    fake.advance_clock(5)
    assert list_status(registry_stub, short.access_token) == UNAUTHENTICATED
    assert list_status(registry_stub, renewed.access_token) == UNAUTHENTICATED
    assert list_status(registry_stub, token) == OK  # issued earlier, with 3600 s


@pytest.mark.parametrize("seconds", [0, -5, 1.5, True])
def test_set_token_ttl_rejects_non_positive_or_fractional(fake: FakeRegistry, seconds: int) -> None:
    with pytest.raises(InvalidArgument):
        fake.set_token_ttl(seconds)
    assert fake.token_ttl == 3600


def test_expire_tokens_fails_every_outstanding_token_as_expired(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.advance_clock(1)  # same claims in the same second would sign the same token
    second = authenticate(auth_stub).access_token
    assert second != token
    assert fake.expire_tokens() == 2
    for old in (token, second):
        assert list_status(registry_stub, old) == UNAUTHENTICATED
        assert renew_status(auth_stub, old) == UNAUTHENTICATED
    fresh = authenticate(auth_stub).access_token
    assert list_status(registry_stub, fresh) == OK
    assert renew_status(auth_stub, fresh) == OK


def test_expire_tokens_of_one_client_leaves_the_others(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.add_client("other", "other-secret")
    other = authenticate(auth_stub, "other", "other-secret").access_token
    assert fake.expire_tokens("other") == 1
    assert list_status(registry_stub, other) == UNAUTHENTICATED
    assert list_status(registry_stub, token) == OK
    assert fake.expire_tokens("nobody") == 0


def test_expire_tokens_reaches_tokens_issued_before_a_reset(
    fake: FakeRegistry, registry_stub: RegistryStub, token: str
) -> None:
    fake.reset()
    assert list_status(registry_stub, token) == OK  # same signing key as at start
    assert fake.expire_tokens() >= 1
    assert list_status(registry_stub, token) == UNAUTHENTICATED


def test_revoke_token_rejects_exactly_that_token(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.advance_clock(1)  # same claims in the same second would sign the same token
    other = authenticate(auth_stub).access_token
    fake.revoke_token(token)
    assert list_status(registry_stub, token) == UNAUTHENTICATED
    assert renew_status(auth_stub, token) == UNAUTHENTICATED
    assert list_status(registry_stub, other) == OK
    with pytest.raises(InvalidArgument):
        fake.revoke_token("")


def test_a_token_issued_after_revoke_works_even_in_the_same_second(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    # On a manual clock a re-authentication signs the very same claims (the
    # SDK's G7 recovery): the token it gets is new and must pass.
    fake.revoke_token(token)
    assert list_status(registry_stub, token) == UNAUTHENTICATED
    fresh = authenticate(auth_stub).access_token
    assert list_status(registry_stub, fresh) == OK


def test_rotate_signing_key_invalidates_every_outstanding_token(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.add_client("other", "other-secret")
    other = authenticate(auth_stub, "other", "other-secret").access_token
    fake.rotate_signing_key()
    for old in (token, other):
        assert list_status(registry_stub, old) == UNAUTHENTICATED
        assert renew_status(auth_stub, old) == UNAUTHENTICATED
    fresh = authenticate(auth_stub).access_token
    assert list_status(registry_stub, fresh) == OK
    assert renew_status(auth_stub, fresh) == OK


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, "INTERNAL", "resource_exhausted"])
def test_fail_next_authenticate_fails_exactly_n_calls_with_the_code(
    fake: FakeRegistry, auth_stub: AuthStub, code: grpc.StatusCode | str
) -> None:
    expected = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode[code.upper()]
    handle = fake.fail_next("AuthenticateClient", code, times=2)
    before = fake.authentications
    assert [auth_status(auth_stub) for _ in range(3)] == [expected, expected, OK]
    assert handle.hits == 2
    assert not handle.active
    # Injected failures never reach the handler, so they are not counted.
    assert fake.authentications == before + 1
    fake.wait_for("AuthenticateClient", count=3)
    fake.assert_called("AuthenticateClient", code=expected.name, times=2)


def test_fail_next_renew_fails_once_by_default(
    fake: FakeRegistry, auth_stub: AuthStub, token: str
) -> None:
    fake.fail_next("RenewToken", "UNAVAILABLE")
    assert renew_status(auth_stub, token) == grpc.StatusCode.UNAVAILABLE
    assert renew_status(auth_stub, token) == OK
    assert renew_status(auth_stub, token) == OK


def test_fail_next_applies_to_any_method_only(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    fake.fail_next("ListServices", grpc.StatusCode.INTERNAL)
    assert auth_status(auth_stub) == OK
    assert renew_status(auth_stub, token) == OK
    assert list_status(registry_stub, token) == grpc.StatusCode.INTERNAL
    assert list_status(registry_stub, token) == OK


def test_counters_count_authentications_and_renewals_that_reach_the_handler(
    fake: FakeRegistry, auth_stub: AuthStub
) -> None:
    assert (fake.authentications, fake.renewals) == (0, 0)
    first = authenticate(auth_stub).access_token
    assert auth_status(auth_stub, CLIENT_KEY, "wrong") == UNAUTHENTICATED
    assert auth_status(auth_stub, "", "") == grpc.StatusCode.INVALID_ARGUMENT
    renew(auth_stub, first)
    renew(auth_stub, first)
    renew(auth_stub, first)
    assert fake.authentications == 3
    assert fake.renewals == 3
    fake.reset()
    assert (fake.authentications, fake.renewals) == (0, 0)


def test_auth_enforcement_can_be_turned_off(
    fake: FakeRegistry, registry_stub: RegistryStub
) -> None:
    def anonymous() -> grpc.StatusCode:
        return status_of(
            lambda: registry_stub.ListServices(registry_pb2.ListServicesRequest(), timeout=5)
        )

    assert anonymous() == UNAUTHENTICATED
    fake.set_auth_enabled(False)
    assert anonymous() == OK
    fake.set_auth_enabled(True)
    assert anonymous() == UNAUTHENTICATED


def test_exempt_methods_can_be_edited(
    fake: FakeRegistry, auth_stub: AuthStub, registry_stub: RegistryStub
) -> None:
    def anonymous_list() -> grpc.StatusCode:
        return status_of(
            lambda: registry_stub.ListServices(registry_pb2.ListServicesRequest(), timeout=5)
        )

    fake.set_exempt_methods([*fake.exempt_methods, "RegistryService/ListServices"])
    assert anonymous_list() == OK
    assert auth_status(auth_stub) == OK
    fake.set_exempt_methods([])
    assert anonymous_list() == UNAUTHENTICATED
    # With AuthenticateClient no longer exempt, it needs a token too.
    assert auth_status(auth_stub) == UNAUTHENTICATED
    fake.reset()
    assert auth_status(auth_stub) == OK


@pytest.fixture
def second_fake(clock: ManualClock) -> Iterator[FakeRegistry]:
    """A second node on the same clock (for checks that must not leak across fakes)."""
    with FakeRegistry(clients={CLIENT_KEY: CLIENT_SECRET}, clock=clock) as node:
        yield node


def test_token_controls_are_per_fake(
    fake: FakeRegistry, second_fake: FakeRegistry, registry_stub: RegistryStub, token: str
) -> None:
    with grpc.insecure_channel(second_fake.address) as channel:
        auth2 = user_pb2_grpc.ClientAuthServiceStub(channel)
        registry2 = registry_pb2_grpc.RegistryServiceStub(channel)
        token2 = authenticate(auth2).access_token
        # Different signing secrets: tokens do not cross nodes.
        assert list_status(registry2, token) == UNAUTHENTICATED
        fake.rotate_signing_key()
        assert list_status(registry2, token2) == OK
        assert list_status(registry_stub, token) == UNAUTHENTICATED
