"""Black-box tests of the fake's authentication (CONTRACT 1.2 and section 2).

The rules that hold on the real server too are the contract suite's
(``pytest_plugin/contract``, run by ``make test`` in process, as a subprocess and as a
container); here are the rest, which need the fake's signing key or clock. Every test
talks to the fake over loopback gRPC through the generated stubs.
Tokens that the real server would never issue (no ``exp``, HS384, ``nbf`` in
the future, ``alg: none``...) are crafted with pyjwt and the fake's private
signing key. Time moves only through the ``clock`` fixture.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import grpc
import jwt
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from fake_registry import FakeRegistry, ManualClock
from fake_registry.state.auth import Credential
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

if TYPE_CHECKING:
    from tests.fake.conftest import OpenHeartbeat

Metadata = tuple[tuple[str, str], ...]
OK = grpc.StatusCode.OK
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
TOKEN_TTL = 3600  # the shared ``fake`` fixture's token lifetime


def status_of(call: Callable[[], object]) -> grpc.StatusCode:
    """The status ``call`` ends with: OK, or the code of the ``RpcError`` it raises."""
    try:
        call()
    except grpc.RpcError as exc:
        return cast(grpc.Call, exc).code()
    return OK


def bearer(token: str) -> Metadata:
    return (("authorization", f"Bearer {token}"),)


def authenticate(
    stub: user_pb2_grpc.ClientAuthServiceStub, key: str, secret: str
) -> user_pb2.AuthenticateClientResponse:
    return stub.AuthenticateClient(
        user_pb2.AuthenticateClientRequest(client_key=key, client_secret=secret), timeout=5
    )


def authenticate_status(
    stub: user_pb2_grpc.ClientAuthServiceStub, key: str, secret: str
) -> grpc.StatusCode:
    return status_of(lambda: authenticate(stub, key, secret))


def protected_status(
    stub: registry_pb2_grpc.RegistryServiceStub, metadata: Metadata | None
) -> grpc.StatusCode:
    """The status of a protected RPC (ListServices) called with ``metadata``."""
    return status_of(
        lambda: stub.ListServices(registry_pb2.ListServicesRequest(), metadata=metadata, timeout=5)
    )


def renew(
    stub: user_pb2_grpc.ClientAuthServiceStub, metadata: Metadata | None
) -> user_pb2.RenewTokenResponse:
    return stub.RenewToken(user_pb2.RenewTokenRequest(), metadata=metadata, timeout=5)


def renew_status(
    stub: user_pb2_grpc.ClientAuthServiceStub, metadata: Metadata | None
) -> grpc.StatusCode:
    return status_of(lambda: renew(stub, metadata))


def claims(clock: ManualClock, credential: Credential, **overrides: Any) -> dict[str, Any]:
    """Claims as the server issues them now; an override of ``None`` drops the claim."""
    now = int(clock.time())
    base: dict[str, Any] = {
        "iss": "xiaozhizhang",
        "sub": "client",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
        "clientId": credential.id,
        "clientKey": credential.key,
        "status": 1,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(fake: FakeRegistry, payload: dict[str, Any], algorithm: str = "HS256") -> str:
    # The signing key is private to the fake; reading it is fine in our own tests.
    return jwt.encode(payload, fake._world.auth.signing_key, algorithm=algorithm)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge_hmac_with_header(fake: FakeRegistry, header: dict[str, Any], payload: Any) -> str:
    """A token signed HMAC-SHA256 with the secret, whatever its header claims."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    key = fake._world.auth.signing_key.encode()  # private, see sign()
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def set_credential(fake: FakeRegistry, key: str, **changes: Any) -> None:
    """Change a stored credential record (private state: no control exists yet)."""
    with fake._world.lock:
        credentials = fake._world.auth.credentials
        credentials[key] = dataclasses.replace(credentials[key], **changes)


def delete_credential(fake: FakeRegistry, key: str) -> None:
    with fake._world.lock:  # private state: no control exists yet
        del fake._world.auth.credentials[key]


def decode_unverified(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


# --- 1.2 / 2.2 / 2.3: what AuthenticateClient issues ------------------------


def test_authenticate_returns_bearer_token_expiring_at_its_exp_claim(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub, credential: Credential, clock: ManualClock
) -> None:
    reply = authenticate(auth_stub, credential.key, credential.secret)
    assert reply.token_type == "Bearer"
    assert reply.expires_at == decode_unverified(reply.access_token)["exp"]
    assert reply.expires_at == int(clock.time()) + TOKEN_TTL


def test_token_header_is_hs256_jwt(token: str) -> None:
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}


