"""The `looks` command line: parses arguments and dispatches, nothing more."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine import __version__
from engine.errors import LooksError, RecipeError, UsageError


def _add_sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sim", help="run the HeyGen v3 avatar API simulator on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--api-key", help="accept only this key (default: any non-empty key)")
    p.add_argument(
        "--generation-seconds",
        default="2",
        metavar="S|LO-HI",
        help="each generation's duration: fixed, or log-uniform between LO and HI per job",
    )
    p.add_argument("--failed-look-rate", type=float, default=0.0)
    p.add_argument("--auto-consent", type=float, metavar="SECONDS")
    p.add_argument("--max-jobs", type=int, default=10)
    p.add_argument("--credits", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--drop-rate", type=float, default=0.0)
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--idempotency-ttl", type=float, default=86400.0, metavar="SECONDS")
    p.add_argument(
        "--upload-url-ttl",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long a direct upload's URL accepts the PUT",
    )
    p.add_argument(
        "--upload-bytes-per-second",
        type=float,
        metavar="N",
        help="throttle PUTs to upload URLs, as a slow uplink would",
    )
    p.add_argument("--state", type=Path, metavar="FILE")


def _run_sim(args: argparse.Namespace) -> int:
    from engine import sim

    low, high = sim.parse_seconds_range(args.generation_seconds)
    config = sim.SimConfig(
        api_key=args.api_key,
        generation_seconds=low,
        generation_seconds_max=high,
        upload_url_ttl=args.upload_url_ttl,
        upload_bytes_per_second=args.upload_bytes_per_second,
        failed_look_rate=args.failed_look_rate,
        auto_consent=args.auto_consent,
        max_jobs=args.max_jobs,
        credits=args.credits,
        seed=args.seed,
        fail_rate=args.fail_rate,
        drop_rate=args.drop_rate,
        latency_ms=args.latency_ms,
        idempotency_ttl=args.idempotency_ttl,
        state_file=args.state,
    )
    sim.serve(config, host=args.host, port=args.port)
    return 0


def _recipes(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipes", nargs="+", type=Path, metavar="RECIPE")


def _manifest_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--manifest",
        type=Path,
        metavar="PATH",
        help="manifest to use (default: <recipe stem>.manifest.json beside the recipe)",
    )


def _only_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="ADDR",
        help="addresses or globs (sarah/*); their dependencies come along",
    )


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check recipes; report every problem with its line")
    _recipes(p)


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="show what apply would do, without doing it")
    _recipes(p)
    _manifest_option(p)
    _only_option(p)
    p.add_argument("--json", action="store_true", help="machine-readable plan (--format json)")
    p.add_argument(
        "--format",
        choices=["text", "json", "markdown"],
        help="text (default), json, or markdown: a pull-request comment (docs/ci.md)",
    )
    p.add_argument("--refresh", action="store_true", help="refresh the manifest from the API first")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="exit 0 when there is nothing to do, 2 when changes are pending",
    )


def _add_graph(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("graph", help="print the dependency graph with each node's action")
    p.add_argument("recipe", type=Path, metavar="RECIPE")
    _manifest_option(p)
    p.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")


def _add_apply(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "apply",
        help="create what the plan says, resumably (HEYGEN_BASE_URL, HEYGEN_API_KEY)",
    )
    _recipes(p)
    _manifest_option(p)
    _only_option(p)
    p.add_argument(
        "--max-jobs", type=int, default=10, help="generations in flight at once (default 10)"
    )
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    p.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="MINUTES",
        help="per-node wait for a generation or a consent approval (default 15)",
    )
    p.add_argument("--log-json", action="store_true", help="one JSON object per event")
    p.add_argument(
        "--prune",
        action="store_true",
        help="after a successful run, delete superseded and orphaned looks (no prompt)",
    )
    p.add_argument(
        "--max-credits",
        type=_credits,
        metavar="N",
        help="refuse a plan costing more than N credits; stop submitting before passing N",
    )


MAX_CREDITS = 10**12


def _credits(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    # A bound keeps every figure printable: 1e999999999 would be a billion digits.
    if not value.is_finite() or not 0 <= value <= MAX_CREDITS:
        raise argparse.ArgumentTypeError(
            f"must be a number of credits from 0 to {MAX_CREDITS:,}, not {text!r}"
        )
    return value


def _add_status(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="what the manifests record (offline)")
    _recipes(p)
    _manifest_option(p)
    p.add_argument("--json", action="store_true")


def _add_catalog(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("catalog", help="write an offline HTML + Markdown gallery of the looks")
    _recipes(p)
    _manifest_option(p)
    p.add_argument("--out", type=Path, required=True, metavar="DIR")


def _add_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import", help="adopt avatar groups an account already has")
    p.add_argument("--group", nargs="+", required=True, metavar="GROUP_ID", dest="groups")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("imported.yaml"),
        metavar="RECIPE",
        help="recipe to write or extend (default: imported.yaml)",
    )


def _add_refresh(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("refresh", help="compare the manifests with the account; record drift")
    _recipes(p)
    _manifest_option(p)


def _add_prune(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("prune", help="delete superseded and orphaned looks")
    _recipes(p)
    _manifest_option(p)
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")


def _add_consent(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("consent", help="consent status and URL of every digital twin")
    _recipes(p)
    _manifest_option(p)


def _add_merge_driver(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "merge-driver",
        help="git merge driver for manifests (BASE OURS THEIRS [PATH]), or `install` it",
    )
    p.add_argument("files", nargs="+", metavar="BASE OURS THEIRS [PATH] | install")


def _single_manifest(args: argparse.Namespace) -> None:
    if args.manifest is not None and len(args.recipes) > 1:
        raise UsageError("--manifest goes with a single recipe")


def _run_validate(args: argparse.Namespace) -> int:
    from engine.commands import validate

    return validate.run(args.recipes)


def _run_plan(args: argparse.Namespace) -> int:
    from engine.commands import plan

    _single_manifest(args)
    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json and --format {args.format} ask for different outputs")
    return plan.run(
        args.recipes,
        manifest=args.manifest,
        only=args.only,
        fmt="json" if args.json else args.format or "text",
        detailed_exitcode=args.detailed_exitcode,
        refresh=args.refresh,
    )


def _run_apply(args: argparse.Namespace) -> int:
    from engine.commands import apply
    from engine.executor import ApplyOptions

    _single_manifest(args)
    if args.max_jobs < 1:
        raise UsageError("--max-jobs must be at least 1")
    options = ApplyOptions(
        max_jobs=args.max_jobs, fail_fast=args.fail_fast, node_timeout=args.timeout * 60
    )
    return apply.run(
        args.recipes,
        manifest=args.manifest,
        only=args.only,
        options=options,
        log_json=args.log_json,
        prune=args.prune,
        max_credits=args.max_credits,
    )


def _run_status(args: argparse.Namespace) -> int:
    from engine.commands import status

    _single_manifest(args)
    return status.run(args.recipes, manifest=args.manifest, as_json=args.json)


def _run_catalog(args: argparse.Namespace) -> int:
    from engine.commands import catalog

    _single_manifest(args)
    return catalog.run(args.recipes, manifest=args.manifest, out=args.out)


def _run_import(args: argparse.Namespace) -> int:
    from engine.commands import lifecycle

    return lifecycle.run_import(args.groups, out=args.out)


def _run_refresh(args: argparse.Namespace) -> int:
    from engine.commands import lifecycle

    _single_manifest(args)
    return lifecycle.run_refresh(args.recipes, manifest=args.manifest)


def _run_prune(args: argparse.Namespace) -> int:
    from engine.commands import lifecycle

    _single_manifest(args)
    return lifecycle.run_prune(args.recipes, manifest=args.manifest, yes=args.yes)


def _run_consent(args: argparse.Namespace) -> int:
    from engine.commands import lifecycle

    _single_manifest(args)
    return lifecycle.run_consent(args.recipes, manifest=args.manifest)


def _run_merge_driver(args: argparse.Namespace) -> int:
    from engine.commands import merge_driver

    if args.files == ["install"]:
        return merge_driver.install(Path.cwd())
    if len(args.files) not in (3, 4):
        raise UsageError(
            "merge-driver takes BASE OURS THEIRS [PATH] (as git passes them), or install"
        )
    base, ours, theirs = (Path(f) for f in args.files[:3])
    path = args.files[3] if len(args.files) == 4 else None
    return merge_driver.run(base, ours, theirs, path)


def _run_graph(args: argparse.Namespace) -> int:
    from engine.commands import plan

    return plan.run_graph(args.recipe, manifest=args.manifest, fmt=args.format)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="looks", description=__doc__)
    parser.add_argument("--version", action="version", version=f"looks {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_validate(sub)
    _add_plan(sub)
    _add_graph(sub)
    _add_apply(sub)
    _add_status(sub)
    _add_catalog(sub)
    _add_import(sub)
    _add_refresh(sub)
    _add_prune(sub)
    _add_consent(sub)
    _add_merge_driver(sub)
    _add_sim(sub)
    return parser


_COMMANDS = {
    "validate": _run_validate,
    "plan": _run_plan,
    "graph": _run_graph,
    "apply": _run_apply,
    "status": _run_status,
    "catalog": _run_catalog,
    "import": _run_import,
    "refresh": _run_refresh,
    "prune": _run_prune,
    "consent": _run_consent,
    "merge-driver": _run_merge_driver,
    "sim": _run_sim,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `looks` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _COMMANDS[args.command](args)
    except RecipeError as e:
        # Problem lines stand alone (FILE:LINE: path: message), for editors and grep.
        for problem in e.problems:
            print(problem, file=sys.stderr)
        return e.exit_code
    except LooksError as e:
        print(f"looks: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("looks: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `looks plan --json | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
