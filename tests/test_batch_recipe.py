"""Batch authoring in recipes: x- keys, merge keys, look sets, foreach over CSV rows and file
globs, placeholders and `moved`; every rule with a good input and its exact error lines."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from looks import batch_source
from looks.errors import RecipeError
from looks.manifest import Manifest, NodeRecord
from looks.manifest_merge import Side, merge_manifests
from looks.recipe import Recipe, load_recipe

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
PEOPLE = "id,full_name,photo,accent\nana,Ana Lopez,ana.png,warm\nben,Ben Okafor,ben.png,cool\n"


def setup(tmp_path: Path, recipe: str, files: dict[str, str | bytes] | None = None) -> Path:
    """recipe.yaml in tmp_path with photos/ana.png, photos/ben.png and the given files."""
    (tmp_path / "photos").mkdir(exist_ok=True)
    for name in ("ana", "ben"):
        (tmp_path / "photos" / f"{name}.png").write_bytes(PNG + name.encode())
    for name, content in (files or {}).items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe, encoding="utf-8")
    return path


def load(tmp_path: Path, recipe: str, files: dict[str, str | bytes] | None = None) -> Recipe:
    return load_recipe(setup(tmp_path, recipe, files))


def problems(tmp_path: Path, recipe: str, files: dict[str, str | bytes] | None = None) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(setup(tmp_path, recipe, files))
    return [str(p).replace(f"{tmp_path}/", "") for p in info.value.problems]


TEAM = """\
version: 1
look_sets:
  office:
    navy-office: {prompt: "Navy blazer, modern office"}
    keynote: {prompt: "On a stage, {accent} lighting"}
    keynote-close: {prompt: "Tighter framing", from: keynote}
avatars:
  "{id}":
    foreach: {csv: people.csv}
    name: "{full_name}"
    base: {type: photo, file: {path: "photos/{photo}"}}
    include: [office]
"""


# -- good inputs ----------------------------------------------------------------------------


def test_x_keys_hold_anchors_and_a_merge_key_takes_an_override(tmp_path: Path) -> None:
    recipe = load(
        tmp_path,
        """\
version: 1
x-studio: &studio
  prompt: Plain grey studio backdrop
  name: Studio portrait
x-notes: anything at all, [even, lists]
avatars:
  s:
    name: S
    base: {type: photo, file: {path: photos/ana.png}}
    looks:
      plain: *studio
      podcast: {<<: *studio, prompt: "Seated at a podcast desk"}
""",
    )
    plain, podcast = recipe.avatars[0].looks
    assert (plain.prompt, plain.name) == ("Plain grey studio backdrop", "Studio portrait")
    assert (podcast.prompt, podcast.name) == ("Seated at a podcast desk", "Studio portrait")


def test_a_key_written_twice_beside_a_merge_is_still_a_duplicate(tmp_path: Path) -> None:
    text = """\
version: 1
x-a: &a {prompt: p}
avatars:
  s:
    name: S
    base: {type: photo, file: {path: photos/ana.png}}
    looks:
      l: {<<: *a, name: one, name: two}
"""
    assert problems(tmp_path, text) == [
        "recipe.yaml:8: avatars.s.looks.l.name: duplicate key 'name' (first at line 8)"
    ]


def test_foreach_csv_binds_columns_everywhere_and_includes_sets(tmp_path: Path) -> None:
    recipe = load(tmp_path, TEAM, {"people.csv": PEOPLE})
    assert [a.key for a in recipe.avatars] == ["ana", "ben"]
    ana = recipe.avatars[0]
    assert ana.name == "Ana Lopez"
    assert ana.base.file is not None and ana.base.file.value == "photos/ana.png"
    looks = {look.key: look for look in ana.looks}
    assert list(looks) == ["navy-office", "keynote", "keynote-close"]
    assert looks["keynote"].prompt == "On a stage, warm lighting"
    assert looks["keynote-close"].source == "keynote"
    assert {look.look_set for look in ana.looks} == {"office"}
    assert looks["keynote"].line == 5  # where the set writes it
    assert recipe.avatars[1].looks[1].prompt == "On a stage, cool lighting"


def test_row_placeholders_live_beside_a_look_matrix(tmp_path: Path) -> None:
    text = TEAM + '    looks:\n      "{mood}-{id}":\n        prompt: "{full_name}, {mood}"\n'
    text += "        matrix: {mood: [calm, Very Bold]}\n"
    recipe = load(tmp_path, text, {"people.csv": PEOPLE})
    ana = {look.key: look for look in recipe.avatars[0].looks}
    assert ana["very-bold-ana"].prompt == "Ana Lopez, Very Bold"
    assert ana["calm-ana"].name == "Ana Lopez — calm-ana"


def test_csv_quirks_bom_blank_lines_quotes_and_slugified_keys(tmp_path: Path) -> None:
    people = '\ufeffid,full_name,photo,accent\n\n"Ana Maria","Lopez, Ana",ana.png,warm\n'
    recipe = load(tmp_path, TEAM, {"people.csv": people})
    assert [(a.key, a.name) for a in recipe.avatars] == [("ana-maria", "Lopez, Ana")]


def test_foreach_files_binds_path_and_stem_sorted(tmp_path: Path) -> None:
    text = """\
