"""`looks plan --format markdown`: the pull-request comment, golden and escaped.

The golden file is tests/golden/plan.md; after an intended change of the plan's wording,
regenerate it with `LOOKS_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_plan_markdown.py` and
review the diff. Escaping is judged by rendering with cmark-gfm, GitHub's own renderer.
"""

from __future__ import annotations

import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import cmarkgfm
import pytest

from engine.cli import main
from engine.manifest import ErrorInfo, Manifest, NodeRecord, manifest_path_for
from engine.plan import Plan, build_graph
from engine.plan_markdown import RecipePlan, code, code_block, text
from engine.plan_markdown import render as render_plan
from engine.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden" / "plan.md"
Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of recipes/ in the current directory, so labels are `recipes/...` as in CI."""
    shutil.copytree(ROOT / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("*.json"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def completed(recipe: Path) -> dict[str, NodeRecord]:
    return {
        a: NodeRecord(
            a,
            n.kind,
            n.fingerprint,
            "completed",
            name=n.name,
            request=n.stored_request,
            look_id=f"look_{a.replace('/', '_')}" if n.kind in ("base", "look") else None,
            asset_id=f"asset_{a}" if n.kind == "upload" else None,
        )
        for a, n in build_graph(load_recipe(recipe)).items()
    }


def write_manifest(recipe: Path, records: dict[str, NodeRecord]) -> None:
    manifest = Manifest(lineage="lineage-1", recipe=recipe.name, serial=3)
    manifest.nodes = dict(records)
    manifest_path_for(recipe).write_text(manifest.dumps(), encoding="utf-8")


def plan(capsys: Capsys, *argv: str) -> tuple[int, str]:
    code_ = main(["plan", *argv])
    out, err = capsys.readouterr()
    assert err == ""
    return code_, out


def edited_sarah(workdir: Path) -> Path:
    """sarah.yaml with every kind of change: replace, retry, create, rename, orphan."""
    recipe = workdir / "recipes" / "sarah.yaml"
    original = recipe.read_text(encoding="utf-8")
    recipe.write_text(original.replace("navy blazer", "grey blazer"), encoding="utf-8")
    records = completed(recipe)  # made from the recipe before its edit
    recipe.write_text(original, encoding="utf-8")
    records["sarah/podcast"] = records["sarah/podcast"].evolve(
        status="failed", error=ErrorInfo("generation_failed", "the model gave up")
    )
    records["marco"] = records["marco"].evolve(name="Marc")
    del records["marco/chef"]
    records["sarah/gone"] = NodeRecord(
        "sarah/gone", "look", "1" * 64, "completed", look_id="look_gone"
    )
    write_manifest(recipe, records)
    return recipe


def test_golden(workdir: Path, capsys: Capsys) -> None:
    edited_sarah(workdir)
    argv = ("recipes/sarah.yaml", "--format", "markdown", "--detailed-exitcode")
    code_, out = plan(capsys, *argv)
    assert code_ == 2
    if os.environ.get("LOOKS_UPDATE_GOLDEN"):
        GOLDEN.write_text(out, encoding="utf-8")
    assert out == GOLDEN.read_text(encoding="utf-8")
    # Deterministic: a bot updating its comment in place sees the very same text.
    assert plan(capsys, *argv) == (2, out)


def test_summary_warnings_and_details(workdir: Path, capsys: Capsys) -> None:
    edited_sarah(workdir)
    _, out = plan(capsys, "recipes/sarah.yaml", "--format", "markdown")
    lines = out.splitlines()
    assert lines[0] == "<!-- looks-plan: recipes/sarah.yaml -->"
    assert lines[1] == "### looks plan: recipes/sarah.yaml"
    assert lines[3] == (
        "**Plan: 1 to create, 1 to update, 2 to replace, 1 to retry, 4 unchanged, 1 orphaned.**"
        " Cost: 4 credits — look 4 × 1"
    )
    assert "> [!WARNING]" in lines
    assert "> - `sarah/navy-office` (look\\_sarah\\_navy-office)" in lines
    assert "> - `sarah/gone` (look\\_gone)" in lines
    assert "| `sarah/podcast` | retry | 1 | failed: generation\\_failed |" in lines
    assert "| `marco` | update | 0 | name changed: 'Marc' -&gt; 'Marco' |" in lines
    # The full plan is the text plan, verbatim, folded away.
    _, text_plan = plan(capsys, "recipes/sarah.yaml")
    details = out.split("```text\n", 1)[1].split("\n```", 1)[0]
    assert details + "\n" == text_plan
    html = cmarkgfm.github_flavored_markdown_to_html(out, options=cmarkgfm.Options.CMARK_OPT_UNSAFE)
    assert "<details><summary>Full plan</summary>" in html
    assert "<blockquote>" in html


def test_up_to_date_and_exit_codes(workdir: Path, capsys: Capsys) -> None:
    recipe = workdir / "recipes" / "sarah.yaml"
    write_manifest(recipe, completed(recipe))
    code_, out = plan(capsys, "recipes/sarah.yaml", "--format", "markdown", "--detailed-exitcode")
    assert code_ == 0
    assert "No changes: everything is up to date." in out.splitlines()
    assert "[!WARNING]" not in out
    assert " Cost: 0 credits" in out
    code_, _ = plan(capsys, "recipes/sarah.yaml", "--format", "markdown")
    assert code_ == 0
    code_, _ = plan(capsys, "recipes/twin.yaml", "--format", "markdown")
    assert code_ == 0  # changes pending, but --detailed-exitcode was not asked for
    code_, _ = plan(capsys, "recipes/twin.yaml", "--format", "markdown", "--detailed-exitcode")
    assert code_ == 2


def test_several_recipes_get_a_recipe_column(workdir: Path, capsys: Capsys) -> None:
    _, out = plan(capsys, "recipes/twin.yaml", "recipes/characters.yaml", "--format", "markdown")
    lines = out.splitlines()
    assert lines[0] == "<!-- looks-plan: recipes/twin.yaml recipes/characters.yaml -->"
    assert lines[1] == "### looks plan: recipes/twin.yaml, recipes/characters.yaml"
    assert "| recipe | address | action | credits | reason |" in lines
    assert "| recipes/twin.yaml | `consent:alex` | create | 0 | new |" in lines
    assert "| recipes/characters.yaml | `commander` | create | 1 | new |" in lines


def test_format_json_is_the_json_plan(workdir: Path, capsys: Capsys) -> None:
    _, as_json = plan(capsys, "recipes/sarah.yaml", "--json")
    _, as_format = plan(capsys, "recipes/sarah.yaml", "--format", "json")
    assert as_json == as_format
    _, both = plan(capsys, "recipes/sarah.yaml", "--format", "json", "--json")
    assert both == as_json
    assert main(["plan", "recipes/sarah.yaml", "--json", "--format", "markdown"]) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", "looks: --json and --format markdown ask for different outputs\n")


# -- escaping ---------------------------------------------------------------------------------

HOSTILE = "Bob | `rm -rf` <script>alert(1)</script> **@acme/admins** [x](http://e.st) &amp; ~~"


class _Cells(HTMLParser):
    """The rendered tables' rows (as lists of cell texts) and every tag seen."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def render(markdown: str) -> _Cells:
    # Unsafe: raw HTML would come through as HTML, so its absence proves the escaping.
    html = cmarkgfm.github_flavored_markdown_to_html(
        markdown, options=cmarkgfm.Options.CMARK_OPT_UNSAFE
    )
    parsed = _Cells()
    parsed.feed(html)
    return parsed


