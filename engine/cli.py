"""The `looks` command line: parses arguments, dispatches, and is the one error boundary."""

from __future__ import annotations

import argparse
import difflib
import gc
import io
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from .deferred import Deferred
from .errors import LooksError, RecipeError, UsageError
from .executor import ApplyOptions
from .recipe import MAX_LOOKS, MAX_LOOKS_CEILING
from .streams import ensure_standard_streams
from .version import __version__

# The commands' modules. The type checker and tests/test_architecture.py read the imports;
# at run time each name is the same module, imported when its command runs (a run of
# `looks` needs only its command's module, and `looks sim` alone the simulator).
if TYPE_CHECKING:
    from . import sim
    from .commands import (
        apply,
        catalog,
        consent,
        graph,
        import_groups,
        merge_driver,
        plan,
        prune,
        refresh,
        rehome,
        repair,
        status,
        validate,
    )
else:
    sim = Deferred("sim")
    apply = Deferred("commands.apply")
    catalog = Deferred("commands.catalog")
    consent = Deferred("commands.consent")
    graph = Deferred("commands.graph")
    import_groups = Deferred("commands.import_groups")
    merge_driver = Deferred("commands.merge_driver")
    plan = Deferred("commands.plan")
    prune = Deferred("commands.prune")
    refresh = Deferred("commands.refresh")
    rehome = Deferred("commands.rehome")
    repair = Deferred("commands.repair")
    status = Deferred("commands.status")
    validate = Deferred("commands.validate")

MAX_PROBLEMS_SHOWN = 100  # a recipe with 5 million problems must not print 5 million lines

DESCRIPTION = """\
Batch look generation for the HeyGen v3 avatar API. Declare avatars and their looks in a YAML
recipe; `looks plan` diffs it against the manifest kept beside it, `looks apply` creates what is
missing (concurrently, resumably, never paying twice), and the manifest records what was made."""

EPILOG = """\
environment:
  HEYGEN_API_KEY    your API key (apply, import, refresh, prune, consent)
  HEYGEN_BASE_URL   the API to call (default https://api.heygen.com); `looks sim` prints a local one
  LOOKS_DEBUG=1     print the traceback of an internal error

exit codes:
  0 success, 1 failure, 2 usage error, 3 internal error, 130 interrupted;
  plan --detailed-exitcode: 0 nothing to do, 2 changes pending, 1 any error (usage errors too)

Each command has its own --help (looks plan --help)."""

INTERNAL_ERROR = 3
INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """argparse whose errors reach the error boundary instead of exiting on their own."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required: COMMAND"):
            message = "no command given"
        choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
        if choice:
            options = re.findall(r"'([^']*)'", choice.group(2))
            close = difflib.get_close_matches(choice.group(1), options, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _number(
    what: str, *, minimum: float, above: bool = False, maximum: float | None = None
) -> Callable[[str], float]:
    """An argparse type: a finite float within bounds (nan, inf and out-of-range refused)."""
    bound = f"greater than {minimum:g}" if above else f"at least {minimum:g}"
    limit = f"{bound} and at most {maximum:g}" if maximum is not None else bound
    expected = f"expected {what} {limit}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        too_low = value <= minimum if above else value < minimum
        if not math.isfinite(value) or too_low or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{expected}, not {text!r}")
        return value

    return parse


def _integer(*, minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer within bounds."""
    limit = f"at least {minimum}" + (f" and at most {maximum}" if maximum is not None else "")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected an integer {limit}, not {text!r}")
        return value

    return parse


def _group_id(text: str) -> str:
    """An argparse type: an avatar group id as the API spells them (no spaces, no slashes)."""
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", text):
        raise argparse.ArgumentTypeError(f"expected an avatar group id, not {text!a}")
    return text


