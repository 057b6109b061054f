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
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from engine import _schemas, batch_source, expand, media
from engine.errors import Problem, RecipeError
from engine.expand import Move, slugify

if TYPE_CHECKING:
    import jsonschema

PROMPT_LIMIT = 1000
BaseType = Literal["photo", "digital_twin", "prompt", "existing"]
Location = tuple[str | int, ...]

_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_SAFE_TAGS = frozenset(
    "tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null", "map", "seq")
)
_MAX_NODES = 1_000_000  # guards against alias bombs ("billion laughs")
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader (libyaml's when present: 5x faster) reading unquoted dates as text.

    A name like 2024-01-01 is a string, not a date.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _TIMESTAMP]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


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

    @property
    def directory(self) -> Path:
        return self.path.parent

    def looks(self) -> Iterator[LookSpec]:
        for avatar in self.avatars:
            yield from avatar.looks


@dataclass
class _Doc:
    """A parsed YAML document with the line of every key and item."""

    file: str
    data: Any
    lines: dict[Location, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    unreadable: set[Location] = field(default_factory=set)  # already reported by the parser
    labels: dict[str, str] = field(default_factory=dict)  # expanded avatar -> "row id=ana"

    def line(self, loc: Location) -> int:
        while loc not in self.lines and loc:
            loc = loc[:-1]
        return self.lines.get(loc, 1)

    def add(self, loc: Location, message: str, label: str | None = None) -> None:
        if label is None and len(loc) >= 2 and loc[0] == "avatars":
            label = self.labels.get(str(loc[1]))
        if label:
            message = f"{message} ({label})"
        path = ".".join(str(p) for p in loc)
        self.problems.append(Problem(self.file, self.line(loc), path, message))


def load_recipe(path: str | Path) -> Recipe:
    """Load and validate a recipe; raise RecipeError listing every problem found."""
    path = Path(path)
    doc = _parse(path)
    if doc.data is None:
        raise RecipeError(doc.problems)
    broken = _check_schema(doc)
    # Semantic checks run on every avatar the schema accepted, so one pass finds everything.
    recipe = None if broken is None else _build(doc, path, skip=broken)
    if doc.problems or recipe is None:
        raise RecipeError(doc.problems)
    return recipe


# -- YAML -------------------------------------------------------------------------


def _parse(path: Path) -> _Doc:
    doc = _Doc(str(path), None)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        doc.problems.append(Problem(str(path), 1, "", "no such file"))
        return doc
    except (OSError, UnicodeDecodeError) as e:
        doc.problems.append(Problem(str(path), 1, "", f"cannot read: {e}"))
        return doc
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            doc.problems.append(Problem(doc.file, 1, "", "empty recipe"))
            return doc
        counter = itertools.count()
        doc.data = _construct(loader, node, (), doc, counter)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        doc.problems.append(Problem(doc.file, line, "", f"invalid YAML: {e.problem or e.context}"))
    except yaml.YAMLError as e:
        doc.problems.append(Problem(doc.file, 1, "", f"invalid YAML: {e}"))
    finally:
        loader.dispose()
    return doc


def _construct(
    loader: _Loader,
    node: yaml.Node,
    loc: Location,
    doc: _Doc,
    counter: Iterator[int],
) -> Any:
    if next(counter) > _MAX_NODES:
        raise yaml.YAMLError("too many nodes (alias expansion?)")
    doc.lines.setdefault(loc, node.start_mark.line + 1)
    if node.tag not in _SAFE_TAGS:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        doc.add(loc, f"unsupported YAML tag {tag!r}; recipes hold plain data only")
        doc.unreadable.add(loc)
        return None
    if isinstance(node, yaml.MappingNode):
        # Keys a merge (`<<: *anchor`) brings in yield to the mapping's own keys and to
        # later merges, as YAML's merge key wants; only a key written twice is a duplicate.
        written = {id(k) for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"}
        loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merged: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag not in _SAFE_TAGS:
                tag = key_node.tag.replace("tag:yaml.org,2002:", "!!")
                doc.problems.append(
                    Problem(
                        doc.file,
                        key_node.start_mark.line + 1,
                        ".".join(str(p) for p in loc),
                        f"unsupported YAML tag {tag!r}; recipes hold plain data only",
                    )
                )
                continue
            key = loader.construct_object(key_node)
            if not isinstance(key, str):
                doc.lines[loc + (str(key),)] = key_node.start_mark.line + 1
                doc.add(loc + (str(key),), "keys must be strings")
                continue
            key_line = key_node.start_mark.line + 1
            if key in merged:
                merged.discard(key)
                del first_line[key]
            if id(key_node) not in written:
                merged.add(key)
            if key in first_line:
                doc.lines.setdefault(loc + (key,), key_line)
                doc.problems.append(
                    Problem(
                        doc.file,
                        key_line,
                        ".".join(str(p) for p in loc + (key,)),
                        f"duplicate key {key!r} (first at line {first_line[key]})",
                    )
                )
                continue
            first_line[key] = key_line
            doc.lines[loc + (key,)] = key_line
            result[key] = _construct(loader, value_node, loc + (key,), doc, counter)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, loc + (i,), doc, counter) for i, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


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


def _broken_part(loc: Location) -> Location:
    """The look, or else the avatar, that a problem at loc makes unfit for semantic checks."""
    return loc[:4] if loc[2:3] == ("looks",) and len(loc) >= 4 else loc[:2]


def _check_schema(doc: _Doc) -> set[Location] | None:
    """Report schema errors; return the parts they touch, or None if the top level is broken."""
    broken: set[Location] = set()
    top_broken = False
    errors = sorted(
        _schemas.errors(doc.data, "recipe"),
        key=lambda e: (doc.line(tuple(e.absolute_path)), list(map(str, e.absolute_path))),
    )
    for error in errors:
        loc: Location = tuple(error.absolute_path)
        instance: Any = error.instance
        if loc in doc.unreadable:
            # Already reported by the parser; the value read as null is unusable.
            if len(loc) >= 2 and loc[0] == "avatars":
                broken.add(_broken_part(loc))
            else:
                top_broken = True
            continue
        message = _schema_message(error)
        if "propertyNames" in error.absolute_schema_path:
            # jsonschema reports a bad key at its mapping; point at the key itself.
            loc += (instance,)
            message = f"invalid key {instance!r}: {_key_rule(error.absolute_schema_path)}"
        if len(loc) >= 2 and loc[0] == "avatars":
            broken.add(_broken_part(loc))
        elif len(loc) >= 2 and loc[0] == "look_sets":
            broken.add(loc[:3])  # the set's look (or the set): avatars including it wait
        elif not (loc == () and error.validator == "additionalProperties"):
            top_broken = True
        if error.validator == "not" and isinstance(instance, dict) and "look_id" in instance:
            # The look schema's `then`: nothing that generates goes beside look_id.
            for key in [k for k in _ADOPTED_FORBIDS if k in instance]:
                doc.add(loc + (key,), f"{key!r} does not apply to an adopted look (look_id)")
            continue
        if error.validator == "additionalProperties":
            for key in _unexpected(error):
                allowed = sorted(_schema_of(error).get("properties", {}))
                doc.add(loc + (key,), _unknown_key(key, allowed))
            continue
        doc.add(loc, message)
    return None if top_broken else broken


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
    return f"unknown key {key!r}{hint}"


def _schema_message(error: jsonschema.ValidationError) -> str:
    v = error.validator
    value: Any = error.validator_value
    instance: Any = error.instance
    if v == "required":
        missing = [k for k in value if k not in instance]
        return f"missing required key {missing[0]!r}"
    if v == "type":
        names = [value] if isinstance(value, str) else list(value)
        wanted = " or ".join(_TYPE_NAMES.get(n, n) for n in names)
        return f"must be {wanted}, not {_yaml_type(error.instance)}"
    if v == "enum":
        return f"must be one of {', '.join(map(str, value))}; got {error.instance!r}"
    if v == "const":
        return f"must be {value!r}; got {error.instance!r}"
    if v == "maxItems":
        what = str(error.path[-1]).replace("_", " ") if error.path else "items"
        return f"at most {value} {what} allowed; got {len(instance)}"
    if v in ("minItems", "minLength", "minProperties"):
        return "must not be empty"
    if v in ("minimum", "maximum"):
        bound = "at least" if v == "minimum" else "at most"
        return f"must be {bound} {value}; got {instance!r}"
    if v == "pattern" and str(value).startswith("^https?"):
        return f"must be an http(s) URL; got {error.instance!r}"
    if v == "pattern":
        return f"{error.instance!r} does not match {value}"
    return error.message


def _key_rule(schema_path: Iterable[Any]) -> str:
    parent = [p for p in schema_path if p != "propertyNames"][-2]
    if parent in ("looks", "additionalProperties"):  # additionalProperties: a look set
        return "use lowercase letters, digits, '-', '_' and {placeholders}"
    if parent == "matrix":
        return "use lowercase letters, digits and '_', starting with a letter or '_'"
    return "use lowercase letters, digits, '-' and '_', starting with a letter or digit"


# -- semantics and expansion ---------------------------------------------------------


def _build(doc: _Doc, path: Path, skip: set[Location]) -> Recipe:
    data: dict[str, Any] = doc.data
    suffix = str(data.get("defaults", {}).get("prompt_suffix", ""))
    files = _FileResolver(path.resolve().parent, doc)  # a symlink: beside the real file
    expansion = expand.expand(data, _foreach_sources(doc, files.root), skip)
    _place_expansion(doc, expansion, skip)
    avatars = tuple(
        _build_avatar(doc, a.key, a.raw, suffix, files, skip) for a in expansion.avatars
    )
    # A template that failed to expand would make every move onto its looks look wrong.
    expanded = not (expansion.problems or expansion.source_problems)
    moves = _moves(doc, avatars, check=expanded)
    credits = _credit_prices(doc, data.get("defaults", {}).get("credits", {}))
    return Recipe(path=path, avatars=avatars, prompt_suffix=suffix, moves=moves, credits=credits)


def _foreach_sources(doc: _Doc, root: Path) -> dict[str, batch_source.Source]:
    """The rows of every `foreach`, each CSV read and each glob matched once."""
    read: dict[tuple[str, str], batch_source.Source] = {}
    sources: dict[str, batch_source.Source] = {}
    for template, raw in doc.data["avatars"].items():
        foreach = raw.get("foreach") if isinstance(raw, dict) else None
        if not isinstance(foreach, dict) or len(foreach) != 1:
            continue
        kind, value = next(iter(foreach.items()))
        if (kind, value) not in read:
            if kind == "csv":
                shown = str(Path(doc.file).parent / value)
                read[kind, value] = batch_source.read_csv(root, value, shown)
            else:
                read[kind, value] = batch_source.match_files(root, value, doc.file)
        sources[template] = read[kind, value]
    return sources


def _place_expansion(doc: _Doc, expansion: expand.Expansion, skip: set[Location]) -> None:
    """Report the expansion's problems; give expanded parts the lines of their templates."""
    for loc, message, label in expansion.problems:
        doc.add(loc, message, label)
    doc.problems.extend(expansion.source_problems)
    if not any(a.key != a.template or a.from_sets for a in expansion.avatars):
        return  # a recipe without foreach or include: every line is where it was written
    written: dict[Location, list[tuple[Location, int]]] = {}
    for loc, line in doc.lines.items():
        if loc[:1] == ("avatars",) and len(loc) >= 4 and loc[2] == "looks":
            prefix = loc[:4]
        elif loc[:1] == ("avatars",) and len(loc) >= 2:
            prefix = loc[:2]
        elif loc[:1] == ("look_sets",) and len(loc) >= 3:
            prefix = loc[:3]
        else:
            continue
        written.setdefault(prefix, []).append((loc[len(prefix) :], line))
    for avatar in expansion.avatars:
        at: Location = ("avatars", avatar.key)
        if avatar.key != avatar.template:
            for rest, line in written.get(("avatars", avatar.template), ()):
                doc.lines[at + rest] = line
        for key, origin in avatar.look_origins.items():
            target = at + ("looks", key)
            if origin != target:
                for rest, line in written.get(origin, ()):
                    doc.lines[target + rest] = line
            if origin in skip:
                skip.add(target)
        if avatar.label:
            doc.labels[avatar.key] = avatar.label


def _moves(doc: _Doc, avatars: tuple[AvatarSpec, ...], check: bool) -> tuple[Move, ...]:
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
) -> AvatarSpec:
    loc: Location = ("avatars", key)
    base = _build_base(doc, loc + ("base",), raw["base"], suffix, files)
    reroute = None
    if "consent" in raw:
        if base.type != "digital_twin":
            doc.add(loc + ("consent",), f"consent applies to digital_twin bases, not {base.type}")
        reroute = raw["consent"].get("reroute_url")
    looks = _build_looks(doc, key, raw, suffix, files, skip)
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
        prompt = _check_prompt(doc, loc + ("prompt",), raw["prompt"], suffix, None)
        refs = files.resolve_all(loc + ("reference_images",), raw.get("reference_images", []), {})
        return BaseSpec(type=kind, prompt=prompt, reference_images=refs)
    return BaseSpec(type=kind, look_id=raw["look_id"])


