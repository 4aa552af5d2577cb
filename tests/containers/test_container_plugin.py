"""The plugin's ``--fake-registry-target docker``, through inner pytest runs (pytester).

The inner sessions start the fake's image themselves, one container per
session and xdist worker, and remove it at the end.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.timeout(300)

_ENV = ("FAKE_REGISTRY_CLIENT_KEY", "FAKE_REGISTRY_CLIENT_SECRET", "FAKE_REGISTRY_CONTROL_TOKEN")


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(
        "[pytest]\n"
        "addopts = -p no:cacheprovider -p no:hypothesispytest --strict-markers --strict-config\n"
        "filterwarnings = error\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    return pytester


def _refuses(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            return False
    except ConnectionRefusedError:
        return True


FIXTURES = """
import json
import os

import grpc
import pytest
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc


def login(address, key, secret):
    request = user_pb2.AuthenticateClientRequest(client_key=key, client_secret=secret)
    with grpc.insecure_channel(address) as channel:
        return user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(request, timeout=5)


def test_target_is_a_container(fake_registry_target, fake_registry):
    assert fake_registry_target.kind == "docker"
    assert fake_registry_target.describe().startswith("docker registry at ")
    assert type(fake_registry).__name__ == "ControlClient"
    with open(os.environ["TARGETS_FILE"], "a") as out:
        out.write(json.dumps({"address": fake_registry.address}) + "\\n")


@pytest.mark.fake_registry(token_ttl=60)
def test_token_expires_when_the_clock_moves(fake_registry, registry_credentials, registry_clock):
    reply = login(fake_registry.address, registry_credentials.client_key,
                  registry_credentials.client_secret)
    bearer = (("authorization", f"Bearer {reply.access_token}"),)
    with grpc.insecure_channel(fake_registry.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        registry.ListServices(registry_pb2.ListServicesRequest(), metadata=bearer, timeout=5)
        registry_clock.advance(61)
        with pytest.raises(grpc.RpcError) as expired:
            registry.ListServices(registry_pb2.ListServicesRequest(), metadata=bearer, timeout=5)
    assert expired.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.fake_registry(clients={"alice": "alice-secret"})
def test_clients_marker(fake_registry, registry_credentials):
    assert fake_registry.clients() == ["alice"]
    assert registry_credentials.client_key == "alice"
    assert login(fake_registry.address, "alice", "alice-secret").access_token


def test_data_and_faults(fake_registry, registry_data, registry_credentials):
    service = registry_data.service(project="shop")
    assert len(fake_registry.instances()) == len(service["instances"])
    fake_registry.fail_next("AuthenticateClient", "UNAVAILABLE")
    with pytest.raises(grpc.RpcError):
        login(fake_registry.address, registry_credentials.client_key,
              registry_credentials.client_secret)
    assert [c.code for c in fake_registry.calls("AuthenticateClient")] == ["UNAVAILABLE"]


def test_each_test_starts_from_a_reset_fake(fake_registry):
    assert fake_registry.instances() == []
    assert fake_registry.faults() == []


def test_sdk_client_on_the_container(registry_client, fake_registry):
    ensured = registry_client.registry.ensure_service("shop", "cart")
    assert ensured.created
    assert [v.service.name for v in registry_client.registry.list_services("shop")] == ["cart"]
"""


def _addresses(path: Path) -> list[str]:
    return [json.loads(line)["address"] for line in path.read_text().splitlines()]


def test_docker_target_runs_the_plugins_fixtures(
    inner: pytest.Pytester, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = tmp_path / "targets.jsonl"
    monkeypatch.setenv("TARGETS_FILE", str(targets))
    inner.makepyfile(test_inner=FIXTURES)
    result = inner.runpytest(
        "--fake-registry-target", "docker", "--fake-registry-image", image, "-v"
    )
    result.stdout.fnmatch_lines(["fake-registry target: docker"])
    result.assert_outcomes(passed=6)
    (address,) = _addresses(targets)
    assert _refuses(address), "the session's container outlived the session"


def test_one_container_per_xdist_worker(
    inner: pytest.Pytester, image: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = tmp_path / "targets.jsonl"
    monkeypatch.setenv("TARGETS_FILE", str(targets))
    monkeypatch.setenv("FAKE_REGISTRY_IMAGE", image)  # the option's default
    body = "\n".join(
        f"def test_{i}(fake_registry_target, fake_registry):\n"
        f"    with open(os.environ['TARGETS_FILE'], 'a') as out:\n"
        f"        out.write(json.dumps({{'address': fake_registry.address}}) + '\\n')\n"
        for i in range(8)
    )
    inner.makepyfile(test_workers="import json\nimport os\n\n\n" + body)
    result = inner.runpytest_subprocess("--fake-registry-target", "docker", "-n", "2")
    result.assert_outcomes(passed=8)
    addresses = _addresses(targets)
    assert len(addresses) == 8
    assert len(set(addresses)) == 2, addresses
    assert all(_refuses(address) for address in set(addresses))


def test_a_missing_image_fails_the_session_with_how_to_build_it(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_missing="def test_needs_the_fake(fake_registry):\n    pass\n")
    missing = "aio-registry-fake:no-such-tag"
    result = inner.runpytest("--fake-registry-target", "docker", "--fake-registry-image", missing)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*--fake-registry-target docker: cannot start a container of {missing}*"]
    )
    result.stdout.fnmatch_lines([f"*(not built here? docker build -t {missing} .)*"])
