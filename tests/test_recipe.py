"""The recipe loader: every example recipe, and a table of invalid recipes with exact lines."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import looks
from looks.cli import main
from looks.errors import RecipeError
from looks.recipe import PROMPT_LIMIT, Recipe, load_recipe

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"
MEDIA = RECIPES / "media"
# A 1x1 PNG: the loader only hashes files and guesses their type from the suffix.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"

HEAD = "version: 1\navatars:\n  s:\n    name: S\n"  # avatar s at line 3
PHOTO = HEAD + "    base: {type: photo, file: {path: a.png}}\n"  # base at line 5
LOOKS = PHOTO + "    looks:\n"  # the first look at line 7
EXISTING = "    base: {type: existing, look_id: x}\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_recipe(directory: Path, text: str, name: str = "recipe.yaml") -> Path:
    """A recipe in directory, beside a.png (an image) and v.mp4 (a video)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "a.png").write_bytes(PNG)
    (directory / "v.mp4").write_bytes(MP4)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problem_lines(path: Path) -> list[str]:
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    return [str(p) for p in info.value.problems]


# -- the public entry -------------------------------------------------------------------


@pytest.mark.xfail(
    not hasattr(looks, "load_recipe"),
    reason="engine/__init__.py does not export load_recipe yet",
    strict=True,
)
def test_load_recipe_is_the_public_entry() -> None:
    assert looks.load_recipe is load_recipe  # type: ignore[attr-defined]


# -- the example recipes ------------------------------------------------------------------


def test_every_example_recipe_loads() -> None:
    paths = sorted(RECIPES.glob("*.yaml"))
    assert [p.name for p in paths] == [
        "characters.yaml",
        "existing.yaml",
        "sarah.yaml",
        "team.yaml",
        "twin.yaml",
    ]
    for path in paths:
        assert isinstance(load_recipe(path), Recipe)
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first == "# yaml-language-server: $schema=../schemas/recipe.schema.json"


def test_sarah_photo_avatars_with_a_chain() -> None:
    recipe = load_recipe(RECIPES / "sarah.yaml")
    assert recipe.path == RECIPES / "sarah.yaml"
    assert recipe.prompt_suffix == ", soft studio light"
    assert [a.key for a in recipe.avatars] == ["sarah", "marco"]
    sarah, marco = recipe.avatars
    assert (sarah.name, sarah.base.type, sarah.line) == ("Sarah", "photo", 8)
    assert sarah.address == "sarah"
    base_file = sarah.base.file
    assert base_file is not None
    assert (base_file.kind, base_file.value, base_file.media_type) == (
        "path",
        "media/sarah.png",
        "image/png",
    )
    assert base_file.local_path == (MEDIA / "sarah.png").resolve()
    assert base_file.digest == sha256((MEDIA / "sarah.png").read_bytes())

    looks = {look.key: look for look in sarah.looks}
    assert list(looks) == ["navy-office", "office-dusk", "podcast"]
    navy = looks["navy-office"]
    assert navy.address == "sarah/navy-office"
    assert navy.name == "Sarah — Navy Office"
    assert navy.prompt == (
        "Wearing a navy blazer, modern office background with plants, soft studio light"
    )
    assert navy.source == "base"
    assert [(r.kind, r.value, r.digest) for r in navy.reference_images] == [
        ("path", "media/office.png", sha256((MEDIA / "office.png").read_bytes()))
    ]
    assert navy.line == 14
    dusk = looks["office-dusk"]
    assert dusk.source == "navy-office"
    assert dusk.name == "Sarah — office-dusk"  # default name: "<avatar name> — <look key>"
    assert dusk.prompt.endswith("city lights behind her, soft studio light")
    assert looks["podcast"].name == "Sarah — podcast"
    assert [look.address for look in marco.looks] == ["marco/chef"]
    assert marco.looks[0].name == "Marco — chef"
    assert marco.base.file is not None
    assert marco.base.file.digest == sha256((MEDIA / "marco.png").read_bytes())
    assert [look.address for avatar in recipe.avatars for look in avatar.looks] == [
        "sarah/navy-office",
        "sarah/office-dusk",
        "sarah/podcast",
        "marco/chef",
    ]


