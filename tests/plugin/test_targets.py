"""Where the registry under test runs: a subprocess, HOST:PORT, or nowhere usable."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from fake_registry import FakeRegistry

EXT_KEY, EXT_SECRET = "ext-key", "ext-secret"  # what outer_fake and real_registry accept
CONTROL_TOKEN = "outer-control-token"

pytest_plugins = ["pytester"]

# --- subprocess ---------------------------------------------------------------

SUBPROCESS = """
import json
import pathlib
import time

import grpc
import pytest
from fake_registry.control_client import ControlClient
from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

OUT = pathlib.Path(__file__).parent / "address.json"


def login(channel, credentials):
    request = user_pb2.AuthenticateClientRequest(
        client_key=credentials.client_key, client_secret=credentials.client_secret
    )
    return user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(request, timeout=5)


def test_real_calls_through_the_generated_stubs(
    fake_registry, fake_registry_target, registry_credentials, registry_clock, registry_data
):
    assert isinstance(fake_registry, ControlClient)
    assert fake_registry_target.kind == "subprocess"
    assert abs(registry_clock.time() - time.time()) < 60  # real time, offset 0
    OUT.write_text(json.dumps(fake_registry.address))
    with grpc.insecure_channel(fake_registry.address) as channel:
        token = login(channel, registry_credentials).access_token
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        bearer = (("authorization", f"Bearer {token}"),)
        created = registry.EnsureService(
            registry_pb2.EnsureServiceRequest(project="shop", name="cart"),
            metadata=bearer,
            timeout=5,
        )
        assert created.created
        made = registry_data.services(2)
        request = registry_pb2.ListServicesRequest()
        listed = registry.ListServices(request, metadata=bearer, timeout=5)
    assert listed.total == 1 + len(made)
    assert [c.code for c in fake_registry.calls("EnsureService")] == ["OK"]
    # Leave everything changed: the next test must not see it.
    before = fake_registry.now()
    registry_clock.advance(30 * 86_400)
    assert fake_registry.now() >= before + 30 * 86_400
    fake_registry.add_fault("*", code="UNAVAILABLE")
    fake_registry.add_client("intruder", "intruder-secret")
    fake_registry.set_token_ttl(5)


@pytest.mark.fake_registry(
    token_ttl=90,
    clients={"alice": "alice-secret"},
    seed=[{"project": "shop", "name": "cart", "instances": [{"instance_key": "cart-1"}]}],
)
def test_the_next_test_gets_a_fake_as_new_and_the_marker_applies(
    fake_registry, registry_credentials, registry_clock
):
    assert abs(registry_clock.time() - time.time()) < 60
    assert fake_registry.faults() == []
    assert fake_registry.clients() == ["alice"]
    assert registry_credentials.client_key == "alice"
    assert [i.instance_key for i in fake_registry.instances()] == ["cart-1"]
    with grpc.insecure_channel(fake_registry.address) as channel:
        reply = login(channel, registry_credentials)
    assert reply.expires_at - registry_clock.time() == pytest.approx(90, abs=5)


@pytest.mark.fake_registry_control
def test_control_marker_runs(fake_registry):
    assert fake_registry.calls() == []


def test_fake_backends_need_an_in_process_fake(fake_backends):
    pass
"""


def test_the_subprocess_target_runs_python_m_fake_registry_for_the_session(
    inner: pytest.Pytester, refuses: Callable[[str], bool]
) -> None:
    inner.makepyfile(test_subprocess_target=SUBPROCESS)
    result = inner.runpytest("--fake-registry-target", "subprocess", "-rs")
    result.stdout.fnmatch_lines(
        [
            "fake-registry target: subprocess",
            "SKIPPED*fake_backends registers into an in-process fake only",
        ]
    )
    result.assert_outcomes(passed=3, skipped=1)
    address = json.loads((inner.path / "address.json").read_text())
    assert refuses(address)  # the session's fake ended with the session


PER_WORKER = """
import json
import pathlib
import time

import pytest

OUT = pathlib.Path(__file__).parent / "seen"


@pytest.mark.parametrize("run", range(6))
def test_each_worker_has_its_own_fake(run, worker_id, fake_registry, registry_clock):
    assert fake_registry.faults() == [] and fake_registry.instances() == []
    assert fake_registry.clients() == ["pytest-key"]
    assert abs(registry_clock.time() - time.time()) < 60
    fake_registry.seed([{"project": "p", "name": "s", "instances": [{"instance_key": "i"}]}])
    fake_registry.add_fault("*", code="UNAVAILABLE")
    fake_registry.add_client("intruder", "intruder-secret")
    registry_clock.advance(86_400)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{run}.json").write_text(json.dumps([worker_id, fake_registry.address]))
