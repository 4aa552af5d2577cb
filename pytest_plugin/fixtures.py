"""The plugin's fixtures.

Layering (pytest-httpserver's pattern): one registry per session and xdist
worker (:func:`fake_registry_target`), and cheap per-test fixtures on top
that reset it, configure it from the ``fake_registry`` marker, and check it
at teardown.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_plugin.data import RegistryData, seed_for
from pytest_plugin.targets import Credentials, Target, build_target

__all__ = [
    "fake_backends",
    "fake_registry",
    "fake_registry_target",
    "registry_client",
    "registry_clock",
    "registry_credentials",
    "registry_data",
]

#: Unix time the shared manual clock is set to before each test.
CLOCK_START = 1_700_000_000.0
MARKER = "fake_registry"
CONTROL_MARKER = "fake_registry_control"
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
    spec = _option(pytestconfig, "fake-registry-target") or "inprocess"
    problem = ""
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
            image=_option(pytestconfig, "fake-registry-image"),
        )
    except (RuntimeError, ValueError) as exc:  # HarnessMissing is a RuntimeError
        problem = str(exc)
    if problem:  # failed outside the except block, so no chained traceback is shown
        pytest.fail(problem, pytrace=False)
    yield target
    target.close()


@pytest.fixture(autouse=True)
def _fake_registry_control_guard(request: pytest.FixtureRequest) -> None:
    """Skip a ``@pytest.mark.fake_registry_control`` test on a registry without control plane.

    Autouse, so it runs before the test's own fixtures; it starts the session's
    registry only for tests that carry the marker.
    """
    if request.node.get_closest_marker(CONTROL_MARKER) is None:
        return
    target: Target = request.getfixturevalue("fake_registry_target")
    if not target.has_control:
        pytest.skip(f"needs the fake's control plane: the target is {target.describe()}")


def _marker_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    # Closest marker last, so a function's marker overrides a class or module one.
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER} takes keyword arguments only "
                f"(got {len(marker.args)} positional)",
                pytrace=False,
            )
        unknown = set(marker.kwargs) - _MARKER_KEYS
        if unknown:
            pytest.fail(
                f"@pytest.mark.{MARKER}: unknown argument(s) {', '.join(sorted(unknown))} "
                f"(allowed: {', '.join(sorted(_MARKER_KEYS))})",
                pytrace=False,
            )
        config.update(marker.kwargs)
    return config


def _seed_services(request: pytest.FixtureRequest, seed: Any) -> list[Any]:
    """The marker's ``seed``: a list of services, or a seed file path.

    A relative path is looked up next to the test module first, then in the
    current directory.
    """
    if not isinstance(seed, str | os.PathLike):
        return list(seed)
    from fake_registry.seed import SeedError, load_seed

    path = Path(seed)
    if not path.is_absolute():
        beside = request.path.parent / path
        path = beside if beside.exists() else path
    try:
        return list(load_seed(path))
    except SeedError as exc:
        problem = f"@pytest.mark.{MARKER}(seed={str(seed)!r}): {path}: {exc}"
    pytest.fail(problem, pytrace=False)  # outside the except block: no chained traceback


def _configure(request: pytest.FixtureRequest, handle: Any, config: dict[str, Any]) -> None:
    if "clients" in config:
        clients = dict(config["clients"])
        for key in handle.clients():
            handle.remove_client(key)
        for key, secret in clients.items():
            handle.add_client(key, secret)
    if "token_ttl" in config:
        handle.set_token_ttl(config["token_ttl"])
    if "seed" in config:
        handle.seed(_seed_services(request, config["seed"]))


def _reset_clock(target: Target) -> None:
    if target.kind == "inprocess":
        target.clock.set_time(CLOCK_START)
    else:
        # A fake in another process runs on real time plus an offset; SDK clients
        # here read the real clock, so the fake goes back to real time (offset 0).
        target.clock.set_time(time.time())


@pytest.fixture
def fake_registry(request: pytest.FixtureRequest, fake_registry_target: Target) -> Iterator[Any]:
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
        pytest.skip(f"fake_registry needs the fake's control plane: {target.describe()}")
    handle = target.handle
    config = _marker_config(request)
    handle.reset()
    request.getfixturevalue("registry_clock")  # the clock is part of the reset
    _configure(request, handle, config)
    yield handle
    errors = handle.errors.take()  # in process, or fetched from the fake's process
    if errors:
        first = errors[0]
        for later in errors[1:]:
            first.add_note(f"also raised inside the fake: {later!r}")
        raise first


@pytest.fixture
def registry_clock(fake_registry_target: Target) -> Any:
    """The clock the fake reads, reset for each test.

    In process: a :class:`~fake_registry.ManualClock` shared with the fake (and
    with SDK clients the fixtures create), set to :data:`CLOCK_START`, so
    ``registry_clock.advance(3600)`` expires tokens and leases at once. For
    fakes in other processes: a proxy whose ``advance()`` moves the remote
    fake's time, which is set back to real time before each test.
    """
    clock = fake_registry_target.clock
    if clock is None:
        pytest.skip(
            f"registry_clock needs the fake's control plane: {fake_registry_target.describe()}"
        )
    _reset_clock(fake_registry_target)
    return clock


@pytest.fixture
def registry_credentials(
    request: pytest.FixtureRequest, fake_registry_target: Target
) -> Credentials:
    """The client key and secret the registry accepts (``.client_key``, ``.client_secret``).

    With ``@pytest.mark.fake_registry(clients={...})`` these are the marker's
    first client (the marker replaces the fake's clients), except on a
    registry without control plane, which the marker cannot configure.
    """
    clients = _marker_config(request).get("clients")
    if clients and fake_registry_target.has_control:
        key, secret = next(iter(dict(clients).items()))
        return Credentials(key, secret)
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
    failures: list[BaseException] = []
    for pool in reversed(pools):
        try:
            pool.stop()
        except Exception as exc:  # stop every pool, then report
            failures.append(exc)
    if failures:
        raise failures[0]


@pytest.fixture
def registry_client(
    fake_registry: Any, registry_credentials: Credentials, fake_registry_target: Target
) -> Iterator[Any]:
    """An :class:`sdk.Client` wired to the fake, closed after the test.

    In process it reads the fake's :class:`~fake_registry.ManualClock`
    (``registry_clock``), so advancing that clock moves the SDK's token
    renewals, heartbeats and cache ages too. For a fake in another process it
    runs on the system clock (time cannot be shared across processes).
    """
    from sdk import Client, Config  # the SDK needs no extra: grpcio and protobuf only

    clock = fake_registry_target.clock if fake_registry_target.kind == "inprocess" else None
    config = Config(
        fake_registry.address, registry_credentials.client_key, registry_credentials.client_secret
    )
    client = Client(config, clock=clock)
    try:
        yield client
    finally:
        client.close()
