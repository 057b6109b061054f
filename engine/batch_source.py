"""The rows an avatar template is expanded over: a CSV's rows or the files a glob matches.

This is the I/O half of `foreach`; engine/expand.py turns the rows into avatars. Every
problem names the CSV's own line (`people.csv:7: ...`), as a spreadsheet user fixes it there.
"""

from __future__ import annotations

import csv
import glob
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import Problem
from .paths import resolved
from .yamldoc import YamlDocument, read_text

_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")
MAX_ROWS = 100_000  # rows (or files) per foreach: a bound on a hostile or mistaken input


@dataclass(frozen=True)
class Row:
    """One binding of placeholders: a CSV row, or one file a glob matched."""

    values: dict[str, str]
    file: str  # the CSV as the user names it (or the recipe, for files)
    line: int  # the CSV line the row starts on; 0 for a file


@dataclass(frozen=True)
class Source:
    """The rows of one `foreach`, or why there are none."""

    rows: tuple[Row, ...]
    columns: tuple[str, ...]
    describe: str  # "people.csv" or "guests/*.jpg", for messages
    problems: tuple[Problem, ...] = ()
    problem: str | None = None  # a problem of the reference itself, reported at `foreach`


def read_csv(root: Path, relative: str, shown: str) -> Source:
    """The rows of a CSV beside the recipe: header = column names, one Row per record.

    `shown` is the CSV's path as messages name it (relative to where the user runs looks).
    Blank lines are skipped; a byte-order mark (Excel's UTF-8 export) is ignored.
    """
    target = resolved(root / relative)
    if not target.is_relative_to(root):
        return Source((), (), relative, problem=f"{relative!r} is outside the recipe's directory")
    if not target.exists():
        # realpath stops at a link it cannot follow: a dangling one, or a loop.
        what = "a symlink that leads nowhere" if target.is_symlink() else "not found"
        return Source((), (), relative, problem=f"CSV file {what}: {relative}")
    if target.is_dir():
        return Source((), (), relative, problem=f"{relative} is a directory, not a CSV file")
    # The recipe's own reader: bounded in size, never blocked by a FIFO, UTF-8 checked.
    read = YamlDocument(shown)
    text = read_text(target, read)
    if text is None:
        return Source((), (), relative, problems=tuple(read.problems))
    text = text.removeprefix("\ufeff")  # Excel's UTF-8 byte-order mark
    problems: list[Problem] = []
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    rows: list[Row] = []
    header: list[str] | None = None
    start = 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(field.strip() for field in record):
                continue
            if header is None:
                header = [field.strip() for field in record]
                problems.extend(_check_header(header, shown, line))
                continue
            if len(record) != len(header):
                problems.append(
                    Problem(
                        shown,
                        line,
                        "",
                        f"{len(record)} fields, but the header has {len(header)}",
                    )
                )
                continue
            if len(rows) == MAX_ROWS:
                problems.append(
                    Problem(shown, line, "", f"more than {MAX_ROWS} rows; split the CSV")
                )
                break
            rows.append(Row(dict(zip(header, record, strict=True)), shown, line))
    except csv.Error as e:
        problems.append(Problem(shown, start, "", f"invalid CSV: {e}"))
    if header is None:
        problems.append(Problem(shown, 1, "", "empty CSV: needs a header row and one row or more"))
    elif not rows and not problems:
        problems.append(Problem(shown, 1, "", "no rows below the header"))
    return Source(tuple(rows), tuple(header or ()), relative, tuple(problems))


def _check_header(header: list[str], shown: str, line: int) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for name in header:
        if not _COLUMN.match(name):
            problems.append(
                Problem(
                    shown,
                    line,
                    "",
                    f"column {name!r} cannot be a placeholder: use lowercase letters, digits"
                    " and '_', starting with a letter or '_'",
                )
            )
        elif name in seen:
            problems.append(Problem(shown, line, "", f"column {name!r} appears twice"))
        seen.add(name)
    return problems


def match_files(root: Path, pattern: str, recipe: str) -> Source:
    """One Row per file the glob matches, sorted: {path} (relative to the recipe), {stem}."""
    if Path(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
        return Source(
            (), (), pattern, problem=f"{pattern!r} must stay inside the recipe's directory"
        )
    matched = sorted(glob.glob(pattern, root_dir=root, recursive=True))
    rows = tuple(
        Row({"path": PurePosixPath(Path(m)).as_posix(), "stem": Path(m).stem}, recipe, 0)
        for m in matched
        if (root / m).is_file()
    )
    if not rows:
        return Source((), ("path", "stem"), pattern, problem=f"{pattern!r} matches no file")
    if len(rows) > MAX_ROWS:
        problem = f"{pattern!r} matches {len(rows)} files; at most {MAX_ROWS}"
        return Source((), ("path", "stem"), pattern, problem=problem)
    return Source(rows, ("path", "stem"), pattern)