"""


def test_under_xdist_each_worker_runs_its_own_subprocess_fake(
    inner: pytest.Pytester, refuses: Callable[[str], bool]
) -> None:
    inner.makepyfile(test_per_worker=PER_WORKER)
    result = inner.runpytest_subprocess(
        "-n", "2", "--fake-registry-target=subprocess", "--assert=plain", timeout=60
    )
    result.assert_outcomes(passed=6)
    runs = [json.loads(p.read_text()) for p in (inner.path / "seen").glob("*.json")]
    by_worker = {w: {address for worker, address in runs if worker == w} for w, _ in runs}
    assert sorted(by_worker) == ["gw0", "gw1"]
    assert all(len(addresses) == 1 for addresses in by_worker.values()), by_worker
    (first,), (second,) = by_worker.values()
    assert first != second
    assert refuses(first)
    assert refuses(second)


# --- HOST:PORT ----------------------------------------------------------------

EXTERNAL = """
import pytest
from fake_registry.control_client import ControlClient

def test_drives_the_running_fake(fake_registry, fake_registry_target, registry_credentials):
    assert isinstance(fake_registry, ControlClient)
    assert fake_registry_target.kind == "external"
    assert fake_registry.address == fake_registry_target.address
    assert registry_credentials.client_key == "ext-key"
    fake_registry.add_fault("ListServices", code="UNAVAILABLE")
    fake_registry.seed([{"project": "leak", "name": "svc"}])

@pytest.mark.fake_registry_control
def test_reset_between_tests(fake_registry):
    assert fake_registry.faults() == []
    assert fake_registry.instances() == []
    left = {"project": "left", "name": "behind", "instances": [{"instance_key": "x"}]}
    fake_registry.seed([left])
"""


def test_a_host_port_target_with_credentials_and_control_token(
    inner: pytest.Pytester, outer_fake: Callable[..., FakeRegistry]
) -> None:
    fake = outer_fake(control_token=CONTROL_TOKEN)
    inner.makepyfile(test_external=EXTERNAL)
    result = inner.runpytest(
        f"--fake-registry-target={fake.address}",
        f"--fake-registry-client-key={EXT_KEY}",
        f"--fake-registry-client-secret={EXT_SECRET}",
        f"--fake-registry-control-token={CONTROL_TOKEN}",
    )
    result.stdout.fnmatch_lines([f"fake-registry target: {fake.address}"])
    result.assert_outcomes(passed=2)
    # The inner run drove this very fake: what its last test left is here.
    assert [(s.project, s.name) for s in fake.services()] == [("left", "behind")]


def test_a_host_port_target_without_credentials_fails_naming_the_options(
    inner: pytest.Pytester, outer_fake: Callable[..., FakeRegistry]
) -> None:
    fake = outer_fake()
    inner.makepyfile(
        """
        def test_plain():
            pass

        def test_fake(fake_registry):
            pass
        """
    )
    result = inner.runpytest(
        f"--fake-registry-target={fake.address}", f"--fake-registry-client-key={EXT_KEY}"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*--fake-registry-target {fake.address} needs credentials: set "
            "--fake-registry-client-key and --fake-registry-client-secret "
            "(or the ini options / FAKE_REGISTRY_CLIENT_KEY and FAKE_REGISTRY_CLIENT_SECRET)"
        ]
    )


def test_a_fake_whose_control_token_is_missing_skips_saying_which_option_to_set(
    inner: pytest.Pytester, outer_fake: Callable[..., FakeRegistry]
) -> None:
    fake = outer_fake(control_token=CONTROL_TOKEN)
    inner.makepyfile("def test_fake(fake_registry):\n    pass\n")
    result = inner.runpytest(
        f"--fake-registry-target={fake.address}",
        f"--fake-registry-client-key={EXT_KEY}",
        f"--fake-registry-client-secret={EXT_SECRET}",
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            f"SKIPPED*fake_registry needs the fake's control plane: external registry at "
            f"{fake.address} without control plane (its control service refused the control "
            "token: pass --fake-registry-control-token or FAKE_REGISTRY_CONTROL_TOKEN)"
        ]
    )


NO_CONTROL = """
import grpc
import pytest
from protos.user.v1 import user_pb2, user_pb2_grpc

