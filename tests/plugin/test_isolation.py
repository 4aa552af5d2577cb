"""Nothing a test does to the fake reaches the next test: in one process and under xdist.

The inner module is one parametrized test run several times: each run first
checks that the fake is as new, then changes everything it can (data, fault
rules, stream controls, the clock, clients, token lifetime, switches, the
journal). Whatever order the runs take, on one worker or two, a leak fails the
run after the one that caused it.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

pytest_plugins = ["pytester"]

RUNS = 8

ISOLATION = f"""
import json
import pathlib

import grpc
import pytest
from fake_registry.interceptors import DEFAULT_EXEMPT_METHODS
from fake_registry.state.auth import DEFAULT_TOKEN_TTL
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

OUT = pathlib.Path(__file__).parent / "seen"


def assert_as_new(fake, clock, credentials):
    assert clock.time() == fake.now() == 1_700_000_000.0
    assert fake.services() == [] and fake.instances() == []
    assert fake.faults() == [] and fake._streams.controls() == []
    assert fake.calls() == [] and fake.errors.take() == []
    assert fake.clients() == ["pytest-key"]
    assert fake.token_ttl == DEFAULT_TOKEN_TTL
    assert fake.exempt_methods == DEFAULT_EXEMPT_METHODS
    assert (fake.authentications, fake.renewals) == (0, 0)
    with fake._world.lock:  # switches with no public getter
        assert fake._world.auth_enabled
        assert not fake._world.registry.reregister_quirk
        assert fake._world.registry.ensure_race_failures == 0
        assert fake._world.registry.zero_answer_keys == set()
    # And as a client sees it: login works, tokens are required, nothing is registered.
    with grpc.insecure_channel(fake.address) as channel:
        login = user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
            user_pb2.AuthenticateClientRequest(
                client_key=credentials.client_key, client_secret=credentials.client_secret
            ),
            timeout=5,
        )
        assert login.expires_at == 1_700_000_000 + DEFAULT_TOKEN_TTL
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            registry.ListServices(registry_pb2.ListServicesRequest(), timeout=5)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        bearer = (("authorization", f"Bearer {{login.access_token}}"),)
        request = registry_pb2.ListServicesRequest()
        assert registry.ListServices(request, metadata=bearer, timeout=5).total == 0


def change_everything(fake, clock, data):
    data.services(2)
    service = fake.ensure_service("leak", "svc")
    fake.register_instance(service.id, "leak-1")
    fake.add_fault("*", code="UNAVAILABLE")
    fake.fail_next("ListServices", "INTERNAL")
    fake.end_streams_after(1)
    fake.delay_answers(5)
    fake.answer_zero("leak-1")
    clock.advance(10 * 86_400)
    fake.add_client("intruder", "intruder-secret")
    fake.remove_client("pytest-key")
    fake.set_token_ttl(5)
    fake.set_auth_enabled(False)
    fake.set_exempt_methods([])
    fake.set_reregister_quirk(True)
    fake.fail_ensure_service_race(3)


@pytest.mark.parametrize("run", range({RUNS}))
def test_each_test_gets_a_fake_as_new(
    run, worker_id, fake_registry, registry_clock, registry_credentials, registry_data
):
    assert_as_new(fake_registry, registry_clock, registry_credentials)
    change_everything(fake_registry, registry_clock, registry_data)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{{run}}.json").write_text(json.dumps([worker_id, fake_registry.address]))


def test_the_clock_alone_is_reset_too(registry_clock):
    registry_clock.set_time(42)


@pytest.mark.parametrize("run", range(2))
def test_after_the_clock_alone(run, fake_registry, registry_clock):
    assert registry_clock.time() == fake_registry.now() == 1_700_000_000.0
    registry_clock.advance(1)
"""


def seen(pytester: pytest.Pytester) -> list[tuple[str, str]]:
    """(worker id, fake address) of each run of the parametrized test."""
    return [tuple(json.loads(p.read_text())) for p in (pytester.path / "seen").glob("*.json")]


def test_nothing_leaks_into_the_next_test(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_leaks=ISOLATION)
    result = inner.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=RUNS + 3)
    assert {worker for worker, _ in seen(inner)} == {"master"}


def test_nothing_leaks_into_the_next_test_under_xdist(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_leaks=ISOLATION)
    # --assert=plain: no assertion rewriting of faker and the harness in three
    # fresh processes, which costs seconds where bytecode is not cached.
    result = inner.runpytest_subprocess("-n", "2", "--assert=plain", timeout=60)
    result.assert_outcomes(passed=RUNS + 3)
    runs = seen(inner)
    assert len(runs) == RUNS
    per_worker = Counter(worker for worker, _ in runs)
    assert sorted(per_worker) == ["gw0", "gw1"]
    # Each worker ran the test more than once, so a leak would have been seen...
    assert min(per_worker.values()) >= 2, per_worker
    # ...and each worker had a fake of its own.
    addresses = {worker: {address for w, address in runs if w == worker} for worker in per_worker}
    assert all(len(a) == 1 for a in addresses.values()), addresses
    assert addresses["gw0"] != addresses["gw1"]
