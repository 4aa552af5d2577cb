"""The plugin's fixtures.

Layering (pytest-httpserver's pattern): one registry per session and xdist
worker (:func:`fake_registry_target`), and cheap per-test fixtures on top
that reset it, configure it from the ``fake_registry`` marker, and check it
at teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_plugin.data import RegistryData, seed_for
from pytest_plugin.targets import Credentials, HarnessMissing, Target, build_target

__all__ = [
    "fake_backends",
    "fake_registry",
    "fake_registry_target",
    "registry_clock",
    "registry_credentials",
    "registry_data",
]

#: Unix time the shared manual clock is set to before each test.
CLOCK_START = 1_700_000_000.0
MARKER = "fake_registry"
_MARKER_KEYS = frozenset({"token_ttl", "clients", "seed", "faker_seed"})


def _option(config: pytest.Config, name: str) -> Any:
    """A command-line option, else its ini twin (CLI wins)."""
    value = config.getoption(name.replace("-", "_"), default=None)
    if value is None:
        value = config.getini(name.replace("-", "_")) or None
    return value


@pytest.fixture(scope="session")
def fake_registry_target(pytestconfig: pytest.Config) -> Iterator[Target]:
    """The session's registry (one per xdist worker): started once, closed at the end."""
    import os

    spec = _option(pytestconfig, "fake-registry-target") or "inprocess"
    try:
        target = build_target(
            spec,
            client_key=_option(pytestconfig, "fake-registry-client-key")
            or os.environ.get("FAKE_REGISTRY_CLIENT_KEY"),
            client_secret=_option(pytestconfig, "fake-registry-client-secret")
            or os.environ.get("FAKE_REGISTRY_CLIENT_SECRET"),
            control_token=_option(pytestconfig, "fake-registry-control-token")
            or os.environ.get("FAKE_REGISTRY_CONTROL_TOKEN"),
            log_level=_option(pytestconfig, "fake-registry-log"),
        )
    except (HarnessMissing, ValueError) as exc:
        pytest.fail(str(exc), pytrace=False)
    yield target
    target.close()


def _marker_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    # Closest marker last, so a function's marker overrides a class or module one.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(f"@pytest.mark.{MARKER} takes keyword arguments only", pytrace=False)
        unknown = set(marker.kwargs) - _MARKER_KEYS
        if unknown:
            pytest.fail(
                f"@pytest.mark.{MARKER}: unknown argument(s) {', '.join(sorted(unknown))} "
                f"(allowed: {', '.join(sorted(_MARKER_KEYS))})",
                pytrace=False,
            )
        config.update(marker.kwargs)
    return config


def _configure(handle: Any, config: dict[str, Any]) -> None:
    if "clients" in config:
        clients = dict(config["clients"])
        for key in handle.clients():
            handle.remove_client(key)
        for key, secret in clients.items():
            handle.add_client(key, secret)
    if "token_ttl" in config:
        handle.set_token_ttl(config["token_ttl"])
    if "seed" in config:
        seed = config["seed"]
        if isinstance(seed, str | bytes) or hasattr(seed, "__fspath__"):
            from fake_registry.seed import load_seed

            seed = load_seed(seed)
        handle.seed(list(seed))


@pytest.fixture
def fake_registry(
    request: pytest.FixtureRequest, fake_registry_target: Target, registry_clock: Any
) -> Iterator[Any]:
    """The fake, reset for this test; its methods are the control API.

    In process this is the :class:`~fake_registry.FakeRegistry` itself; for
    ``subprocess`` and external fakes it is a
    :class:`~fake_registry.control_client.ControlClient` with the same method
    names. ``@pytest.mark.fake_registry(token_ttl=..., clients=..., seed=...)``
    configures it for one test. At teardown, an unexpected error raised
    inside an in-process fake during the test is re-raised here.
    """
    target = fake_registry_target
    if target.handle is None:
        pytest.skip(f"the registry under test has no control plane ({target.describe()})")
    handle = target.handle
    handle.reset()
    config = _marker_config(request)
    _configure(handle, config)
    yield handle
    errors = handle.errors.take() if hasattr(handle, "errors") else []
    if errors:
        first = errors[0]
        for later in errors[1:]:
            first.add_note(f"also raised inside the fake: {later!r}")
        raise first


@pytest.fixture
def registry_clock(fake_registry_target: Target) -> Any:
    """The clock the fake reads, set to :data:`CLOCK_START` for each test.

    In process: a :class:`~fake_registry.ManualClock` shared with the fake (and
    with SDK clients the fixtures create), so ``registry_clock.advance(3600)``
    expires tokens and leases at once. For fakes in other processes: a proxy
    whose ``advance()`` moves the remote fake's time.
    """
    clock = fake_registry_target.clock
    if clock is None:
        pytest.skip("the registry under test has no controllable clock")
    if fake_registry_target.kind == "inprocess":
        clock.set_time(CLOCK_START)
    return clock


@pytest.fixture
def registry_credentials(fake_registry_target: Target) -> Credentials:
    """The client key and secret the registry accepts (``.client_key``, ``.client_secret``)."""
    return fake_registry_target.credentials


@pytest.fixture
def registry_data(request: pytest.FixtureRequest, fake_registry: Any) -> RegistryData:
    """A faker-backed factory that registers realistic services and instances.

    Deterministic per test: seeded from the test id, or from
    ``@pytest.mark.fake_registry(faker_seed=N)``.
    """
    seed = _marker_config(request).get("faker_seed")
    return RegistryData(fake_registry, seed_for(request.node.nodeid) if seed is None else seed)


@pytest.fixture
def fake_backends(fake_registry: Any) -> Iterator[Any]:
    """Start failable gRPC backends registered into the fake: ``fake_backends(n, ...)``.

    Takes the arguments of :func:`fake_registry.backends.start_backends`
    (``project``, ``name``, ``env``, ``ttl_seconds``, ``meta``) and returns
    a started pool; every pool is stopped after the test. In process only.
    """
    from fake_registry import FakeRegistry
    from fake_registry.backends import BackendPool, start_backends

    if not isinstance(fake_registry, FakeRegistry):
        pytest.skip("fake_backends registers into an in-process fake only")
    pools: list[BackendPool] = []

    def start(n: int = 3, **options: Any) -> BackendPool:
        pool = start_backends(fake_registry, n, **options)
        pools.append(pool)
        return pool

    yield start
    for pool in pools:
        pool.stop()