@pytest.mark.fake_registry_control
def test_control_marked_first(fake_registry_target):
    raise AssertionError("must be skipped")

def test_uses_the_fake(fake_registry):
    raise AssertionError("must be skipped")

def test_uses_the_clock(registry_clock):
    raise AssertionError("must be skipped")

@pytest.mark.fake_registry(clients={"unused": "the marker cannot apply here"})
def test_logs_in_with_the_credentials(fake_registry_target, registry_credentials):
    assert registry_credentials.client_key == "ext-key"
    request = user_pb2.AuthenticateClientRequest(
        client_key=registry_credentials.client_key,
        client_secret=registry_credentials.client_secret,
    )
    with grpc.insecure_channel(fake_registry_target.address) as channel:
        stub = user_pb2_grpc.ClientAuthServiceStub(channel)
        assert stub.AuthenticateClient(request, timeout=5).access_token == "real-registry-token"
"""


def test_a_registry_without_control_plane_skips_what_needs_one(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, real_registry: str
) -> None:
    monkeypatch.setenv("FAKE_REGISTRY_CLIENT_KEY", EXT_KEY)
    monkeypatch.setenv("FAKE_REGISTRY_CLIENT_SECRET", EXT_SECRET)
    inner.makepyfile(test_no_control=NO_CONTROL)
    result = inner.runpytest(f"--fake-registry-target={real_registry}", "-rs")
    result.assert_outcomes(passed=1, skipped=3)
    where = f"external registry at {real_registry} without control plane"
    result.stdout.fnmatch_lines_random(
        [
            f"SKIPPED*:5: needs the fake's control plane: the target is {where}",
            f"SKIPPED*:9: fake_registry needs the fake's control plane: {where}",
            f"SKIPPED*:12: registry_clock needs the fake's control plane: {where}",
        ]
    )


def test_an_unreachable_host_port_fails_the_tests_that_need_it(
    inner: pytest.Pytester, free_port: int
) -> None:
    inner.makepyfile("def test_fake(registry_credentials):\n    pass\n")
    address = f"127.0.0.1:{free_port}"
    result = inner.runpytest(
        f"--fake-registry-target={address}",
        f"--fake-registry-client-key={EXT_KEY}",
        f"--fake-registry-client-secret={EXT_SECRET}",
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*cannot reach the registry at {address}: UNAVAILABLE"])


def test_the_control_marker_runs_on_the_in_process_fake(inner: pytest.Pytester) -> None:
    inner.makepyfile(
        """
        import pytest

        @pytest.mark.fake_registry_control
        def test_first_in_the_session(fake_registry_target):
            assert fake_registry_target.has_control

        @pytest.mark.fake_registry_control
        class TestControlled:
            def test_in_a_class(self, fake_registry):
                fake_registry.advance_clock(1)
        """
    )
    inner.runpytest().assert_outcomes(passed=2)


# --- without the testing extra ---------------------------------------------------

BLOCK_JWT = """
# Loaded with -p before any plugin: makes pyjwt look uninstalled.
import sys


class _NoJwt:
    def find_spec(self, name, path=None, target=None):
        if name == "jwt" or name.startswith("jwt."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.modules.pop("jwt", None)
sys.meta_path.insert(0, _NoJwt())
"""


def test_without_the_testing_extra_the_plugin_loads_and_fixtures_name_the_extra(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(
        block_jwt=BLOCK_JWT,
        test_no_extra="""
        import pytest

        def test_plain():
            with pytest.raises(ImportError):
                import jwt  # noqa: F401

        @pytest.mark.fake_registry(token_ttl=5)
        def test_fake(fake_registry):
            pass

        def test_data(registry_data):
            pass
        """,
    )
    result = inner.runpytest_subprocess("-p", "block_jwt", "--assert=plain", timeout=60)
    result.stdout.fnmatch_lines(["fake-registry target: inprocess"])  # the plugin loaded
    result.assert_outcomes(passed=1, errors=2)
    message = (
        "the fake registry fixtures need the 'testing' extra: "
        "pip install 'aio-registry-sdk[testing]' (missing module: jwt)"
    )
    lines = result.stdout.lines
    for test in ("test_fake", "test_data"):
        header = next(i for i, line in enumerate(lines) if f"ERROR at setup of {test} " in line)
        assert lines[header + 1] == message  # the message alone, no traceback
    # Exactly those two lines: no traceback repeats it. (The short summary may
    # quote it too, truncated or not depending on the terminal's width.)
    assert sum(line == message for line in lines) == 2
    assert "Traceback" not in result.stdout.str()
