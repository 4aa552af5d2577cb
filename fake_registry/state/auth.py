"""Client credentials and HS256 tokens (CONTRACT section 2).

No grpc, no threads, no clock: methods take ``now``. Callers hold the world lock.

Rules:
    AuthenticateClient  empty key or secret                  -> INVALID_ARGUMENT
                        unknown key, disabled, expired,
                        wrong secret                         -> UNAUTHENTICATED
    verify (protected)  malformed, bad signature, non-HMAC,
                        no exp, expired (now >= exp),
                        not yet valid (now < nbf), revoked   -> UNAUTHENTICATED
                        credential disabled/deleted since    -> still valid
    RenewToken          credential deleted                   -> UNAUTHENTICATED
                        disabled or expired                  -> PERMISSION_DENIED
                        else a new token, claims copied, full lifetime from now
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass, field, replace
from typing import Any

import jwt

from fake_registry.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated

__all__ = ["DEFAULT_TOKEN_TTL", "AuthState", "Credential", "IssuedToken"]

#: 24 h, the real server's default token lifetime.
DEFAULT_TOKEN_TTL = 86_400
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
_ISSUER = "xiaozhizhang"
_SUBJECT = "client"
# Verified-token cache bound: past this many entries the cache is cleared.
_CACHE_LIMIT = 10_000
_DECODE_OPTIONS: Any = {
    "verify_signature": True,
    "verify_exp": False,  # checked against the injected clock instead
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


@dataclass(frozen=True, slots=True)
class Credential:
    """A client credential. ``secret`` never appears in the repr."""

    id: int
    key: str
    secret: str = field(repr=False)
    enabled: bool = True
    expires_at: float | None = None  # credential expiry date; None = never

    def usable(self, now: float) -> bool:
        return self.enabled and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed token and its expiry. The token is hidden from the repr."""

    access_token: str = field(repr=False)
    expires_at: int
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a secret


@dataclass(frozen=True, slots=True)
class _Verified:
    claims: dict[str, Any]
    exp: float
    nbf: float | None
    key: str = field(repr=False, default="")


def _numeric(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthenticated(f"token claim {name} is not a number")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):  # Go's decoder rejects NaN, Infinity and overflow
        raise Unauthenticated(f"token claim {name} is out of range")
    return number


