"""Token management end to end against the fake over loopback gRPC, in virtual time (G6-G8).

Every scenario runs on both flavours: ``sdk.auth.Auth`` and ``sdk.aio.AsyncAuth``
(``make_client``, see ``tests/flavours.py``).
"""

from __future__ import annotations

import base64
import json
import threading

import pytest

from fake_registry import FakeRegistry, ManualClock
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from sdk import Client, Config
from sdk.auth import jwt_issued_at
from sdk.errors import DeadlineExceeded, PermissionDenied, Unauthenticated, Unavailable
from tests.conftest import CLIENT_KEY, CLIENT_SECRET
from tests.flavours import MakeClient, eventually

AUTHENTICATE = "AuthenticateClient"
RENEW = "RenewToken"


def _config(fake: FakeRegistry, **changes: object) -> Config:
    values: dict[str, object] = {"default_timeout": 5.0}
    values.update(changes)
    return Config(fake.address, CLIENT_KEY, CLIENT_SECRET, **values)  # type: ignore[arg-type]


@pytest.fixture
def client(fake: FakeRegistry, clock: ManualClock, make_client: MakeClient) -> Client:
    return make_client(_config(fake), clock)  # type: ignore[no-any-return]


def _list(client: Client) -> registry_pb2.ListServicesResponse:
    stub = registry_pb2_grpc.RegistryServiceStub(client.channel)
    return stub.ListServices(registry_pb2.ListServicesRequest(env="dev"))


def test_token_is_cached(fake: FakeRegistry, client: Client) -> None:
    first = client.auth.token()
    assert client.auth.token() == first
    _list(client)
    assert fake.authentications == 1
    assert fake.renewals == 0
    assert client.auth.generation == 1


def test_renewal_ahead_of_expiry_with_half_lifetime_lead(
    fake: FakeRegistry, clock: ManualClock, client: Client
) -> None:
    fake.set_token_ttl(10)  # lead = min(300, 10 / 2) = 5 s
    client.auth.token()
    clock.advance(4)
    client.auth.token()
    assert (fake.authentications, fake.renewals) == (1, 0)
    clock.advance(2)
    client.auth.token()
    assert (fake.authentications, fake.renewals) == (1, 1)
    assert client.auth.generation == 2


def test_one_renewal_under_twenty_concurrent_callers(
    fake: FakeRegistry, clock: ManualClock, client: Client
) -> None:
    fake.set_token_ttl(10)
    client.auth.token()
    clock.advance(6)
    barrier = threading.Barrier(20)
    tokens: list[str] = []
    errors: list[BaseException] = []

    def call() -> None:
        barrier.wait(timeout=10)
        try:
            tokens.append(client.auth.token())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    assert not errors
    assert len(tokens) == 20
    assert fake.renewals == 1
    assert fake.authentications == 1


def test_revoked_token_recovered_by_one_reauthentication(
    fake: FakeRegistry, client: Client
) -> None:
    old = client.auth.token()
    fake.revoke_token(old)
    _list(client)  # no failed user call
    assert fake.authentications == 2
    assert client.auth.generation == 2
    codes = [c.code for c in fake.calls("ListServices")]
    assert codes == ["UNAUTHENTICATED", "OK"]


def test_bad_credentials_are_final(
    fake: FakeRegistry, clock: ManualClock, make_client: MakeClient
) -> None:
    config = Config(fake.address, CLIENT_KEY, "wrong-secret", default_timeout=5.0)
    with make_client(config, clock) as client:
        with pytest.raises(Unauthenticated):
            client.auth.token()
        with pytest.raises(Unauthenticated):
            client.auth.token()  # within the hold: the fake is not asked again
        assert len(fake.calls(AUTHENTICATE)) == 1
        clock.advance(31)  # past final_hold
        with pytest.raises(Unauthenticated):
            client.auth.token()
        assert len(fake.calls(AUTHENTICATE)) == 2


