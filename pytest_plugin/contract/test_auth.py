"""CONTRACT section 2 (authentication), black-box: what any client can check.

Only the target's own credentials are used. Tokens the server would not
accept are made from a real one (its signature replaced, its claims edited,
its header changed), since a client does not know the signing secret.
Expiry, disabled or deleted credentials and a second client need the fake's
control plane: they are in ``test_controlled``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from typing import cast

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc
from pytest_plugin.contract.support import (
    TIMEOUT,
    Instances,
    Metadata,
    OpenHeartbeat,
    authenticate,
    b64url,
    bearer,
    jwt_parts,
    protected_status,
    renew,
    status_of,
)
from pytest_plugin.targets import Credentials

AuthStub = user_pb2_grpc.ClientAuthServiceStub
RegistryStub = registry_pb2_grpc.RegistryServiceStub
OK = grpc.StatusCode.OK
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def authenticate_status(stub: AuthStub, key: str, secret: str) -> grpc.StatusCode:
    return status_of(lambda: authenticate(stub, key, secret))


def renew_status(stub: AuthStub, metadata: Metadata | None) -> grpc.StatusCode:
    return status_of(lambda: renew(stub, metadata))


def with_signature_of(token: str, key: bytes) -> str:
    """``token``'s header and claims, HMAC-SHA256-signed with ``key``."""
    header, claims, _ = token.split(".")
    signature = hmac.new(key, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{b64url(signature)}"


def with_part(token: str, index: int, value: dict[str, object]) -> str:
    """``token`` with its header (0) or claims (1) replaced, the signature kept."""
    parts = token.split(".")
    parts[index] = b64url(json.dumps(value, separators=(",", ":")).encode())
    return ".".join(parts)


# --- 2.1: AuthenticateClient ---------------------------------------------------


def test_authenticate_returns_a_bearer_token_expiring_at_its_exp_claim(
    auth_stub: AuthStub, credentials: Credentials
) -> None:
    reply = authenticate(auth_stub, credentials.client_key, credentials.client_secret)
    assert reply.token_type == "Bearer"  # noqa: S105 - a scheme name
    assert reply.access_token
    _, claims = jwt_parts(reply.access_token)
    assert reply.expires_at == claims["exp"]


def test_token_is_an_hs256_jwt_with_the_contract_claims(
    token: str, credentials: Credentials
) -> None:
    header, claims = jwt_parts(token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert claims["iss"] == "xiaozhizhang"
    assert claims["sub"] == "client"
    assert claims["clientKey"] == credentials.client_key
    assert claims["status"] == 1
    client_id = claims["clientId"]
    assert isinstance(client_id, int)
    assert client_id > 0
    for name in ("iat", "nbf", "exp"):  # whole seconds
        assert isinstance(claims[name], int), f"{name} is {claims[name]!r}"
    assert claims["iat"] == claims["nbf"] < claims["exp"]


@pytest.mark.parametrize(
    "pick",
    [
        pytest.param(lambda c: ("", c.client_secret), id="empty-key"),
        pytest.param(lambda c: (c.client_key, ""), id="empty-secret"),
        pytest.param(lambda c: ("", ""), id="both-empty"),
        pytest.param(lambda c: ("", "unknown-secret"), id="before-the-secret-check"),
        pytest.param(lambda c: ("unknown-key", ""), id="before-the-key-lookup"),
    ],
)
def test_authenticate_empty_key_or_secret_is_invalid_argument(
    auth_stub: AuthStub,
    credentials: Credentials,
    pick: Callable[[Credentials], tuple[str, str]],
) -> None:
    # An empty field is checked before the credential is looked up.
    assert authenticate_status(auth_stub, *pick(credentials)) is INVALID_ARGUMENT


def test_authenticate_unknown_key_is_unauthenticated(
    auth_stub: AuthStub, credentials: Credentials, unique: Callable[[str], str]
) -> None:
    status = authenticate_status(auth_stub, unique("key"), credentials.client_secret)
    assert status is UNAUTHENTICATED


def test_authenticate_wrong_secret_is_unauthenticated(
    auth_stub: AuthStub, credentials: Credentials
) -> None:
    wrong = credentials.client_secret + "-wrong"
    assert authenticate_status(auth_stub, credentials.client_key, wrong) is UNAUTHENTICATED


# --- 2.5: which RPCs need a token --------------------------------------------------


def test_authenticate_needs_no_token(auth_stub: AuthStub, credentials: Credentials) -> None:
    # AuthenticateClient is exempt: no metadata, or a garbage token, is no obstacle.
    request = user_pb2.AuthenticateClientRequest(
        client_key=credentials.client_key, client_secret=credentials.client_secret
    )
    assert auth_stub.AuthenticateClient(request, timeout=TIMEOUT).access_token
    garbage = bearer("not-a-jwt")
    assert auth_stub.AuthenticateClient(request, metadata=garbage, timeout=TIMEOUT).access_token


RegistryCall = Callable[[RegistryStub, Metadata | None, int, str], object]
REGISTRY_CALLS: dict[str, RegistryCall] = {
    "RegisterInstance": lambda stub, md, service_id, key: stub.RegisterInstance(
        registry_pb2.RegisterInstanceRequest(
            service_id=service_id, instance_key=key, env="dev", host="h", endpoint="h:1"
        ),
        metadata=md,
        timeout=TIMEOUT,
    ),
    "DeregisterInstance": lambda stub, md, service_id, key: stub.DeregisterInstance(
        registry_pb2.DeregisterInstanceRequest(service_id=service_id, instance_key=key),
        metadata=md,
        timeout=TIMEOUT,
    ),
    "HeartbeatStream": lambda stub, md, service_id, key: list(
        stub.HeartbeatStream(
            iter([registry_pb2.HeartbeatRequest(service_id=service_id, instance_key=key)]),
            metadata=md,
            timeout=TIMEOUT,
        )
    ),
    "ListServices": lambda stub, md, service_id, key: stub.ListServices(
        registry_pb2.ListServicesRequest(project=key), metadata=md, timeout=TIMEOUT
    ),
    "GetServiceByID": lambda stub, md, service_id, key: stub.GetServiceByID(
        registry_pb2.GetServiceByIDRequest(id=service_id), metadata=md, timeout=TIMEOUT
    ),
    "EnsureService": lambda stub, md, service_id, key: stub.EnsureService(
        registry_pb2.EnsureServiceRequest(project=key, name="svc"), metadata=md, timeout=TIMEOUT
    ),
}


@pytest.mark.parametrize("rpc", list(REGISTRY_CALLS))
def test_every_registry_rpc_requires_a_token(
    registry_stub: RegistryStub,
    md: Metadata,
    service: registry_pb2.Service,
    instances: Instances,
    unique: Callable[[str], str],
    rpc: str,
) -> None:
    key = unique("k")
    instances.track(service.id, key)
    call = REGISTRY_CALLS[rpc]
    assert status_of(lambda: call(registry_stub, None, service.id, key)) is UNAUTHENTICATED
    assert status_of(lambda: call(registry_stub, md, service.id, key)) is OK  # all it lacked


def test_renew_token_requires_a_token(auth_stub: AuthStub) -> None:
    assert renew_status(auth_stub, None) is UNAUTHENTICATED


# --- 2.7: protected RPCs and bad tokens -------------------------------------------


def test_protected_rpc_without_metadata_is_unauthenticated(registry_stub: RegistryStub) -> None:
    assert protected_status(registry_stub, None) is UNAUTHENTICATED


def test_protected_rpc_without_authorization_or_token_key_is_unauthenticated(
    registry_stub: RegistryStub, token: str
) -> None:
    other_keys = (("x-token", token), ("auth", f"Bearer {token}"))
    assert protected_status(registry_stub, other_keys) is UNAUTHENTICATED


@pytest.mark.parametrize("value", ["", "Bearer "], ids=["empty-value", "empty-after-prefix"])
def test_protected_rpc_with_an_empty_token_is_unauthenticated(
    registry_stub: RegistryStub, value: str
) -> None:
    assert protected_status(registry_stub, (("authorization", value),)) is UNAUTHENTICATED


@pytest.mark.parametrize("value", ["not-a-jwt", "a.b.c", "Zm9v.YmFy.YmF6", "...."])
def test_protected_rpc_with_a_malformed_token_is_unauthenticated(
    registry_stub: RegistryStub, value: str
) -> None:
    assert protected_status(registry_stub, bearer(value)) is UNAUTHENTICATED


def test_protected_rpc_with_a_bad_signature_is_unauthenticated(
    registry_stub: RegistryStub, token: str
) -> None:
    forged = with_signature_of(token, secrets.token_bytes(32))
    assert protected_status(registry_stub, bearer(token)) is OK
    assert protected_status(registry_stub, bearer(forged)) is UNAUTHENTICATED


def test_protected_rpc_with_tampered_claims_is_unauthenticated(
    registry_stub: RegistryStub, token: str
) -> None:
    _, claims = jwt_parts(token)
    longer = with_part(token, 1, {**claims, "exp": claims["exp"] + 10**6})
    assert protected_status(registry_stub, bearer(longer)) is UNAUTHENTICATED


@pytest.mark.parametrize("algorithm", ["none", "RS256", "ES256", "PS256", "EdDSA"])
def test_protected_rpc_with_a_non_hmac_algorithm_is_unauthenticated(
    registry_stub: RegistryStub, token: str, algorithm: str
) -> None:
    relabelled = with_part(token, 0, {"alg": algorithm, "typ": "JWT"})
    if algorithm == "none":  # an unsecured JWT has an empty signature
        relabelled = relabelled.rsplit(".", 1)[0] + "."
    assert protected_status(registry_stub, bearer(relabelled)) is UNAUTHENTICATED


# --- 2.4: carrying the token: a lenient interceptor, a strict RenewToken ------------


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER ", "bEaReR ", ""])
def test_interceptor_accepts_bearer_in_any_case_or_a_bare_token(
    registry_stub: RegistryStub, token: str, prefix: str
) -> None:
    assert protected_status(registry_stub, (("authorization", prefix + token),)) is OK


@pytest.mark.parametrize("value", ["Bearer {}", "bearer {}", "{}"])
def test_interceptor_reads_the_token_key_when_authorization_is_absent(
    registry_stub: RegistryStub, token: str, value: str
) -> None:
    assert protected_status(registry_stub, (("token", value.format(token)),)) is OK


def test_interceptor_reads_authorization_before_token(
    registry_stub: RegistryStub, token: str
) -> None:
    both = (("token", f"Bearer {token}"), ("authorization", "Bearer not-a-jwt"))
    assert protected_status(registry_stub, both) is UNAUTHENTICATED


def test_interceptor_reads_only_the_first_authorization_value(
    registry_stub: RegistryStub, token: str
) -> None:
    good, bad = ("authorization", f"Bearer {token}"), ("authorization", "Bearer not-a-jwt")
    assert protected_status(registry_stub, (good, bad)) is OK
    assert protected_status(registry_stub, (bad, good)) is UNAUTHENTICATED


def test_lowercase_bearer_passes_the_interceptor_but_fails_renew(
    auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    lowercase = (("authorization", f"bearer {token}"),)
    assert protected_status(registry_stub, lowercase) is OK
    assert renew_status(auth_stub, lowercase) is UNAUTHENTICATED
    assert renew_status(auth_stub, bearer(token)) is OK


def test_renew_reads_only_the_authorization_key(
    auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    via_token_key = (("token", f"Bearer {token}"),)
    assert protected_status(registry_stub, via_token_key) is OK
    assert renew_status(auth_stub, via_token_key) is UNAUTHENTICATED


def test_renew_accepts_a_bare_token(auth_stub: AuthStub, token: str) -> None:
    assert renew_status(auth_stub, (("authorization", token),)) is OK


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(lambda token: bearer("not-a-jwt"), id="malformed"),
        pytest.param(lambda token: bearer(with_signature_of(token, b"x" * 32)), id="bad-signature"),
        pytest.param(lambda token: (("authorization", ""),), id="empty"),
    ],
)
def test_renew_with_an_invalid_token_is_unauthenticated(
    auth_stub: AuthStub, token: str, metadata: Callable[[str], Metadata]
) -> None:
    assert renew_status(auth_stub, metadata(token)) is UNAUTHENTICATED


# --- 2.6: RenewToken ---------------------------------------------------------------


def test_renew_issues_a_bearer_token_with_a_full_lifetime(auth_stub: AuthStub, token: str) -> None:
    _, old = jwt_parts(token)
    lifetime = old["exp"] - old["iat"]
    reply = renew(auth_stub, bearer(token))
    assert reply.token_type == "Bearer"  # noqa: S105 - a scheme name
    header, new = jwt_parts(reply.access_token)
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert reply.expires_at == new["exp"]
    # A full lifetime counted from the renewal (not from the first issue) ...
    assert new["exp"] - new["iat"] == lifetime
    assert new["iat"] == new["nbf"] >= old["iat"]
    # ... with the identity claims copied from the old token.
    for name in ("iss", "sub", "clientId", "clientKey", "status"):
        assert new[name] == old[name], name


def test_renewed_and_old_tokens_both_work(
    auth_stub: AuthStub, registry_stub: RegistryStub, token: str
) -> None:
    renewed = renew(auth_stub, bearer(token)).access_token
    assert protected_status(registry_stub, bearer(renewed)) is OK
    assert protected_status(registry_stub, bearer(token)) is OK  # no revocation
    again = renew(auth_stub, bearer(renewed))  # renewal chains
    assert protected_status(registry_stub, bearer(again.access_token)) is OK


# --- 2.5: streams are checked once, at open -------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(lambda token: None, id="no-token"),
        pytest.param(lambda token: bearer("not-a-jwt"), id="malformed"),
        pytest.param(lambda token: bearer(with_signature_of(token, b"x" * 32)), id="bad-signature"),
    ],
)
def test_stream_opened_without_a_valid_token_fails_unauthenticated_on_first_read(
    open_heartbeat: OpenHeartbeat,
    service: registry_pb2.Service,
    token: str,
    metadata: Callable[[str], Metadata | None],
) -> None:
    stream = open_heartbeat(metadata(token))
    stream.send(service.id, "any")
    with pytest.raises(grpc.RpcError) as failure:
        stream.read()
    assert cast(grpc.Call, failure.value).code() is UNAUTHENTICATED
