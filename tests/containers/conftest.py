"""Container tests: the image (./Dockerfile), FakeRegistryContainer, the docker target.

Every test here runs the fake's image for real, so each one first asks
``tests.docker_gate.require_docker()``: without a Docker engine or the image,
the test is skipped with the reason (and fails instead under
``FAKE_REGISTRY_REQUIRE_DOCKER=1``, as in CI). Containers take about a second to
start, so the modules carry a larger per-test timeout than the suite's 60 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from fake_registry.container import FakeRegistryContainer
from protos.user.v1 import user_pb2, user_pb2_grpc
from tests.docker_gate import require_docker

StartContainer = Callable[..., FakeRegistryContainer]


@pytest.fixture(scope="session")
def image() -> str:
    """The image under test; skips (or, in CI, fails) when Docker cannot run it."""
    return require_docker()


@pytest.fixture(autouse=True)
def _docker_required(image: str) -> None:
    """Every container test needs Docker: gate it even if it never asks for ``image``."""


def _tracked(image: str) -> Iterator[StartContainer]:
    started: list[FakeRegistryContainer] = []

    def start(**options: Any) -> FakeRegistryContainer:
        container = FakeRegistryContainer(image, **options)
        started.append(container)
        return container.start()

    yield start
    for container in started:
        container.stop()


@pytest.fixture
def start_container(image: str) -> Iterator[StartContainer]:
    """``start_container(**FakeRegistryContainer options)``: started; removed after the test."""
    yield from _tracked(image)


@pytest.fixture(scope="module")
def start_module_container(image: str) -> Iterator[StartContainer]:
    """As ``start_container``, for containers a module shares."""
    yield from _tracked(image)


def _login(address: str, key: str, secret: str) -> user_pb2.AuthenticateClientResponse:
    with grpc.insecure_channel(address) as channel:
        stub = user_pb2_grpc.ClientAuthServiceStub(channel)
        request = user_pb2.AuthenticateClientRequest(client_key=key, client_secret=secret)
        return stub.AuthenticateClient(request, timeout=5)


@pytest.fixture
def login() -> Callable[[str, str, str], user_pb2.AuthenticateClientResponse]:
    """``login(address, key, secret)``: one AuthenticateClient call on a fresh channel."""
    return _login
