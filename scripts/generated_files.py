"""Shared by the render_*.py scripts: write generated files, or (`--check`) say which are stale."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def check_flag(description: str | None) -> bool:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file differs from what would be written")
    return parser.parse_args().check


def write_or_check(rendered: dict[Path, str], script: str, check: bool) -> int:
    """Write each file; with `check`, write nothing, print a diff per stale file and return 1 if any is."""
    stale = 0
    for path, text in rendered.items():
        relative = path.relative_to(ROOT).as_posix()
        if check:
            current = path.read_text() if path.exists() else ""
            if current != text:
                stale += 1
                sys.stdout.writelines(
                    difflib.unified_diff(current.splitlines(True), text.splitlines(True), relative, "rendered")
                )
                print(f"{relative} is stale: run .venv/bin/python scripts/{script}", file=sys.stderr)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {relative}")
    return 1 if stale else 0
