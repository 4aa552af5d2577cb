"""Client configuration: one frozen, validated :class:`Config` and its policies.

Every value is checked when it is built; a bad one raises
:class:`~sdk.errors.ConfigError` whose ``field`` names it (``"default_timeout"``,
``"tls.key_file"``, ``"heartbeat.backoff_max"``, or the environment variable
for :meth:`Config.from_env`). Secrets never appear in reprs or messages.

Environment variables read by :meth:`Config.from_env`:

=========================  ====================================================
``REGISTRY_ADDR``          required; ``host:port``, comma-separated for several
``CLIENT_KEY``             required unless auth is disabled
``CLIENT_SECRET``          required unless auth is disabled
``ENV``                    instance environment; blank or unset means ``dev``
``REGISTRY_TIMEOUT``       default per-call deadline in seconds (``30``)
``REGISTRY_DISABLE_AUTH``  ``1``/``true``/``yes``/``on`` to send no token
``REGISTRY_TLS``           ``1``/``true``/...: TLS with the system's CA roots
``REGISTRY_TLS_CA``        CA bundle (PEM file); implies TLS
``REGISTRY_TLS_CERT``      client certificate (PEM file), with the key below
``REGISTRY_TLS_KEY``       client private key (PEM file)
``REGISTRY_TLS_SERVER_NAME``  name to verify instead of the address's host
=========================  ====================================================

Policies are the user-facing knobs, as frozen values. The decisions they
drive (refresh times, beat intervals, backoff delays, cooldowns) are made by
the sans-IO core (``sdk._core``), which the client builds from these values,
so the arithmetic lives in one place; each policy says what it maps onto.
"""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Literal

from sdk.errors import ConfigError

__all__ = [
    "Config",
    "DiscoveryPolicy",
    "HeartbeatPolicy",
    "KeepalivePolicy",
    "TlsConfig",
    "TlsMaterial",
    "TokenPolicy",
    "parse_registry_addr",
]

#: The server's storage limit for an instance's env label (CONTRACT 1.3).
_ENV_MAX = 32
#: gRPC target schemes passed through unchecked; grpcio parses them itself.
_TARGET_SCHEMES = ("dns:", "unix:", "unix-abstract:", "ipv4:", "ipv6:", "vsock:")


def _number(name: str, value: object, *, minimum: float = 0.0, strict: bool = False) -> float:
    # bool is an int: True would silently mean 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, f"must be a number, not {type(value).__name__}")
    if not math.isfinite(value):
        raise ConfigError(name, "must be finite")
    if value < minimum or (strict and value == minimum):
        raise ConfigError(name, f"must be {'>' if strict else '>='} {minimum:g} (got {value!r})")
    return float(value)


def _text(name: str, value: object, *, secret: bool = False) -> str:
    if not isinstance(value, str):
        raise ConfigError(name, f"must be a string, not {type(value).__name__}")
    if not value:
        raise ConfigError(name, "must not be empty")
    if value != value.strip():
        # A trailing newline from a secrets file is the classic cause of a
        # baffling UNAUTHENTICATED; say so here, without echoing a secret.
        shown = "" if secret else f" ({value!r})"
        raise ConfigError(name, f"has leading or trailing whitespace{shown}")
    return value


def _address_problem(address: str) -> str | None:
    """Why ``address`` is not a usable registry target, or ``None``."""
    if any(ch.isspace() for ch in address):
        return "contains whitespace"
    if address.lower().startswith(_TARGET_SCHEMES):
        return None
    if "://" in address:
        return "is a URL; give host:port (or a gRPC target such as dns:///host:port)"
    if address.startswith("["):
        literal, _, rest = address[1:].partition("]")
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return "is not [IPv6]:port"
        sep, port = rest[:1], rest[1:]
        if sep != ":":
            return "needs a port: [IPv6]:port"
    else:
        host, sep, port = address.rpartition(":")
        if not sep:
            return "needs a port: host:port"
        if ":" in host:
            return "has an IPv6 literal without brackets; write [addr]:port"
        if not host:
            return "has no host"
    if not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        return f"has an invalid port {port!r}"
    return None


def parse_registry_addr(value: str) -> tuple[str, ...]:
    """Split a registry address string as the reference SDK does (CONTRACT 4.2).

    Split on commas, trim each part and drop empty parts. Unlike the
    reference SDK, an address list that ends up empty is an error rather
    than a target that can never connect.

    Args:
        value: for example ``"reg-1:9000, reg-2:9000"`` or
            ``"dns:///registry.internal:9000"``.

    Returns:
        The addresses in order; duplicates are kept.

    Raises:
        ConfigError: (``field="registry_addr"``) no address, or one that is
            not ``host:port``, ``[IPv6]:port`` or a gRPC target URI.
    """
    if not isinstance(value, str):
        raise ConfigError("registry_addr", f"must be a string, not {type(value).__name__}")
    addresses = tuple(part.strip() for part in value.split(",") if part.strip())
    if not addresses:
        raise ConfigError("registry_addr", "no address given (expected host:port[,host:port...])")
    for address in addresses:
        problem = _address_problem(address)
        if problem is not None:
            raise ConfigError("registry_addr", f"{address!r} {problem}")
    return addresses


