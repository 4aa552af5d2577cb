"""The rules of CONTRACT sections 2 and 3 that only a control plane can reach.

Token expiry, lease lapse and revival need time to pass; disabled, expired,
deleted or rotated credentials and a second client need credential controls.
These tests drive the fake's control plane (the ``fake_registry`` fixture:
reset before each test) and carry the ``fake_registry_control`` marker, so
they are skipped on a registry without one, such as the real server. The
``fake_registry`` marker pins the token lifetime to :data:`TOKEN_TTL`.

Time moves only through the control plane, and only forwards within a test.
A fake in another process runs on real time plus an offset, so every check
leaves at least half a second between the time set and the boundary tested.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2_grpc
from pytest_plugin.contract.support import (
    Instances,
    Metadata,
    OpenHeartbeat,
    authenticate,
    bearer,
    ensure,
    get_service,
    jwt_parts,
    list_services,
    online,
    protected_status,
    renew,
    status_of,
)
from pytest_plugin.targets import Credentials

#: Tokens live this long here, whatever the fake's own setting (as on the real server: 1 h+).
TOKEN_TTL = 3600
pytestmark = [pytest.mark.fake_registry_control, pytest.mark.fake_registry(token_ttl=TOKEN_TTL)]

AuthStub = user_pb2_grpc.ClientAuthServiceStub
RegistryStub = registry_pb2_grpc.RegistryServiceStub
OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
#: Seconds kept between a time set and the boundary it must not cross.
MARGIN = 0.5


class Control(Protocol):
    """The part of the fake's control API these tests use (in process or remote)."""

    def now(self) -> float: ...
    def set_time(self, unix_seconds: float) -> float: ...
    def advance_clock(self, seconds: float) -> float: ...
    def add_client(
        self, client_key: str, client_secret: str, *, expires_at: float | None = None
    ) -> None: ...
    def remove_client(self, client_key: str) -> None: ...
    def disable_client(self, client_key: str) -> None: ...
    def set_client_expiry(self, client_key: str, expires_at: float | None) -> None: ...
    def rotate_secret(self, client_key: str, new_secret: str | None = None) -> str: ...
    def expire_instance(self, service_id: int, instance_key: str) -> object: ...
    def force_offline(self, service_id: int, instance_key: str) -> object: ...


@pytest.fixture(autouse=True)
def control(fake_registry: Any) -> Control:
    """The reset fake. Autouse, so the reset (and the in-process clock's reset)
    happens before the test's token is issued."""
    handle: Control = fake_registry
    return handle


def authenticate_status(stub: AuthStub, key: str, secret: str) -> grpc.StatusCode:
    return status_of(lambda: authenticate(stub, key, secret))


def renew_status(stub: AuthStub, metadata: Metadata) -> grpc.StatusCode:
    return status_of(lambda: renew(stub, metadata))


@pytest.fixture
def other_client(control: Control, unique: Callable[[str], str]) -> Credentials:
    """A second credential, added for this test: free to disable, expire or delete."""
    created = Credentials(unique("client"), unique("secret"))
    control.add_client(created.client_key, created.client_secret)
    return created


# --- 2.2 / 2.6: token lifetime -----------------------------------------------------------


def test_token_is_accepted_until_its_exp_and_rejected_from_it(
    control: Control, auth_stub: AuthStub, registry_stub: RegistryStub, credentials: Credentials
) -> None:
    reply = authenticate(auth_stub, credentials.client_key, credentials.client_secret)
    md = bearer(reply.access_token)
    control.set_time(reply.expires_at - MARGIN)
    assert protected_status(registry_stub, md) is OK
    control.set_time(reply.expires_at)  # no leeway
    assert protected_status(registry_stub, md) is UNAUTHENTICATED


def test_token_is_rejected_before_its_nbf(
    control: Control, registry_stub: RegistryStub, token: str
) -> None:
    nbf = jwt_parts(token)[1]["nbf"]
    control.set_time(nbf - MARGIN)  # the clock goes back: not valid yet, and no leeway
    assert protected_status(registry_stub, bearer(token)) is UNAUTHENTICATED
    control.set_time(nbf)
    assert protected_status(registry_stub, bearer(token)) is OK


def test_renew_with_an_expired_token_is_unauthenticated(
    control: Control,
    auth_stub: AuthStub,
    registry_stub: RegistryStub,
    credentials: Credentials,
    token: str,
) -> None:
    control.set_time(jwt_parts(token)[1]["exp"])
    assert renew_status(auth_stub, bearer(token)) is UNAUTHENTICATED
    # The way back is AuthenticateClient.
    fresh = authenticate(auth_stub, credentials.client_key, credentials.client_secret)
    assert protected_status(registry_stub, bearer(fresh.access_token)) is OK


