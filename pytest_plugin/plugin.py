"""pytest plugin entry point (registered as ``pytest11``: installing is enough).

Options, each with an ini twin (the command line wins):

    --fake-registry-target         inprocess (default) | subprocess | docker | HOST:PORT
    --fake-registry-client-key     credentials for a HOST:PORT target
    --fake-registry-client-secret  (or FAKE_REGISTRY_CLIENT_KEY / _SECRET)
    --fake-registry-control-token  the external fake's control token
    --fake-registry-log            the fake's log level (DEBUG, INFO, ...)
    --fake-registry-image          the docker target's image (or FAKE_REGISTRY_IMAGE)

Markers:

    fake_registry(token_ttl=, clients=, seed=, faker_seed=)
                                   configure the fake for one test
    fake_registry_control          the test drives the control plane: skipped
                                   on a registry without one (a real server)

This module imports only pytest and the standard library, so the plugin
loads even without the ``testing`` extra; a fixture that needs the extra
fails with a message naming it.
"""

from __future__ import annotations

import pytest

from pytest_plugin.async_fixtures import (
    _async_registry_client_anyio,
    _async_registry_client_asyncio,
    async_registry_client,
)
from pytest_plugin.fixtures import (
    _fake_registry_control_guard,
    fake_backends,
    fake_registry,
    fake_registry_target,
    registry_client,
    registry_clock,
    registry_credentials,
    registry_data,
)

__all__ = [
    "_async_registry_client_anyio",
    "_async_registry_client_asyncio",
    "_fake_registry_control_guard",
    "async_registry_client",
    "fake_backends",
    "fake_registry",
    "fake_registry_target",
    "registry_client",
    "registry_clock",
    "registry_credentials",
    "registry_data",
]

_OPTIONS = (
    ("fake-registry-target", "where the registry under test runs: inprocess (default), "
     "subprocess (python -m fake_registry per worker), docker (the fake's image per worker) "
     "or HOST:PORT (a running fake or registry)"),
    ("fake-registry-client-key", "client key for a HOST:PORT target"),
    ("fake-registry-client-secret", "client secret for a HOST:PORT target"),
    ("fake-registry-control-token", "control token of a HOST:PORT fake that requires one"),
    ("fake-registry-log", "log level of the fake (DEBUG, INFO, WARNING, ERROR)"),
    ("fake-registry-image", "image of the docker target (default: $FAKE_REGISTRY_IMAGE, else "
     "aio-registry-fake:latest)"),
)  # fmt: skip


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("fake_registry", "fake registry (aio-registry-sdk)")
    for name, help_text in _OPTIONS:
        group.addoption(f"--{name}", dest=name.replace("-", "_"), default=None, help=help_text)
        parser.addini(name.replace("-", "_"), help=help_text, default=None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_registry(token_ttl=None, clients=None, seed=None, faker_seed=None): configure "
        "the fake registry for this test (token lifetime, accepted credentials, preloaded "
        "services as a seed file path or list, the registry_data faker seed)",
    )
    config.addinivalue_line(
        "markers",
        "fake_registry_control: the test needs the fake's control plane; skipped against "
        "a registry without one",
    )


def _target_spec(config: pytest.Config) -> str:
    value = config.getoption("fake_registry_target", default=None)
    return str(value or config.getini("fake_registry_target") or "inprocess")


def pytest_report_header(config: pytest.Config) -> str:
    return f"fake-registry target: {_target_spec(config)}"
