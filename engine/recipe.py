"""Recipe format v1: load a YAML recipe, validate it, and expand it into specs.

Every problem is reported with the file, the line and the path in the recipe, all
of them in one pass, so a user fixes a recipe in one edit rather than ten runs.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import graphlib
import hashlib
import itertools
import math
import mimetypes
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from . import _schemas, batch_source, expand, media
from .errors import RecipeError
from .expand import Move, slugify
from .paths import resolved
from .yamldoc import Location, YamlDocument, parse_yaml, read_text, shown

if TYPE_CHECKING:
    import jsonschema

PROMPT_LIMIT = 1000
BaseType = Literal["photo", "digital_twin", "prompt", "existing"]
MediaPolicy = Literal["required", "optional"]


@dataclass
class _Doc(YamlDocument):
    """The recipe's YAML document; problems in an expanded avatar name its row."""

    labels: dict[str, str] = field(default_factory=dict)  # expanded avatar -> "row id=ana"

    def add(
        self, loc: Location, message: str, line: int | None = None, label: str | None = None
    ) -> None:
        if label is None and len(loc) >= 2 and loc[0] == "avatars":
            label = self.labels.get(str(loc[1]))
        super().add(loc, f"{message} ({label})" if label else message, line)


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
MAX_LOOKS = 100_000  # per recipe, after matrix expansion; `--max-looks` raises it
# --max-looks at most: a million looks plan in about 1.6 GB; more would end in a MemoryError.
MAX_LOOKS_CEILING = 1_000_000
_MAX_FILLED = 2000  # characters of a key, name, `from` or file once placeholders are filled
_MAX_SUGGESTION_CANDIDATES = 1000


@dataclass(frozen=True)
class FileSpec:
    """A file or reference image: exactly one of a local path, a URL, an asset id or inline data."""

    kind: Literal["path", "url", "asset_id", "base64"]
    value: str
    media_type: str | None = None
    local_path: Path | None = None
    digest: str | None = None  # sha256 of the content, for local and inline files

    def describe(self) -> str:
        return self.value if self.kind != "base64" else f"base64:{self.digest}"


@dataclass(frozen=True)
class BaseSpec:
    """How an avatar's base look comes to be."""

    type: BaseType
    file: FileSpec | None = None
    prompt: str | None = None
    reference_images: tuple[FileSpec, ...] = ()
    look_id: str | None = None


@dataclass(frozen=True)
class LookSpec:
    """One look: a prompt variation built on the base or on another look, or an adopted one.

    An adopted look (`look_id`, as `looks import` writes them) already exists in the
    account: it has no prompt, nothing is generated for it, and other looks can be built
    `from` it. Its `source` is "base" and means nothing.
    """

    avatar: str
    key: str
    name: str
    prompt: str  # "" for an adopted look
    source: str  # "base" or the key of another look of the same avatar
    reference_images: tuple[FileSpec, ...] = ()
    line: int = 0
    look_id: str | None = None  # an adopted look: this existing look, not a new one
    look_set: str | None = None  # the look set it comes from (`include`), if any

    @property
    def address(self) -> str:
        return f"{self.avatar}/{self.key}"

    @property
    def adopted(self) -> bool:
        return self.look_id is not None


@dataclass(frozen=True)
class AvatarSpec:
    """An avatar: its base and its looks."""

    key: str
    name: str
    base: BaseSpec
    looks: tuple[LookSpec, ...] = ()
    group_id: str | None = None
    consent_reroute_url: str | None = None
    line: int = 0

    @property
    def address(self) -> str:
        return self.key


@dataclass(frozen=True)
class CreditPrices:
    """Credits one generation of each kind costs (`defaults.credits`); 1 unless set.

    HeyGen publishes 1 credit per photo or digital-twin creation; prompt bases and looks
    are not published, so a team sets what its account is charged.
    """

    photo: Decimal = Decimal(1)
    digital_twin: Decimal = Decimal(1)
    prompt: Decimal = Decimal(1)
    look: Decimal = Decimal(1)


@dataclass(frozen=True)
class Recipe:
    """A loaded, valid recipe."""

    path: Path
    avatars: tuple[AvatarSpec, ...]
    prompt_suffix: str = ""
    moves: tuple[Move, ...] = ()
    credits: CreditPrices = CreditPrices()


