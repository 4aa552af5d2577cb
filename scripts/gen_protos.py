"""Regenerate the Python code committed next to the ``.proto`` files.

Usage::

    python scripts/gen_protos.py          # rewrite the generated files in place
    python scripts/gen_protos.py --check  # exit 1 if the committed files are stale

Protos are compiled from the repository root with ``-I .``, so the generated
modules import each other as ``protos.registry.v1...`` with no patching.
Typing stubs come from mypy-protobuf (``--mypy_out`` / ``--mypy_grpc_out``).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.rglob("*.proto"))


def generate(out_dir: Path) -> list[Path]:
    """Compile every proto into ``out_dir`` (mirroring the repo layout)."""
    protos = [p.relative_to(ROOT).as_posix() for p in proto_files()]
    # The mypy-protobuf plugins live beside the interpreter, which may not be on PATH.
    bindir = Path(sys.executable).parent
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I",
        ".",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    # mypy-protobuf narrates every file it writes; show the output only on failure.
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"protoc failed with exit code {result.returncode}")
    return sorted(p for p in out_dir.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))


def committed_files() -> list[Path]:
    return sorted(p for p in PROTO_DIR.rglob("*") if p.name.endswith(GENERATED_SUFFIXES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if committed code is stale")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        fresh = {p.relative_to(out): p for p in generate(out)}
        current = {p.relative_to(ROOT): p for p in committed_files()}
        if args.check:
            stale = sorted(
                str(rel)
                for rel in fresh.keys() | current.keys()
                if rel not in fresh
                or rel not in current
                or not filecmp.cmp(fresh[rel], current[rel], shallow=False)
            )
            if stale:
                print("generated protobuf code is stale; run scripts/gen_protos.py:")
                for name in stale:
                    print(f"  {name}")
                return 1
            print(f"generated protobuf code is up to date ({len(fresh)} files)")
            return 0
        for rel in current.keys() - fresh.keys():
            (ROOT / rel).unlink()
        for rel, path in fresh.items():
            shutil.copyfile(path, ROOT / rel)
        print(f"wrote {len(fresh)} generated files under protos/")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
