"""FakeRegistryContainer(tls=True): a TLS fake in a container, verified by the SDK."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from fake_registry.container import TLS_SERVER_NAME, FakeRegistryContainer
from protos.user.v1 import user_pb2, user_pb2_grpc
from sdk import Client, Config, TlsConfig, Unavailable
from tests.containers.conftest import StartContainer

pytestmark = pytest.mark.timeout(300)

HEALTHY_WITHIN = 60.0  # real seconds: Docker runs the first check after its interval


@pytest.fixture(scope="module")
def tls_fake(start_module_container: StartContainer) -> FakeRegistryContainer:
    return start_module_container(clients={"tls-key": "tls-secret"}, tls=True)


def test_the_sdk_verifies_the_fake_against_its_ca(tls_fake: FakeRegistryContainer) -> None:
    assert tls_fake.tls is not None
    config = Config(
        tls_fake.address,
        "tls-key",
        "tls-secret",
        tls=TlsConfig(ca_pem=tls_fake.tls.ca_pem, server_name=TLS_SERVER_NAME),
        default_timeout=10,
    )
    with Client(config) as client:
        ensured = client.registry.ensure_service("shop", "cart")
        assert [v.service.id for v in client.registry.list_services("shop")] == [ensured.service.id]


def test_plaintext_and_untrusted_clients_are_refused(tls_fake: FakeRegistryContainer) -> None:
    request = user_pb2.AuthenticateClientRequest(client_key="tls-key", client_secret="tls-secret")
    with grpc.insecure_channel(tls_fake.address) as plain:
        with pytest.raises(grpc.RpcError) as refused:
            user_pb2_grpc.ClientAuthServiceStub(plain).AuthenticateClient(request, timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    config = Config(tls_fake.address, "tls-key", "tls-secret", tls=TlsConfig(), default_timeout=5)
    with Client(config) as client, pytest.raises(Unavailable):  # the system roots do not know it
        client.auth.token()


def test_the_control_plane_works_over_tls(tls_fake: FakeRegistryContainer) -> None:
    before = tls_fake.control.now()
    tls_fake.control.advance_clock(3600)
    assert tls_fake.control.now() >= before + 3600


def test_docker_reports_the_tls_container_healthy(tls_fake: FakeRegistryContainer) -> None:
    wrapped = tls_fake.get_wrapped_container()
    assert "--tls-ca" in wrapped.attrs["Config"]["Healthcheck"]["Test"]
    deadline = time.monotonic() + HEALTHY_WITHIN
    pause = threading.Event()  # never set: a bounded wait between polls
    status = "unknown"
    while time.monotonic() < deadline:
        wrapped.reload()
        status = wrapped.attrs["State"]["Health"]["Status"]
        if status != "starting":
            break
        pause.wait(0.25)
    assert status == "healthy", wrapped.attrs["State"]["Health"]


def test_the_key_stays_out_of_the_repr(tls_fake: FakeRegistryContainer) -> None:
    assert tls_fake.tls is not None
    key = tls_fake.tls.key_pem.decode()
    assert key not in repr(tls_fake.tls)
    assert key not in repr(tls_fake)
