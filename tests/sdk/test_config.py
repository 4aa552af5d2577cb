"""sdk.config: validation naming the field, address parsing, policies, from_env."""

from __future__ import annotations

import dataclasses
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sdk.config import (
    Config,
    DiscoveryPolicy,
    HeartbeatPolicy,
    KeepalivePolicy,
    TlsConfig,
    TokenPolicy,
    parse_registry_addr,
)
from sdk.errors import ConfigError

SECRET = "s3cr3t-VALUE-abcdefghijklmnopqrstuvwxyz0123="


def make(**changes: Any) -> Config:
    values: dict[str, Any] = {"registry_addr": "localhost:9000", "client_key": "key"}
    values["client_secret"] = SECRET
    values.update(changes)
    return Config(**values)


def field_of(call: Any) -> str:
    with pytest.raises(ConfigError) as info:
        call()
    return info.value.field


# --- Config -----------------------------------------------------------------


def test_defaults() -> None:
    config = Config("localhost:9000", "key", SECRET)
    assert config.addresses == ("localhost:9000",)
    assert config.env == "dev"
    assert config.default_timeout == 30.0
    assert config.tls is None
    assert config.disable_auth is False
    assert config.token == TokenPolicy()
    assert config.heartbeat == HeartbeatPolicy()
    assert config.discovery == DiscoveryPolicy()
    assert config.keepalive == KeepalivePolicy()


def test_frozen_slotted_hashable() -> None:
    config = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.env = "prod"  # type: ignore[misc]
    assert not hasattr(config, "__dict__")
    assert hash(config) == hash(make())
    assert pickle.loads(pickle.dumps(config)) == config  # noqa: S301 (our own bytes)


def test_options_after_the_credentials_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Config("localhost:9000", "key", SECRET, "prod")  # type: ignore[misc]


def test_secret_never_shown() -> None:
    config = make()
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    with pytest.raises(ConfigError) as info:
        make(client_secret=SECRET + "\n")
    assert info.value.field == "client_secret"
    assert SECRET not in str(info.value)
    assert "whitespace" in str(info.value)


@pytest.mark.parametrize("name", ["client_key", "client_secret"])
@pytest.mark.parametrize("value", ["", " key", "key\n", None, 42])
def test_credentials_are_validated(name: str, value: Any) -> None:
    assert field_of(lambda: make(**{name: value})) == name


def test_credentials_are_optional_without_auth() -> None:
    config = Config("localhost:9000", disable_auth=True)
    assert (config.client_key, config.client_secret) == ("", "")
    # ... but what is given must still make sense.
    assert field_of(lambda: Config("localhost:9000", "key ", disable_auth=True)) == "client_key"


@pytest.mark.parametrize(
    ("given", "expected"),
    [("", "dev"), ("   ", "dev"), ("prod", "prod"), (" test\n", "test"), ("x" * 32, "x" * 32)],
)
def test_env(given: str, expected: str) -> None:
    assert make(env=given).env == expected


@pytest.mark.parametrize("bad", ["x" * 33, None, 1])
def test_bad_env(bad: Any) -> None:
    assert field_of(lambda: make(env=bad)) == "env"


@pytest.mark.parametrize("good", [0.001, 1, 30.0, 1e9])
def test_default_timeout(good: float) -> None:
    assert make(default_timeout=good).default_timeout == good


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "30", None])
def test_bad_default_timeout(bad: Any) -> None:
    assert field_of(lambda: make(default_timeout=bad)) == "default_timeout"


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("tls", "yes"),
        ("token", HeartbeatPolicy()),
        ("heartbeat", None),
        ("discovery", {}),
        ("keepalive", 1),
    ],
)
def test_policy_fields_are_type_checked(name: str, bad: Any) -> None:
    assert field_of(lambda: make(**{name: bad})) == name