def test_characters_prompt_avatar_with_a_matrix() -> None:
    recipe = load_recipe(RECIPES / "characters.yaml")
    assert recipe.prompt_suffix == ""
    (commander,) = recipe.avatars
    assert commander.key == "commander"
    assert commander.base.type == "prompt"
    assert commander.base.prompt is not None
    assert commander.base.prompt.startswith("Young woman, early 30s, confident expression")
    assert commander.base.file is None
    looks = {look.key: look for look in commander.looks}
    # One look per combination, in matrix order; values slugified in keys only.
    assert list(looks) == [
        "navy-suit",
        "charcoal-suit",
        "burnt-orange-suit",
        "mission-control-calm",
        "mission-control-determined",
        "city-street-calm",
        "city-street-determined",
    ]
    orange = looks["burnt-orange-suit"]
    assert (
        orange.prompt
        == "Wearing a burnt orange space suit with mission patches, on the spacecraft bridge"
    )
    assert orange.name == "Commander — burnt orange suit"
    street = looks["city-street-determined"]
    assert street.prompt == "Civilian clothes in a city street, determined expression"
    assert street.name == "Space Commander — city-street-determined"
    assert {look.source for look in looks.values()} == {"base"}


def test_twin_with_consent() -> None:
    (alex,) = load_recipe(RECIPES / "twin.yaml").avatars
    assert alex.base.type == "digital_twin"
    assert alex.consent_reroute_url == "https://example.com/consent-done"
    assert alex.base.file is not None
    assert alex.base.file.media_type == "video/mp4"
    assert alex.base.file.digest == sha256((MEDIA / "alex.mp4").read_bytes())
    assert [(look.key, look.name) for look in alex.looks] == [
        ("keynote", "Alex — keynote"),
        ("studio", "Alex — studio"),
    ]


def test_adopted_looks(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        HEAD + EXISTING + "    looks:\n"
        "      beach: {look_id: look_b, name: S at the beach}\n"
        "      snow: {look_id: look_s}\n"
        "      dusk: {prompt: At dusk, from: beach}\n",
    )
    (s,) = load_recipe(path).avatars
    beach, snow, dusk = s.looks
    assert (beach.key, beach.look_id, beach.name, beach.prompt, beach.adopted) == (
        "beach",
        "look_b",
        "S at the beach",
        "",
        True,
    )
    assert (snow.look_id, snow.name) == ("look_s", "S — snow")
    assert (dusk.source, dusk.look_id, dusk.adopted) == ("beach", None, False)


def test_existing_base() -> None:
    (riley,) = load_recipe(RECIPES / "existing.yaml").avatars
    assert riley.base.type == "existing"
    assert riley.base.look_id == "look_demo_existing"
    assert riley.base.file is None
    assert [(look.key, look.prompt) for look in riley.looks] == [
        ("spring", "Seasonal outfit for spring, outdoor park background"),
        ("autumn", "Seasonal outfit for autumn, outdoor park background"),
    ]


def test_sources_and_digests(tmp_path: Path) -> None:
    data = base64.b64encode(PNG).decode()
    path = write_recipe(
        tmp_path,
        f"""\
version: 1
avatars:
  s:
    name: S
    group_id: group_1
    base:
      type: prompt
      prompt: a person
      reference_images:
        - {{path: a.png}}
        - {{url: "https://example.com/style.png?size=2"}}
        - {{asset_id: asset_9}}
    looks:
      "{{n}}":
        prompt: look {{n}}
        from: base
        matrix: {{n: [1, 2.5]}}
      inline:
        prompt: p
        from: "1"
        reference_images: [{{base64: "{data}", media_type: image/png}}]
""",
    )
    (s,) = load_recipe(path).avatars
    assert s.group_id == "group_1"
    refs = s.base.reference_images
    assert [(r.kind, r.value, r.media_type, r.digest) for r in refs] == [
        ("path", "a.png", "image/png", sha256(PNG)),
        ("url", "https://example.com/style.png?size=2", None, None),
        ("asset_id", "asset_9", None, None),
    ]
    looks = {look.key: look for look in s.looks}
    assert list(looks) == ["1", "2-5", "inline"]
    assert looks["2-5"].prompt == "look 2.5"
    (inline,) = looks["inline"].reference_images
    assert (inline.kind, inline.media_type, inline.digest) == ("base64", "image/png", sha256(PNG))
    assert inline.describe() == f"base64:{sha256(PNG)}"
    assert looks["inline"].source == "1"


def test_prompt_suffix_is_appended_to_looks_and_prompt_bases(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        """\
version: 1
defaults: {prompt_suffix: ", 4k"}
avatars:
  s:
    name: S
    base: {type: prompt, prompt: a person}
    looks:
      a: {prompt: in a park}
""",
    )
    (s,) = load_recipe(path).avatars
    assert s.base.prompt == "a person, 4k"
    assert s.looks[0].prompt == "in a park, 4k"


