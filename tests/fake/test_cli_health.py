"""``fake-registry health``: the image's HEALTHCHECK, against in-process fakes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fake_registry import FakeRegistry
from fake_registry.cli import main
from fake_registry.health import check

REGISTRY = "xiaozhizhang.registry.v1.RegistryService"


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["health", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_serving_fake_exits_0(fake: FakeRegistry, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "--target", fake.address) == (0, "SERVING\n", "")


def test_one_service_can_be_asked_about(
    fake: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check(fake.address, service=REGISTRY) == "SERVING"
    assert _run(capsys, "--target", fake.address, "--service", REGISTRY)[:2] == (0, "SERVING\n")
    code, out, err = _run(capsys, "--target", fake.address, "--service", "no.such.Service")
    assert (code, out) == (1, "")
    assert err.startswith("fake-registry: error: health: NOT_FOUND")
    assert err.count("\n") == 1


def test_nothing_listening_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # released: nothing listens there
    target = f"127.0.0.1:{port}"
    code, out, err = _run(capsys, "--target", target, "--timeout", "2")
    assert (code, out) == (1, "")
    assert err.startswith("fake-registry: error: health: ")
    assert err.rstrip("\n").endswith(f"(is a fake running at {target}?)")
    assert err.count("\n") == 1


def test_tls_fake_with_its_ca(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeRegistry(tls=True) as fake:
        assert fake.tls is not None
        ca = fake.tls.write_ca(tmp_path / "ca.pem")
        assert _run(capsys, "--target", fake.address, "--tls-ca", str(ca)) == (0, "SERVING\n", "")


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys)
    assert code == 2
    assert "the following arguments are required: --target" in err
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("nothing here\n")
    code, _, err = _run(capsys, "--target", "127.0.0.1:1", "--tls-ca", str(not_pem))
    assert code == 2
    assert err == f"fake-registry: error: health: --tls-ca {not_pem} holds no PEM certificate\n"
    code, _, err = _run(capsys, "--target", "no-port")
    assert code == 2
    assert "expected HOST:PORT" in err


def test_console_entry_point(fake: FakeRegistry) -> None:
    done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "fake_registry", "health", "--target", fake.address],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "SERVING\n", "")