def test_token_claims_follow_the_contract(
    token: str, credential: Credential, clock: ManualClock
) -> None:
    now = int(clock.time())
    assert decode_unverified(token) == {
        "iss": "xiaozhizhang",
        "sub": "client",
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_TTL,
        "clientId": credential.id,
        "clientKey": credential.key,
        "status": 1,
    }


def test_token_claims_use_whole_seconds(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub, credential: Credential, clock: ManualClock
) -> None:
    clock.advance(0.75)
    reply = authenticate(auth_stub, credential.key, credential.secret)
    issued = decode_unverified(reply.access_token)
    assert issued["iat"] == issued["nbf"] == int(clock.time())
    assert reply.expires_at == int(clock.time()) + TOKEN_TTL


def test_token_lifetime_may_be_a_few_seconds(clock: ManualClock) -> None:
    with (
        FakeRegistry(clients={"short-key": "short-secret"}, token_ttl=5, clock=clock) as fake,
        grpc.insecure_channel(fake.address) as channel,
    ):
        auth = user_pb2_grpc.ClientAuthServiceStub(channel)
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        reply = authenticate(auth, "short-key", "short-secret")
        assert reply.expires_at == int(clock.time()) + 5
        clock.advance(4)
        assert protected_status(registry, bearer(reply.access_token)) is OK
        clock.advance(1)
        assert protected_status(registry, bearer(reply.access_token)) is UNAUTHENTICATED
    assert fake.errors.take() == []


# --- 2.1 / 2.7: AuthenticateClient failures --------------------------------


def test_authenticate_empty_key_is_invalid_argument(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub, credential: Credential
) -> None:
    assert authenticate_status(auth_stub, "", credential.secret) is INVALID_ARGUMENT


def test_authenticate_empty_secret_is_invalid_argument(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub, credential: Credential
) -> None:
    assert authenticate_status(auth_stub, credential.key, "") is INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("key", "secret"),
    [("", ""), ("", "unknown-secret"), ("unknown-key", "")],
    ids=["both-empty", "empty-key-unknown-secret", "unknown-key-empty-secret"],
)
def test_authenticate_checks_empty_fields_before_the_credential(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub, key: str, secret: str
) -> None:
    assert authenticate_status(auth_stub, key, secret) is INVALID_ARGUMENT


def test_authenticate_disabled_credential_is_unauthenticated(
    fake: FakeRegistry, auth_stub: user_pb2_grpc.ClientAuthServiceStub, credential: Credential
) -> None:
    set_credential(fake, credential.key, enabled=False)
    assert authenticate_status(auth_stub, credential.key, credential.secret) is UNAUTHENTICATED


def test_authenticate_expired_credential_is_unauthenticated(
    fake: FakeRegistry,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    credential: Credential,
    clock: ManualClock,
) -> None:
    set_credential(fake, credential.key, expires_at=clock.time() + 10)
    clock.advance(9)
    assert authenticate_status(auth_stub, credential.key, credential.secret) is OK
    clock.advance(1)
    assert authenticate_status(auth_stub, credential.key, credential.secret) is UNAUTHENTICATED


def test_authenticate_after_secret_rotation_needs_the_new_secret(
    fake: FakeRegistry, auth_stub: user_pb2_grpc.ClientAuthServiceStub, credential: Credential
) -> None:
    fake.add_client(credential.key, "rotated-secret")
    assert authenticate_status(auth_stub, credential.key, credential.secret) is UNAUTHENTICATED
    assert authenticate_status(auth_stub, credential.key, "rotated-secret") is OK


# --- 2.5: which RPCs need a token -------------------------------------------


