"""``python -m bench [--quick] [--list] [name ...]``: run benchmarks, print a table.

Exit status: 0 when every benchmark ran (PASS, MISS or SKIP; pass
``--strict`` to fail on a MISS), 2 when one raised.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import traceback
from dataclasses import asdict
from pathlib import Path

import grpc

from bench import BENCHMARKS, load, run_benchmark
from bench._stats import Result, render_markdown, render_text


def machine() -> str:
    return (
        f"{platform.node() or 'host'}: nproc={os.cpu_count()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"grpcio {grpc.__version__}, {platform.system()} {platform.release()}, "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def code_version() -> str:
    """The commit benchmarked, and whether the fake had uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    try:
        head = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--", "fake_registry", "protos"],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return head + (" + uncommitted changes in fake_registry/ or protos/" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {BENCHMARKS}")
    parser.add_argument("--quick", action="store_true", help="short smoke run: fewer repeats")
    parser.add_argument("--list", action="store_true", help="list benchmarks and exit")
    parser.add_argument("--iterations", type=int, default=None, help="override repeat counts")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="also write Markdown tables")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    if args.list:
        for name in BENCHMARKS:
            print(f"{name:20} {load(name).TARGET}")
        return 0
    names = args.names or list(BENCHMARKS)
    for name in names:
        load(name)  # unknown names fail before anything runs

    command = ("python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv)).strip()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"{started}  {machine()}\ncode: {code_version()}\ncommand: {command}"
    print(header, flush=True)

    results: list[Result] = []
    failed = False
    for name in names:
        print(f"\n-- running {name}{' (quick)' if args.quick else ''} ...", flush=True)
        try:
            result = run_benchmark(name, quick=args.quick, iterations=args.iterations)
        except Exception:
            traceback.print_exc()
            failed = True
            result = Result(name=name, target=load(name).TARGET, verdict="ERROR")
        results.append(result)
        print(render_text([result]), flush=True)

    print("\n" + "=" * 72)
    print(header)
    print(render_text(results))
    if args.json:
        payload = {
            "date": started,
            "machine": machine(),
            "command": command,
            "code": code_version(),
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    if args.markdown:
        args.markdown.write_text(
            f"Run {started}, `{command}`\n\nMachine: {machine()}\n\nCode: {code_version()}\n\n"
            + render_markdown(results)
            + "\n"
        )
    if failed:
        return 2
    if args.strict and any(r.verdict == "MISS" for r in results):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