def test_replace_revalidates() -> None:
    config = make()
    assert dataclasses.replace(config, registry_addr="a:1,b:2").addresses == ("a:1", "b:2")
    assert field_of(lambda: dataclasses.replace(config, default_timeout=0)) == "default_timeout"


# --- registry addresses (CONTRACT 4.2) ------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("reg:9000", ("reg:9000",)),
        (" reg-1:9000 , reg-2:9000 ", ("reg-1:9000", "reg-2:9000")),
        ("a:1,,b:2,", ("a:1", "b:2")),
        ("a:1,a:1", ("a:1", "a:1")),
        ("10.0.0.1:9000,10.0.0.2:9000", ("10.0.0.1:9000", "10.0.0.2:9000")),
        ("[::1]:9000", ("[::1]:9000",)),
        ("[fe80::1%eth0]:9000", ("[fe80::1%eth0]:9000",)),
        ("dns:///registry.internal:9000", ("dns:///registry.internal:9000",)),
        ("unix:/tmp/registry.sock", ("unix:/tmp/registry.sock",)),
        ("localhost:65535", ("localhost:65535",)),
    ],
)
def test_parse_registry_addr(value: str, expected: tuple[str, ...]) -> None:
    assert parse_registry_addr(value) == expected
    assert make(registry_addr=value).addresses == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "no address"),
        (" , ,", "no address"),
        ("http://reg:9000", "is a URL"),
        ("reg", "needs a port"),
        ("reg:", "invalid port"),
        ("reg:0", "invalid port"),
        ("reg:65536", "invalid port"),
        ("reg:http", "invalid port"),
        ("reg:\uff19\uff10\uff10\uff10", "invalid port"),  # fullwidth: isdigit(), not ASCII
        (":9000", "no host"),
        ("::1:9000", "without brackets"),
        ("[::1]", "needs a port"),
        ("[not-ipv6]:9000", "[IPv6]:port"),
        ("re g:9000", "whitespace"),
        ("a:1,b", "needs a port"),
    ],
)
def test_bad_registry_addr(value: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(reason)) as info:
        make(registry_addr=value)
    assert info.value.field == "registry_addr"


def test_registry_addr_must_be_a_string() -> None:
    assert field_of(lambda: make(registry_addr=["a:1"])) == "registry_addr"


_hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda ip: f"[{ip}]"),
)
_addresses = st.builds(lambda h, p: f"{h}:{p}", _hosts, st.integers(1, 65535))
_blank = st.sampled_from(["", " ", "\t", "  "])


@given(
    st.lists(st.tuples(_blank, _addresses, _blank), min_size=1, max_size=5),
    st.lists(_blank, max_size=3),
)
def test_parsing_keeps_every_address_in_order(
    parts: list[tuple[str, str, str]], empties: list[str]
) -> None:
    text = ",".join([f"{before}{address}{after}" for before, address, after in parts] + empties)
    assert parse_registry_addr(text) == tuple(address for _, address, _ in parts)


# --- TLS ----------------------------------------------------------------------


def test_tls_defaults_mean_system_roots() -> None:
    tls = TlsConfig()
    material = tls.load()
    assert (material.root_certificates, material.private_key, material.certificate_chain) == (
        None,
        None,
        None,
    )