version: 1
avatars:
  "guest-{stem}":
    foreach: {files: "guests/*.png"}
    name: "Guest {stem}"
    base: {type: photo, file: {path: "{path}"}}
    looks:
      podcast: {prompt: "{stem} at a podcast desk"}
"""
    files: dict[str, str | bytes] = {"guests/zoe.png": PNG + b"z", "guests/lee.png": PNG}
    recipe = load(tmp_path, text, {**files, "guests/notes.txt": "not a photo"})
    assert [a.key for a in recipe.avatars] == ["guest-lee", "guest-zoe"]
    lee = recipe.avatars[0]
    assert lee.base.file is not None and lee.base.file.value == "guests/lee.png"
    assert lee.looks[0].prompt == "lee at a podcast desk"


def test_moved_entries_are_read(tmp_path: Path) -> None:
    text = (
        TEAM
        + 'moved:\n  - {from: "*/stage", to: "*/keynote"}\n  - {from: ana/a, to: ana/navy-office}\n'
    )
    recipe = load(tmp_path, text, {"people.csv": PEOPLE})
    assert [(m.source, m.target, m.line) for m in recipe.moves] == [
        ("*/stage", "*/keynote", 14),
        ("ana/a", "ana/navy-office", 15),
    ]


# -- bad inputs: one line each --------------------------------------------------------------


def test_include_of_an_unknown_set(tmp_path: Path) -> None:
    text = TEAM.replace("include: [office]", "include: [ofice]")
    assert problems(tmp_path, text, {"people.csv": PEOPLE}) == [
        "recipe.yaml:12: avatars.{id}.include.0: no look set 'ofice'; did you mean 'office'?"
    ]


def test_a_look_key_defined_by_two_sources(tmp_path: Path) -> None:
    text = TEAM + "    looks:\n      keynote: {prompt: mine}\n"
    assert problems(tmp_path, text, {"people.csv": PEOPLE}) == [
        "recipe.yaml:14: avatars.{id}.looks.keynote: look key 'keynote' is defined by"
        " look set 'office' and by the avatar's own looks"
    ]


def test_a_from_leaving_the_set_must_name_a_look_the_avatar_has(tmp_path: Path) -> None:
    text = TEAM.replace("from: keynote}", "from: stage}")
    assert problems(tmp_path, text, {"people.csv": PEOPLE}) == [
        "recipe.yaml:6: avatars.ana.looks.keynote-close.from: no look 'stage' in avatar 'ana'"
        " (row id=ana)",
        "recipe.yaml:6: avatars.ben.looks.keynote-close.from: no look 'stage' in avatar 'ben'"
        " (row id=ben)",
    ]
    # ... which the avatar's own look satisfies.
    own = text + "    looks:\n      stage: {prompt: On stage}\n"
    assert load(tmp_path, own, {"people.csv": PEOPLE}).avatars[0].looks[2].source == "stage"


def test_a_glob_that_matches_nothing(tmp_path: Path) -> None:
    text = """\
version: 1
avatars:
  "g-{stem}":
    foreach: {files: "guests/*.jpg"}
    name: "Guest {stem}"
    base: {type: photo, file: {path: "{path}"}}