def test_dates_read_as_text(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        "version: 1\navatars:\n  s:\n    name: 2024-01-01\n" + EXISTING,
    )
    assert load_recipe(path).avatars[0].name == "2024-01-01"


def test_symlink_inside_the_recipe_directory_is_fine(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        "version: 1\navatars:\n  s:\n    name: S\n    base: {type: photo, file: {path: b.png}}\n",
    )
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    file = load_recipe(path).avatars[0].base.file
    assert file is not None
    assert file.local_path == (tmp_path / "a.png").resolve()
    assert file.value == "b.png"


# -- invalid recipes ------------------------------------------------------------------------


# (id, recipe text, problem lines with F standing for the recipe's path)
INVALID: list[tuple[str, str, list[str]]] = [
    (
        "yaml-unclosed-flow",
        "version: 1\navatars:\n  s: [\n",
        [
            "F:4: invalid YAML: did not find expected node content"
            if yaml.__with_libyaml__
            else "F:4: invalid YAML: expected the node content, but found '<stream end>'"
        ],
    ),
    (
        "yaml-bad-mapping",
        "version: 1\navatars: a: b\n",
        [
            "F:2: invalid YAML: mapping values are not allowed "
            + ("in this context" if yaml.__with_libyaml__ else "here")
        ],
    ),
    (
        "duplicate-key",
        HEAD + "    name: T\n" + EXISTING,
        ["F:5: avatars.s.name: duplicate key 'name' (first at line 4)"],
    ),
    (
        "python-tag",
        PHOTO + "    group_id: !!python/object/apply:os.getcwd []\n",
        [
            "F:6: avatars.s.group_id: unsupported YAML tag"
            " '!!python/object/apply:os.getcwd'; recipes hold plain data only"
        ],
    ),
    (
        "python-tag-on-top-level-value",
        "version: 1\navatars: !!python/object/apply:os.getcwd []\n",
        [
            "F:2: avatars: unsupported YAML tag '!!python/object/apply:os.getcwd';"
            " recipes hold plain data only"
        ],
    ),
    (
        "python-tag-on-defaults",
        "version: 1\ndefaults: !!python/object/apply:os.getcwd []\navatars: {}\n",
        [
            "F:2: defaults: unsupported YAML tag '!!python/object/apply:os.getcwd';"
            " recipes hold plain data only"
        ],
    ),
    (
        "python-tag-on-key",
        PHOTO + "    ? !!python/name:os.system\n    : 1\n",
        [
            "F:6: avatars.s: unsupported YAML tag '!!python/name:os.system';"
            " recipes hold plain data only"
        ],
    ),
    (
        "non-string-key",
        LOOKS + "      1: {prompt: p}\n",
        ["F:7: avatars.s.looks.1: keys must be strings"],
    ),
    (
        "unknown-top-level-key",
        "version: 1\navatar: {}\n",
        [
            "F:1: missing required key 'avatars'",
            "F:2: avatar: unknown key 'avatar'; did you mean 'avatars'?",
        ],
    ),
    (
        "unknown-defaults-key",
        "version: 1\ndefaults: {prompt_sufix: x}\navatars: {}\n",
        ["F:2: defaults.prompt_sufix: unknown key 'prompt_sufix'; did you mean 'prompt_suffix'?"],
    ),
    (
        "unknown-avatar-key",
        PHOTO + "    group: g\n",
        ["F:6: avatars.s.group: unknown key 'group'; did you mean 'group_id'?"],
    ),
    (
        "unknown-key-nothing-close",
        PHOTO + "    zzz: 1\n",
        [
            "F:6: avatars.s.zzz: unknown key 'zzz';"
            " expected one of base, consent, foreach, group_id, include, looks, name"
        ],
    ),
    (
        "unknown-base-key",
        HEAD + "    base:\n      type: photo\n      file: {path: a.png}\n      look: x\n",
        ["F:8: avatars.s.base.look: unknown key 'look'; did you mean 'look_id'?"],
    ),
    (
        "unknown-look-key",
        LOOKS + "      a:\n        prompt: p\n        refrence_images: []\n",
        [
            "F:9: avatars.s.looks.a.refrence_images: unknown key 'refrence_images';"
            " did you mean 'reference_images'?"
        ],
    ),
    (
        "unknown-file-key",
        HEAD + "    base: {type: photo, file: {pth: a.png}}\n",
        ["F:5: avatars.s.base.file.pth: unknown key 'pth'; did you mean 'path'?"],
    ),
    ("missing-version", "avatars: {}\n", ["F:1: missing required key 'version'"]),
    (
        "missing-name",
        "version: 1\navatars:\n  s:\n" + EXISTING,
        ["F:3: avatars.s: missing required key 'name'"],
    ),
    ("missing-base", HEAD, ["F:3: avatars.s: missing required key 'base'"]),
    (
        "missing-file-of-photo",
        HEAD + "    base: {type: photo}\n",
        ["F:5: avatars.s.base: missing required key 'file'"],
    ),
    (
        "missing-look-prompt",
        LOOKS + "      a: {name: A}\n",
        ["F:7: avatars.s.looks.a: missing required key 'prompt'"],
    ),
    (
        "wrong-type-name",
        "version: 1\navatars:\n  s:\n    name: 5\n" + EXISTING,
        ["F:4: avatars.s.name: must be a string, not a number"],
    ),
    (
        "wrong-type-looks",
        PHOTO + "    looks: [a, b]\n",
        ["F:6: avatars.s.looks: must be a mapping, not a list"],
    ),
    (
        "wrong-type-avatars",
        "version: 1\navatars: sarah\n",
        ["F:2: avatars: must be a mapping, not a string"],
    ),
    (
        "empty-prompt",
        LOOKS + "      a: {prompt: ''}\n",
        ["F:7: avatars.s.looks.a.prompt: must not be empty"],
    ),
    (
        "bad-enum",
        HEAD + "    base: {type: selfie}\n",
        [
            "F:5: avatars.s.base.type: must be one of photo, digital_twin, prompt, existing;"
            " got 'selfie'"
        ],
    ),
    ("version-2", "version: 2\navatars: {}\n", ["F:1: version: must be 1; got 2"]),
    ("version-string", "version: '1'\navatars: {}\n", ["F:1: version: must be 1; got '1'"]),
    (
        "invalid-avatar-key",
        "version: 1\navatars:\n  Sarah:\n    name: S\n" + EXISTING,
        [
            "F:3: avatars.Sarah: invalid key 'Sarah': use lowercase letters, digits, '-' and '_',"
            " starting with a letter or digit"
        ],
    ),
    (
        "invalid-look-key",
        LOOKS + "      Navy Suit: {prompt: p}\n",
        [
            "F:7: avatars.s.looks.Navy Suit: invalid key 'Navy Suit': use lowercase letters,"
            " digits, '-', '_' and {placeholders}"
        ],
    ),
    (
        "invalid-matrix-variable",
        LOOKS + '      "{color}":\n        prompt: p\n        matrix: {Color: [a]}\n',
        [
            "F:9: avatars.s.looks.{color}.matrix.Color: invalid key 'Color': use lowercase"
            " letters, digits and '_', starting with a letter or '_'"
        ],
    ),
    (
        "empty-matrix-values",
        LOOKS + '      "{color}":\n        prompt: p\n        matrix: {color: []}\n',
        ["F:9: avatars.s.looks.{color}.matrix.color: must not be empty"],
    ),
    (
        "from-unknown-look",
        LOOKS + "      navy-office: {prompt: p}\n      dusk: {prompt: p, from: navy-ofice}\n",
        [
            "F:8: avatars.s.looks.dusk.from: no look 'navy-ofice' in avatar 's';"
            " did you mean 'navy-office'?"
        ],
    ),
    (
        "from-unknown-look-nothing-close",
        LOOKS + "      a: {prompt: p, from: zzz}\n",
        ["F:7: avatars.s.looks.a.from: no look 'zzz' in avatar 's'"],
    ),
    (
        "from-cycle",
        LOOKS
        + "      a: {prompt: p, from: c}\n      b: {prompt: p, from: a}\n"
        + "      c: {prompt: p, from: b}\n",
        ["F:7: avatars.s.looks.a.from: looks form a cycle through 'from': a -> c -> b -> a"],
    ),
    (
        "from-itself",
        LOOKS + "      a: {prompt: p, from: a}\n",
        ["F:7: avatars.s.looks.a.from: looks form a cycle through 'from': a -> a"],
    ),
    (
        "unbound-placeholder",
        LOOKS + "      a:\n        prompt: wearing {color}\n",
        ["F:7: avatars.s.looks.a: placeholder {color} is not bound: add it to this look's matrix"],
    ),
    (
        "matrix-variable-unused-in-key",
        LOOKS + "      a:\n        prompt: wearing {color}\n        matrix: {color: [red, blue]}\n",
        [
            "F:9: avatars.s.looks.a.matrix.color: matrix variable 'color' is not used in the"
            " look key, so expanded keys repeat"
        ],
    ),
    (
        "literal-key-collides-with-expansion",
        LOOKS
        + "      navy-suit: {prompt: p}\n"
        + '      "{color}-suit":\n        prompt: wearing {color}\n'
        + "        matrix: {color: [Navy, grey]}\n",
        [
            "F:8: avatars.s.looks.{color}-suit: look key 'navy-suit' is defined more than once"
            " (first made by 'navy-suit', line 7)"
        ],
    ),
    (
        "expansion-collides-with-itself",
        LOOKS
        + '      "{c}":\n        prompt: "{c}"\n        matrix: {c: [city street, City Street]}\n',
        ["F:7: avatars.s.looks.{c}: look key 'city-street' is defined more than once"],
    ),
    (
        "four-reference-images",
        LOOKS
        + "      a:\n        prompt: p\n"
        + "        reference_images: [{path: a.png}, {url: 'https://x.test/b.png'},"
        + " {asset_id: c}, {base64: aGVsbG8=, media_type: image/png}]\n",
        ["F:9: avatars.s.looks.a.reference_images: at most 3 reference images allowed; got 4"],
    ),
    (
        "file-with-two-sources",
        HEAD + "    base: {type: photo, file: {path: a.png, url: 'https://x.test/a.png'}}\n",
        [
            "F:5: avatars.s.base.file: needs exactly one of path, url, asset_id, base64"
            " (got path, url)"
        ],
    ),
    (
        "file-with-no-source",
        HEAD + "    base: {type: photo, file: {media_type: image/png}}\n",
        ["F:5: avatars.s.base.file: needs exactly one of path, url, asset_id, base64 (got none)"],
    ),
    (
        "file-empty",
        HEAD + "    base: {type: photo, file: {}}\n",
        ["F:5: avatars.s.base.file: must not be empty"],
    ),
    (
        "base64-without-media-type",
        HEAD + "    base: {type: photo, file: {base64: aGVsbG8=}}\n",
        ["F:5: avatars.s.base.file: base64 needs a media_type (e.g. image/png)"],
    ),
    (
        "base64-invalid",
        HEAD + "    base: {type: photo, file: {base64: 'not base64!', media_type: image/png}}\n",
        ["F:5: avatars.s.base.file.base64: is not valid base64"],
    ),
    (
        "base64-video-for-a-photo",
        HEAD + "    base: {type: photo, file: {base64: aGVsbG8=, media_type: video/mp4}}\n",
        ["F:5: avatars.s.base.file.media_type: must be an image file; got video/mp4"],
    ),
    (
        "media-type-without-base64",
        HEAD + "    base: {type: photo, file: {path: a.png, media_type: image/png}}\n",
        ["F:5: avatars.s.base.file.media_type: media_type goes with base64 only"],
    ),
    (
        "path-missing",
        HEAD + "    base: {type: photo, file: {path: photos/b.png}}\n",
        ["F:5: avatars.s.base.file.path: file not found: photos/b.png"],
    ),
    (
        "path-escapes-with-dotdot",
        HEAD + "    base: {type: photo, file: {path: ../x.png}}\n",
        ["F:5: avatars.s.base.file.path: '../x.png' is outside the recipe's directory"],
    ),
    (
        "path-absolute",
        HEAD + "    base: {type: photo, file: {path: /etc/x.png}}\n",
        ["F:5: avatars.s.base.file.path: '/etc/x.png' is outside the recipe's directory"],
    ),
    (
        "photo-base-with-video",
        HEAD + "    base: {type: photo, file: {path: v.mp4}}\n",
        ["F:5: avatars.s.base.file.path: v.mp4: must be a PNG or JPEG image, not video/mp4"],
    ),
    (
        "digital-twin-with-image",
        HEAD + "    base: {type: digital_twin, file: {path: a.png}}\n",
        ["F:5: avatars.s.base.file.path: a.png: must be an MP4 or WebM video, not image/png"],
    ),
    (
        "digital-twin-with-image-url",
        HEAD + "    base: {type: digital_twin, file: {url: 'https://x.test/a.jpg'}}\n",
        ["F:5: avatars.s.base.file.url: must be a video file; got image/jpeg"],
    ),
    (
        "reference-image-is-a-video",
        LOOKS
        + "      a:\n        prompt: p\n        reference_images: [{url: 'https://x.test/c.mp4'}]\n",
        ["F:9: avatars.s.looks.a.reference_images.0.url: must be an image file; got video/mp4"],
    ),
    (
        "consent-on-a-photo",
        HEAD + "    consent: {reroute_url: 'https://x.test/done'}\n"
        "    base: {type: photo, file: {path: a.png}}\n",
        ["F:5: avatars.s.consent: consent applies to digital_twin bases, not photo"],
    ),
    (
        "consent-url-not-http",
        HEAD + "    consent: {reroute_url: 'x.test/done'}\n"
        "    base: {type: digital_twin, file: {path: v.mp4}}\n",
        ["F:5: avatars.s.consent.reroute_url: must be an http(s) URL; got 'x.test/done'"],
    ),
    (
        "prompt-on-a-photo-base",
        HEAD + "    base:\n      type: photo\n      file: {path: a.png}\n      prompt: smiling\n",
        ["F:8: avatars.s.base.prompt: 'prompt' does not apply to a photo base"],
    ),
    (
        "look-id-on-a-prompt-base",
        HEAD + "    base: {type: prompt, prompt: p, look_id: x}\n",
        ["F:5: avatars.s.base.look_id: 'look_id' does not apply to a prompt base"],
    ),
    ("empty-recipe", "", ["F:1: empty recipe"]),
    ("only-comments", "# nothing yet\n", ["F:1: empty recipe"]),
    ("top-level-list", "- version: 1\n", ["F:1: must be a mapping, not a list"]),
    ("top-level-scalar", "just text\n", ["F:1: must be a mapping, not a string"]),
    (
        "url-not-http",
        HEAD + "    base: {type: photo, file: {url: 'ftp://x.test/a.png'}}\n",
        ["F:5: avatars.s.base.file.url: must be an http(s) URL; got 'ftp://x.test/a.png'"],
    ),
    (
        "adopted-look-with-prompt-and-from",
        LOOKS + "      a: {prompt: p}\n      b:\n        look_id: x\n        prompt: p\n"
        "        from: a\n",
        [
            "F:10: avatars.s.looks.b.prompt: 'prompt' does not apply to an adopted look (look_id)",
            "F:11: avatars.s.looks.b.from: 'from' does not apply to an adopted look (look_id)",
        ],
    ),
    (
        "adopted-look-with-matrix-and-references",
        LOOKS + "      b:\n        look_id: x\n        matrix: {c: [r]}\n"
        "        reference_images: [{path: a.png}]\n",
        [
            "F:9: avatars.s.looks.b.matrix: 'matrix' does not apply to an adopted look (look_id)",
            "F:10: avatars.s.looks.b.reference_images: 'reference_images' does not apply to an"
            " adopted look (look_id)",
        ],
    ),
    (
        "adopted-look-with-empty-id",
        LOOKS + "      b: {look_id: ''}\n",
        ["F:7: avatars.s.looks.b.look_id: must not be empty"],
    ),
    (
        "look-with-neither-prompt-nor-look-id",
        LOOKS + "      b: {name: B}\n",
        ["F:7: avatars.s.looks.b: missing required key 'prompt'"],
    ),
    (
        "from-a-broken-adopted-look-is-not-a-second-problem",
        LOOKS + "      b: {look_id: x, prompt: p}\n      c: {prompt: q, from: b}\n",
        ["F:7: avatars.s.looks.b.prompt: 'prompt' does not apply to an adopted look (look_id)"],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_recipe(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write_recipe(tmp_path, text)
    assert problem_lines(path) == [line.replace("F:", f"{path}:", 1) for line in expected]


def test_the_invalid_table_is_large_and_distinct() -> None:
    assert len(INVALID) >= 30
    assert len({c[0] for c in INVALID}) == len(INVALID)
    assert len({c[1] for c in INVALID}) == len(INVALID)


def test_python_tag_is_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write_recipe(
        tmp_path / "r",
        f"version: 1\navatars: !!python/object/apply:os.mkdir [{str(marker)!r}]\n",
    )
    assert problem_lines(path) == [
        f"{path}:2: avatars: unsupported YAML tag '!!python/object/apply:os.mkdir';"
        " recipes hold plain data only"
    ]
    assert not marker.exists()


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    # 10**8 strings once expanded: refused where the expansion passes 2 million nodes.
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 8)]
    path = write_recipe(tmp_path, "\n".join(lines) + "\n")
    assert problem_lines(path) == [
        f"{path}:7: more than 2,000,000 nodes once aliases and merge keys are expanded"
    ]


def test_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(PNG)
    path = write_recipe(
        tmp_path / "r",
        "version: 1\navatars:\n  s:\n    name: S\n    base: {type: photo, file: {path: b.png}}\n",
    )
    (tmp_path / "r" / "b.png").symlink_to(outside)
    assert problem_lines(path) == [
        f"{path}:5: avatars.s.base.file.path: 'b.png' is outside the recipe's directory"
    ]


def test_missing_recipe_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert problem_lines(path) == [f"{path}:1: no such file"]


def _long_prompt_recipe(tmp_path: Path, filler: int) -> Path:
    # navy: "navy " + filler + ", soft" = 5 + filler + 6; "burnt orange" is 8 characters longer.
    return write_recipe(
        tmp_path,
        f"""\
version: 1
defaults: {{prompt_suffix: ", soft"}}
avatars:
  s:
    name: S
    base: {{type: existing, look_id: x}}
    looks:
      "{{color}}-suit":
        prompt: "{{color}} {"x" * filler}"
        matrix: {{color: [navy, burnt orange]}}
""",
    )


def test_prompt_of_exactly_the_limit_is_fine(tmp_path: Path) -> None:
    recipe = load_recipe(_long_prompt_recipe(tmp_path, PROMPT_LIMIT - 19))
    assert [len(look.prompt) for avatar in recipe.avatars for look in avatar.looks] == [
        PROMPT_LIMIT - 8,
        PROMPT_LIMIT,
    ]


def test_prompt_over_the_limit_after_expansion_and_suffix(tmp_path: Path) -> None:
    path = _long_prompt_recipe(tmp_path, PROMPT_LIMIT - 11)
    assert PROMPT_LIMIT == 1000
    assert problem_lines(path) == [
        f"{path}:9: avatars.s.looks.{{color}}-suit.prompt: prompt is 1008 characters"
        " (as burnt-orange-suit, with the prompt_suffix); the API allows 1000"
    ]


def test_prompt_over_the_limit_without_suffix_or_matrix(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        HEAD + f"    base: {{type: prompt, prompt: {'y' * 1001}}}\n",
    )
    assert problem_lines(path) == [
        f"{path}:5: avatars.s.base.prompt: prompt is 1001 characters; the API allows 1000"
    ]


def test_every_problem_of_every_avatar_in_one_pass(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        """\
version: 1
avatars:
  ann:
    name: Ann
    base: {type: photo, file: {path: missing.png}}
    looks:
      a: {prompt: p, from: b}
  bob:
    nmae: Bob
    base: {type: existing, look_id: x}
  cid:
    name: Cid
    base: {type: prompt, prompt: p}
    looks:
      x: {prompt: "{v}"}
      y: {prompt: p, from: x}
      z: {prompt: p, reference_images: [{url: "file:///z.png"}]}
""",
    )
    assert problem_lines(path) == [
        f"{path}:5: avatars.ann.base.file.path: file not found: missing.png",
        f"{path}:7: avatars.ann.looks.a.from: no look 'b' in avatar 'ann'",
        f"{path}:8: avatars.bob: missing required key 'name'",
        f"{path}:9: avatars.bob.nmae: unknown key 'nmae'; did you mean 'name'?",
        f"{path}:15: avatars.cid.looks.x: placeholder {{v}} is not bound: add it to this"
        " look's matrix",
        f"{path}:17: avatars.cid.looks.z.reference_images.0.url: must be an http(s) URL;"
        " got 'file:///z.png'",
    ]


# -- `looks validate` ---------------------------------------------------------------------------


def test_validate_ok_prints_one_line_per_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [
        str(RECIPES / n) for n in ("sarah.yaml", "characters.yaml", "twin.yaml", "existing.yaml")
    ]
    assert main(["validate", *paths]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{paths[0]}: ok (2 avatars, 4 looks)",
        f"{paths[1]}: ok (1 avatar, 7 looks)",
        f"{paths[2]}: ok (1 avatar, 2 looks)",
        f"{paths[3]}: ok (1 avatar, 2 looks)",
    ]
    assert err == ""


def test_validate_reports_every_problem_of_every_recipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one = write_recipe(tmp_path, "version: 2\navatars: {}\n", "one.yaml")
    two = write_recipe(tmp_path, HEAD + "    base: {type: photo}\n", "two.yaml")
    good = RECIPES / "sarah.yaml"
    assert main(["validate", str(good), str(one), str(two)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{one}:1: version: must be 1; got 2",
        f"{two}:5: avatars.s.base: missing required key 'file'",
    ]


def test_validate_single_problem_is_a_bare_problem_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_recipe(tmp_path, "")
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"{path}:1: empty recipe\n")


@pytest.mark.parametrize("text", [c[1] for c in INVALID], ids=[c[0] for c in INVALID])
def test_validate_never_shows_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    path = write_recipe(tmp_path, text)
    assert main(["validate", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert out == ""
    assert err and all(line.startswith(f"{path}:") for line in err.splitlines())


def test_validate_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate"]) == 2
    assert "RECIPE" in capsys.readouterr().err


def test_validate_in_a_subprocess(tmp_path: Path) -> None:
    bad = write_recipe(tmp_path, HEAD + "    base: {type: photo, file: {path: ../x.png}}\n")
    cmd = [sys.executable, "-m", "looks.cli", "validate"]
    ok = subprocess.run(
        [*cmd, "recipes/twin.yaml"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert (ok.returncode, ok.stdout, ok.stderr) == (
        0,
        "recipes/twin.yaml: ok (1 avatar, 2 looks)\n",
        "",
    )
    failed = subprocess.run([*cmd, str(bad)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr == (
        f"{bad}:5: avatars.s.base.file.path: '../x.png' is outside the recipe's directory\n"
    )


def test_schema_errors_and_semantic_problems_in_one_pass(tmp_path: Path) -> None:
    # A wrong version, a broken avatar name, a broken look and a broken base no longer
    # hide the missing files, the cycle and the unbound placeholder beside them.
    path = write_recipe(
        tmp_path,
        """\
version: 2
avatars:
  ann:
    nmae: Ann
    base: {type: photo, file: {path: missing.png}}
    looks:
      a: {prompt: p, from: b}
      b: {prompt: p, from: a}
      c: {prompt: "{v}"}
      d: {promt: p}
      e: {prompt: p, from: d}
  bob:
    name: Bob
    base: {type: photo}
    looks:
      x: {prompt: p, reference_images: [{path: gone.png}]}
defaults: {prompt_suffix: 3}
""",
    )
    assert problem_lines(path) == [
        f"{path}:1: version: must be 1; got 2",
        f"{path}:3: avatars.ann: missing required key 'name'",
        f"{path}:4: avatars.ann.nmae: unknown key 'nmae'; did you mean 'name'?",
        f"{path}:5: avatars.ann.base.file.path: file not found: missing.png",
        f"{path}:7: avatars.ann.looks.a.from: looks form a cycle through 'from': a -> b -> a",
        f"{path}:9: avatars.ann.looks.c: placeholder {{v}} is not bound: add it to this"
        " look's matrix",
        f"{path}:10: avatars.ann.looks.d.promt: unknown key 'promt'; did you mean 'prompt'?",
        f"{path}:10: avatars.ann.looks.d: missing required key 'prompt'",
        f"{path}:14: avatars.bob.base: missing required key 'file'",
        f"{path}:16: avatars.bob.looks.x.reference_images.0.path: file not found: gone.png",
        f"{path}:17: defaults.prompt_suffix: must be a string, not a number",
    ]


def test_items_of_a_block_list_keep_their_own_line(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        HEAD
        + EXISTING
        + "    looks:\n"
        + "      '{c}':\n"
        + "        prompt: '{c}'\n"
        + "        matrix:\n"
        + "          c:\n"
        + "            - red\n"
        + "            - [blue]\n",  # line 12
    )
    assert problem_lines(path) == [
        f"{path}:12: avatars.s.looks.{{c}}.matrix.c.1: must be a string or a number, not a list"
    ]


def test_merge_keys_explicit_keys_win_and_earlier_merges_first(tmp_path: Path) -> None:
    path = write_recipe(
        tmp_path,
        "version: 1\navatars:\n"
        "  a: &a {name: A, base: {type: existing, look_id: one}}\n"
        "  b: &b {name: B, base: {type: existing, look_id: two}}\n"
        "  c: {<<: [*b, *a], name: C}\n",
    )
    recipe = load_recipe(path)
    c = recipe.avatars[2]
    assert (c.name, c.base.look_id) == ("C", "two")


def test_several_missing_keys_are_one_line(tmp_path: Path) -> None:
    path = write_recipe(tmp_path, "version: 1\navatars:\n  a:\n    nmae: x\n")
    assert problem_lines(path) == [
        f"{path}:3: avatars.a: missing required keys 'name', 'base'",
        f"{path}:4: avatars.a.nmae: unknown key 'nmae'; did you mean 'name'?",
    ]


def test_braces_in_a_base_path_are_just_characters(tmp_path: Path) -> None:
    # Placeholders are a look's matrix feature; a base file named {x}.png is that file.
    path = write_recipe(tmp_path, HEAD + "    base: {type: photo, file: {path: '{x}.png'}}\n")
    (tmp_path / "{x}.png").write_bytes(PNG)
    recipe = load_recipe(path)
    assert recipe.avatars[0].base.file is not None
    assert recipe.avatars[0].base.file.value == "{x}.png"
