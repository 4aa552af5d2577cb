"""The README's commands and its in-process example stay true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_setup_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert commands == ["make demo", "make test"]
    assert README.index("```sh") < README.index("\n## ")


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert "make test" in script.splitlines()[-1]


def test_in_process_example_runs() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    example = next(b for b in blocks if "FakeRegistry(" in b and "import" in b)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own docs
    lapsed = namespace["fake"].instances(namespace["service"].id, online=False)  # type: ignore[attr-defined]
    assert [i.instance_key for i in lapsed] == ["cart-1"]