def load_recipe(
    path: str | Path, *, max_looks: int = MAX_LOOKS, media: MediaPolicy = "required"
) -> Recipe:
    """Load and validate a recipe; raise RecipeError listing every problem found.

    With media="optional", a local file that is not on disk is no problem: its FileSpec
    has no digest, and the planner takes the manifest's record of its upload instead.
    """
    path = Path(path)
    doc = _Doc(str(path))
    text = read_text(path, doc)
    if text is not None:
        parse_yaml(text, doc)
    if doc.data is None and doc.problems:
        raise RecipeError(doc.problems, omitted=doc.omitted)
    checked = _check_schema(doc)
    # Semantic checks run on every part the schema accepted, so one pass finds everything.
    recipe = None if checked is None else _build(doc, path, checked, max_looks, media)
    if doc.problems or recipe is None:
        raise RecipeError(doc.problems, omitted=doc.omitted)
    return recipe


# -- schema -----------------------------------------------------------------------


_TYPE_NAMES = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "number": "a number",
    "integer": "an integer",
}


def _yaml_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


MAX_SCHEMA_PROBLEMS = 1000  # then the other broken avatars are counted, not explained
_STUB_AVATAR = {"name": "-", "base": {"type": "existing", "look_id": "-"}}


@dataclass
class _Checked:
    """What the schema check leaves for the semantic checks."""

    broken: set[Location]  # every location holding a problem, and their parents
    unchecked: set[str]  # avatars past MAX_SCHEMA_PROBLEMS: invalid, not explained


def _schema_errors(doc: _Doc, unchecked: set[str]) -> list[jsonschema.ValidationError]:
    """The schema errors, avatar by avatar: a valid avatar costs a compiled check, and only
    a broken one the slow, well-worded validator; past MAX_SCHEMA_PROBLEMS, broken avatars
    are only counted (a 10 MB recipe of broken avatars must not take minutes)."""
    data = doc.data
    avatars = data.get("avatars") if isinstance(data, dict) else None
    if not isinstance(avatars, dict):
        return _schemas.errors(data, "recipe")
    if _schemas.is_valid(data, "recipe"):
        return []
    key_rule = re.compile(
        _schemas.schema("recipe")["properties"]["avatars"]["propertyNames"]["pattern"]
    )
    # The top level, and the avatar keys, with each avatar's content left for below.
    top = {**data, "avatars": {k: _STUB_AVATAR for k in avatars if not key_rule.search(k)}}
    errors = _schemas.errors(top, "recipe")
    for key, raw in avatars.items():
        if _schemas.is_valid(raw, "recipe", "avatar"):
            continue
        if len(errors) >= MAX_SCHEMA_PROBLEMS:
            unchecked.add(key)
            continue
        for error in _schemas.errors(raw, "recipe", "avatar"):
            error.relative_path.extendleft([key, "avatars"])
            errors.append(error)
    if unchecked:
        first = next(k for k in avatars if k in unchecked)
        doc.add(
            ("avatars", first),
            f"this avatar and {len(unchecked) - 1:,} more after it do not match the schema"
            f" either (details stop after {MAX_SCHEMA_PROBLEMS:,} problems)",
        )
    return errors