def test_health_check_needs_no_token(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "xiaozhizhang.registry.v1.RegistryService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_needs_no_token_and_lists_the_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    (reply,) = stub.ServerReflectionInfo(iter([request]), timeout=5)
    services = {s.name for s in reply.list_services_response.service}
    assert "xiaozhizhang.user.v1.ClientAuthService" in services
    assert "xiaozhizhang.registry.v1.RegistryService" in services


def _registry_calls(
    service_id: int,
) -> dict[str, Callable[[registry_pb2_grpc.RegistryServiceStub, Metadata | None], object]]:
    request = registry_pb2.RegisterInstanceRequest(
        service_id=service_id, instance_key="k", env="dev", host="h", endpoint="h:1"
    )
    return {
        "RegisterInstance": lambda s, m: s.RegisterInstance(request, metadata=m, timeout=5),
        "DeregisterInstance": lambda s, m: s.DeregisterInstance(
            registry_pb2.DeregisterInstanceRequest(service_id=service_id, instance_key="k"),
            metadata=m,
            timeout=5,
        ),
        "HeartbeatStream": lambda s, m: next(
            s.HeartbeatStream(
                iter([registry_pb2.HeartbeatRequest(service_id=service_id, instance_key="k")]),
                metadata=m,
                timeout=5,
            )
        ),
        "ListServices": lambda s, m: s.ListServices(
            registry_pb2.ListServicesRequest(), metadata=m, timeout=5
        ),
        "GetServiceByID": lambda s, m: s.GetServiceByID(
            registry_pb2.GetServiceByIDRequest(id=service_id), metadata=m, timeout=5
        ),
        "EnsureService": lambda s, m: s.EnsureService(
            registry_pb2.EnsureServiceRequest(project="shop", name="cart"), metadata=m, timeout=5
        ),
    }


@pytest.mark.parametrize("rpc", list(_registry_calls(1)))
def test_every_registry_rpc_requires_a_token(
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
    service: registry_pb2.Service,
    rpc: str,
) -> None:
    call = _registry_calls(service.id)[rpc]
    assert status_of(lambda: call(registry_stub, None)) is UNAUTHENTICATED
    assert status_of(lambda: call(registry_stub, md)) is OK  # the token was all it lacked


def test_auth_switch_off_lets_protected_rpcs_through_but_renew_still_parses(
    fake: FakeRegistry,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
) -> None:
    with fake._world.lock:  # private: the enable_auth switch has no public control yet
        fake._world.auth_enabled = False
    assert protected_status(registry_stub, None) is OK
    assert renew_status(auth_stub, None) is UNAUTHENTICATED
    assert renew_status(auth_stub, md) is OK


# --- 2.5: streams are checked once, at open ---------------------------------


def _expired(md: Metadata, clock: ManualClock) -> Metadata:
    clock.advance(TOKEN_TTL)
    return md


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(lambda md, clock: None, id="no-token"),
        pytest.param(lambda md, clock: bearer("not-a-jwt"), id="malformed-token"),
        pytest.param(_expired, id="expired-token"),
    ],
)
def test_stream_opened_without_a_valid_token_fails_unauthenticated_on_first_read(
    md: Metadata,
    clock: ManualClock,
    open_heartbeat: OpenHeartbeat,
    service: registry_pb2.Service,
    metadata: Callable[[Metadata, ManualClock], Metadata | None],
) -> None:
    stream = open_heartbeat(metadata(md, clock))
    stream.send(service.id, "k")
    with pytest.raises(grpc.RpcError) as failure:
        stream.read()
    assert cast(grpc.Call, failure.value).code() is UNAUTHENTICATED


# --- 2.7: protected RPCs and bad tokens ---------------------------------------


@pytest.mark.parametrize("value", ["", "Bearer "], ids=["empty-value", "empty-after-prefix"])
def test_protected_rpc_with_empty_token_is_unauthenticated(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, value: str
) -> None:
    assert protected_status(registry_stub, (("authorization", value),)) is UNAUTHENTICATED


@pytest.mark.parametrize("value", ["not-a-jwt", "a.b.c", "Zm9v.YmFy.YmF6"])
def test_protected_rpc_with_malformed_token_is_unauthenticated(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, value: str
) -> None:
    assert protected_status(registry_stub, bearer(value)) is UNAUTHENTICATED


def test_protected_rpc_with_bad_signature_is_unauthenticated(
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    clock: ManualClock,
    credential: Credential,
) -> None:
    forged = jwt.encode(claims(clock, credential), "another-secret-" * 4, algorithm="HS256")
    assert protected_status(registry_stub, bearer(forged)) is UNAUTHENTICATED


def test_protected_rpc_with_tampered_payload_is_unauthenticated(
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    token: str,
    clock: ManualClock,
    credential: Credential,
) -> None:
    header, _, signature = token.split(".")
    longer = _b64(json.dumps(claims(clock, credential, exp=int(clock.time()) + 10**6)).encode())
    assert protected_status(registry_stub, bearer(f"{header}.{longer}.{signature}")) is (
        UNAUTHENTICATED
    )


