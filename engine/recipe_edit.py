"""Recipe text editing: the recipe `looks import` writes, or the one it extends.

Adopted avatars are *inserted* into the recipe's text, never re-dumped, so the recipe's
comments and layout stay as they were. The text functions are pure; `write_recipe` checks
the new text as a recipe before it replaces the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml

from . import durable
from ._schemas import SCHEMAS
from .errors import LooksError, RecipeError
from .lifecycle import AdoptedAvatar
from .paths import resolved
from .recipe import Recipe, load_recipe


def schema_header(out: Path) -> str:
    """The editor hint, relative to the recipe; none when the schema file is not there."""
    schema = (SCHEMAS / "recipe.schema.json").resolve()
    if not schema.is_file():
        return ""
    try:
        relative = os.path.relpath(schema, resolved(out.parent))
    except ValueError:  # another drive (Windows)
        return ""
    return f"# yaml-language-server: $schema={Path(relative).as_posix()}\n"


def avatar_block(avatars: Sequence[AdoptedAvatar], indent: int) -> str:
    """The avatars as YAML mapping entries, each key at column `indent`."""
    text = ""
    for avatar in avatars:
        body = yaml.safe_dump(
            {avatar.key: avatar.recipe_entry()},
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=1_000_000,
        )
        first, rest = body.split("\n", 1)
        text += f"{first}  # imported from avatar group {avatar.group.id}\n{rest}"
    pad = " " * indent
    return "".join(pad + line for line in text.splitlines(keepends=True))


def new_recipe_text(header: str, adopted: Sequence[AdoptedAvatar]) -> str:
    """A whole new recipe holding the adopted avatars, after `header` (comment lines)."""
    return f"{header}version: 1\navatars:\n{avatar_block(adopted, 2)}"


def extended_text(out: Path, text: str, adopted: Sequence[AdoptedAvatar]) -> str:
    """The recipe's text with the avatars added at the end of its `avatars` mapping.

    `out` only names the recipe in an error. Text is inserted, not re-dumped, so the
    recipe's comments and layout stay as they were.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    assert isinstance(root, yaml.MappingNode)
    avatars = next(v for k, v in root.value if k.value == "avatars")
    assert isinstance(avatars, yaml.MappingNode)
    if not avatars.value:  # `avatars: {}`
        start, end = avatars.start_mark.index, avatars.end_mark.index
        rest = text[end:]
        rest = rest[1:] if rest.startswith("\n") else rest
        return text[:start].rstrip(" ") + "\n" + avatar_block(adopted, 2) + rest
    if avatars.flow_style:
        raise LooksError(
            f"{out}: cannot extend an `avatars` mapping written in flow style ({{...}});"
            " write it in block style first"
        )
    column = avatars.value[0][0].start_mark.column
    end = _content_end(avatars)
    if text[end - 1] != "\n":
        newline = text.find("\n", end)
        end = len(text) if newline == -1 else newline + 1
    head = text[:end] if text[:end].endswith("\n") else text[:end] + "\n"
    return head + avatar_block(adopted, column) + text[end:]


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends (a block collection's end mark runs past comments)."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style:
        return max(_content_end(n) for pair in node.value for n in pair)
    if isinstance(node, yaml.SequenceNode) and not node.flow_style:
        return max(_content_end(n) for n in node.value)
    return int(node.end_mark.index)


def recipe_text(out: Path, text: str | None, adopted: Sequence[AdoptedAvatar]) -> str:
    """The text `looks import` writes to `out`: a new recipe (`text` None) or the extended one."""
    if text is None:
        return new_recipe_text(schema_header(out), adopted)
    return extended_text(out, text, adopted)


def write_recipe(out: Path, text: str) -> Recipe:
    """Check the new text as a recipe, then replace the file atomically."""
    tmp = durable.temp_path_for(out)
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise durable.write_error(tmp, e) from None
    try:
        load_recipe(tmp)
    except RecipeError as e:
        tmp.unlink()
        details = "; ".join(p.message for p in e.problems)
        raise LooksError(
            f"{out}: the imported recipe would be invalid ({details}); unchanged"
        ) from None
    durable.replace(out, text.encode("utf-8"))  # checked, atomic, keeps the file's mode
    return load_recipe(out)