def _check_prompt(doc: _Doc, loc: Location, prompt: str, suffix: str, expanded: str | None) -> str:
    """The prompt as sent (suffix appended); a problem if the API would refuse its length."""
    full = prompt + suffix
    if len(full) > PROMPT_LIMIT:
        how = [f"as {expanded}"] if expanded else []
        how += ["with the prompt_suffix"] if suffix else []
        detail = f" ({', '.join(how)})" if how else ""
        doc.add(
            loc,
            f"prompt is {len(full)} characters{detail}; the API allows {PROMPT_LIMIT}",
        )
    return full


def _build_looks(
    doc: _Doc,
    avatar: str,
    raw: dict[str, Any],
    suffix: str,
    files: _FileResolver,
    skip: set[Location],
) -> tuple[LookSpec, ...]:
    looks: dict[str, LookSpec] = {}
    origin: dict[str, str] = {}
    # Looks already reported as broken: a `from` naming one is not a second problem.
    skipped = {str(loc[3]) for loc in skip if loc[:3] == ("avatars", avatar, "looks")}
    for template, spec in raw.get("looks", {}).items():
        loc: Location = ("avatars", avatar, "looks", template)
        if loc in skip:
            continue
        combinations = _combinations(doc, loc, template, spec)
        if not combinations:
            skipped.add(template)
        for values in combinations:
            look = _build_look(doc, loc, avatar, raw["name"], template, spec, values, suffix, files)
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
    doc: _Doc, loc: Location, template: str, spec: dict[str, Any]
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
    return [
        {n: str(v) for n, v in zip(names, combo, strict=True)}
        for combo in itertools.product(*(matrix[n] for n in names))
    ]


