"""Whether tests that run the fake's image can run here, decided once per process.

A developer machine without a Docker engine, or without the image built, skips
those tests with the reason. CI sets ``FAKE_REGISTRY_REQUIRE_DOCKER=1``
(``.ci/run``): there, the same situation fails the test instead, so a broken
Docker setup can never pass as a row of skips.
"""

from __future__ import annotations

import functools
import os

import pytest

REQUIRE_ENV = "FAKE_REGISTRY_REQUIRE_DOCKER"


@functools.cache
def _problem(image: str) -> str | None:
    from fake_registry.container import unavailable_reason

    return unavailable_reason(image)


def require_docker() -> str:
    """The image to run (``$FAKE_REGISTRY_IMAGE`` or the default); skips or fails without it."""
    from fake_registry.container import default_image

    image = default_image()
    problem = _problem(image)
    if problem is None:
        return image
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but Docker cannot run {image}: {problem}", pytrace=False)
    pytest.skip(f"needs Docker and the image {image}: {problem}")
