"""``--fake-registry-target docker`` where no Docker engine answers: a clear failure.

The target's real runs (with Docker and the image) are in
tests/containers/test_container_plugin.py; this needs no Docker at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]


def test_no_engine_fails_the_session_with_the_reason(
    inner: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = tmp_path / "no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{nowhere}")
    inner.makepyfile(
        test_docker="""
        def test_needs_the_fake(fake_registry):
            pass

        def test_needs_no_fake():
            pass
        """
    )
    result = inner.runpytest("--fake-registry-target", "docker")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "fake-registry target: docker",
            f"*--fake-registry-target docker: no Docker engine answers at unix://{nowhere} "
            "(No such file or directory)",
        ]
    )
    assert "Traceback" not in result.stdout.str()
