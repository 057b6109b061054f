"""Batch authoring, expanded: look sets (`include`), `foreach` rows and placeholders, `moved`.

Pure: the rows come in already read (engine/batch_source.py), avatars come out as the plain
recipe avatars that recipe.py builds, each with where its parts were written, so a problem
in an expanded avatar names the template's line and the row (`team.yaml:21: ... (row id=ana)`).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from .batch_source import Row, Source
from .errors import Problem

Location = tuple[str | int, ...]

PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_TEMPLATE = re.compile(r"^([a-z0-9_-]|\{[a-z_][a-z0-9_]*\})+$")  # the schema's avatar keys
SET_MARK = "$set"  # a look's set, kept in the expanded look (no YAML key can start with $)


def slugify(value: str) -> str:
    """Turn a matrix value into a key fragment: `City Street` -> `city-street`."""
    return re.sub(r"[^a-z0-9_]+", "-", value.lower()).strip("-") or "_"


def fill(text: str, values: Mapping[str, str], slug: bool = False) -> str:
    """text with each {name} bound in values replaced; other placeholders are left as they are."""
    if "{" not in text:
        return text

    def one(m: re.Match[str]) -> str:
        value = values.get(m.group(1))
        if value is None:
            return m.group(0)
        return slugify(value) if slug else value

    return PLACEHOLDER.sub(one, text)


@dataclass(frozen=True)
class Expanded:
    """One avatar as recipe.py builds it, and where its parts were written."""

    key: str
    raw: dict[str, Any]
    template: str  # its key in the recipe's `avatars`
    label: str | None = None  # "row id=ana", "file guests/bob.jpg"
    look_origins: Mapping[str, Location] = field(default_factory=dict)  # look key -> written at
    from_sets: bool = False  # some of its looks come from look sets


@dataclass
class Expansion:
    """Every avatar of a recipe, and what is wrong with the templates and rows."""

    avatars: list[Expanded] = field(default_factory=list)
    problems: list[tuple[Location, str, str | None]] = field(default_factory=list)
    source_problems: list[Problem] = field(default_factory=list)

    def add(self, loc: Location, message: str, label: str | None = None) -> None:
        self.problems.append((loc, message, label))


@dataclass(frozen=True)
class Move:
    """One `moved` entry: records at `source` are re-keyed to `target` (`*` = every avatar)."""

    source: str
    target: str
    line: int = 0


def expand(
    data: Mapping[str, Any],
    sources: Mapping[str, Source],
    skip: Collection[Location],
    unchecked: Collection[str] = (),
    max_looks: int | None = None,
) -> Expansion:
    """The recipe's avatars, one per template without `foreach` and one per row with it.

    `skip`: locations the schema found a problem in (and their parents): a template whose
    `foreach` or `include` is broken is left out, other broken parts are left to recipe.py.
    `unchecked` templates are left out. Past `max_looks` looks, no more avatars are made
    (recipe.py's look budget says so); a hostile CSV cannot make millions.
    """
    out = Expansion()
    raw_sets = data.get("look_sets", {})
    sets: Mapping[str, Any] | None = raw_sets if isinstance(raw_sets, dict) else None
    seen: dict[str, str] = {}  # avatar key -> the template that made it
    total = 0
    for template, raw in data["avatars"].items():
        loc: Location = ("avatars", template)
        if template in unchecked or not isinstance(raw, dict) or not _TEMPLATE.match(template):
            continue  # (a key the schema refused: reported there)
        if loc + ("foreach",) in skip or loc + ("include",) in skip:
            continue
        looks = _merged_looks(out, template, raw, sets, skip)
        if looks is None:
            if template in sources:  # its rows are checked all the same: one pass finds all
                out.source_problems.extend(sources[template].problems)
            continue
        if "foreach" in raw:
            made = _foreach(out, template, raw, looks, sources[template])
        else:
            made = _single(out, template, raw, looks)
        for avatar in made:
            if max_looks is not None and total > max_looks:
                break
            total += len(avatar.raw["looks"])
            if avatar.key in seen:
                first = seen[avatar.key]
                out.add(
                    ("avatars", template),
                    f"avatar key {avatar.key!r} is also made by {first!r}",
                    avatar.label,
                )
                continue
            seen[avatar.key] = template
            out.avatars.append(avatar)
    return out


# A look as merged from the avatar and its sets: (key, spec, written at, set name).
_Look = tuple[str, Any, Location, str | None]


def _merged_looks(
    out: Expansion,
    template: str,
    raw: Mapping[str, Any],
    sets: Mapping[str, Any] | None,
    skip: Collection[Location],
) -> list[_Look] | None:
    """The avatar's looks: those of its included sets, then its own; None if it cannot be."""
    looks: list[_Look] = []
    by_key: dict[str, str] = {}
    ok = True

    def put(key: str, spec: Any, where: Location, origin: str, set_name: str | None) -> None:
        nonlocal ok
        if key in by_key:
            out.add(where, f"look key {key!r} is defined by {by_key[key]} and by {origin}")
            ok = False
            return
        by_key[key] = origin
        looks.append((key, spec, where, set_name))

    for i, name in enumerate(raw.get("include", [])):
        where: Location = ("avatars", template, "include", i)
        if sets is None or (name in sets and not isinstance(sets[name], dict)):
            ok = False  # look_sets, or this set, is broken: the schema said why
            continue
        if name not in sets:
            close = difflib.get_close_matches(name, list(sets), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = f" (look_sets has {', '.join(sets)})" if sets and not close else ""
            out.add(where, f"no look set {name!r}{hint}{known}")
            ok = False
            continue
        for key, spec in sets[name].items():
            put(key, spec, ("look_sets", name, key), f"look set {name!r}", name)
    own = raw.get("looks")
    for key, spec in (own if isinstance(own, dict) else {}).items():
        put(key, spec, ("avatars", template, "looks", key), "the avatar's own looks", None)
    return looks if ok else None


def _single(
    out: Expansion, template: str, raw: Mapping[str, Any], looks: list[_Look]
) -> list[Expanded]:
    used = PLACEHOLDER.findall(template)
    if used:
        out.add(
            ("avatars", template),
            f"placeholder {{{used[0]}}} in an avatar key needs `foreach` to bind it",
        )
        return []
    if not _KEY.match(template):
        out.add(
            ("avatars", template),
            f"invalid key {template!r}: use lowercase letters, digits, '-' and '_',"
            " starting with a letter or digit",
        )
        return []
    return [_avatar(template, template, raw, looks, {}, None)]


def _avatar(
    key: str,
    template: str,
    raw: Mapping[str, Any],
    looks: list[_Look],
    values: Mapping[str, str],
    label: str | None,
) -> Expanded:
    body: dict[str, Any] = {
        k: _fill_value(v, values)
        for k, v in raw.items()
        if k not in ("foreach", "include", "looks")
    }
    filled: dict[str, Any] = {}
    origins: dict[str, Location] = {}
    for look_key, spec, where, set_name in looks:
        if isinstance(spec, dict) and (values or set_name is not None):
            matrix = spec.get("matrix") if isinstance(spec.get("matrix"), dict) else None
            bound = {k: v for k, v in values.items() if k not in matrix} if matrix else values
            new_key = fill(look_key, bound, slug=True)
            spec = {k: _fill_value(v, bound, slug=k == "from") for k, v in spec.items()}
            if set_name is not None:
                spec[SET_MARK] = set_name
        else:
            new_key = look_key
        filled[new_key] = spec
        origins[new_key] = where
    body["looks"] = filled
    from_sets = any(set_name is not None for _, _, _, set_name in looks)
    return Expanded(key, body, template, label, origins, from_sets)


def _fill_value(value: Any, values: Mapping[str, str], slug: bool = False) -> Any:
    if not values:
        return value
    if isinstance(value, str):
        return fill(value, values, slug)
    if isinstance(value, dict):
        return {k: _fill_value(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_value(v, values) for v in value]
    return value


def _foreach(
    out: Expansion,
    template: str,
    raw: Mapping[str, Any],
    looks: list[_Look],
    source: Source,
) -> list[Expanded]:
    loc: Location = ("avatars", template)
    kind = next(iter(raw["foreach"]))
    if source.problem is not None:
        out.add(loc + ("foreach", kind), source.problem)
        return []
    out.source_problems.extend(source.problems)
    if not source.columns:
        return []  # no header: what the template binds cannot be checked
    columns = set(source.columns)
    what = f"a column of {source.describe}" if kind == "csv" else "{path} or {stem}"
    # Rows are checked (keys) even when the template is wrong: one pass finds all.
    bound = _placeholders_bound(out, loc, raw, looks, columns, what)
    in_key = [name for name in PLACEHOLDER.findall(template) if name in columns]
    if not in_key:
        if bound:
            out.add(loc, f"avatar key {template!r} has no placeholder, so rows give the same key")
        return []
    made: list[Expanded] = []
    first: dict[str, Row] = {}
    for row in source.rows:
        label = _label(kind, row, in_key)
        empty = [c for c in in_key if not row.values[c].strip()]
        if empty and kind == "csv":
            out.source_problems.append(
                Problem(
                    row.file,
                    row.line,
                    "",
                    f"column {empty[0]!r} is empty; the key {template!r} needs it",
                )
            )
            continue
        key = fill(template, row.values, slug=True)
        if not _KEY.match(key):
            out.add(
                loc, f"key {key!r} made from {template!r} must start with a letter or digit", label
            )
            continue
        if key in first:
            if kind == "csv":
                out.source_problems.append(
                    Problem(
                        row.file,
                        row.line,
                        "",
                        f"duplicate key {key!r} (first at line {first[key].line})",
                    )
                )
            else:
                out.add(
                    loc, f"key {key!r} is made by two files: {first[key].values['path']}", label
                )
            continue
        first[key] = row
        if bound:
            made.append(_avatar(key, template, raw, looks, row.values, label))
    return made


def _label(kind: str, row: Row, in_key: list[str]) -> str:
    if kind == "files":
        return f"file {row.values['path']}"
    return "row " + ", ".join(f"{c}={row.values[c]}" for c in dict.fromkeys(in_key))


def _placeholders_bound(
    out: Expansion,
    loc: Location,
    raw: Mapping[str, Any],
    looks: list[_Look],
    columns: set[str],
    what: str,
) -> bool:
    """Every placeholder of the template is a column (or, in a look, its matrix's), once."""
    ok = True
    unbound = [n for n in PLACEHOLDER.findall(str(loc[1])) if n not in columns]
    for name in unbound[:1]:
        out.add(loc, f"placeholder {{{name}}} in the key is not bound: not {what}")
        ok = False
    for key, value in raw.items():
        if key in ("foreach", "include", "looks"):
            continue
        for where, name in _strings_placeholders(loc + (key,), value):
            if name not in columns:
                out.add(where, f"placeholder {{{name}}} is not bound: not {what}")
                ok = False
    for look_key, spec, where, _ in looks:
        if not isinstance(spec, dict):
            continue
        raw_matrix = spec.get("matrix")
        matrix: dict[str, Any] = raw_matrix if isinstance(raw_matrix, dict) else {}
        for name in matrix:
            if name in columns:
                out.add(
                    where + ("matrix", name),
                    f"{{{name}}} is bound twice: by this look's matrix and as {what}",
                )
                ok = False
        texts = _strings_placeholders(where, {k: v for k, v in spec.items() if k != "matrix"})
        names = {n for _, n in texts} | set(PLACEHOLDER.findall(look_key))
        for name in sorted(names - columns - set(matrix)):
            out.add(
                where, f"placeholder {{{name}}} is not bound: not {what}, nor in this look's matrix"
            )
            ok = False
    return ok


def _strings_placeholders(loc: Location, value: Any) -> list[tuple[Location, str]]:
    if isinstance(value, str):
        return [(loc, name) for name in PLACEHOLDER.findall(value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _strings_placeholders(loc + (k,), v)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _strings_placeholders(loc + (i,), v)]
    return []


# -- moved ----------------------------------------------------------------------------


def check_moves(
    moves: list[Move], looks: Mapping[str, set[str]], report: Callable[[int, str, str], None]
) -> None:
    """Report moves that cannot be meant: onto a look the recipe lacks, or from one it has.

    `looks`: look key -> the avatars having it. report(index, field, message).
    """
    for i, move in enumerate(moves):
        source_avatar, source_key = move.source.split("/", 1)
        target_avatar, target_key = move.target.split("/", 1)
        if (source_avatar == "*") != (target_avatar == "*"):
            report(i, "to", "use `*` in both `from` and `to`, or in neither")
            continue
        if move.source == move.target:
            report(i, "to", "moves a look onto itself")
            continue
        having = looks.get(target_key, set())
        if target_avatar == "*" and not having:
            report(i, "to", f"no avatar has a look {target_key!r}")
        elif target_avatar != "*" and target_avatar not in having:
            report(i, "to", f"no look {move.target!r} in the recipe")
        still = looks.get(source_key, set())
        if source_avatar == "*" and still & having:
            avatar = sorted(still & having)[0]
            report(i, "from", f"{avatar}/{source_key} is still in the recipe; a move leaves it")
        elif source_avatar != "*" and source_avatar in still:
            report(i, "from", f"{move.source} is still in the recipe; a move leaves it")