def _check_schema(doc: _Doc) -> _Checked | None:
    """Report schema errors; return where they are, or None when the document has no
    avatars mapping to check further."""
    broken: set[Location] = set(doc.unreadable)  # read as null: already reported
    unchecked: set[str] = set()
    required_reported: set[Location] = set()
    errors = sorted(
        _schema_errors(doc, unchecked),
        key=lambda e: (doc.line(tuple(e.absolute_path)), list(map(str, e.absolute_path))),
    )
    for error in errors:
        loc: Location = tuple(error.absolute_path)
        instance: Any = error.instance
        if loc in doc.unreadable:
            continue
        if error.validator == "required":
            # jsonschema gives one error per missing key; one line says them all.
            if loc in required_reported:
                continue
            required_reported.add(loc)
        message = _schema_message(error)
        if "propertyNames" in error.absolute_schema_path:
            # jsonschema reports a bad key at its mapping; point at the key itself.
            loc += (instance,)
            message = f"invalid key {shown(instance)}: {_key_rule(error.absolute_schema_path)}"
        broken.add(loc)
        if error.validator == "not" and isinstance(instance, dict) and "look_id" in instance:
            # The look schema's `then`: nothing that generates goes beside look_id.
            for key in [k for k in _ADOPTED_FORBIDS if k in instance]:
                doc.add(loc + (key,), f"{key!r} does not apply to an adopted look (look_id)")
            continue
        if error.validator == "additionalProperties":
            for key in _unexpected(error):
                if doc.full:
                    doc.omitted += 1  # no suggestion to compute for a key nobody will see
                    continue
                allowed = sorted(_schema_of(error).get("properties", {}))
                doc.add(loc + (key,), _unknown_key(key, allowed))
            continue
        doc.add(loc, message)
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("avatars"), dict):
        return None
    # A part is checked further when no problem lies inside it: a problem in an avatar's
    # name leaves its base and looks to check, one in a look leaves the other looks.
    return _Checked({loc[:n] for loc in broken for n in range(len(loc) + 1)}, unchecked)


_ADOPTED_FORBIDS = ("prompt", "from", "matrix", "reference_images")


def _schema_of(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}


def _unexpected(error: jsonschema.ValidationError) -> list[str]:
    allowed = _schema_of(error).get("properties", {})
    patterns = _schema_of(error).get("patternProperties", {})  # x- keys at the top level
    instance: Any = error.instance
    return [k for k in instance if k not in allowed and not any(re.match(p, k) for p in patterns)]


