"""`looks plan` as a reviewer reads it: golden text and JSON on the repository's recipes.

The expected outputs live in tests/golden/. After an intended change of the output, rewrite
them with `LOOKS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_cli_plan_render.py` and review
the diff like any other change.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from test_cli_plan import completed, recipes, write_manifest

from engine.cli import main
from engine.manifest import ErrorInfo, NodeRecord
from engine.plan import FieldChange
from engine.report import change_lines, trim_around_difference

GOLDEN = Path(__file__).resolve().parent / "golden"
ALL = ("characters.yaml", "existing.yaml", "sarah.yaml", "twin.yaml")

__all__ = ["recipes"]  # the fixture, shared with test_cli_plan

Capsys = pytest.CaptureFixture[str]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("LOOKS_UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with LOOKS_UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8")


def plan(capsys: Capsys, *argv: str) -> tuple[str, str]:
    """Text and JSON of `looks plan ARGV`, with the same arguments."""
    assert main(["plan", *argv]) == 0
    text, err = capsys.readouterr()
    assert err == ""
    assert main(["plan", *argv, "--json"]) == 0
    data, err = capsys.readouterr()
    assert err == ""
    return text, data


def same_words(text: str, data: str) -> None:
    """Every action the JSON lists (but keep) has its line in the text, with the same verb."""
    lines = text.splitlines()
    for action in json.loads(data)["actions"]:
        if action["action"] == "keep":
            continue
        pattern = rf"^  {action['action']:<8} {re.escape(action['address'])} "
        assert any(re.match(pattern, line) for line in lines), action


def test_fresh_plan_of_every_recipe(
    recipes: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(recipes)
    text, data = plan(capsys, *ALL)
    same_words(text, data)
    check_golden("plan-fresh.txt", text)
    check_golden("plan-fresh.json", data)
    # An upload shows its file; an existing base is a check, not a create.
    assert re.search(r"^  create   upload:[0-9a-f]{16}  media/marco\.png \(new\)$", text, re.M)
    assert "  check    riley         (existing look look_demo_existing)\n" in text


def _edited(recipes: Path) -> None:
    """Every kind of change against manifests that recorded the recipes as they were."""
    sarah, existing, characters = (recipes / n for n in ("sarah.yaml", "existing.yaml", ALL[0]))
    for recipe in (sarah, existing, characters):
        records = completed(recipe)
        if recipe == sarah:
            records["sarah/podcast"] = records["sarah/podcast"].evolve(
                status="failed", error=ErrorInfo("insufficient_credit", "not enough credit")
            )
            records["sarah/gone"] = NodeRecord(
                "sarah/gone", "look", "1" * 64, "completed", look_id="look_gone"
            )
        write_manifest(recipe, list(records.values()))
    edits = {
        sarah: [
            ("Wearing a navy blazer", "Wearing a grey tweed blazer"),
            ("name: Marco\n", "name: Marc\n"),
        ],
        existing: [("look_demo_existing", "look_riley_2026")],
        characters: [
            ("short silver hair, warm brown eyes", "long auburn hair, green eyes"),
            ("Civilian clothes in a {setting}", "Civilian clothes, a {setting}"),
        ],
    }
    for recipe, pairs in edits.items():
        text = recipe.read_text(encoding="utf-8")
        for old, new in pairs:
            assert old in text
            text = text.replace(old, new)
        recipe.write_text(text, encoding="utf-8")


def test_plan_of_edited_recipes(
    recipes: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edited(recipes)
    monkeypatch.chdir(recipes)
    text, data = plan(capsys, *ALL)
    same_words(text, data)
    check_golden("plan-edited.txt", text)
    check_golden("plan-edited.json", data)
    lines = text.splitlines()
    at = lines.index("  replace  sarah/navy-office  (prompt changed)")
    assert lines[at + 1 : at + 3] == [
        "           - prompt: Wearing a navy blazer, modern office background ...",
        "           + prompt: Wearing a grey tweed blazer, modern office background ...",
    ]
    at = lines.index("  check    riley         (look id changed)")
    assert lines[at + 1 : at + 3] == [
        "           - look id: look_demo_existing",
        "           + look id: look_riley_2026",
    ]
    actions = {a["address"]: a for a in json.loads(data)["actions"]}
    assert actions["riley"]["action"] == "check"
    assert actions["riley"]["changes"] == [
        {"field": "look_id", "old": "look_demo_existing", "new": "look_riley_2026"}
    ]
    # JSON carries the whole prompts; the text trims them.
    (change,) = actions["commander"]["changes"]
    assert change["field"] == "prompt"
    assert change["old"].startswith("Young woman, early 30s") and "silver" in change["old"]
    assert "auburn" in change["new"] and change["new"].endswith("spacecraft bridge")
    assert actions["marco"]["changes"] == [{"field": "name", "old": "Marco", "new": "Marc"}]


# -- trimming ---------------------------------------------------------------------------------


def test_trim_keeps_four_words_either_side() -> None:
    old = "one two three four five six seven eight nine ten eleven twelve"
    new = "one two three four five six SEVEN eight nine ten eleven twelve"
    assert trim_around_difference(old, new) == (
        "... three four five six seven eight nine ten eleven ...",
        "... three four five six SEVEN eight nine ten eleven ...",
    )


def test_trim_of_an_addition_at_the_end() -> None:
    old = "a b c d e f g"
    new = "a b c d e f g h i"
    assert trim_around_difference(old, new) == ("... d e f g", "... d e f g h i")


def test_trim_of_texts_with_nothing_in_common() -> None:
    assert trim_around_difference("red hat", "blue coat") == ("red hat", "blue coat")
    assert trim_around_difference("", "new words") == ("", "new words")


def test_trim_of_a_repeated_word() -> None:
    # The common prefix and suffix never overlap, even when the texts share most words.
    assert trim_around_difference("a a a", "a a") == ("a a a", "a a")


def test_change_lines_cut_long_texts_and_show_references_by_address() -> None:
    long = " ".join(f"w{i}" for i in range(60))
    minus, plus = change_lines(FieldChange("prompt", long, "short"))
    assert minus.startswith("- prompt: w0 w1") and minus.endswith(" ...")
    assert len(minus) <= len("- prompt: ") + 100
    assert plus == "+ prompt: short"
    assert change_lines(FieldChange("avatar_id", {"$look": "sarah"}, {"$look": "sarah/navy"})) == [
        "- avatar id: sarah",
        "+ avatar id: sarah/navy",
    ]
    assert change_lines(FieldChange("reference_images", None, [{"$asset": "upload:ab"}])) == [
        "- reference images: (none)",
        "+ reference images: upload:ab",
    ]