"""
    assert problems(tmp_path, text) == [
        "recipe.yaml:4: avatars.g-{stem}.foreach.files: 'guests/*.jpg' matches no file"
    ]


@pytest.mark.parametrize(
    ("csv", "expected"),
    [
        (None, "recipe.yaml:9: avatars.{id}.foreach.csv: CSV file not found: people.csv"),
        ("", "people.csv:1: empty CSV: needs a header row and one row or more"),
        ("id,full_name,photo,accent\n", "people.csv:1: no rows below the header"),
        (
            PEOPLE + "ana,Ana Again,ana.png,x\n",
            "people.csv:4: duplicate key 'ana' (first at line 2)",
        ),
        (PEOPLE + "\nchloe,Chloe,ana.png\n", "people.csv:5: 3 fields, but the header has 4"),
        (
            PEOPLE + ",Nobody,ana.png,x\n",
            "people.csv:4: column 'id' is empty; the key '{id}' needs it",
        ),
        (
            "id,Full Name,photo,accent\n",
            "people.csv:1: column 'Full Name' cannot be a placeholder: use lowercase letters,"
            " digits and '_', starting with a letter or '_'",
        ),
        (
            PEOPLE + 'chloe,"unclosed,ana.png,x\n',
            "people.csv:4: invalid CSV: unexpected end of data",
        ),
    ],
)
def test_csv_problems_name_the_csv_line(tmp_path: Path, csv: str | None, expected: str) -> None:
    files: dict[str, str | bytes] = {} if csv is None else {"people.csv": csv}
    found = problems(tmp_path, TEAM, files)
    assert found[0] == expected, found


def test_template_errors_name_the_template_line_and_the_row(tmp_path: Path) -> None:
    people = PEOPLE + "chloe,Chloe,chloe.png,x\n"
    assert problems(tmp_path, TEAM, {"people.csv": people}) == [
        "recipe.yaml:11: avatars.chloe.base.file.path: file not found: photos/chloe.png"
        " (row id=chloe)"
    ]


def test_placeholders_must_be_bound_once(tmp_path: Path) -> None:
    text = TEAM.replace('"{full_name}"', '"{fullname}"')
    text += '    looks:\n      "{accent}-x": {prompt: p, matrix: {accent: [a]}}\n'
    assert problems(tmp_path, text, {"people.csv": PEOPLE}) == [
        "recipe.yaml:10: avatars.{id}.name: placeholder {fullname} is not bound:"
        " not a column of people.csv",
        "recipe.yaml:14: avatars.{id}.looks.{accent}-x.matrix.accent: {accent} is bound twice:"
        " by this look's matrix and as a column of people.csv",
    ]


def test_files_bind_only_path_and_stem(tmp_path: Path) -> None:
    text = """\
version: 1
avatars:
  "g-{stem}":
    foreach: {files: "photos/*.png"}
    name: "Guest {name}"
    base: {type: photo, file: {path: "{path}"}}
"""
    assert problems(tmp_path, text) == [
        "recipe.yaml:5: avatars.g-{stem}.name: placeholder {name} is not bound:"
        " not {path} or {stem}"
    ]


def test_a_key_placeholder_needs_foreach_and_keys_must_differ(tmp_path: Path) -> None:
    text = """\
version: 1
avatars:
  "{id}":
    name: X
    base: {type: photo, file: {path: photos/ana.png}}
  team:
    foreach: {csv: people.csv}
    name: "{full_name}"
    base: {type: photo, file: {path: photos/ana.png}}
