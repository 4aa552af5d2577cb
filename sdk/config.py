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

The policies (:mod:`sdk.policies`) and TLS settings (:mod:`sdk.tls`) are
frozen values of their own, importable from here too.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass, field

from sdk._checks import number as _number
from sdk._checks import text as _text
from sdk.errors import ConfigError
from sdk.policies import DiscoveryPolicy, HeartbeatPolicy, KeepalivePolicy, TokenPolicy
from sdk.tls import TlsConfig, TlsMaterial

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