def _fill(text: str, values: Mapping[str, str], slug: bool = False) -> str:
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
        doc, loc + ("prompt",), _fill(spec["prompt"], values), suffix, key if values else None
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
            close = difflib.get_close_matches(look.source, list(looks), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            doc.add(loc, f"no look {look.source!r} in avatar {avatar!r}{hint}")
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
    """Checks file references and hashes local files once each."""

    def __init__(self, root: Path, doc: _Doc) -> None:
        self.root = root
        self.doc = doc
        self._digests: dict[Path, str] = {}

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
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root):
            self.doc.add(loc, f"{relative!r} is outside the recipe's directory")
            return None
        if not target.is_file():
            self.doc.add(loc, f"file not found: {relative}")
            return None
        # Judged by content, not by name: a text file called fake.png is no image.
        verdict = media.check_file(target, "video" if wanted == "video" else "image")
        if not verdict.ok:
            self.doc.add(loc, f"{relative}: {verdict.problem}")
            return None
        return FileSpec(
            kind="path",
            value=relative,
            media_type=verdict.media_type,
            local_path=target,
            digest=self._digest(target),
        )

    def _digest(self, target: Path) -> str:
        if target not in self._digests:
            h = hashlib.sha256()
            with target.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            self._digests[target] = h.hexdigest()
        return self._digests[target]