"""
    assert problems(tmp_path, text, {"people.csv": PEOPLE}) == [
        "recipe.yaml:3: avatars.{id}: placeholder {id} in an avatar key needs `foreach` to bind it",
        "recipe.yaml:6: avatars.team: avatar key 'team' has no placeholder, so rows give the"
        " same key",
    ]


def test_an_expanded_key_clashing_with_another_avatar(tmp_path: Path) -> None:
    text = TEAM + "  ana:\n    name: Ana\n    base: {type: photo, file: {path: photos/ana.png}}\n"
    assert problems(tmp_path, text, {"people.csv": PEOPLE}) == [
        "recipe.yaml:13: avatars.ana: avatar key 'ana' is also made by '{id}'"
    ]


@pytest.mark.parametrize(
    ("moved", "expected"),
    [
        (
            "{from: ana/x, to: ana/stage}",
            "recipe.yaml:14: moved.0.to: no look 'ana/stage' in the recipe",
        ),
        (
            "{from: '*/x', to: '*/stage'}",
            "recipe.yaml:14: moved.0.to: no avatar has a look 'stage'",
        ),
        (
            "{from: '*/keynote', to: '*/navy-office'}",
            "recipe.yaml:14: moved.0.from: ana/keynote is still in the recipe; a move leaves it",
        ),
        (
            "{from: '*/x', to: ana/keynote}",
            "recipe.yaml:14: moved.0.to: use `*` in both `from` and `to`, or in neither",
        ),
        ("{from: ana, to: ana/keynote}", "recipe.yaml:14: moved.0.from: 'ana' does not match"),
    ],
)
def test_bad_moves(tmp_path: Path, moved: str, expected: str) -> None:
    found = problems(tmp_path, TEAM + f"moved:\n  - {moved}\n", {"people.csv": PEOPLE})
    assert len(found) == 1 and found[0].startswith(expected), found


# -- the run cache in records and merges ------------------------------------------------------


def test_a_merge_keeps_the_losing_sides_look_reusable() -> None:
    def text(*records: NodeRecord, serial: int) -> str:
        manifest = Manifest(lineage="0b5f8a4e-1d2c-4e3f-9a8b-7c6d5e4f3a2b", recipe="r.yaml")
        manifest.serial = serial
        manifest.nodes = {r.address: r for r in records}
        return manifest.dumps()

    def look(look_id: str, fingerprint: str, at: float) -> NodeRecord:
        return NodeRecord("s/a", "look", fingerprint, "completed", look_id=look_id, submitted_at=at)

    base = look("look_0", "0" * 64, 100.0)
    ours = look("look_a", "a" * 64, 200.0).evolve(
        superseded=("look_0",), reusable={"0" * 64: "look_0"}
    )
    theirs = look("look_b", "b" * 64, 300.0).evolve(superseded=("look_0",))
    merged = merge_manifests(
        Side(text(base, serial=1), "base"),
        Side(text(ours, serial=2), "ours"),
        Side(text(theirs, serial=3), "theirs"),
        "r.manifest.json",
    )
    record = NodeRecord.from_json("s/a", json.loads(merged.text)["nodes"]["s/a"])
    assert record.look_id == "look_b"
    assert record.reusable_look("a" * 64) == "look_a"  # ours, superseded by the merge
    assert record.reusable_look("0" * 64) == "look_0"


def test_x_keys_are_not_named_among_unknown_keys(tmp_path: Path) -> None:
    text = "version: 1\nx-a: &a {prompt: p}\navatarz: {}\navatars:\n  s:\n    name: S\n"
    text += "    base: {type: existing, look_id: x}\n"
    assert problems(tmp_path, text) == [
        "recipe.yaml:3: avatarz: unknown key 'avatarz'; did you mean 'avatars'?"
    ]


def test_a_key_placeholder_must_be_a_column(tmp_path: Path) -> None:
    text = TEAM.replace('"{id}":', '"{ident}":')
    assert problems(tmp_path, text, {"people.csv": PEOPLE}) == [
        "recipe.yaml:8: avatars.{ident}: placeholder {ident} in the key is not bound:"
        " not a column of people.csv"
    ]


def test_a_csv_has_a_bounded_number_of_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_source, "MAX_ROWS", 2)
    found = problems(tmp_path, TEAM, {"people.csv": PEOPLE + "chloe,Chloe,ana.png,x\n"})
    assert found == ["people.csv:4: more than 2 rows; split the CSV"]


def test_a_csv_that_is_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    setup(tmp_path, TEAM)
    os.mkfifo(tmp_path / "people.csv")
    found = problems(tmp_path, TEAM)
    assert found == [
        "people.csv:1: is not a regular file (a recipe is a file its manifest sits beside)"
    ]


def test_the_looks_limit_counts_the_looks_foreach_makes(tmp_path: Path) -> None:
    path = setup(tmp_path, TEAM, {"people.csv": PEOPLE})
    assert sum(len(a.looks) for a in load_recipe(path, max_looks=6).avatars) == 6
    with pytest.raises(RecipeError) as info:
        load_recipe(path, max_looks=5)
    assert [p.message for p in info.value.problems] == [
        "too many looks: a recipe may have at most 5 (raise it with --max-looks) (row id=ben)"
    ]