def _unknown_key(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {', '.join(allowed)}"
    return f"unknown key {shown(key)}{hint}"


def _schema_message(error: jsonschema.ValidationError) -> str:
    v = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    if v == "required":
        missing = [k for k in value if k not in instance]
        if len(missing) > 1:
            return f"missing required keys {', '.join(map(repr, missing))}"
        return f"missing required key {missing[0]!r}"
    if v == "type":
        names = [value] if isinstance(value, str) else list(value)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"must be {wanted}, not {_yaml_type(error.instance)}"
    if v == "enum":
        return f"must be one of {', '.join(map(str, value))}; got {shown(instance)}"
    if v == "const":
        return f"must be {value!r}; got {shown(instance)}"
    if v == "maxItems":
        what = str(error.path[-1]).replace("_", " ") if error.path else "items"
        return f"at most {value} {what} allowed; got {len(instance)}"
    if v in ("minItems", "minLength", "minProperties"):
        return "must not be empty"
    if v in ("minimum", "maximum"):
        bound = "at least" if v == "minimum" else "at most"
        return f"must be {bound} {value}; got {instance!r}"
    if v == "pattern" and str(value).startswith("^https?"):
        return f"must be an http(s) URL; got {shown(instance)}"
    if v == "pattern":
        return f"{shown(instance)} does not match {value}"
    return error.message if len(error.message) <= 200 else error.message[:199] + "…"


def _key_rule(schema_path: Iterable[Any]) -> str:
    parent = [p for p in schema_path if p != "propertyNames"][-2]
    if parent in ("looks", "additionalProperties"):  # additionalProperties: a look set
        return "use lowercase letters, digits, '-', '_' and {placeholders}"
    if parent == "matrix":
        return "use lowercase letters, digits and '_', starting with a letter or '_'"
    return "use lowercase letters, digits, '-' and '_', starting with a letter or digit"


# -- semantics and expansion ---------------------------------------------------------


@dataclass
class _LookBudget:
    """Looks a recipe may still expand to (MAX_LOOKS, or --max-looks)."""

    limit: int
    left: int
    exceeded: bool = False

    def take(self, doc: _Doc, loc: Location, count: int) -> bool:
        """Whether `count` more looks fit; reports the first time they do not."""
        if self.exceeded:
            return False
        if count <= self.left:
            self.left -= count
            return True
        self.exceeded = True
        what = f"this look expands to {count:,}; " if count > 1 else ""
        doc.add(
            loc,
            f"too many looks: {what}a recipe may have at most {self.limit:,}"
            " (raise it with --max-looks)",
        )
        return False


def _build(
    doc: _Doc, path: Path, checked: _Checked, max_looks: int, media: MediaPolicy
) -> Recipe | None:
    skip = checked.broken
    data: dict[str, Any] = doc.data
    defaults = data.get("defaults")
    suffix = defaults.get("prompt_suffix", "") if isinstance(defaults, dict) else ""
    suffix = suffix if isinstance(suffix, str) else ""
    files = _FileResolver(resolved(path).parent, doc, media)  # a symlink: beside the real file
    budget = _LookBudget(max_looks, max_looks)
    credits = CreditPrices()
    raw_credits = defaults.get("credits") if isinstance(defaults, dict) else None
    if isinstance(raw_credits, dict) and ("defaults", "credits") not in skip:
        credits = _credit_prices(doc, raw_credits)
    sources = _foreach_sources(doc, files.root, checked.unchecked)
    expansion = expand.expand(data, sources, skip, checked.unchecked, max_looks)
    _place_expansion(doc, expansion, skip)
    avatars = [
        _build_avatar(doc, a.key, a.raw, suffix, files, skip, budget) for a in expansion.avatars
    ]
    # A template that failed to expand would make every move onto its looks look wrong.
    expanded = not (expansion.problems or expansion.source_problems or skip)
    built = [a for a in avatars if a is not None]
    moves = _moves(doc, built, check=expanded) if ("moved",) not in skip else ()
    if any(a is None for a in avatars) or skip or checked.unchecked:
        return None  # problems were found; the parts that passed were checked all the same
    return Recipe(
        path=path,
        avatars=tuple(a for a in avatars if a is not None),
        prompt_suffix=suffix,
        moves=moves,
        credits=credits,
    )


def _foreach_sources(doc: _Doc, root: Path, unchecked: set[str]) -> dict[str, batch_source.Source]:
    """The rows of every `foreach`, each CSV read and each glob matched once."""
    read: dict[tuple[str, str], batch_source.Source] = {}
    sources: dict[str, batch_source.Source] = {}
    for template, raw in doc.data["avatars"].items():
        foreach = raw.get("foreach") if isinstance(raw, dict) else None
        if template in unchecked or not isinstance(foreach, dict) or len(foreach) != 1:
            continue
        kind, value = next(iter(foreach.items()))
        if not isinstance(value, str) or kind not in ("csv", "files"):
            continue  # the schema said why
        if (kind, value) not in read:
            if kind == "csv":
                shown_as = str(Path(doc.file).parent / value)
                read[kind, value] = batch_source.read_csv(root, value, shown_as)
            else:
                read[kind, value] = batch_source.match_files(root, value, doc.file)
        sources[template] = read[kind, value]
    return sources


def _place_expansion(doc: _Doc, expansion: expand.Expansion, skip: set[Location]) -> None:
    """Report the expansion's problems; give expanded parts the lines of their templates,
    and the problems the schema found in a template to every avatar made from it."""
    for loc, message, label in expansion.problems:
        doc.add(loc, message, label=label)
    doc.problems.extend(expansion.source_problems)
    if not any(a.key != a.template or a.from_sets for a in expansion.avatars):
        return  # a recipe without foreach or include: every line is where it was written
    written: dict[Location, list[tuple[Location, int]]] = {}
    for loc, line in doc.lines.items():
        prefix = _template_part(loc)
        if prefix is not None:
            written.setdefault(prefix, []).append((loc[len(prefix) :], line))
    broken: dict[Location, list[Location]] = {}
    for loc in skip:
        prefix = _template_part(loc)
        if prefix is not None:
            broken.setdefault(prefix, []).append(loc[len(prefix) :])
    for avatar in expansion.avatars:
        at: Location = ("avatars", avatar.key)
        template: Location = ("avatars", avatar.template)
        parts = [(template, at)] if avatar.key != avatar.template else []
        parts += [
            (origin, at + ("looks", key))
            for key, origin in avatar.look_origins.items()
            if origin != at + ("looks", key)
        ]
        for origin, target in parts:
            for rest, line in written.get(origin, ()):
                doc.lines[target + rest] = line
            for rest in broken.get(origin, ()):
                skip.add(target + rest)
        if avatar.label:
            doc.labels[avatar.key] = avatar.label


def _template_part(loc: Location) -> Location | None:
    """The avatar, avatar look or set look a location lies in, if any."""
    if loc[:1] == ("avatars",) and len(loc) >= 4 and loc[2] == "looks":
        return loc[:4]
    if loc[:1] == ("avatars",) and len(loc) >= 2:
        return loc[:2]
    if loc[:1] == ("look_sets",) and len(loc) >= 3:
        return loc[:3]
    return None


def _moves(doc: _Doc, avatars: list[AvatarSpec], check: bool) -> tuple[Move, ...]:
    entries = doc.data.get("moved") or []
    moves = [Move(e["from"], e["to"], doc.line(("moved", i))) for i, e in enumerate(entries)]
    if not check:
        return tuple(moves)
    having: dict[str, set[str]] = {}
    for avatar in avatars:
        for look in avatar.looks:
            having.setdefault(look.key, set()).add(avatar.key)
    expand.check_moves(moves, having, lambda i, key, msg: doc.add(("moved", i, key), msg))
    return tuple(moves)


def _credit_prices(doc: _Doc, raw: Mapping[str, float]) -> CreditPrices:
    """defaults.credits as exact decimals (0.1 x 3 is 0.3); the schema checked the rest."""
    prices: dict[str, Decimal] = {}
    for kind, value in raw.items():
        if not math.isfinite(value):  # .nan passes the schema's bounds
            doc.add(("defaults", "credits", kind), f"must be a finite number; got {value!r}")
            continue
        prices[kind] = Decimal(str(value))
    return CreditPrices(**prices)


def _build_avatar(
    doc: _Doc,
    key: str,
    raw: dict[str, Any],
    suffix: str,
    files: _FileResolver,
    skip: set[Location],
    budget: _LookBudget,
) -> AvatarSpec | None:
    """The avatar; None when a problem in it keeps it from being whole (its base, say)."""
    loc: Location = ("avatars", key)
    base_raw = raw.get("base")
    base = None
    if loc + ("base",) not in skip and isinstance(base_raw, dict):
        base = _build_base(doc, loc + ("base",), base_raw, suffix, files)
    reroute = None
    consent = raw.get("consent")
    if loc + ("consent",) not in skip and isinstance(consent, dict) and base is not None:
        if base.type != "digital_twin":
            doc.add(loc + ("consent",), f"consent applies to digital_twin bases, not {base.type}")
        reroute = consent.get("reroute_url")
    name = raw.get("name") if isinstance(raw.get("name"), str) else key
    looks = _build_looks(doc, key, raw, str(name), suffix, files, skip, budget)
    if base is None or loc in skip:
        return None
    return AvatarSpec(
        key=key,
        name=raw["name"],
        base=base,
        looks=looks,
        group_id=raw.get("group_id"),
        consent_reroute_url=reroute,
        line=doc.line(loc),
    )


_BASE_FIELDS: dict[str, frozenset[str]] = {
    "photo": frozenset({"type", "file"}),
    "digital_twin": frozenset({"type", "file"}),
    "prompt": frozenset({"type", "prompt", "reference_images"}),
    "existing": frozenset({"type", "look_id"}),
}


def _build_base(
    doc: _Doc, loc: Location, raw: dict[str, Any], suffix: str, files: _FileResolver
) -> BaseSpec:
    kind: BaseType = raw["type"]
    for name in sorted(set(raw) - _BASE_FIELDS[kind]):
        doc.add(loc + (name,), f"{name!r} does not apply to a {kind} base")
    if kind in ("photo", "digital_twin"):
        wanted = "image" if kind == "photo" else "video"
        file = files.resolve(loc + ("file",), raw["file"], {}, wanted)
        return BaseSpec(type=kind, file=file)
    if kind == "prompt":
        prompt = _check_prompt(doc, loc + ("prompt",), raw["prompt"], {}, suffix, None)
        refs = files.resolve_all(loc + ("reference_images",), raw.get("reference_images", []), {})
        return BaseSpec(type=kind, prompt=prompt, reference_images=refs)
    return BaseSpec(type=kind, look_id=raw["look_id"])


def _check_prompt(
    doc: _Doc,
    loc: Location,
    prompt: str,
    values: Mapping[str, str],
    suffix: str,
    expanded: str | None,
) -> str:
    """The prompt as sent (filled, suffix appended); a problem if the API would refuse its
    length, measured before anything is built (a prompt of 250 placeholders each filled with
    a megabyte must not take 250 MB to refuse)."""
    length = _filled_length(prompt, values) + len(suffix)
    if length > PROMPT_LIMIT:
        how = [f"as {expanded}"] if expanded else []
        how += ["with the prompt_suffix"] if suffix else []
        detail = f" ({', '.join(how)})" if how else ""
        doc.add(
            loc,
            f"prompt is {length} characters{detail}; the API allows {PROMPT_LIMIT}",
        )
        return ""
    return _fill(prompt, values) + suffix


def _build_looks(
    doc: _Doc,
    avatar: str,
    raw: dict[str, Any],
    avatar_name: str,
    suffix: str,
    files: _FileResolver,
    skip: set[Location],
    budget: _LookBudget,
) -> tuple[LookSpec, ...]:
    looks: dict[str, LookSpec] = {}
    origin: dict[str, str] = {}
    specs = raw.get("looks")
    if not isinstance(specs, dict):
        return ()
    # Looks already reported as broken: a `from` naming one is not a second problem.
    skipped = {
        str(loc[3]) for loc in skip if len(loc) >= 4 and loc[:3] == ("avatars", avatar, "looks")
    }
    for template, spec in specs.items():
        loc: Location = ("avatars", avatar, "looks", template)
        if loc in skip or not isinstance(spec, dict):
            continue
        combinations = _combinations(doc, loc, template, spec, budget)
        if not combinations:
            skipped.add(template)
        for values in combinations:
            try:
                look = _build_look(
                    doc, loc, avatar, avatar_name, template, spec, values, suffix, files
                )
            except _TooLong as e:
                doc.add(
                    loc,
                    f"a key, name, from or file of this look grows to {e.length:,} characters"
                    f" once its placeholders are filled; at most {_MAX_FILLED:,}",
                )
                skipped.add(template)
                break
            if look is None:
                continue
            if look.key in looks:
                first = origin[look.key]
                line = doc.line(loc[:3] + (first,))
                also = f" (first made by {first!r}, line {line})" if first != template else ""
                doc.add(loc, f"look key {look.key!r} is defined more than once{also}")
                continue
            looks[look.key] = look
            origin[look.key] = template
    _check_sources(doc, avatar, looks, origin, skipped)
    return tuple(looks.values())


def _combinations(
    doc: _Doc, loc: Location, template: str, spec: dict[str, Any], budget: _LookBudget
) -> list[dict[str, str]]:
    matrix: dict[str, list[Any]] = spec.get("matrix", {})
    texts = [template, spec.get("prompt", ""), spec.get("name", ""), spec.get("from", "")]
    texts += [v for ref in spec.get("reference_images", []) for v in ref.values()]
    used = {name for text in texts for name in _PLACEHOLDER.findall(str(text))}
    ok = True
    for name in sorted(used - set(matrix)):
        doc.add(loc, f"placeholder {{{name}}} is not bound: add it to this look's matrix")
        ok = False
    in_key = set(_PLACEHOLDER.findall(template))
    for name in matrix:
        if name not in in_key:
            doc.add(
                loc + ("matrix", name),
                f"matrix variable {name!r} is not used in the look key, so expanded keys repeat",
            )
            ok = False
    if not ok:
        return []
    names = list(matrix)
    # Counted before anything is expanded: 3 x 1000 values would be 10**9 looks.
    if not budget.take(doc, loc, math.prod(len(matrix[n]) for n in names)):
        return []
    return [
        {n: str(v) for n, v in zip(names, combo, strict=True)}
        for combo in itertools.product(*(matrix[n] for n in names))
    ]


class _TooLong(Exception):
    """A text would grow past _MAX_FILLED once its placeholders are filled."""

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.length = length


def _filled_length(text: str, values: Mapping[str, str], slug: bool = False) -> int:
    if not values:
        return len(text)
    pieces = _PLACEHOLDER.split(text)  # text, name, text, name, ..., text
    fill = (lambda v: slugify(v)) if slug else (lambda v: v)
    return sum(map(len, pieces[::2])) + sum(len(fill(values[n])) for n in pieces[1::2])


def _fill(text: str, values: Mapping[str, str], slug: bool = False) -> str:
    """text with each {placeholder} replaced by its value (slugified for keys). Without
    values (a base, a look without matrix) text is taken as it is, braces and all."""
    if not values:
        return text
    length = _filled_length(text, values, slug)
    if length > _MAX_FILLED:
        raise _TooLong(length)
    return _PLACEHOLDER.sub(
        lambda m: slugify(values[m.group(1)]) if slug else values[m.group(1)], text
    )


def _build_look(
    doc: _Doc,
    loc: Location,
    avatar: str,
    avatar_name: str,
    template: str,
    spec: dict[str, Any],
    values: dict[str, str],
    suffix: str,
    files: _FileResolver,
) -> LookSpec | None:
    key = _fill(template, values, slug=True)
    if "look_id" in spec:
        return LookSpec(
            avatar=avatar,
            key=key,
            name=_fill(spec["name"], values) if "name" in spec else f"{avatar_name} — {key}",
            prompt="",
            source="base",
            line=doc.line(loc),
            look_id=spec["look_id"],
            look_set=spec.get(expand.SET_MARK),
        )
    prompt = _check_prompt(
        doc, loc + ("prompt",), spec["prompt"], values, suffix, key if values else None
    )
    name = _fill(spec["name"], values) if "name" in spec else f"{avatar_name} — {key}"
    source = _fill(spec.get("from", "base"), values, slug=True)
    refs = files.resolve_all(loc + ("reference_images",), spec.get("reference_images", []), values)
    return LookSpec(
        avatar=avatar,
        key=key,
        name=name,
        prompt=prompt,
        source=source,
        reference_images=refs,
        line=doc.line(loc),
        look_set=spec.get(expand.SET_MARK),
    )


def _check_sources(
    doc: _Doc,
    avatar: str,
    looks: dict[str, LookSpec],
    origin: dict[str, str],
    skipped: set[str],
) -> None:
    graph: dict[str, set[str]] = {}
    for look in looks.values():
        loc: Location = ("avatars", avatar, "looks", origin[look.key], "from")
        if look.source == "base" or look.source in skipped:
            continue
        if look.source not in looks:
            # A suggestion compares with every look: not for thousands of them (quadratic).
            few = len(looks) <= _MAX_SUGGESTION_CANDIDATES
            close = difflib.get_close_matches(look.source, list(looks), n=1) if few else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            doc.add(loc, f"no look {shown(look.source)} in avatar {shown(avatar)}{hint}")
            continue
        graph[look.key] = {look.source}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        cycle: list[str] = list(reversed(e.args[1]))
        loc = ("avatars", avatar, "looks", origin[cycle[0]], "from")
        doc.add(loc, f"looks form a cycle through 'from': {' -> '.join(cycle)}")


_MEDIA_KIND = {"image": "an image", "video": "a video"}


class _FileResolver:
    """Checks file references and hashes local files once each: the one place a recipe's
    files are found on disk."""

    def __init__(self, root: Path, doc: _Doc, media: MediaPolicy) -> None:
        self.root = root
        self.doc = doc
        self.media = media
        self._files: dict[Path, _LocalFile | _Absent] = {}

    def resolve_all(
        self, loc: Location, raws: list[dict[str, Any]], values: Mapping[str, str]
    ) -> tuple[FileSpec, ...]:
        specs = (self.resolve(loc + (i,), raw, values, "image") for i, raw in enumerate(raws))
        return tuple(s for s in specs if s is not None)

    def resolve(
        self, loc: Location, raw: dict[str, Any], values: Mapping[str, str], wanted: str
    ) -> FileSpec | None:
        sources = [k for k in ("path", "url", "asset_id", "base64") if k in raw]
        if len(sources) != 1:
            found = f"got {', '.join(sources)}" if sources else "got none"
            self.doc.add(loc, f"needs exactly one of path, url, asset_id, base64 ({found})")
            return None
        kind = sources[0]
        value = _fill(str(raw[kind]), values)
        media_type = raw.get("media_type")
        if kind == "base64":
            return self._inline(loc, value, media_type, wanted)
        if media_type is not None:
            self.doc.add(loc + ("media_type",), "media_type goes with base64 only")
            return None
        if kind == "path":
            return self._local(loc + ("path",), value, wanted)
        if kind == "url":
            guessed = mimetypes.guess_type(value.split("?")[0])[0]
            if not self._media_ok(loc + ("url",), guessed, wanted):
                return None
        return FileSpec(kind=kind, value=value)

    def _media_ok(self, loc: Location, media_type: str | None, wanted: str) -> bool:
        if media_type is None or media_type.split("/")[0] == wanted:
            return True
        self.doc.add(loc, f"must be {_MEDIA_KIND[wanted]} file; got {media_type}")
        return False

    def _inline(
        self, loc: Location, data: str, media_type: str | None, wanted: str
    ) -> FileSpec | None:
        if media_type is None:
            self.doc.add(loc, "base64 needs a media_type (e.g. image/png)")
            return None
        try:
            content = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            self.doc.add(loc + ("base64",), "is not valid base64")
            return None
        if not self._media_ok(loc + ("media_type",), media_type, wanted):
            return None
        digest = hashlib.sha256(content).hexdigest()
        return FileSpec(kind="base64", value=data, media_type=media_type, digest=digest)

    def _local(self, loc: Location, relative: str, wanted: str) -> FileSpec | None:
        if "\0" in relative:
            self.doc.add(loc, f"{shown(relative)} holds a NUL byte, which no file name can")
            return None
        try:
            target = resolved(self.root / relative)
        except (OSError, RuntimeError) as e:  # a symlink loop
            self.doc.add(loc, f"cannot resolve {shown(relative)}: {e}")
            return None
        found: _LocalFile | _Absent
        if not target.is_relative_to(self.root):
            if not (self.root / relative).is_symlink() or target.exists():
                self.doc.add(loc, f"{shown(relative)} is outside the recipe's directory")
                return None
            # A symlink to nothing: not on disk, whatever its dangling target names.
            found = _Absent("{path} is a symbolic link to a missing file")
        else:
            found = self._read(target)
        if isinstance(found, _Absent):
            if self.media == "required" or not found.missing:
                quoted = shown(relative)
                self.doc.add(loc, found.problem.format(path=quoted, bare=quoted[1:-1]))
                return None
            # Not on disk, and this command does not send it: judged by its name only, it
            # takes the digest of its recorded upload in the planner.
            guessed = mimetypes.guess_type(target.name)[0]
            if not self._media_ok(loc, guessed, wanted):
                return None
            return FileSpec(kind="path", value=relative, media_type=guessed)
        # Judged by content, not by name: a text file called fake.png is no image.
        verdict = media.check(found.head, found.size, "video" if wanted == "video" else "image")
        if not verdict.ok:
            self.doc.add(loc, f"{relative}: {verdict.problem}")
            return None
        return FileSpec(
            kind="path",
            value=relative,
            media_type=verdict.media_type,
            local_path=target,
            digest=found.digest,
        )

    def _read(self, target: Path) -> _LocalFile | _Absent:
        """The file's digest, first bytes and size, read once however often it is named."""
        if target not in self._files:
            self._files[target] = _read_local(target)
        return self._files[target]


@dataclass(frozen=True)
class _LocalFile:
    digest: str
    head: bytes
    size: int


@dataclass(frozen=True)
class _Absent:
    """Why a local file cannot be read; `missing` when it is just not there (or unreadable),
    which commands that do not send it accept."""

    problem: str  # with {path} (quoted) or {bare}
    missing: bool = True


def _read_local(target: Path) -> _LocalFile | _Absent:
    try:
        # O_NONBLOCK: a FIFO in place of a photo must not hang the load.
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return _Absent("file not found: {bare}")
    except OSError as e:
        return _Absent(f"cannot read {{path}}: {e.strerror}")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        # Like a missing file: commands that do not send it go on without it.
        if stat.S_ISDIR(info.st_mode):
            return _Absent("{path} is a directory, not a file")
        return _Absent("{path} is not a regular file")
    # fstat first: os.fdopen refuses a directory (IsADirectoryError, fd leaked).
    with os.fdopen(fd, "rb") as f:
        h = hashlib.sha256()
        head = b""
        try:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                head = head or chunk[: media.HEAD_BYTES]
                h.update(chunk)
        except OSError as e:
            return _Absent(f"cannot read {{path}}: {e.strerror}")
    return _LocalFile(h.hexdigest(), head, info.st_size)