@pytest.mark.parametrize("algorithm", ["none", "RS256", "ES256"])
def test_protected_rpc_with_non_hmac_algorithm_is_unauthenticated(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    clock: ManualClock,
    credential: Credential,
    algorithm: str,
) -> None:
    payload = claims(clock, credential)
    if algorithm == "none":
        forged = jwt.encode(payload, None, algorithm="none")
    else:  # algorithm confusion: an asymmetric header over an HMAC signature
        forged = forge_hmac_with_header(fake, {"alg": algorithm, "typ": "JWT"}, payload)
    control = forge_hmac_with_header(fake, {"alg": "HS256", "typ": "JWT"}, payload)
    assert protected_status(registry_stub, bearer(control)) is OK
    assert protected_status(registry_stub, bearer(forged)) is UNAUTHENTICATED


def test_token_is_rejected_from_exactly_its_exp(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, md: Metadata, clock: ManualClock
) -> None:
    clock.advance(TOKEN_TTL - 1)
    assert protected_status(registry_stub, md) is OK
    clock.advance(1)
    assert protected_status(registry_stub, md) is UNAUTHENTICATED


def test_token_is_rejected_until_its_nbf_without_leeway(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    clock: ManualClock,
    credential: Credential,
) -> None:
    now = int(clock.time())
    early = sign(fake, claims(clock, credential, iat=now, nbf=now + 1, exp=now + 60))
    assert protected_status(registry_stub, bearer(early)) is UNAUTHENTICATED
    clock.advance(1)
    assert protected_status(registry_stub, bearer(early)) is OK


def test_token_without_exp_is_rejected(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    clock: ManualClock,
    credential: Credential,
) -> None:
    forever = sign(fake, claims(clock, credential, exp=None))
    assert "exp" not in decode_unverified(forever)
    assert protected_status(registry_stub, bearer(forever)) is UNAUTHENTICATED


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_token_signed_with_the_secret_is_accepted(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    clock: ManualClock,
    credential: Credential,
    algorithm: str,
) -> None:
    crafted = sign(fake, claims(clock, credential), algorithm=algorithm)
    assert jwt.get_unverified_header(crafted)["alg"] == algorithm
    assert protected_status(registry_stub, bearer(crafted)) is OK


def test_token_iss_sub_aud_and_status_are_not_checked(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    clock: ManualClock,
    credential: Credential,
) -> None:
    odd = sign(
        fake, claims(clock, credential, iss="someone-else", sub="user", aud="nobody", status=0)
    )
    assert protected_status(registry_stub, bearer(odd)) is OK


def test_protected_rpc_accepts_token_of_disabled_credential(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
    credential: Credential,
    clock: ManualClock,
) -> None:
    set_credential(fake, credential.key, enabled=False, expires_at=clock.time() - 1)
    assert protected_status(registry_stub, md) is OK


def test_protected_rpc_accepts_token_of_deleted_credential(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
    credential: Credential,
) -> None:
    delete_credential(fake, credential.key)
    assert protected_status(registry_stub, md) is OK


def test_protected_rpc_accepts_token_of_rotated_credential(
    fake: FakeRegistry,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
    credential: Credential,
) -> None:
    fake.add_client(credential.key, "rotated-secret")
    assert protected_status(registry_stub, md) is OK


# --- 2.4: carrying the token --------------------------------------------------


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER ", "bEaReR "])
def test_bearer_prefix_in_any_case_passes_the_interceptor(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, token: str, prefix: str
) -> None:
    assert protected_status(registry_stub, (("authorization", prefix + token),)) is OK


def test_bare_token_passes_the_interceptor(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, token: str
) -> None:
    assert protected_status(registry_stub, (("authorization", token),)) is OK


@pytest.mark.parametrize("value", ["Bearer {}", "bearer {}", "{}"])
def test_token_metadata_key_is_accepted_by_the_interceptor(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, token: str, value: str
) -> None:
    assert protected_status(registry_stub, (("token", value.format(token)),)) is OK


def test_authorization_key_is_read_before_token_key(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, token: str
) -> None:
    both = (("token", f"Bearer {token}"), ("authorization", "Bearer not-a-jwt"))
    assert protected_status(registry_stub, both) is UNAUTHENTICATED


def test_only_the_first_authorization_value_is_read(
    registry_stub: registry_pb2_grpc.RegistryServiceStub, token: str
) -> None:
    good, bad = f"Bearer {token}", "Bearer not-a-jwt"
    assert protected_status(registry_stub, (("authorization", good), ("authorization", bad))) is OK
    assert (
        protected_status(registry_stub, (("authorization", bad), ("authorization", good)))
        is UNAUTHENTICATED
    )