def test_renew_gives_a_full_lifetime_from_now_and_the_old_token_keeps_its_own(
    control: Control, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    _, old = jwt_parts(token)
    assert old["exp"] == old["iat"] + TOKEN_TTL
    control.advance_clock(1000)
    reply = renew(auth_stub, bearer(token))
    _, new = jwt_parts(reply.access_token)
    assert new["iat"] >= old["iat"] + 1000
    assert reply.expires_at == new["exp"] == new["iat"] + TOKEN_TTL
    control.set_time(old["exp"] - MARGIN)
    assert protected_status(registry_stub, bearer(token)) is OK
    control.set_time(old["exp"])
    assert protected_status(registry_stub, bearer(token)) is UNAUTHENTICATED
    assert protected_status(registry_stub, bearer(reply.access_token)) is OK


def test_renewal_chains_past_the_first_tokens_lifetime(
    control: Control, auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    current = token
    for _ in range(3):
        control.set_time(jwt_parts(current)[1]["exp"] - 1)
        current = renew(auth_stub, bearer(current)).access_token
    assert protected_status(registry_stub, bearer(current)) is OK
    assert protected_status(registry_stub, bearer(token)) is UNAUTHENTICATED


# --- 2.5: streams are checked once, at open -------------------------------------------------


def test_open_stream_keeps_working_after_its_token_expires(
    control: Control,
    registry_stub: RegistryStub,
    md: Metadata,
    token: str,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(service.id, "node-1")
    stream = open_heartbeat(md)
    assert stream.beat(service.id, "node-1") > 0
    control.set_time(jwt_parts(token)[1]["exp"])
    assert protected_status(registry_stub, md) is UNAUTHENTICATED  # the token has expired
    assert stream.beat(service.id, "node-1") > 0  # the open stream has not
    assert stream.close() is OK


def test_stream_opened_with_an_expired_token_fails_unauthenticated(
    control: Control,
    md: Metadata,
    token: str,
    service: registry_pb2.Service,
    open_heartbeat: OpenHeartbeat,
) -> None:
    control.set_time(jwt_parts(token)[1]["exp"])
    stream = open_heartbeat(md)
    stream.send(service.id, "node-1")
    assert status_of(stream.read) is UNAUTHENTICATED


# --- 2.1 / 2.6 / 2.7: credentials change, tokens stay valid ------------------------------------


def test_disabled_credential(
    control: Control,
    auth_stub: AuthStub,
    registry_stub: RegistryStub,
    other_client: Credentials,
) -> None:
    key, secret = other_client.client_key, other_client.client_secret
    md = bearer(authenticate(auth_stub, key, secret).access_token)
    control.disable_client(key)
    assert authenticate_status(auth_stub, key, secret) is UNAUTHENTICATED  # not PERMISSION_DENIED
    assert renew_status(auth_stub, md) is PERMISSION_DENIED
    assert protected_status(registry_stub, md) is OK  # no revocation


def test_expired_credential(
    control: Control,
    auth_stub: AuthStub,
    registry_stub: RegistryStub,
    other_client: Credentials,
) -> None:
    key, secret = other_client.client_key, other_client.client_secret
    expiry = int(control.now()) + 100
    control.set_client_expiry(key, expiry)
    md = bearer(authenticate(auth_stub, key, secret).access_token)
    control.set_time(expiry - 1)
    assert renew_status(auth_stub, md) is OK
    control.set_time(expiry + MARGIN)
    assert authenticate_status(auth_stub, key, secret) is UNAUTHENTICATED
    assert renew_status(auth_stub, md) is PERMISSION_DENIED
    assert protected_status(registry_stub, md) is OK


def test_deleted_credential(
    control: Control,
    auth_stub: AuthStub,
    registry_stub: RegistryStub,
    other_client: Credentials,
) -> None:
    key, secret = other_client.client_key, other_client.client_secret
    md = bearer(authenticate(auth_stub, key, secret).access_token)
    assert renew_status(auth_stub, md) is OK
    control.remove_client(key)
    assert authenticate_status(auth_stub, key, secret) is UNAUTHENTICATED
    assert renew_status(auth_stub, md) is UNAUTHENTICATED  # not PERMISSION_DENIED
    assert protected_status(registry_stub, md) is OK


def test_rotated_secret(
    control: Control,
    auth_stub: AuthStub,
    registry_stub: RegistryStub,
    other_client: Credentials,
    unique: Callable[[str], str],
) -> None:
    key, secret = other_client.client_key, other_client.client_secret
    md = bearer(authenticate(auth_stub, key, secret).access_token)
    new_secret = control.rotate_secret(key, unique("rotated"))
    assert authenticate_status(auth_stub, key, secret) is UNAUTHENTICATED
    assert authenticate_status(auth_stub, key, new_secret) is OK
    assert protected_status(registry_stub, md) is OK
    assert renew_status(auth_stub, md) is OK  # the credential is still active


def test_any_valid_token_may_manage_any_instance(
    auth_stub: AuthStub,
    registry_stub: RegistryStub,
    md: Metadata,
    other_client: Credentials,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    other = bearer(
        authenticate(auth_stub, other_client.client_key, other_client.client_secret).access_token
    )
    instances.register(service.id, "mine")
    assert open_heartbeat(other).beat(service.id, "mine") > 0
    Instances(registry_stub, other).deregister(service.id, "mine")
    assert online(registry_stub, md, service.id) == {}


# --- 3.2 / 3.5: leases lapse lazily; a heartbeat revives them ------------------------------


def test_instance_is_online_until_its_lease_ends(
    control: Control,
    registry_stub: RegistryStub,
    md: Metadata,
    project: str,
    service: registry_pb2.Service,
    instances: Instances,
) -> None:
    instances.register(service.id, "node-1", ttl_seconds=10)
    registered = online(registry_stub, md, service.id)["node-1"].last_heartbeat_at
    control.set_time(registered + 9)  # the boundary second (10) is left alone: CONTRACT 3.2
    assert set(online(registry_stub, md, service.id)) == {"node-1"}
    (found,) = list_services(registry_stub, md, project).services
    assert [i.instance_key for i in found.instances] == ["node-1"]
    control.set_time(registered + 11)
    assert online(registry_stub, md, service.id) == {}
    (found,) = list_services(registry_stub, md, project).services  # still listed
    assert (found.service, list(found.instances)) == (service, [])


def test_heartbeat_revives_a_lapsed_lease_with_its_registered_data(
    control: Control,
    registry_stub: RegistryStub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
) -> None:
    instances.register(service.id, "node-1", ttl_seconds=10, meta_json='{"v":1}', http_port=80)
    before = online(registry_stub, md, service.id)["node-1"]
    control.set_time(before.last_heartbeat_at + 1000)
    assert online(registry_stub, md, service.id) == {}
    expires_at = open_heartbeat(md).beat(service.id, "node-1")
    after = online(registry_stub, md, service.id)["node-1"]
    assert after.last_heartbeat_at >= before.last_heartbeat_at + 1000
    assert expires_at == after.last_heartbeat_at + 10
    unchanged = ("id", "env", "host", "endpoint", "meta_json", "ttl_seconds", "http_port")
    assert [getattr(after, f) for f in unchanged] == [getattr(before, f) for f in unchanged]


@pytest.mark.parametrize("how", ["expire_instance", "force_offline"])
def test_instance_taken_offline_is_revived_by_its_next_heartbeat(
    control: Control,
    registry_stub: RegistryStub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    open_heartbeat: OpenHeartbeat,
    how: str,
) -> None:
    instances.register(service.id, "node-1")
    instances.register(service.id, "other")
    take_offline = getattr(control, how)
    take_offline(service.id, "node-1")
    assert set(online(registry_stub, md, service.id)) == {"other"}
    assert open_heartbeat(md).beat(service.id, "node-1") > 0  # not sticky
    assert set(online(registry_stub, md, service.id)) == {"node-1", "other"}


def test_reregister_renews_the_lease(
    control: Control,
    registry_stub: RegistryStub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
) -> None:
    instances.register(service.id, "node-1", ttl_seconds=10)
    first = online(registry_stub, md, service.id)["node-1"].last_heartbeat_at
    control.set_time(first + 8)
    instances.register(service.id, "node-1", ttl_seconds=10)
    control.set_time(first + 16)
    assert set(online(registry_stub, md, service.id)) == {"node-1"}
    control.set_time(first + 19 + MARGIN)
    assert online(registry_stub, md, service.id) == {}


def test_only_online_instances_are_listed(
    control: Control,
    registry_stub: RegistryStub,
    md: Metadata,
    project: str,
    service: registry_pb2.Service,
    instances: Instances,
) -> None:
    instances.register(service.id, "short", ttl_seconds=5)
    instances.register(service.id, "gone", ttl_seconds=60)
    instances.register(service.id, "live", ttl_seconds=60)
    instances.deregister(service.id, "gone")
    registered = online(registry_stub, md, service.id)["live"].last_heartbeat_at
    control.set_time(registered + 6 + MARGIN)
    (found,) = list_services(registry_stub, md, project).services
    assert [i.instance_key for i in found.instances] == ["live"]
    assert [i.instance_key for i in get_service(registry_stub, md, service.id).instances] == [
        "live"
    ]


# --- 3.9: timestamps are truncated Unix seconds of the server's clock ----------------------


def test_timestamps_are_truncated_unix_seconds_of_the_server_clock(
    control: Control,
    registry_stub: RegistryStub,
    md: Metadata,
    project: str,
    instances: Instances,
) -> None:
    second = int(control.now()) + 1000
    control.set_time(second + 0.6)  # rounding would give second + 1
    created = ensure(registry_stub, md, project, "svc").service
    assert (created.created_at, created.updated_at) == (second, second)
    reply = instances.register(created.id, "node-1", ttl_seconds=30)
    assert reply.expires_at == second + 30
    got = online(registry_stub, md, created.id)["node-1"]
    assert got.created_at == got.last_heartbeat_at == got.updated_at == second