@dataclass
class AuthState:
    """Credentials by key, the signing secret, and issued-token bookkeeping."""

    signing_key: str = field(default_factory=lambda: secrets.token_urlsafe(64), repr=False)
    token_ttl: int = DEFAULT_TOKEN_TTL
    credentials: dict[str, Credential] = field(default_factory=dict, repr=False)
    next_credential_id: int = 1
    revoked: set[str] = field(default_factory=set, repr=False)
    #: Tokens this fake issued, with their client key (for expire_tokens).
    issued: dict[str, str] = field(default_factory=dict, repr=False)
    #: Tokens forced to fail as expired before their ``exp``.
    expired: set[str] = field(default_factory=set, repr=False)
    authentications: int = 0
    renewals: int = 0
    _verified: dict[str, _Verified] = field(default_factory=dict, repr=False)

    def copy(self) -> AuthState:
        return AuthState(
            signing_key=self.signing_key,
            token_ttl=self.token_ttl,
            credentials=dict(self.credentials),
            next_credential_id=self.next_credential_id,
            revoked=set(self.revoked),
            issued=dict(self.issued),
            expired=set(self.expired),
            authentications=self.authentications,
            renewals=self.renewals,
        )

    # --- credentials ------------------------------------------------------

    def add_client(
        self, key: str, secret: str, *, enabled: bool = True, expires_at: float | None = None
    ) -> Credential:
        """Add (or replace, keeping its id) the credential for ``key``."""
        if not key:
            raise InvalidArgument("client key must not be empty", "client_key")
        if not secret:
            raise InvalidArgument("client secret must not be empty", "client_secret")
        previous = self.credentials.get(key)
        if previous is None:
            cred_id = self.next_credential_id
            self.next_credential_id += 1
        else:
            cred_id = previous.id
        credential = Credential(cred_id, key, secret, enabled=enabled, expires_at=expires_at)
        self.credentials[key] = credential
        return credential

    # --- tokens -----------------------------------------------------------

    def _issue(self, now: float, claims: dict[str, Any], signing_key: str | None) -> IssuedToken:
        issued = int(now)
        exp = issued + self.token_ttl
        payload = {
            "iss": claims.get("iss", _ISSUER),
            "sub": claims.get("sub", _SUBJECT),
            "iat": issued,
            "nbf": issued,
            "exp": exp,
            "clientId": claims.get("clientId"),
            "clientKey": claims.get("clientKey"),
            "status": claims.get("status", 1),
        }
        token = jwt.encode(payload, signing_key or self.signing_key, algorithm="HS256")
        if len(self.issued) >= _CACHE_LIMIT:
            self.issued.clear()
        self.issued[token] = str(payload["clientKey"])
        # The same claims in the same second sign the same string. A token
        # issued now is a new token: earlier expire/revoke controls miss it.
        self.expired.discard(token)
        self.revoked.discard(token)
        return IssuedToken(access_token=token, expires_at=exp)

    def authenticate(
        self, now: float, client_key: str, client_secret: str, signing_key: str | None = None
    ) -> IssuedToken:
        """AuthenticateClient: check the credential and issue a token.

        ``signing_key`` overrides the shared secret (a node with its own secret).
        """
        self.authentications += 1
        if not client_key:
            raise InvalidArgument("client_key is required", "client_key")
        if not client_secret:
            raise InvalidArgument("client_secret is required", "client_secret")
        credential = self.credentials.get(client_key)
        if credential is None:
            raise Unauthenticated("unknown client_key", "client_key")
        if not credential.usable(now):
            raise Unauthenticated("client credential is disabled or expired", "client_key")
        if not hmac.compare_digest(credential.secret.encode(), client_secret.encode()):
            raise Unauthenticated("wrong client_secret", "client_secret")
        return self._issue(
            now,
            {"clientId": credential.id, "clientKey": credential.key, "status": 1},
            signing_key,
        )

    def verify(self, now: float, token: str, signing_key: str | None = None) -> dict[str, Any]:
        """Check a presented token; return its claims or raise ``Unauthenticated``."""
        if not token:
            raise Unauthenticated("missing token")
        key = signing_key or self.signing_key
        verified = self._verified.get(token)
        if verified is None or verified.key != key:
            verified = self._decode(token, key)
            if len(self._verified) >= _CACHE_LIMIT:
                self._verified.clear()
            self._verified[token] = verified
        if now >= verified.exp or token in self.expired:
            raise Unauthenticated("token expired")
        if verified.nbf is not None and now < verified.nbf:
            raise Unauthenticated("token not yet valid")
        if token in self.revoked:
            raise Unauthenticated("token revoked")
        return verified.claims

    def _decode(self, token: str, key: str) -> _Verified:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise Unauthenticated("malformed token") from None
        algorithm = header.get("alg")
        if algorithm not in HMAC_ALGORITHMS:
            raise Unauthenticated("token algorithm is not HMAC")
        try:
            claims = jwt.decode(token, key, algorithms=[algorithm], options=_DECODE_OPTIONS)
        except jwt.InvalidTokenError:
            raise Unauthenticated("invalid token signature or encoding") from None
        exp = _numeric(claims, "exp")
        if exp is None:
            raise Unauthenticated("token has no exp claim")
        return _Verified(claims=claims, exp=exp, nbf=_numeric(claims, "nbf"), key=key)

    def renew(self, now: float, token: str, signing_key: str | None = None) -> IssuedToken:
        """RenewToken: a new token with a full lifetime, claims copied."""
        self.renewals += 1
        claims = self.verify(now, token, signing_key)
        credential = self._credential_by_id(claims.get("clientId"))
        if credential is None:
            raise Unauthenticated("client credential no longer exists")
        if not credential.usable(now):
            raise PermissionDenied("client credential is disabled or expired")
        return self._issue(now, claims, signing_key)

    def _credential_by_id(self, client_id: Any) -> Credential | None:
        for credential in self.credentials.values():
            if credential.id == client_id and not isinstance(client_id, bool):
                return credential
        return None

    def _require(self, key: str) -> Credential:
        credential = self.credentials.get(key)
        if credential is None:
            raise NotFound(f"no client with key {key!r}", "client_key")
        return credential

    def remove_client(self, key: str) -> None:
        """Delete the credential: its tokens keep working until renewal (CONTRACT 2.7)."""
        self._require(key)
        del self.credentials[key]

    def update_client(self, key: str, **changes: Any) -> Credential:
        """Change ``enabled``, ``expires_at`` or ``secret`` of a credential."""
        credential = replace(self._require(key), **changes)
        self.credentials[key] = credential
        return credential

    def expire_tokens(self, client_key: str | None = None) -> int:
        """Make every issued token (of ``client_key``, or all) fail as expired now."""
        targets = [t for t, k in self.issued.items() if client_key is None or k == client_key]
        self.expired.update(targets)
        return len(targets)

    def revoke(self, token: str) -> None:
        """Reject ``token`` from now on (the real server cannot do this)."""
        self.revoked.add(token)

    def rotate_signing_key(self) -> None:
        """A new signing secret: every outstanding token stops verifying."""
        self.signing_key = secrets.token_urlsafe(64)
        self._verified.clear()