def test_names_and_messages_cannot_break_the_comment(workdir: Path, capsys: Capsys) -> None:
    recipe = workdir / "recipes" / "we|ird `<b>`.yaml"
    shutil.move(workdir / "recipes" / "sarah.yaml", recipe)
    records = completed(recipe)
    records["marco"] = records["marco"].evolve(name=HOSTILE)
    blocked = f"upstream sarah did not complete\n| {HOSTILE}"
    records["sarah/podcast"] = records["sarah/podcast"].evolve(
        status="blocked", look_id=None, error=ErrorInfo("blocked", blocked)
    )
    write_manifest(recipe, records)
    _, out = plan(capsys, f"recipes/{recipe.name}", "--format", "markdown")
    parsed = render(out)
    assert "script" not in parsed.tags and "b" not in parsed.tags and "del" not in parsed.tags
    assert parsed.tags.count("strong") == 1  # the summary; the name's ** stay text
    rows = parsed.rows
    assert rows[0] == ["address", "action", "credits", "reason"]
    assert all(len(row) == 4 for row in rows), rows
    reasons = {row[0]: row[3] for row in rows[1:]}
    # What the reader sees is the text itself, @ kept from notifying anyone.
    visible = HOSTILE.replace("@", "@\u200b")
    renamed = f"name changed: {HOSTILE!r} -> 'Marco'"
    assert reasons["marco"] == renamed.replace("@", "@\u200b")
    assert reasons["sarah/podcast"] == f"blocked: upstream sarah did not complete | {visible}"
    assert f"### looks plan: recipes/{text(recipe.name)}" in out
    # The title renders as the file name, the marker stays one HTML comment.
    assert out.splitlines()[0] == f"<!-- looks-plan: recipes/{recipe.name} -->"