def test_disabled_client_on_renew_surfaces_permission_denied(
    fake: FakeRegistry, clock: ManualClock, client: Client
) -> None:
    fake.set_token_ttl(10)
    client.auth.token()
    fake.disable_client(CLIENT_KEY)
    clock.advance(6)  # renewal due, token still valid
    with pytest.raises(PermissionDenied):
        client.auth.token()
    fake.assert_called(RENEW, times=1, code="PERMISSION_DENIED")
    fake.assert_called(AUTHENTICATE, times=2)  # the first, then the confirmation
    assert fake.calls(AUTHENTICATE)[-1].code == "UNAUTHENTICATED"


def test_waiter_honours_its_own_deadline(fake: FakeRegistry, client: Client) -> None:
    fake.add_fault(AUTHENTICATE, delay=1.0, real_time=True, times=1)
    leader_result: list[str] = []
    leader = threading.Thread(target=lambda: leader_result.append(client.auth.token(timeout=10)))
    leader.start()
    fake.wait_for(lambda call: call.method.endswith(AUTHENTICATE), timeout=5)
    with pytest.raises(DeadlineExceeded):
        client.auth.token(timeout=0.1)
    leader.join(timeout=10)
    assert len(leader_result) == 1
    assert leader_result[0]
    assert fake.authentications == 1


def test_waiters_get_the_real_error(fake: FakeRegistry, clock: ManualClock, client: Client) -> None:
    # A virtual delay holds the leader's call until the clock moves.
    fake.add_fault(AUTHENTICATE, code="UNAVAILABLE", delay=1.0, times=1)
    results: dict[str, BaseException] = {}

    def run(name: str) -> None:
        try:
            client.auth.token(timeout=10)
        except BaseException as exc:
            results[name] = exc

    leader = threading.Thread(target=run, args=("leader",))
    leader.start()
    fake.wait_for(lambda call: call.method.endswith(AUTHENTICATE), timeout=5)
    waiter = threading.Thread(target=run, args=("waiter",))
    waiter.start()
    assert eventually(lambda: client.auth.waiters >= 1)
    clock.advance(1.0)
    leader.join(timeout=10)
    waiter.join(timeout=10)
    assert isinstance(results["leader"], Unavailable)
    assert isinstance(results["waiter"], Unavailable)
    assert len(fake.calls(AUTHENTICATE)) == 1


def test_invalidate_forces_authentication(fake: FakeRegistry, client: Client) -> None:
    client.auth.token()
    client.auth.invalidate()
    client.auth.token()
    assert (fake.authentications, fake.renewals) == (2, 0)


def test_jwt_issued_at() -> None:
    def part(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    assert jwt_issued_at(f"{part({'alg': 'HS256'})}.{part({'iat': 1700})}.sig") == 1700.0
    assert jwt_issued_at("not-a-jwt") is None
    assert jwt_issued_at("a.!!!.c") is None
    assert jwt_issued_at(f"x.{part({'iat': 'soon'})}.y") is None


def test_reprs_hide_secrets(client: Client) -> None:
    token = client.auth.token()
    for text in (repr(client), repr(client.auth), repr(client.config), str(client.auth)):
        assert token not in text
        assert CLIENT_SECRET not in text


def test_a_slow_renewal_does_not_fail_a_call_while_the_old_token_works(
    fake: FakeRegistry, clock: ManualClock, client: Client
) -> None:
    fake.set_token_ttl(10)
    old = client.auth.token()
    clock.advance(6)  # renewal due; the token is valid for 4 more seconds
    fake.add_fault(RENEW, delay=0.5, real_time=True, times=1)
    assert client.auth.token(timeout=0.05) == old  # not DeadlineExceeded
    # Sync: that call gave up its renewal, the next one renews; async: the shared renewal
    # task goes on in the background and lands.
    assert eventually(lambda: client.auth.token(timeout=5) != old)
    assert client.auth.generation == 2
