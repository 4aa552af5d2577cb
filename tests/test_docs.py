"""Every Python example in docs/ runs as written.

The ```python blocks of one page run in order in one namespace, in a scratch
working directory, so a page can build on its own earlier examples. A block
preceded by ``<!-- file: NAME -->`` is written to NAME in that directory
first, so examples can read the seed files or certificates the page shows.
A page marked ``<!-- requires: docker -->`` runs containers: it is skipped
without Docker and the image (and fails instead under
``FAKE_REGISTRY_REQUIRE_DOCKER=1``, as in CI; ``tests/docker_gate.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docker_gate import require_docker

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(p for p in DOCS.glob("*.md") if "```python" in p.read_text())
FILE_BLOCK = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.S)
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.S)
NEEDS_DOCKER = "<!-- requires: docker -->"


def _param(page: Path) -> object:
    if NEEDS_DOCKER in page.read_text():  # containers take seconds to start
        return pytest.param(page, id=page.name, marks=pytest.mark.timeout(300))
    return pytest.param(page, id=page.name)


@pytest.mark.parametrize("page", [_param(p) for p in PAGES])
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text()
    if NEEDS_DOCKER in text:
        require_docker()
    monkeypatch.chdir(tmp_path)
    for name, content in FILE_BLOCK.findall(text):
        (tmp_path / name).write_text(content)
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    for index, block in enumerate(PYTHON_BLOCK.findall(text)):
        code = compile(block, f"{page.name} (example {index + 1})", "exec")
        exec(code, namespace)  # noqa: S102 - our own documentation
