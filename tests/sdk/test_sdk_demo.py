"""`python -m sdk [--async]`: the narrated demo on its embedded fake, and --registry against a
fake, on both SDK flavours (one script drives both)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_registry import FakeRegistry

ROOT = Path(__file__).resolve().parents[2]


FLAVOUR = pytest.mark.parametrize("flavour", [(), ("--async",)], ids=["sync", "async"])


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"REGISTRY_ADDR", "CLIENT_KEY", "CLIENT_SECRET", "ENV"}
    }
    return subprocess.run(  # noqa: S603 (our own interpreter and module)
        [sys.executable, "-m", "sdk", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@FLAVOUR
def test_demo_on_the_embedded_fake(flavour: tuple[str, ...]) -> None:
    done = _run(*flavour)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for line in (
        "[1] Authenticate",
        "token expires_at=",
        "round-robin:",
        "failover: every call succeeded",
        "streams killed: 1",
        "reconnected: state=BEATING",
        "authentications 1 -> 2",
        "demo-app-1 deregistered",
        "done",
    ):
        assert line in out, f"{line!r} missing from:\n{out}"
    failover = out.split("[5]")[1].split("[6]")[0]
    assert "answered by echo-1" not in failover  # the failing backend answered nothing
    assert "eyJ" not in out + done.stderr  # no token (a JWT) is ever shown
    assert "Traceback" not in done.stderr


@FLAVOUR
def test_demo_against_a_given_registry(flavour: tuple[str, ...]) -> None:
    with FakeRegistry(clients={"k": "s3cret"}) as fake:
        done = _run(
            *flavour, "--registry", fake.address, "--client-key", "k", "--client-secret", "s3cret"
        )
        assert done.returncode == 0, done.stderr
        assert "sdk-demo" in done.stdout
        assert "deregistered" in done.stdout
        assert "eyJ" not in done.stdout + done.stderr
        assert fake.authentications >= 1


@FLAVOUR
def test_bad_credentials_fail_with_one_line(flavour: tuple[str, ...]) -> None:
    with FakeRegistry(clients={"k": "s3cret"}) as fake:
        done = _run(
            *flavour, "--registry", fake.address, "--client-key", "k", "--client-secret", "bad"
        )
    assert done.returncode == 1
    # The SDK's own WARNING log lines may come first; the error itself is one line.
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr
    assert "UNAUTHENTICATED" in errors[0]
    assert "Traceback" not in done.stderr
