"""FakeRegistryContainer and the image: start, calls, control plane, options, health.

Every test runs the real image (``$FAKE_REGISTRY_IMAGE``) through a Docker
engine; see this directory's conftest for when they skip.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import grpc
import pytest

from fake_registry.container import CONTAINER_PORT, FakeRegistryContainer
from fake_registry.control_client import ControlClient
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2

pytestmark = pytest.mark.timeout(300)

StartContainer = Callable[..., FakeRegistryContainer]
Login = Callable[[str, str, str], user_pb2.AuthenticateClientResponse]
KEY, SECRET = "ci-key", "ci-secret-value"
HEALTHY_WITHIN = 90.0  # real seconds: the image checks every 5 s, after a 10 s grace


@pytest.fixture(scope="module")
def shared(start_module_container: StartContainer) -> FakeRegistryContainer:
    """One container for the tests that only call it: two clients, 30 s tokens."""
    return start_module_container(clients={KEY: SECRET, "other": "other-secret"}, token_ttl=30)


@pytest.fixture
def fake(shared: FakeRegistryContainer) -> FakeRegistryContainer:
    """The shared container, reset (data, faults, journal, clock) for this test."""
    shared.control.reset()
    shared.control.set_time(time.time())
    return shared


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


# --- start and calls ------------------------------------------------------------


def test_start_returns_once_the_fake_answers(fake: FakeRegistryContainer, login: Login) -> None:
    port = fake.address.rsplit(":", 1)[1]
    assert int(port) == fake.get_exposed_port(CONTAINER_PORT)
    reply = login(fake.address, KEY, SECRET)
    assert reply.token_type == "Bearer"
    assert reply.access_token


def test_registry_calls_round_trip(fake: FakeRegistryContainer, login: Login) -> None:
    token = login(fake.address, KEY, SECRET).access_token
    with grpc.insecure_channel(fake.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        ensured = registry.EnsureService(
            registry_pb2.EnsureServiceRequest(project="shop", name="cart"),
            metadata=_bearer(token),
            timeout=5,
        )
        registry.RegisterInstance(
            registry_pb2.RegisterInstanceRequest(
                service_id=ensured.service.id,
                instance_key="cart-1",
                env="prod",
                host="10.0.0.5",
                grpc_port=9000,
                endpoint="10.0.0.5:9000",
                ttl_seconds=60,
            ),
            metadata=_bearer(token),
            timeout=5,
        )
        listed = registry.ListServices(
            registry_pb2.ListServicesRequest(project="shop"), metadata=_bearer(token), timeout=5
        )
    assert [s.service.name for s in listed.services] == ["cart"]
    assert [i.instance_key for i in listed.services[0].instances] == ["cart-1"]
    assert [i.instance_key for i in fake.control.instances(online=True)] == ["cart-1"]


# --- options ----------------------------------------------------------------------


def test_clients_replace_the_default_credential(fake: FakeRegistryContainer, login: Login) -> None:
    assert fake.clients == {KEY: SECRET, "other": "other-secret"}
    assert sorted(fake.control.clients()) == sorted([KEY, "other"])
    assert login(fake.address, "other", "other-secret").access_token
    with pytest.raises(grpc.RpcError) as refused:
        login(fake.address, "demo-key", "demo-secret")
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED


def test_token_ttl_sets_the_token_lifetime(fake: FakeRegistryContainer, login: Login) -> None:
    before = int(fake.control.now())
    reply = login(fake.address, KEY, SECRET)
    assert before <= reply.expires_at - 30 <= fake.control.now()


def test_without_clients_the_fake_accepts_its_default(
    start_container: StartContainer, login: Login
) -> None:
    container = start_container()
    assert container.clients is None
    assert login(container.address, "demo-key", "demo-secret").access_token


def test_seed_file_is_copied_in_and_loaded(
    start_container: StartContainer, tmp_path: Path, login: Login
) -> None:
    seed = tmp_path / "seeds.toml"
    seed.write_text(
        '[[services]]\nproject = "shop"\nname = "cart"\n\n'
        '[[services.instances]]\ninstance_key = "cart-prod-1"\nenv = "prod"\n'
        'host = "10.0.0.5"\ngrpc_port = 9000\nttl_seconds = 86400\n\n'
        '[[services]]\nproject = "shop"\nname = "payments"\n'
    )
    container = start_container(seed=seed, fake_services=3, faker_seed=7)
    assert "seeded 2 services, 1 instances (seed file /seed/seeds.toml)" in container.logs()
    assert "(faker seed 7)" in container.logs()
    token = login(container.address, "demo-key", "demo-secret").access_token
    with grpc.insecure_channel(container.address) as channel:
        listed = registry_pb2_grpc.RegistryServiceStub(channel).ListServices(
            registry_pb2.ListServicesRequest(project="shop"), metadata=_bearer(token), timeout=5
        )
    assert sorted(s.service.name for s in listed.services) == ["cart", "payments"]
    # Seeded data is what a reset returns to.
    container.control.wipe()
    assert container.control.instances() == []
    container.control.reset()
    assert "cart-prod-1" in {i.instance_key for i in container.control.instances(online=True)}


def test_a_missing_seed_file_is_refused_before_docker_is_asked(image: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.toml"):
        FakeRegistryContainer(image, seed=tmp_path / "nowhere.toml")


def test_a_bad_flag_fails_start_with_the_fakes_error_and_removes_the_container(
    image: str,
) -> None:
    name = f"fake-registry-test-{uuid.uuid4().hex[:12]}"
    container = FakeRegistryContainer(image, token_ttl=0, name=name)
    with pytest.raises(RuntimeError) as failed:
        container.start()
    message = str(failed.value)
    assert "exited while starting, exit code 2" in message
    assert "argument --token-ttl: must be a positive integer (got 0)" in message
    client = docker.from_env()
    try:
        assert client.containers.list(all=True, filters={"name": name}) == []
    finally:
        client.close()


# --- the control plane --------------------------------------------------------------


def test_control_plane_moves_time_and_injects_faults(
    fake: FakeRegistryContainer, login: Login
) -> None:
    token = login(fake.address, KEY, SECRET).access_token
    fake.control.advance_clock(31)  # past the 30 s lifetime
    with grpc.insecure_channel(fake.address) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as expired:
            registry.ListServices(
                registry_pb2.ListServicesRequest(), metadata=_bearer(token), timeout=5
            )
    assert expired.value.code() is grpc.StatusCode.UNAUTHENTICATED

    fake.control.fail_next("AuthenticateClient", "UNAVAILABLE")
    with pytest.raises(grpc.RpcError) as failed:
        login(fake.address, KEY, SECRET)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    assert login(fake.address, KEY, SECRET).access_token
    codes = [call.code for call in fake.control.calls("AuthenticateClient")]
    assert codes == ["OK", "UNAVAILABLE", "OK"]


def test_control_plane_needs_the_containers_token(fake: FakeRegistryContainer) -> None:
    assert len(fake.control_token) >= 32
    with ControlClient(fake.address) as anonymous, pytest.raises(grpc.RpcError) as refused:
        anonymous.now()
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with ControlClient(fake.address, control_token=fake.control_token) as client:
        assert abs(client.now() - time.time()) < 60


def test_each_container_gets_its_own_control_token(image: str) -> None:
    first, second = FakeRegistryContainer(image), FakeRegistryContainer(image)
    assert first.control_token != second.control_token
    chosen = FakeRegistryContainer(image, control_token="my-token-value")
    assert chosen.control_token == "my-token-value"


# --- the image ------------------------------------------------------------------------


def test_image_runs_as_non_root_listening_on_all_interfaces(fake: FakeRegistryContainer) -> None:
    result = fake.exec(["id", "-u", "-n"])
    assert result.exit_code == 0
    assert result.output.decode().strip() == "fake-registry"
    assert fake.logs().splitlines()[0] == f"listening on 0.0.0.0:{CONTAINER_PORT}"
    config = fake.get_wrapped_container().image.attrs["Config"]
    assert f"{CONTAINER_PORT}/tcp" in config["ExposedPorts"]
    assert config["User"] == "fake-registry:fake-registry"


def test_health_command_inside_the_container(fake: FakeRegistryContainer) -> None:
    result = fake.exec(["fake-registry", "health", "--target", f"127.0.0.1:{CONTAINER_PORT}"])
    assert (result.exit_code, result.output.decode().strip()) == (0, "SERVING")


def test_docker_reports_the_container_healthy(start_container: StartContainer) -> None:
    container = start_container()
    wrapped = container.get_wrapped_container()
    healthcheck = wrapped.image.attrs["Config"]["Healthcheck"]
    assert healthcheck["Test"][:3] == ["CMD", "fake-registry", "health"]
    deadline = time.monotonic() + HEALTHY_WITHIN
    status = "unknown"
    pause = threading.Event()  # never set: a bounded wait between polls
    while time.monotonic() < deadline:
        wrapped.reload()
        status = wrapped.attrs["State"]["Health"]["Status"]
        if status != "starting":
            break
        pause.wait(0.25)
    health = wrapped.attrs["State"]["Health"]
    assert status == "healthy", health
    assert health["Log"][-1]["ExitCode"] == 0
    assert health["Log"][-1]["Output"].strip() == "SERVING"


# --- secrets -------------------------------------------------------------------------


def test_secrets_stay_out_of_repr_and_logs(fake: FakeRegistryContainer) -> None:
    shown = repr(fake)
    assert shown == f"FakeRegistryContainer(image={fake.image!r}, address={fake.address!r})"
    logs = fake.logs()
    assert f"client {KEY} (secret as given)" in logs
    for secret in (SECRET, "other-secret", fake.control_token):
        assert secret not in shown
        assert secret not in logs
    assert fake.control_token not in repr(fake.control)


def test_stop_removes_the_container_and_is_idempotent(start_container: StartContainer) -> None:
    container = start_container()
    container_id = container.get_container_id()
    container.stop()
    container.stop()
    client = docker.from_env()
    try:
        assert client.containers.list(all=True, filters={"id": container_id}) == []
    finally:
        client.close()
    assert repr(container) == (
        f"FakeRegistryContainer(image={container.image!r}, address='not started')"
    )