def test_tls_load_reads_files(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(b"CA")
    (tmp_path / "cert.pem").write_bytes(b"CERT")
    (tmp_path / "key.pem").write_bytes(b"PRIVATE-KEY-BYTES")
    tls = TlsConfig(
        ca_file=str(tmp_path / "ca.pem"),
        cert_file=str(tmp_path / "cert.pem"),
        key_file=str(tmp_path / "key.pem"),
        server_name="registry.internal",
    )
    material = tls.load()
    assert material.root_certificates == b"CA"
    assert material.certificate_chain == b"CERT"
    assert material.private_key == b"PRIVATE-KEY-BYTES"
    assert "PRIVATE-KEY-BYTES" not in repr(material)
    assert TlsConfig(ca_pem=b"INLINE").load().root_certificates == b"INLINE"


def test_tls_load_names_the_unreadable_file(tmp_path: Path) -> None:
    assert field_of(lambda: TlsConfig(ca_file=str(tmp_path / "missing.pem")).load()) == (
        "tls.ca_file"
    )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"ca_file": "ca.pem", "ca_pem": b"CA"}, "tls.ca_pem"),
        ({"ca_pem": b""}, "tls.ca_pem"),
        ({"ca_pem": "text"}, "tls.ca_pem"),
        ({"cert_file": "cert.pem"}, "tls.key_file"),
        ({"key_file": "key.pem"}, "tls.cert_file"),
        ({"ca_file": ""}, "tls.ca_file"),
        ({"server_name": " x"}, "tls.server_name"),
    ],
)
def test_bad_tls(kwargs: dict[str, Any], field: str) -> None:
    assert field_of(lambda: TlsConfig(**kwargs)) == field


def test_inline_ca_not_in_repr() -> None:
    assert "INLINE" not in repr(TlsConfig(ca_pem=b"INLINE"))


# --- policies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lifetime", "lead"),
    [(86_400, 300), (3600, 300), (600, 300), (60, 30), (4, 2), (0, 0), (-5, 0)],
)
def test_token_refresh_lead(lifetime: float, lead: float) -> None:
    assert TokenPolicy().refresh_lead(lifetime) == lead


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"refresh_lead_max": -1}, "token.refresh_lead_max"),
        ({"refresh_lead_fraction": 1}, "token.refresh_lead_fraction"),
        ({"refresh_lead_fraction": -0.1}, "token.refresh_lead_fraction"),
    ],
)
def test_bad_token_policy(kwargs: dict[str, Any], field: str) -> None:
    assert field_of(lambda: TokenPolicy(**kwargs)) == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"min_interval": 0}, "heartbeat.min_interval"),
        ({"backoff_initial": 0}, "heartbeat.backoff_initial"),
        ({"backoff_initial": 5, "backoff_max": 4}, "heartbeat.backoff_max"),
        ({"backoff_multiplier": 0.5}, "heartbeat.backoff_multiplier"),
        ({"jitter": "random"}, "heartbeat.jitter"),
        ({"answer_timeout": 0}, "heartbeat.answer_timeout"),
    ],
)
def test_bad_heartbeat_policy(kwargs: dict[str, Any], field: str) -> None:
    assert field_of(lambda: HeartbeatPolicy(**kwargs)) == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"cache_ttl": -1}, "discovery.cache_ttl"),
        ({"max_stale": float("inf")}, "discovery.max_stale"),
        ({"failure_cooldown": -1}, "discovery.failure_cooldown"),
        ({"failure_cooldown": 60, "cooldown_max": 30}, "discovery.cooldown_max"),
    ],
)
def test_bad_discovery_policy(kwargs: dict[str, Any], field: str) -> None:
    assert field_of(lambda: DiscoveryPolicy(**kwargs)) == field


def test_keepalive_defaults_respect_grpc_rules() -> None:
    options = dict(KeepalivePolicy().channel_options())
    # gRFC A8: clients ping no more often than every 10 s; a grpc-go server
    # (the real registry) by default tolerates pings every 5 minutes, and only
    # while a call is active.
    assert options["grpc.keepalive_time_ms"] >= 300_000
    assert options["grpc.keepalive_timeout_ms"] > 0
    assert options["grpc.keepalive_permit_without_calls"] == 0
    assert KeepalivePolicy(enabled=False).channel_options() == ()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"keepalive_time_ms": 9_999}, "keepalive.keepalive_time_ms"),
        ({"keepalive_timeout_ms": 0}, "keepalive.keepalive_timeout_ms"),
    ],
)
def test_bad_keepalive_policy(kwargs: dict[str, Any], field: str) -> None:
    assert field_of(lambda: KeepalivePolicy(**kwargs)) == field