def test_code_spans_and_blocks_hold_anything() -> None:
    for value in ("a|b", "`x`", "``y", "plain", "a ``` b"):
        parsed = render(f"| h |\n|---|\n| {code(value)} |\n")
        assert parsed.rows[1] == [value]
    body = "line\n```\n</details>\n````"
    html = cmarkgfm.github_flavored_markdown_to_html(
        code_block(body), options=cmarkgfm.Options.CMARK_OPT_UNSAFE
    )
    assert html.count("<pre>") == 1
    assert "&lt;/details&gt;" in html


@pytest.mark.parametrize(
    "label", ["a-->b <!-- c.yaml", "a--->b.yaml", "a---->b.yaml", "a\n-->b.yaml"]
)
def test_the_marker_stays_one_html_comment(label: str) -> None:
    out = render_plan([RecipePlan(label, Plan(()))], "")
    first = out.splitlines()[0]
    assert first.startswith("<!-- looks-plan: ") and first.endswith(" -->")
    assert first[len("<!-- ") : -len(" -->")].count("--") == 0
    assert render(out).tags.count("h3") == 1


def test_a_huge_plan_still_fits_in_one_comment(workdir: Path, capsys: Capsys) -> None:
    """GitHub refuses a comment over 65,536 characters: the bot would post nothing."""
    looks = "".join(
        f"      look-{i:04}: {{prompt: Standing in room number {i} of a very long corridor}}\n"
        for i in range(2000)
    )
    recipe = workdir / "recipes" / "many.yaml"
    recipe.write_text(
        "version: 1\navatars:\n  ava:\n    name: Ava\n"
        f"    base: {{type: prompt, prompt: A woman}}\n    looks:\n{looks}",
        encoding="utf-8",
    )
    gone = {
        f"ava/gone-{i:04}": NodeRecord(
            f"ava/gone-{i:04}", "look", "1" * 64, "completed", look_id=f"look_gone_{i:04}"
        )
        for i in range(3000)
    }
    write_manifest(recipe, gone)
    code_, out = plan(capsys, "recipes/many.yaml", "--format", "markdown", "--detailed-exitcode")
    assert code_ == 2
    assert len(out) <= 65_536
    assert out.startswith("<!-- looks-plan: recipes/many.yaml -->\n")
    assert "**Plan: 2001 to create" in out  # the summary counts everything
    assert "> **3000 looks are no longer in the recipe**" in out
    assert "> - … and 2950 more\n" in out
    assert "Cost: 2001 credits" in out
    parsed = render(out)
    assert parsed.rows[0] == ["address", "action", "credits", "reason"]
    shown = len(parsed.rows) - 1
    assert 100 < shown < 5001
    assert f"… and {5001 - shown} more actions" in out
    assert out.rstrip().endswith("</details>")
    assert plan(capsys, "recipes/many.yaml", "--format", "markdown")[1] == out  # deterministic
