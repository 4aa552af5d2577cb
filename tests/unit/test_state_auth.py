"""AuthState called directly, with an explicit ``now`` (CONTRACT section 2).

Tokens are built by hand where the fake would never issue them (other
algorithms, missing or odd claims), signed with the state's own key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest

from fake_registry.errors import (
    FakeRegistryError,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
)
from fake_registry.state.auth import DEFAULT_TOKEN_TTL, AuthState, Credential, IssuedToken

T0 = 1_700_000_000
KEY = "client-key"
SECRET = "client-secret-0123456789"
SIGNING_KEY = "s" * 64  # long enough for HS512 without PyJWT's short-key warning
TTL = 3600


@pytest.fixture
def auth() -> AuthState:
    state = AuthState(signing_key=SIGNING_KEY, token_ttl=TTL)
    state.add_client(KEY, SECRET)
    return state


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_token(
    header: Any, payload: Any, key: str = SIGNING_KEY, digest: Any = hashlib.sha256
) -> str:
    """A compact JWS with an arbitrary header and payload (JSON text or a value)."""
    head = header if isinstance(header, str) else json.dumps(header)
    body = payload if isinstance(payload, str) else json.dumps(payload)
    signing_input = f"{b64(head.encode())}.{b64(body.encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": "xiaozhizhang",
        "sub": "client",
        "iat": T0,
        "nbf": T0,
        "exp": T0 + TTL,
        "clientId": 1,
        "clientKey": KEY,
        "status": 1,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


# --- AuthenticateClient -----------------------------------------------------


def test_authenticate_issues_an_hs256_token(auth: AuthState) -> None:
    issued = auth.authenticate(T0 + 0.75, KEY, SECRET)
    assert issued.token_type == "Bearer"
    assert issued.expires_at == T0 + TTL  # whole seconds, truncated
    assert jwt.get_unverified_header(issued.access_token) == {"alg": "HS256", "typ": "JWT"}
    payload = jwt.decode(
        issued.access_token, SIGNING_KEY, algorithms=["HS256"], options={"verify_exp": False}
    )
    assert payload == {
        "iss": "xiaozhizhang",
        "sub": "client",
        "iat": T0,
        "nbf": T0,
        "exp": T0 + TTL,
        "clientId": 1,
        "clientKey": KEY,
        "status": 1,
    }


def test_default_token_lifetime_is_24h() -> None:
    state = AuthState(signing_key=SIGNING_KEY)
    state.add_client(KEY, SECRET)
    assert DEFAULT_TOKEN_TTL == 86_400
    assert state.authenticate(T0, KEY, SECRET).expires_at == T0 + 86_400


def test_a_lifetime_of_a_few_seconds_is_possible() -> None:
    state = AuthState(signing_key=SIGNING_KEY, token_ttl=2)
    state.add_client(KEY, SECRET)
    issued = state.authenticate(T0, KEY, SECRET)
    state.verify(T0 + 1.999, issued.access_token)
    with pytest.raises(Unauthenticated):
        state.verify(T0 + 2, issued.access_token)


@pytest.mark.parametrize(
    ("key", "secret", "error", "field"),
    [
        ("", SECRET, InvalidArgument, "client_key"),
        (KEY, "", InvalidArgument, "client_secret"),
        ("", "", InvalidArgument, "client_key"),
        ("unknown", "", InvalidArgument, "client_secret"),  # emptiness is checked first
        ("unknown", SECRET, Unauthenticated, "client_key"),
        (KEY, "wrong", Unauthenticated, "client_secret"),
        (KEY, SECRET + " ", Unauthenticated, "client_secret"),
        (KEY.upper(), SECRET, Unauthenticated, "client_key"),
    ],
)
def test_authenticate_errors(
    auth: AuthState, key: str, secret: str, error: type[FakeRegistryError], field: str
) -> None:
    with pytest.raises(error) as info:
        auth.authenticate(T0, key, secret)
    assert type(info.value) is error
    assert info.value.field == field
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("enabled", "expires_at", "now", "usable"),
    [
        (False, None, T0, False),
        (True, T0 + 10, T0 + 9.999, True),
        (True, T0 + 10, T0 + 10, False),  # the credential expiry is exclusive too
        (True, T0 - 1, T0, False),
        (True, None, T0 + 10**9, True),
    ],
)
def test_disabled_or_expired_credentials_are_unauthenticated(
    enabled: bool, expires_at: float | None, now: float, usable: bool
) -> None:
    state = AuthState(signing_key=SIGNING_KEY)
    credential = state.add_client(KEY, SECRET, enabled=enabled, expires_at=expires_at)
    assert credential.usable(now) is usable
    if usable:
        state.authenticate(now, KEY, SECRET)
    else:
        # never PERMISSION_DENIED here, and the same code even with a wrong secret
        for secret in (SECRET, "wrong"):
            with pytest.raises(Unauthenticated):
                state.authenticate(now, KEY, secret)


def test_add_client_keeps_the_id_of_a_replaced_key(auth: AuthState) -> None:
    other = auth.add_client("other", "x")
    replaced = auth.add_client(KEY, "new-secret")
    assert (other.id, replaced.id) == (2, 1)
    with pytest.raises(Unauthenticated):
        auth.authenticate(T0, KEY, SECRET)
    assert auth.authenticate(T0, KEY, "new-secret").expires_at == T0 + TTL


@pytest.mark.parametrize(("key", "secret"), [("", "s"), ("k", "")])
def test_add_client_rejects_empty_values(auth: AuthState, key: str, secret: str) -> None:
    with pytest.raises(InvalidArgument):
        auth.add_client(key, secret)


# --- verify -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "valid"),
    [
        (0, True),
        (TTL - 1, True),
        (TTL - 0.001, True),
        (TTL, False),  # valid while now < exp: exp itself is out
        (TTL + 0.5, False),
        (10 * TTL, False),
    ],
)
def test_exp_is_exclusive(auth: AuthState, offset: float, valid: bool) -> None:
    token = auth.authenticate(T0, KEY, SECRET).access_token
    if valid:
        assert auth.verify(T0 + offset, token)["clientKey"] == KEY
    else:
        with pytest.raises(Unauthenticated):
            auth.verify(T0 + offset, token)


@pytest.mark.parametrize(
    ("nbf", "now", "valid"),
    [
        (T0 + 10, T0 + 9.999, False),
        (T0 + 10, T0 + 10, True),  # valid from the moment now >= nbf, no leeway
        (T0 + 10, T0 + 11, True),
        (None, T0 - 10**6, True),  # no nbf: no lower bound
    ],
)
def test_nbf(auth: AuthState, nbf: int | None, now: float, valid: bool) -> None:
    token = raw_token({"alg": "HS256", "typ": "JWT"}, claims(nbf=nbf, exp=T0 + 100))
    if valid:
        auth.verify(now, token)
    else:
        with pytest.raises(Unauthenticated):
            auth.verify(now, token)


def test_verification_is_repeatable_and_cached_results_still_expire(auth: AuthState) -> None:
    token = auth.authenticate(T0, KEY, SECRET).access_token
    for _ in range(3):
        auth.verify(T0, token)
    with pytest.raises(Unauthenticated):
        auth.verify(T0 + TTL, token)
    assert auth.verify(T0 + 1, token)["exp"] == T0 + TTL  # time is an argument, not state


@pytest.mark.parametrize(
    ("alg", "digest"),
    [("HS256", hashlib.sha256), ("HS384", hashlib.sha384), ("HS512", hashlib.sha512)],
)
def test_every_hmac_algorithm_is_accepted(auth: AuthState, alg: str, digest: Any) -> None:
    token = raw_token({"alg": alg, "typ": "JWT"}, claims(), digest=digest)
    assert auth.verify(T0, token)["clientId"] == 1
    assert jwt.encode(claims(), SIGNING_KEY, algorithm=alg)  # the same shape PyJWT produces
    auth.verify(T0, jwt.encode(claims(), SIGNING_KEY, algorithm=alg))


def _tampered() -> str:
    head, _, signature = raw_token({"alg": "HS256", "typ": "JWT"}, claims()).split(".")
    return f"{head}.{b64(json.dumps(claims(clientId=2)).encode())}.{signature}"


def _unsigned(header: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}."


BAD_TOKENS: list[tuple[str, str]] = [
    ("empty", ""),
    ("garbage", "not-a-jwt"),
    ("two parts", "abc.def"),
    ("four parts", raw_token({"alg": "HS256"}, claims()) + ".x"),
    ("bad base64 header", "%%%." + raw_token({"alg": "HS256"}, claims()).split(".", 1)[1]),
    ("header not json", raw_token("not json", claims())),
    ("header is a list", raw_token([1], claims())),
    ("payload not json", raw_token({"alg": "HS256"}, "not json")),
    ("payload is a list", raw_token({"alg": "HS256"}, "[1]")),
    ("wrong key", raw_token({"alg": "HS256"}, claims(), key="x" * 64)),
    (
        "HS384 header, HS256 signature",
        raw_token({"alg": "HS384"}, claims(), digest=hashlib.sha256),
    ),
    ("alg none", _unsigned({"alg": "none", "typ": "JWT"})),
    ("alg None", _unsigned({"alg": "None"})),
    ("no alg", raw_token({"typ": "JWT"}, claims())),
    ("alg lowercase", raw_token({"alg": "hs256"}, claims())),
    ("alg as a list", raw_token({"alg": ["HS256"]}, claims())),
    ("RS256", raw_token({"alg": "RS256", "typ": "JWT"}, claims())),
    ("ES256", raw_token({"alg": "ES256", "typ": "JWT"}, claims())),
    ("PS512", raw_token({"alg": "PS512", "typ": "JWT"}, claims())),
    ("EdDSA", raw_token({"alg": "EdDSA", "typ": "JWT"}, claims())),
    ("tampered payload", _tampered()),
    ("no exp", raw_token({"alg": "HS256"}, claims(exp=None))),
    ("exp null", raw_token({"alg": "HS256"}, {**claims(), "exp": None})),
    ("exp as string", raw_token({"alg": "HS256"}, claims(exp=str(T0 + TTL)))),
    ("exp as bool", raw_token({"alg": "HS256"}, claims(exp=True))),
    ("exp as object", raw_token({"alg": "HS256"}, claims(exp={"t": T0 + TTL}))),
    ("nbf as string", raw_token({"alg": "HS256"}, claims(nbf="0"))),
    # Go's JSON decoder refuses these documents outright, so the real server
    # rejects the token; they must not verify (let alone forever) here.
    ("exp NaN", raw_token({"alg": "HS256"}, json.dumps(claims(exp=float("nan"))))),
    ("exp Infinity", raw_token({"alg": "HS256"}, json.dumps(claims(exp=float("inf"))))),
    ("nbf NaN", raw_token({"alg": "HS256"}, json.dumps(claims(nbf=float("nan"))))),
    ("exp beyond float64", raw_token({"alg": "HS256"}, claims(exp=10**400))),
    ("nbf beyond float64", raw_token({"alg": "HS256"}, claims(nbf=10**400))),
]


@pytest.mark.parametrize(("case", "token"), BAD_TOKENS, ids=[c for c, _ in BAD_TOKENS])
def test_bad_tokens_are_unauthenticated(auth: AuthState, case: str, token: str) -> None:
    with pytest.raises(Unauthenticated):
        auth.verify(T0, token)
    with pytest.raises(Unauthenticated):  # and again, past any cache
        auth.verify(T0 + 1, token)
    with pytest.raises(Unauthenticated):
        auth.renew(T0, token)


def test_unchecked_claims(auth: AuthState) -> None:
    """iss, sub, aud and status are not checked (CONTRACT 2.2)."""
    token = raw_token(
        {"alg": "HS256"}, claims(iss="someone", sub="else", aud="x", status=0, clientId=None)
    )
    assert auth.verify(T0, token)["status"] == 0


def test_credential_state_does_not_affect_verify(auth: AuthState) -> None:
    token = auth.authenticate(T0, KEY, SECRET).access_token
    auth.add_client(KEY, "rotated-secret", enabled=False)
    assert auth.verify(T0 + 1, token)["clientKey"] == KEY
    del auth.credentials[KEY]
    assert auth.verify(T0 + 1, token)["clientKey"] == KEY


def test_revoked_tokens(auth: AuthState) -> None:
    first = auth.authenticate(T0, KEY, SECRET).access_token
    second = auth.authenticate(T0 + 1, KEY, SECRET).access_token
    auth.verify(T0 + 1, first)  # cached as valid before the revocation
    auth.revoked.add(first)
    with pytest.raises(Unauthenticated):
        auth.verify(T0 + 2, first)
    with pytest.raises(Unauthenticated):
        auth.renew(T0 + 2, first)
    assert auth.verify(T0 + 2, second)["iat"] == T0 + 1
    auth.revoked.discard(first)
    auth.verify(T0 + 2, first)


def test_rotate_signing_key_invalidates_outstanding_tokens(auth: AuthState) -> None:
    old = auth.authenticate(T0, KEY, SECRET).access_token
    auth.verify(T0, old)  # cached
    auth.rotate_signing_key()
    assert auth.signing_key != SIGNING_KEY
    with pytest.raises(Unauthenticated):
        auth.verify(T0, old)
    with pytest.raises(Unauthenticated):
        auth.renew(T0, old)
    new = auth.authenticate(T0, KEY, SECRET).access_token
    assert auth.verify(T0, new)["clientKey"] == KEY


def test_verify_cache_is_bounded(auth: AuthState) -> None:
    tokens = [raw_token({"alg": "HS256"}, claims(jti=n)) for n in range(10_050)]
    for token in tokens:
        auth.verify(T0, token)
    assert len(auth._verified) <= 10_000
    auth.verify(T0, tokens[0])


# --- RenewToken ---------------------------------------------------------------


def test_renew_issues_a_full_new_lifetime_and_keeps_the_old_token(auth: AuthState) -> None:
    old = auth.authenticate(T0, KEY, SECRET)
    renewed = auth.renew(T0 + 1000.5, old.access_token)
    assert renewed.expires_at == T0 + 1000 + TTL
    assert renewed.access_token != old.access_token
    payload = auth.verify(T0 + 1001, renewed.access_token)
    assert (payload["iat"], payload["nbf"], payload["exp"]) == (
        T0 + 1000,
        T0 + 1000,
        T0 + 1000 + TTL,
    )
    assert (payload["clientId"], payload["clientKey"]) == (1, KEY)
    # no revocation: the old token stays valid until its own exp
    auth.verify(T0 + TTL - 1, old.access_token)
    with pytest.raises(Unauthenticated):
        auth.verify(T0 + TTL, old.access_token)


def test_renew_chains_without_a_cap(auth: AuthState) -> None:
    token = auth.authenticate(T0, KEY, SECRET).access_token
    now = T0
    for _ in range(20):
        now += TTL - 1
        issued = auth.renew(now, token)
        token = issued.access_token
        assert issued.expires_at == now + TTL
    assert auth.renewals == 20


def test_renew_copies_claims_without_refreshing_status(auth: AuthState) -> None:
    token = raw_token(
        {"alg": "HS512"}, claims(status=7, iss="other", sub="who"), digest=hashlib.sha512
    )
    renewed = auth.renew(T0 + 5, token).access_token
    assert jwt.get_unverified_header(renewed)["alg"] == "HS256"
    payload = auth.verify(T0 + 5, renewed)
    assert (payload["status"], payload["iss"], payload["sub"]) == (7, "other", "who")
    assert payload["exp"] == T0 + 5 + TTL


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("deleted", Unauthenticated),
        ("disabled", PermissionDenied),
        ("credential expired", PermissionDenied),
        ("replaced, still enabled", None),
    ],
)
def test_renew_checks_the_credential(
    auth: AuthState, change: str, error: type[FakeRegistryError] | None
) -> None:
    token = auth.authenticate(T0, KEY, SECRET).access_token
    if change == "deleted":
        del auth.credentials[KEY]
    elif change == "disabled":
        auth.add_client(KEY, SECRET, enabled=False)
    elif change == "credential expired":
        auth.add_client(KEY, SECRET, expires_at=T0 + 10)
    else:
        auth.add_client(KEY, "another-secret")
    if error is None:
        assert auth.renew(T0 + 10, token).expires_at == T0 + 10 + TTL
    else:
        with pytest.raises(error) as info:
            auth.renew(T0 + 10, token)
        assert type(info.value) is error
    # the protected-RPC check still passes (CONTRACT 2.7)
    auth.verify(T0 + 10, token)


@pytest.mark.parametrize("client_id", [None, "1", True, 1.5, 999])
def test_renew_with_an_unknown_client_id_is_unauthenticated(
    auth: AuthState, client_id: object
) -> None:
    token = raw_token({"alg": "HS256"}, claims(clientId=client_id))
    with pytest.raises(Unauthenticated):
        auth.renew(T0, token)


def test_renew_needs_an_unexpired_token(auth: AuthState) -> None:
    token = auth.authenticate(T0, KEY, SECRET).access_token
    with pytest.raises(Unauthenticated):
        auth.renew(T0 + TTL, token)


# --- copies and reprs -----------------------------------------------------------


def test_copy_is_independent(auth: AuthState) -> None:
    auth.revoked.add("r")
    copy = auth.copy()
    copy.add_client("new", "x")
    copy.revoked.add("r2")
    copy.token_ttl = 1
    assert "new" not in auth.credentials
    assert auth.revoked == {"r"}
    assert auth.token_ttl == TTL
    assert copy.signing_key == auth.signing_key


def test_secrets_never_appear_in_reprs(auth: AuthState) -> None:
    credential = auth.credentials[KEY]
    issued = auth.authenticate(T0, KEY, SECRET)
    assert isinstance(credential, Credential)
    assert isinstance(issued, IssuedToken)
    assert SECRET not in repr(credential)
    assert KEY in repr(credential)
    assert issued.access_token not in repr(issued)
    assert str(issued.expires_at) in repr(issued)
    for text in (repr(auth), str(auth)):
        assert SIGNING_KEY not in text
        assert SECRET not in text
        assert issued.access_token not in text