# --- from_env --------------------------------------------------------------------

BASE_ENV = {"REGISTRY_ADDR": "reg-1:9000, reg-2:9000", "CLIENT_KEY": "key", "CLIENT_SECRET": SECRET}


def test_from_env_minimal() -> None:
    config = Config.from_env(BASE_ENV)
    assert config == Config("reg-1:9000, reg-2:9000", "key", SECRET)
    assert config.addresses == ("reg-1:9000", "reg-2:9000")


def test_from_env_everything(tmp_path: Path) -> None:
    config = Config.from_env(
        {
            **BASE_ENV,
            "ENV": "prod",
            "REGISTRY_TIMEOUT": "2.5",
            "REGISTRY_TLS_CA": str(tmp_path / "ca.pem"),
            "REGISTRY_TLS_CERT": "cert.pem",
            "REGISTRY_TLS_KEY": "key.pem",
            "REGISTRY_TLS_SERVER_NAME": "registry.internal",
        }
    )
    assert config.env == "prod"
    assert config.default_timeout == 2.5
    assert config.tls == TlsConfig(
        ca_file=str(tmp_path / "ca.pem"),
        cert_file="cert.pem",
        key_file="key.pem",
        server_name="registry.internal",
    )


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ENV", "")
    assert Config.from_env().env == "dev"


@pytest.mark.parametrize(
    ("raw", "tls"),
    [("1", TlsConfig()), ("true", TlsConfig()), ("ON", TlsConfig()), ("0", None), ("", None)],
)
def test_from_env_tls_switch(raw: str, tls: TlsConfig | None) -> None:
    assert Config.from_env({**BASE_ENV, "REGISTRY_TLS": raw}).tls == tls


def test_from_env_without_auth() -> None:
    config = Config.from_env({"REGISTRY_ADDR": "reg:9000", "REGISTRY_DISABLE_AUTH": "yes"})
    assert config.disable_auth is True


@pytest.mark.parametrize(
    ("changes", "variable"),
    [
        ({"REGISTRY_ADDR": None}, "REGISTRY_ADDR"),
        ({"REGISTRY_ADDR": " "}, "REGISTRY_ADDR"),
        ({"REGISTRY_ADDR": "http://reg:9000"}, "REGISTRY_ADDR"),
        ({"CLIENT_KEY": None}, "CLIENT_KEY"),
        ({"CLIENT_SECRET": ""}, "CLIENT_SECRET"),
        ({"CLIENT_SECRET": SECRET + "\n"}, "CLIENT_SECRET"),
        ({"ENV": "x" * 40}, "ENV"),
        ({"REGISTRY_TIMEOUT": "soon"}, "REGISTRY_TIMEOUT"),
        ({"REGISTRY_TIMEOUT": "-1"}, "REGISTRY_TIMEOUT"),
        ({"REGISTRY_TIMEOUT": "nan"}, "REGISTRY_TIMEOUT"),
        ({"REGISTRY_DISABLE_AUTH": "maybe"}, "REGISTRY_DISABLE_AUTH"),
        ({"REGISTRY_TLS": "maybe"}, "REGISTRY_TLS"),
        ({"REGISTRY_TLS": "0", "REGISTRY_TLS_CA": "ca.pem"}, "REGISTRY_TLS"),
        ({"REGISTRY_TLS_CERT": "cert.pem"}, "REGISTRY_TLS_KEY"),
        ({"REGISTRY_TLS_KEY": "key.pem"}, "REGISTRY_TLS_CERT"),
    ],
)
def test_from_env_errors_name_the_variable(changes: dict[str, str | None], variable: str) -> None:
    environ = {**BASE_ENV, **changes}
    clean = {k: v for k, v in environ.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        Config.from_env(clean)
    assert info.value.field == variable
    assert SECRET not in str(info.value)