@dataclass(frozen=True, slots=True)
class TlsMaterial:
    """PEM bytes for ``grpc.ssl_channel_credentials(**vars)``; ``None`` = not used.

    ``root_certificates=None`` means the system's trust roots.
    """

    root_certificates: bytes | None
    private_key: bytes | None = field(repr=False)
    certificate_chain: bytes | None


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS to the registry. ``TlsConfig()`` means TLS with the system's CA roots.

    Args:
        ca_file: path of a PEM CA bundle to trust instead of the system roots.
        ca_pem: the same as bytes; give ``ca_file`` or ``ca_pem``, not both.
        cert_file: client certificate chain (PEM) for mutual TLS; needs ``key_file``.
        key_file: the client certificate's private key (PEM); needs ``cert_file``.
        server_name: the name to verify in the server's certificate, when it
            differs from the host in the address (``None``: the address's host).
    """

    ca_file: str | None = None
    ca_pem: bytes | None = field(default=None, repr=False)
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        for name in ("ca_file", "cert_file", "key_file", "server_name"):
            value = getattr(self, name)
            if value is not None:
                _text(f"tls.{name}", value)
        if self.ca_pem is not None:
            if not isinstance(self.ca_pem, bytes) or not self.ca_pem.strip():
                raise ConfigError("tls.ca_pem", "must be non-empty PEM bytes")
            if self.ca_file is not None:
                raise ConfigError("tls.ca_pem", "give ca_file or ca_pem, not both")
        if (self.cert_file is None) != (self.key_file is None):
            missing = "tls.key_file" if self.key_file is None else "tls.cert_file"
            raise ConfigError(missing, "a client certificate needs both cert_file and key_file")

    def load(self) -> TlsMaterial:
        """Read the PEM files.

        Raises:
            ConfigError: a file cannot be read; ``field`` names which.
        """
        return TlsMaterial(
            root_certificates=self.ca_pem or _read("tls.ca_file", self.ca_file),
            private_key=_read("tls.key_file", self.key_file),
            certificate_chain=_read("tls.cert_file", self.cert_file),
        )


def _read(name: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(name, f"cannot read {path!r}: {exc.strerror or exc}") from None


@dataclass(frozen=True, slots=True)
class TokenPolicy:
    """When to refresh the access token (CONTRACT G6); maps onto ``_core.token.TokenParams``.

    Args:
        refresh_lead_max: the longest lead in seconds (the reference SDK's
            fixed 300 s). ``0`` refreshes only once the token has expired.
        refresh_lead_fraction: the lead as a share of the token's observed
            lifetime, in ``[0, 1)``, so short-lived tokens are not renewed
            on every call.
    """

    refresh_lead_max: float = 300.0
    refresh_lead_fraction: float = 0.5

    def __post_init__(self) -> None:
        _number("token.refresh_lead_max", self.refresh_lead_max)
        _number("token.refresh_lead_fraction", self.refresh_lead_fraction)
        if self.refresh_lead_fraction >= 1:
            raise ConfigError("token.refresh_lead_fraction", "must be < 1")

    def refresh_lead(self, lifetime: float) -> float:
        """Seconds before expiry to refresh: ``min(max, fraction * lifetime)``.

        Args:
            lifetime: ``expires_at`` minus the time the token was obtained;
                ``<= 0`` (already expired on arrival) gives a lead of ``0``.
        """
        return min(self.refresh_lead_max, self.refresh_lead_fraction * max(lifetime, 0.0))


Jitter = Literal["full", "equal", "none"]


@dataclass(frozen=True, slots=True)
class HeartbeatPolicy:
    """Heartbeat spacing and retry backoff (CONTRACT G3, G4).

    Beats run every ``effective_ttl / 3`` seconds (the server's 60 s when
    the registration sent ``ttl_seconds <= 0``), at least ``min_interval``.
    Maps onto ``_core.lease_values.LeaseParams`` and its ``Backoff``.

    Args:
        min_interval: floor of the beat interval in seconds (> 0).
        backoff_initial: the delay ceiling after the first failure (> 0).
        backoff_max: the largest delay ceiling (>= ``backoff_initial``).
        backoff_multiplier: growth per consecutive failure (>= 1; ``1``
            keeps the delay constant).
        jitter: ``"full"`` draws each delay from ``[0, ceiling)``,
            ``"equal"`` from ``[ceiling/2, ceiling)``, ``"none"`` waits the
            ceiling itself.
        answer_timeout: how long a sent beat may wait for its answer
            before the stream counts as broken (> 0).
    """

    min_interval: float = 1.0
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    backoff_multiplier: float = 2.0
    jitter: Jitter = "full"
    answer_timeout: float = 10.0

    def __post_init__(self) -> None:
        _number("heartbeat.min_interval", self.min_interval, strict=True)
        _number("heartbeat.backoff_initial", self.backoff_initial, strict=True)
        _number("heartbeat.backoff_max", self.backoff_max, minimum=self.backoff_initial)
        _number("heartbeat.backoff_multiplier", self.backoff_multiplier, minimum=1.0)
        _number("heartbeat.answer_timeout", self.answer_timeout, strict=True)
        if self.jitter not in ("full", "equal", "none"):
            raise ConfigError(
                "heartbeat.jitter", f"must be 'full', 'equal' or 'none', not {self.jitter!r}"
            )


@dataclass(frozen=True, slots=True)
class DiscoveryPolicy:
    """Discovery cache and failure cooldown (CONTRACT G10, G11).

    Maps onto ``_core.cache.CacheParams`` (``cache_ttl``, ``max_stale``) and
    ``_core.cooldown.CooldownParams`` (``failure_cooldown`` as the base,
    ``cooldown_max`` as the maximum, multiplier 2 or, without
    ``escalate``, 1).

    Args:
        cache_ttl: seconds a resolved entry is served without asking the
            registry; ``0`` asks every time.
        max_stale: how long past ``cache_ttl`` an entry may still be served
            when refreshing it fails; ``0`` never serves stale data.
        failure_cooldown: seconds an instance is skipped after a reported
            failure; ``0`` never skips.
        cooldown_max: the cap when cooldowns escalate (>= ``failure_cooldown``).
        escalate: double the cooldown for each consecutive failure, up
            to ``cooldown_max``; ``False`` keeps it at ``failure_cooldown``.
    """

    cache_ttl: float = 30.0
    max_stale: float = 300.0
    failure_cooldown: float = 30.0
    cooldown_max: float = 300.0
    escalate: bool = True

    def __post_init__(self) -> None:
        _number("discovery.cache_ttl", self.cache_ttl)
        _number("discovery.max_stale", self.max_stale)
        _number("discovery.failure_cooldown", self.failure_cooldown)
        _number("discovery.cooldown_max", self.cooldown_max, minimum=self.failure_cooldown)


@dataclass(frozen=True, slots=True)
class KeepalivePolicy:
    """HTTP/2 keepalive pings on registry channels.

    The defaults respect gRPC's keepalive rules (gRFC A8): a server built on
    grpc-go, like the real registry, answers pings more frequent than every
    5 minutes with GOAWAY ``too_many_pings`` by default, and refuses pings
    without an active call. Heartbeats already detect a dead stream within
    ``HeartbeatPolicy.answer_timeout``; keepalive is the backstop.

    Args:
        enabled: ``False`` sets no keepalive options (gRPC's own defaults).
        keepalive_time_ms: interval between pings (>= 10,000, gRPC's floor).
        keepalive_timeout_ms: how long to wait for a ping's ack (> 0).
        permit_without_calls: ping even when no call is active.
    """

    enabled: bool = True
    keepalive_time_ms: int = 300_000
    keepalive_timeout_ms: int = 20_000
    permit_without_calls: bool = False

    def __post_init__(self) -> None:
        _number("keepalive.keepalive_time_ms", self.keepalive_time_ms, minimum=10_000)
        _number("keepalive.keepalive_timeout_ms", self.keepalive_timeout_ms, strict=True)

    def channel_options(self) -> tuple[tuple[str, int], ...]:
        """The grpcio channel options; ``()`` when disabled."""
        if not self.enabled:
            return ()
        return (
            ("grpc.keepalive_time_ms", int(self.keepalive_time_ms)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_ms)),
            ("grpc.keepalive_permit_without_calls", int(self.permit_without_calls)),
        )


@dataclass(frozen=True, slots=True)
class Config:
    """Everything a client needs to reach and use the registry.

    Args:
        registry_addr: one address or several, comma-separated
            (``"reg-1:9000,reg-2:9000"``); see :func:`parse_registry_addr`.
        client_key: the credential's public key.
        client_secret: the credential's secret; never shown in reprs.
        env: the environment label used for discovery, listing and as the
            default for registrations; blank means ``"dev"``. Surrounding
            whitespace is removed (the server matches env exactly).
        default_timeout: the deadline in seconds applied to every RPC that
            does not set its own (> 0).
        tls: ``None`` for plaintext, a :class:`TlsConfig` for TLS.
        disable_auth: send no token (for a registry with auth switched off);
            key and secret are then optional.
        token, heartbeat, discovery, keepalive: the policies.

    Attributes:
        addresses: ``registry_addr`` parsed: non-empty, trimmed, in order.
    """

    registry_addr: str
    client_key: str = ""
    client_secret: str = field(default="", repr=False)
    _: KW_ONLY
    env: str = "dev"
    default_timeout: float = 30.0
    tls: TlsConfig | None = None
    disable_auth: bool = False
    token: TokenPolicy = TokenPolicy()
    heartbeat: HeartbeatPolicy = HeartbeatPolicy()
    discovery: DiscoveryPolicy = DiscoveryPolicy()
    keepalive: KeepalivePolicy = KeepalivePolicy()
    addresses: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", parse_registry_addr(self.registry_addr))
        for name, secret in (("client_key", False), ("client_secret", True)):
            value = getattr(self, name)
            # Without auth the credentials are unused: optional, but not wrong.
            if not self.disable_auth or value != "":
                _text(name, value, secret=secret)
        if not isinstance(self.env, str):
            raise ConfigError("env", f"must be a string, not {type(self.env).__name__}")
        env = self.env.strip() or "dev"
        if len(env) > _ENV_MAX:
            raise ConfigError("env", f"is longer than the server's limit of {_ENV_MAX} characters")
        object.__setattr__(self, "env", env)
        _number("default_timeout", self.default_timeout, strict=True)
        for name, kind in (
            ("tls", TlsConfig),
            ("token", TokenPolicy),
            ("heartbeat", HeartbeatPolicy),
            ("discovery", DiscoveryPolicy),
            ("keepalive", KeepalivePolicy),
        ):
            value = getattr(self, name)
            if not isinstance(value, kind) and not (name == "tls" and value is None):
                raise ConfigError(name, f"must be a {kind.__name__}, not {type(value).__name__}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Build a config from environment variables (see the module docstring).

        Args:
            environ: the variables; ``None`` reads ``os.environ``.

        Raises:
            ConfigError: ``field`` names the offending variable.
        """
        env = os.environ if environ is None else environ
        if not _get(env, "REGISTRY_ADDR"):
            raise ConfigError("REGISTRY_ADDR", "is not set")
        try:
            return cls(
                env["REGISTRY_ADDR"],
                # Unstripped on purpose: a stray newline is reported, not hidden.
                env.get("CLIENT_KEY", ""),
                env.get("CLIENT_SECRET", ""),
                env=env.get("ENV", ""),
                default_timeout=_env_float(env, "REGISTRY_TIMEOUT", 30.0),
                tls=_env_tls(env),
                disable_auth=_env_bool(env, "REGISTRY_DISABLE_AUTH"),
            )
        except ConfigError as exc:
            raise ConfigError(_ENV_NAMES.get(exc.field, exc.field), exc.reason) from None


_ENV_NAMES = {
    "registry_addr": "REGISTRY_ADDR",
    "client_key": "CLIENT_KEY",
    "client_secret": "CLIENT_SECRET",
    "env": "ENV",
    "default_timeout": "REGISTRY_TIMEOUT",
    "tls.ca_file": "REGISTRY_TLS_CA",
    "tls.cert_file": "REGISTRY_TLS_CERT",
    "tls.key_file": "REGISTRY_TLS_KEY",
    "tls.server_name": "REGISTRY_TLS_SERVER_NAME",
}
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _env_bool(env: Mapping[str, str], name: str) -> bool:
    raw = _get(env, name)
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ConfigError(name, f"must be true/false, 1/0, yes/no or on/off (got {raw!r})")


def _env_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _get(env, name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(name, f"must be a number of seconds (got {raw!r})") from None


def _env_tls(env: Mapping[str, str]) -> TlsConfig | None:
    ca, cert, key, name = (
        _get(env, f"REGISTRY_TLS_{suffix}") or None
        for suffix in ("CA", "CERT", "KEY", "SERVER_NAME")
    )
    enabled = _env_bool(env, "REGISTRY_TLS")
    if not enabled and not (ca or cert or key or name):
        return None
    if not enabled and _get(env, "REGISTRY_TLS"):
        # Explicitly off but configured: refuse rather than guess which is meant.
        raise ConfigError("REGISTRY_TLS", "is off, but REGISTRY_TLS_* settings are given")
    return TlsConfig(ca_file=ca, cert_file=cert, key_file=key, server_name=name)