def _patterns(text: str) -> list[str]:
    """One --only value: an address or glob, or several separated by commas."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"empty address or glob in {text!r}")
    return parts


def _add_sim(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sim",
        help="run the HeyGen v3 avatar API simulator on loopback",
        description="Serve a simulator of the HeyGen v3 avatar API until Ctrl-C. Its first"
        " line on stdout is HEYGEN_BASE_URL=http://HOST:PORT (docs/simulator.md).",
    )
    seconds = _number("seconds", minimum=0)
    rate = _number("a fraction", minimum=0, maximum=1)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="loopback address or localhost to listen on (default 127.0.0.1)",
    )
    p.add_argument(
        "--port",
        type=_integer(minimum=0, maximum=65535),
        default=0,
        help="port to listen on; 0 (the default) picks a free one",
    )
    p.add_argument("--api-key", help="accept only this key (default: any non-empty key)")
    p.add_argument(
        "--generation-seconds",
        default="2",
        metavar="S|LO-HI",
        help="each generation's duration: fixed, or log-uniform between LO and HI per job"
        " (default 2)",
    )
    p.add_argument(
        "--failed-look-rate",
        type=rate,
        default=0.0,
        metavar="P",
        help="fraction of looks that end failed instead of completed (default 0)",
    )
    p.add_argument(
        "--auto-consent",
        type=seconds,
        metavar="SECONDS",
        help="approve a twin's consent by itself this long after its consent flow started"
        " (default: never)",
    )
    p.add_argument(
        "--max-jobs",
        type=_integer(minimum=1),
        default=10,
        metavar="N",
        help="looks processing at once per API key; one more create is a 429 (default 10)",
    )
    p.add_argument(
        "--credits",
        type=_integer(minimum=0),
        metavar="N",
        help="credits of the account: each successful create spends one, at zero creates answer"
        " 402 (default: unlimited)",
    )
    p.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="seed of the random faults, failed looks and ids: same seed and requests, same"
        " outcome (default: random)",
    )
    p.add_argument(
        "--fail-rate",
        type=rate,
        default=0.0,
        metavar="P",
        help="fraction of /v3 requests answered 500 internal_error, nothing changed (default 0)",
    )
    p.add_argument(
        "--drop-rate",
        type=rate,
        default=0.0,
        metavar="P",
        help="fraction of successful creates carried out but answered by closing the connection"
        " (default 0)",
    )
    p.add_argument(
        "--latency-ms",
        type=_number("milliseconds", minimum=0),
        default=0.0,
        metavar="MS",
        help="delay before every /v3 answer (default 0)",
    )
    p.add_argument(
        "--idempotency-ttl",
        type=seconds,
        default=86400.0,
        metavar="SECONDS",
        help="how long an Idempotency-Key's answer is replayed (default 86400)",
    )
    p.add_argument(
        "--upload-url-ttl",
        type=_number("seconds", minimum=0, above=True),
        default=3600.0,
        metavar="SECONDS",
        help="how long a direct upload's URL accepts the PUT (default 3600)",
    )
    p.add_argument(
        "--upload-bytes-per-second",
        type=_number("bytes per second", minimum=0, above=True),
        metavar="N",
        help="throttle PUTs to upload URLs, as a slow uplink would (default: no limit)",
    )
    p.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help="load the API state from FILE at start, save it there on shutdown and every 10 s",
    )


def _run_sim(args: argparse.Namespace) -> int:
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
    p.add_argument(
        "recipes", nargs="+", type=Path, metavar="RECIPE", help="recipe files (YAML); one or more"
    )
    _max_looks_option(p)


def _max_looks_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-looks",
        type=_integer(minimum=1, maximum=MAX_LOOKS_CEILING),
        default=MAX_LOOKS,
        metavar="N",
        help=f"refuse a recipe that expands to more than N looks (default {MAX_LOOKS:,},"
        f" at most {MAX_LOOKS_CEILING:,})",
    )


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
        action="extend",
        type=_patterns,
        default=[],
        metavar="ADDR",
        help="an address or glob (sarah/*), or several separated by commas; repeat it for"
        " more; their dependencies come along",
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
        help="exit 0 when there is nothing to do, 2 when changes are pending, 1 on any error",
    )


def _add_graph(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("graph", help="print the dependency graph with each node's action")
    p.add_argument("recipe", type=Path, metavar="RECIPE", help="recipe file (YAML)")
    _max_looks_option(p)
    _manifest_option(p)
    p.add_argument(
        "--format",
        choices=["mermaid", "dot"],
        default="mermaid",
        help="Mermaid flowchart (default) or Graphviz dot",
    )


def _add_apply(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "apply",
        help="create what the plan says, resumably (HEYGEN_BASE_URL, HEYGEN_API_KEY)",
    )
    _recipes(p)
    _manifest_option(p)
    _only_option(p)
    p.add_argument(
        "--max-jobs",
        type=_integer(minimum=1),
        default=10,
        metavar="N",
        help="generations in flight at once (default 10)",
    )
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failure")
    p.add_argument(
        "--timeout",
        type=_number("minutes", minimum=0, above=True, maximum=1440),
        default=15.0,
        metavar="MINUTES",
        help="per-node wait for a generation or a consent approval (default 15)",
    )
    p.add_argument("--log-json", action="store_true", help="one JSON object per event")
    p.add_argument(
        "--progress-every",
        type=_number("seconds", minimum=0, above=True),
        default=30.0,
        metavar="SECONDS",
        help="without a terminal, a progress line at least this often (default 30)",
    )
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
    p.add_argument("--json", action="store_true", help="machine-readable status")


def _add_catalog(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("catalog", help="write an offline HTML + Markdown gallery of the looks")
    _recipes(p)
    _manifest_option(p)
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory to write index.html, README.md and the previews into",
    )


def _add_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("import", help="adopt avatar groups an account already has")
    p.add_argument(
        "--group",
        nargs="+",
        required=True,
        metavar="GROUP_ID",
        dest="groups",
        type=_group_id,
        help="avatar group ids to adopt",
    )
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


def _add_repair(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "repair", help="keep every complete change of a damaged journal; set the rest aside"
    )
    p.add_argument(
        "recipe", type=Path, metavar="RECIPE", help="the recipe whose manifest's journal to mend"
    )
    _manifest_option(p)


def _add_rehome(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rehome", help="make a manifest this recipe's own (after renaming or moving a recipe)"
    )
    p.add_argument(
        "recipe", type=Path, metavar="RECIPE", help="the recipe the manifest belongs to from now on"
    )
    _manifest_option(p)


def _add_merge_driver(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "merge-driver",
        help="git merge driver for manifests (BASE OURS THEIRS [PATH]), or `install` it",
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="BASE OURS THEIRS [PATH] | install",
        help="the files git passes (%%O %%A %%B %%P), or `install` to set the driver up here",
    )


def _single_manifest(args: argparse.Namespace) -> None:
    if args.manifest is not None and len(args.recipes) > 1:
        raise UsageError("--manifest goes with a single recipe")


def _only_took_one(args: argparse.Namespace) -> None:
    """`--only a b r.yaml`: b is read as a recipe; say why rather than "b: file not found"."""
    if not args.only:
        return
    for path in args.recipes:
        if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
            raise UsageError(
                f"{str(path)!r} is not a recipe file; --only takes one address or glob:"
                " repeat it (--only a --only b) or separate them with commas (--only a,b)"
            )


def _run_validate(args: argparse.Namespace) -> int:
    return validate.run(args.recipes, max_looks=args.max_looks)


def _run_plan(args: argparse.Namespace) -> int:
    _single_manifest(args)
    _only_took_one(args)
    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json and --format {args.format} ask for different outputs")
    return plan.run(
        args.recipes,
        manifest=args.manifest,
        only=args.only,
        fmt="json" if args.json else args.format or "text",
        detailed_exitcode=args.detailed_exitcode,
        refresh=args.refresh,
        max_looks=args.max_looks,
    )


def _run_apply(args: argparse.Namespace) -> int:
    _single_manifest(args)
    _only_took_one(args)
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
        progress_every=args.progress_every,
        max_looks=args.max_looks,
    )


def _run_status(args: argparse.Namespace) -> int:
    _single_manifest(args)
    return status.run(
        args.recipes, manifest=args.manifest, as_json=args.json, max_looks=args.max_looks
    )


def _run_catalog(args: argparse.Namespace) -> int:
    _single_manifest(args)
    return catalog.run(args.recipes, manifest=args.manifest, out=args.out, max_looks=args.max_looks)


def _run_import(args: argparse.Namespace) -> int:
    return import_groups.run(args.groups, out=args.out)


def _run_refresh(args: argparse.Namespace) -> int:
    _single_manifest(args)
    return refresh.run(args.recipes, manifest=args.manifest, max_looks=args.max_looks)


def _run_prune(args: argparse.Namespace) -> int:
    _single_manifest(args)
    return prune.run(args.recipes, manifest=args.manifest, yes=args.yes, max_looks=args.max_looks)


def _run_consent(args: argparse.Namespace) -> int:
    _single_manifest(args)
    return consent.run(args.recipes, manifest=args.manifest, max_looks=args.max_looks)


def _run_repair(args: argparse.Namespace) -> int:
    return repair.run(args.recipe, manifest=args.manifest)


def _run_rehome(args: argparse.Namespace) -> int:
    return rehome.run(args.recipe, manifest=args.manifest)


def _run_merge_driver(args: argparse.Namespace) -> int:
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
    return graph.run(args.recipe, manifest=args.manifest, fmt=args.format, max_looks=args.max_looks)


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _Parser(
        prog="looks",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    _add_repair(sub)
    _add_rehome(sub)
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
    "repair": _run_repair,
    "rehome": _run_rehome,
    "merge-driver": _run_merge_driver,
    "sim": _run_sim,
}


def _detailed_exitcode(argv: Sequence[str]) -> bool:
    """Whether the command line asks for --detailed-exitcode (or an abbreviation argparse
    accepts), read from the raw words so that even a line argparse rejects honours it."""
    for word in argv:
        if word == "--":
            break
        flag = word.split("=", 1)[0]
        if len(flag) >= 3 and "--detailed-exitcode".startswith(flag):
            return True
    return False


def _unrecognized(
    parser: argparse.ArgumentParser, args: argparse.Namespace, extra: Sequence[str]
) -> str:
    """argparse's "unrecognized arguments", with the flag meant when one is close, pointing
    at the command's own help."""
    message = f"unrecognized arguments: {' '.join(extra)}"
    flags = [w.split("=", 1)[0] for w in extra if w.startswith("--")]
    if flags:
        known = [
            f for a in _command_parser(parser, args.command)._actions for f in a.option_strings
        ]
        close = difflib.get_close_matches(flags[0], known, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
    if getattr(args, "only", None) and not any(word.startswith("-") for word in extra):
        message += (
            "; --only takes one address or glob: repeat it (--only a --only b)"
            " or separate them with commas (--only a,b)"
        )
    return f"{message} (see 'looks {args.command} --help')"


def _command_parser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found: argparse.ArgumentParser = action.choices[command]
            return found
    return parser


def _check_stdout() -> None:
    """Refuse to run without a stdout, and never die of a character it cannot encode."""
    if sys.stdout is None:  # started with `>&-`: a run nobody can follow is not started
        raise LooksError("standard output is closed; nothing was done")
    if isinstance(sys.stdout, io.TextIOWrapper):
        # An ASCII-only terminal (PYTHONIOENCODING=ascii, a POSIX locale) gets `?` for
        # what it cannot show, rather than an internal error half-way through a plan.
        sys.stdout.reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `looks` console script: every outcome is an exit code, every error
    one line on stderr (RecipeError: one line per problem)."""
    ensure_standard_streams()  # `2>&-`: no file opened later may take descriptor 2
    words = list(sys.argv[1:] if argv is None else argv)
    detailed = _detailed_exitcode(words)

    def failed(message: str | None, code: int) -> int:
        if message is not None:
            print(f"looks: {message}", file=sys.stderr)
        # With --detailed-exitcode, 2 says "changes pending" and nothing else: errors are 1.
        return 1 if detailed and code == UsageError.exit_code else code

    try:
        try:
            parser = build_parser()
            args, extra = parser.parse_known_args(words)
        except SystemExit as e:  # --help and --version print, then exit 0
            return e.code if isinstance(e.code, int) else 0
        if extra:
            raise UsageError(_unrecognized(parser, args, extra))
        _check_stdout()
        return _COMMANDS[args.command](args)
    except RecipeError as e:
        # Problem lines stand alone (FILE:LINE: path: message), for editors and grep.
        for problem in e.problems[:MAX_PROBLEMS_SHOWN]:
            print(problem, file=sys.stderr)
        more = max(0, len(e.problems) - MAX_PROBLEMS_SHOWN) + e.omitted
        if more:
            print(f"looks: … and {more:,} more problems", file=sys.stderr)
        return failed(None, e.exit_code)
    except LooksError as e:
        return failed(str(e), e.exit_code)
    except KeyboardInterrupt:
        return failed("interrupted", INTERRUPTED)
    except BrokenPipeError:
        # `looks plan --json | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as e:
        # A file the system refused (a recipe, a photo, an output directory): name it.
        where = f"{e.filename}: " if e.filename is not None else ""
        return failed(f"{where}{e.strerror or e}", 1)
    except Exception as e:
        debug = bool(os.environ.get("LOOKS_DEBUG"))
        if debug:
            traceback.print_exc()
        hint = "" if debug else "; set LOOKS_DEBUG=1 for the traceback"
        return failed(f"internal error: {type(e).__name__}: {e}{hint}", INTERNAL_ERROR)


def entry(argv: Sequence[str] | None = None) -> NoReturn:
    """The `looks` console script (and `python -m looks.cli`): main, then a quick exit."""
    code = main(argv)
    # By now the command has closed its manifests (their journals folded or kept) and every
    # line has been written to stdout and stderr; what remains is the interpreter's teardown,
    # whose last full garbage collection walks every object still alive (tens of thousands
    # after a run: ~80 ms of a finished run's exit, measured in docs/performance.md).
    # Freezing them takes them out of the collector's reach; the exit itself is the ordinary
    # one (atexit handlers, flushing stdout and stderr). Not in main: a caller of main in
    # its own process (the tests) keeps its collector.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