def test_lowercase_bearer_passes_interceptor_but_fails_renew(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    token: str,
) -> None:
    lowercase = (("authorization", f"bearer {token}"),)
    assert protected_status(registry_stub, lowercase) is OK
    assert renew_status(auth_stub, lowercase) is UNAUTHENTICATED


# --- 2.6: RenewToken -----------------------------------------------------------


def test_renew_returns_bearer_token_expiring_at_its_exp_claim(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub, md: Metadata
) -> None:
    reply = renew(auth_stub, md)
    assert reply.token_type == "Bearer"
    assert reply.expires_at == decode_unverified(reply.access_token)["exp"]
    assert jwt.get_unverified_header(reply.access_token) == {"alg": "HS256", "typ": "JWT"}


def test_renew_gives_a_full_new_lifetime_from_now(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    md: Metadata,
    token: str,
    clock: ManualClock,
) -> None:
    clock.advance(1000)
    reply = renew(auth_stub, md)
    now = int(clock.time())
    assert reply.expires_at == now + TOKEN_TTL > decode_unverified(token)["exp"]
    renewed = decode_unverified(reply.access_token)
    assert (renewed["iat"], renewed["nbf"], renewed["exp"]) == (now, now, now + TOKEN_TTL)


def test_renew_copies_the_claims_of_the_old_token(
    fake: FakeRegistry,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    clock: ManualClock,
    credential: Credential,
) -> None:
    # status 0 and a foreign issuer: a renewal copies them instead of refreshing them.
    old = sign(fake, claims(clock, credential, iss="elsewhere", sub="someone", status=0))
    clock.advance(10)
    renewed = decode_unverified(renew(auth_stub, bearer(old)).access_token)
    assert renewed["iss"] == "elsewhere"
    assert renewed["sub"] == "someone"
    assert renewed["status"] == 0
    assert renewed["clientId"] == credential.id
    assert renewed["clientKey"] == credential.key


def test_renew_keeps_the_old_token_valid_until_its_exp(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
    clock: ManualClock,
) -> None:
    clock.advance(100)
    renew(auth_stub, md)
    assert protected_status(registry_stub, md) is OK
    clock.advance(TOKEN_TTL - 100)
    assert protected_status(registry_stub, md) is UNAUTHENTICATED


def test_renew_can_be_chained_past_the_first_tokens_lifetime(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    registry_stub: registry_pb2_grpc.RegistryServiceStub,
    md: Metadata,
    clock: ManualClock,
) -> None:
    metadata = md
    for _ in range(3):
        clock.advance(TOKEN_TTL - 1)
        metadata = bearer(renew(auth_stub, metadata).access_token)
    assert protected_status(registry_stub, metadata) is OK
    assert protected_status(registry_stub, md) is UNAUTHENTICATED


def test_renew_with_expired_token_is_unauthenticated(
    auth_stub: user_pb2_grpc.ClientAuthServiceStub, md: Metadata, clock: ManualClock
) -> None:
    clock.advance(TOKEN_TTL)
    assert renew_status(auth_stub, md) is UNAUTHENTICATED


def test_renew_after_credential_deleted_is_unauthenticated(
    fake: FakeRegistry,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    md: Metadata,
    credential: Credential,
) -> None:
    assert renew_status(auth_stub, md) is OK
    delete_credential(fake, credential.key)
    assert renew_status(auth_stub, md) is UNAUTHENTICATED


def test_renew_with_disabled_credential_is_permission_denied(
    fake: FakeRegistry,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    md: Metadata,
    credential: Credential,
) -> None:
    set_credential(fake, credential.key, enabled=False)
    assert renew_status(auth_stub, md) is PERMISSION_DENIED
    assert authenticate_status(auth_stub, credential.key, credential.secret) is UNAUTHENTICATED


def test_renew_with_expired_credential_is_permission_denied(
    fake: FakeRegistry,
    auth_stub: user_pb2_grpc.ClientAuthServiceStub,
    md: Metadata,
    credential: Credential,
    clock: ManualClock,
) -> None:
    set_credential(fake, credential.key, expires_at=clock.time() + 10)
    assert renew_status(auth_stub, md) is OK
    clock.advance(10)
    assert renew_status(auth_stub, md) is PERMISSION_DENIED
    assert authenticate_status(auth_stub, credential.key, credential.secret) is UNAUTHENTICATED
