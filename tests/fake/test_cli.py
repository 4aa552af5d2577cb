"""The standalone fake as a real process: ``python -m fake_registry ...``.

Every wait is bounded: the first stdout line is read by a thread and fetched
with a timeout (``Standalone`` and the ``standalone`` fixture, in conftest.py),
and exits are awaited with ``Popen.wait(timeout)``. Calls go through the
generated stubs over loopback.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from protos.registry.v1 import registry_pb2, registry_pb2_grpc
from protos.user.v1 import user_pb2, user_pb2_grpc

if TYPE_CHECKING:
    from tests.fake.conftest import Exited, Standalone

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 15.0  # generous: a loaded CI machine; a start normally takes ~0.3 s

SEED = {
    "toml": """
[[services]]
project = "shop"
name = "cart"
owner = "team-shop"
spec = { proto = "shop.cart.v1.CartService" }

[[services.instances]]
instance_key = "cart-1"
env = "prod"
host = "10.0.0.5"
grpc_port = 9000
ttl_seconds = 3600
meta = { zone = "eu-west-1a" }

[[services]]
project = "shop"
name = "payments"
""",
    "json": """{"services": [
  {"project": "shop", "name": "cart", "owner": "team-shop",
   "spec": {"proto": "shop.cart.v1.CartService"},
   "instances": [{"instance_key": "cart-1", "env": "prod", "host": "10.0.0.5",
                  "grpc_port": 9000, "ttl_seconds": 3600, "meta": {"zone": "eu-west-1a"}}]},
  {"project": "shop", "name": "payments"}
]}""",
}


def authenticate(address: str, key: str, secret: str) -> user_pb2.AuthenticateClientResponse:
    with grpc.insecure_channel(address) as channel:
        return user_pb2_grpc.ClientAuthServiceStub(channel).AuthenticateClient(
            user_pb2.AuthenticateClientRequest(client_key=key, client_secret=secret), timeout=5
        )


def list_services(address: str, key: str, secret: str) -> registry_pb2.ListServicesResponse:
    token = authenticate(address, key, secret).access_token
    with grpc.insecure_channel(address) as channel:
        return registry_pb2_grpc.RegistryServiceStub(channel).ListServices(
            registry_pb2.ListServicesRequest(),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=5,
        )


def without_timestamps(reply: registry_pb2.ListServicesResponse) -> str:
    copy = registry_pb2.ListServicesResponse()
    copy.CopyFrom(reply)
    for entry in copy.services:
        entry.service.created_at = entry.service.updated_at = 0
        for inst in entry.instances:
            inst.created_at = inst.updated_at = inst.last_heartbeat_at = 0
    return str(copy)


def assert_clean_exit(exited: Exited) -> None:
    assert exited.code == 0, exited.stderr
    assert "Traceback" not in exited.stderr
    assert "Exception" not in exited.stderr


# --- serving ---------------------------------------------------------------------


def test_default_credential_then_sigterm_exits_cleanly(standalone: type[Standalone]) -> None:
    fake = standalone("--port", "0")
    address = fake.address()
    reply = list_services(address, "demo-key", "demo-secret")
    assert reply.total == 0

    exited = fake.stop(signal.SIGTERM)
    assert_clean_exit(exited)
    assert "client demo-key (the default; secret: demo-secret)" in exited.stdout.splitlines()


def test_clients_and_token_ttl_then_sigint_exits_cleanly(standalone: type[Standalone]) -> None:
    fake = standalone(
        "--client", "alpha:s3cret-alpha", "--client", "beta:s3cret:with:colons", "--token-ttl", "90"
    )
    address = fake.address()
    before = time.time()
    alpha = authenticate(address, "alpha", "s3cret-alpha")
    assert 80 <= alpha.expires_at - before <= 91  # 90 s from the server's now, truncated
    assert authenticate(address, "beta", "s3cret:with:colons").access_token
    with pytest.raises(grpc.RpcError) as info:
        authenticate(address, "demo-key", "demo-secret")  # no default once --client is given
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED

    exited = fake.stop(signal.SIGINT)
    assert_clean_exit(exited)
    lines = exited.stdout.splitlines()
    assert {"client alpha (secret as given)", "client beta (secret as given)"} <= set(lines)
    assert "token ttl 90 s" in lines
    assert "s3cret" not in exited.stdout + exited.stderr


@pytest.mark.parametrize("kind", ["toml", "json"])
def test_seed_file_preloads_services(
    standalone: type[Standalone], tmp_path: Path, kind: str
) -> None:
    seed = tmp_path / f"seeds.{kind}"
    seed.write_text(SEED[kind], encoding="utf-8")
    fake = standalone("--seed", str(seed))
    reply = list_services(fake.address(), "demo-key", "demo-secret")

    assert [(e.service.project, e.service.name) for e in reply.services] == [
        ("shop", "payments"),
        ("shop", "cart"),
    ]
    cart = reply.services[1]
    assert (cart.service.owner, cart.service.spec_json) == (
        "team-shop",
        '{"proto":"shop.cart.v1.CartService"}',
    )
    (inst,) = cart.instances
    assert (inst.instance_key, inst.env, inst.host, inst.endpoint, inst.ttl_seconds) == (
        "cart-1",
        "prod",
        "10.0.0.5",
        "10.0.0.5:9000",
        3600,
    )
    assert inst.meta_json == '{"zone":"eu-west-1a"}'
    exited = fake.stop(signal.SIGTERM)
    assert_clean_exit(exited)
    assert f"seeded 2 services, 1 instances (seed file {seed})" in exited.stdout.splitlines()


def test_fake_services_are_identical_for_the_same_seed(standalone: type[Standalone]) -> None:
    args = ("--fake-services", "5", "--faker-seed", "7")
    first, second = standalone(*args), standalone(*args)  # started together: one wait
    replies = [list_services(p.address(), "demo-key", "demo-secret") for p in (first, second)]

    assert replies[0].total == 5
    assert sum(len(e.instances) for e in replies[0].services) >= 5
    assert without_timestamps(replies[0]) == without_timestamps(replies[1])
    for proc in (first, second):
        assert_clean_exit(proc.stop(signal.SIGTERM))


# --- errors ------------------------------------------------------------------------

# id -> (arguments, expected exit code, expected start of the message after
# "fake-registry: error: "); {tmp} and {port} are filled in by the fixture.
ERROR_CASES = {
    "bad-flag": (["--bogus"], 2, "unrecognized arguments: --bogus"),
    "bad-ttl": (["--token-ttl", "0"], 2, "argument --token-ttl: must be a positive integer"),
    "bad-client": (["--client", "no-colon-secret"], 2, "argument --client: expected KEY:SECRET"),
    "missing-seed": (
        ["--seed", "{tmp}/missing.toml"],
        2,
        "--seed {tmp}/missing.toml: cannot read the file",
    ),
    "invalid-seed": (
        ["--seed", "{tmp}/bad.toml"],
        2,
        "--seed {tmp}/bad.toml: services[0].instances[0].env must be a non-empty string",
    ),
    "taken-port": (["--port", "{port}"], 1, "cannot listen on 127.0.0.1:{port}: "),
}


def test_errors_are_one_line_on_stderr(tmp_path: Path) -> None:
    """Every ERROR_CASES process, run concurrently (one test, so xdist runs them once)."""
    (tmp_path / "bad.toml").write_text(
        '[[services]]\nproject = "a"\nname = "b"\n[[services.instances]]\nenv = ""\n'
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        values = {"tmp": str(tmp_path), "port": str(taken.getsockname()[1])}
        procs = {
            case: subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
                [sys.executable, "-m", "fake_registry", *(a.format(**values) for a in args)],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for case, (args, _, _) in ERROR_CASES.items()
        }
        try:
            outputs = {
                case: proc.communicate(timeout=START_TIMEOUT) for case, proc in procs.items()
            }
        finally:
            for proc in procs.values():
                proc.kill()  # a no-op once it exited; otherwise it must not outlive the test
                proc.communicate()

    problems = []
    for case, (stdout, stderr) in outputs.items():
        _, code, message = ERROR_CASES[case]
        expected = f"fake-registry: error: {message.format(**values)}"
        if procs[case].returncode != code:
            problems.append(f"{case}: exit code {procs[case].returncode}, expected {code}")
        if stdout:
            problems.append(f"{case}: unexpected stdout {stdout!r}")
        if stderr.count("\n") != 1 or not stderr.startswith(expected) or "Traceback" in stderr:
            problems.append(f"{case}: stderr {stderr!r}, expected one line {expected!r}...")
        if "no-colon-secret" in stderr:  # a malformed --client is never echoed
            problems.append(f"{case}: a --client value was echoed")
    assert not problems, "\n".join(problems)
