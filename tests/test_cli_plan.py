"""`looks plan` and `looks graph` from the command line, and the pre-commit hook."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from looks.cli import main
from looks.manifest import ErrorInfo, Manifest, NodeRecord, manifest_path_for
from looks.plan import build_graph
from looks.recipe import load_recipe

ROOT = Path(__file__).resolve().parent.parent

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    """A copy of recipes/ (with its media), so manifests written here stay out of the repo."""
    copy = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", copy, ignore=shutil.ignore_patterns("*.manifest.json*"))
    return copy


def write_manifest(recipe: Path, records: list[NodeRecord]) -> Path:
    manifest = Manifest(lineage="lineage-1", recipe=recipe.name, serial=3)
    manifest.nodes = {r.address: r for r in records}
    path = manifest_path_for(recipe)
    path.write_text(manifest.dumps(), encoding="utf-8")
    return path


def completed(recipe: Path) -> dict[str, NodeRecord]:
    """Records of a run that made everything in the recipe as it is now."""
    return {
        a: NodeRecord(
            a,
            n.kind,
            n.fingerprint,
            "completed",
            name=n.name,
            request=n.stored_request,
            look_id=f"look_{a}" if n.kind in ("base", "look") else None,
            asset_id=f"asset_{a}" if n.kind == "upload" else None,
        )
        for a, n in build_graph(load_recipe(recipe)).items()
    }


def run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


# -- human output -----------------------------------------------------------------------


def test_plan_without_manifest(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "twin.yaml"
    nodes = build_graph(load_recipe(recipe))
    upload = next(a for a in nodes if a.startswith("upload:"))
    code, out, err = run(capsys, "plan", str(recipe))
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{recipe}:",
        f"  create   {upload}  media/alex.mp4 (new)",
        f"  create   {'alex':<23}  (new)",
        f"  create   {'consent:alex':<23}  (new)",
        f"  create   {'alex/keynote':<23}  (new)",
        f"  create   {'alex/studio':<23}  (new)",
        "Plan: 5 to create, 0 to replace, 0 to retry, 0 unchanged, 0 orphaned.",
        "Cost: 3 credits — digital_twin 1 × 1, look 2 × 1",
    ]


def test_plan_lists_every_action_but_keep_with_its_reason(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "sarah.yaml"
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(
        text.replace("Wearing a navy blazer", "Wearing a grey blazer"), encoding="utf-8"
    )
    records = completed(recipe)  # made from the recipe before its edit
    recipe.write_text(text, encoding="utf-8")
    records["sarah/podcast"] = records["sarah/podcast"].evolve(
        status="failed", error=ErrorInfo("insufficient_credit", "not enough credit")
    )
    records["sarah/gone"] = NodeRecord("sarah/gone", "look", "1" * 64, "completed", look_id="l")
    del records["marco/chef"]
    write_manifest(recipe, list(records.values()))
    code, out, err = run(capsys, "plan", str(recipe), "--detailed-exitcode")
    assert (code, err) == (2, "")
    assert out.splitlines() == [
        f"{recipe}:",
        "  replace  sarah/navy-office  (prompt changed)",
        "           - prompt: Wearing a grey blazer, modern office background ...",
        "           + prompt: Wearing a navy blazer, modern office background ...",
        "  retry    sarah/podcast      (failed: insufficient_credit)",
        "  create   marco/chef         (new)",
        "  replace  sarah/office-dusk  (upstream sarah/navy-office replaced)",
        "  orphan   sarah/gone         (no longer in the recipe)",
        "Plan: 1 to create, 2 to replace, 1 to retry, 5 unchanged, 1 orphaned.",
        "Cost: 4 credits — look 4 × 1",
    ]


def test_plan_with_a_rename_counts_updates(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "sarah.yaml"
    records = completed(recipe)
    records["marco"] = records["marco"].evolve(name="Marc")
    write_manifest(recipe, list(records.values()))
    code, out, _ = run(capsys, "plan", str(recipe), "--detailed-exitcode")
    assert code == 2
    assert out.splitlines()[1:] == [
        "  update   marco  (name changed: 'Marc' -> 'Marco')",
        "Plan: 0 to create, 1 to update, 0 to replace, 0 to retry, 8 unchanged, 0 orphaned.",
        "Cost: 0 credits",  # a rename is a free PATCH
    ]


def test_detailed_exitcode_is_0_when_everything_is_kept(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "sarah.yaml"
    write_manifest(recipe, list(completed(recipe).values()))
    code, out, err = run(capsys, "plan", str(recipe), "--detailed-exitcode")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{recipe}: up to date",
        "Plan: 0 to create, 0 to replace, 0 to retry, 9 unchanged, 0 orphaned.",
        "Cost: 0 credits",
    ]


def test_detailed_exitcode_ignores_orphans(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "sarah.yaml"
    records = list(completed(recipe).values())
    records.append(NodeRecord("bob", "base", "2" * 64, "completed", look_id="l"))
    write_manifest(recipe, records)
    code, out, _ = run(capsys, "plan", str(recipe), "--detailed-exitcode")
    assert code == 0
    assert out.splitlines()[-3:] == [
        "  orphan   bob  (no longer in the recipe)",
        "Plan: 0 to create, 0 to replace, 0 to retry, 9 unchanged, 1 orphaned.",
        "Cost: 0 credits",
    ]


def test_changes_exit_0_without_detailed_exitcode(recipes: Path, capsys: Capsys) -> None:
    code, _, _ = run(capsys, "plan", str(recipes / "sarah.yaml"))
    assert code == 0
    code, _, _ = run(capsys, "plan", str(recipes / "sarah.yaml"), "--detailed-exitcode")
    assert code == 2


def test_explicit_manifest_path(recipes: Path, tmp_path: Path, capsys: Capsys) -> None:
    recipe = recipes / "existing.yaml"
    default = write_manifest(recipe, list(completed(recipe).values()))
    elsewhere = tmp_path / "other.manifest.json"
    default.rename(elsewhere)
    code, out, _ = run(capsys, "plan", str(recipe), "--manifest", str(elsewhere))
    assert (code, out.splitlines()[0]) == (0, f"{recipe}: up to date")
    code, out, _ = run(capsys, "plan", str(recipe))
    assert (
        out.splitlines()[-2]
        == "Plan: 2 to create, 1 to check, 0 to replace, 0 to retry, 0 unchanged, 0 orphaned."
    )


def test_manifest_goes_with_one_recipe(recipes: Path, capsys: Capsys) -> None:
    code, out, err = run(
        capsys, "plan", str(recipes / "twin.yaml"), str(recipes / "sarah.yaml"), "--manifest", "m"
    )
    assert (code, out, err) == (2, "", "looks: --manifest goes with a single recipe\n")


def test_plan_several_recipes(recipes: Path, capsys: Capsys) -> None:
    paths = [
        str(recipes / n) for n in ("characters.yaml", "existing.yaml", "sarah.yaml", "twin.yaml")
    ]
    code, out, _ = run(capsys, "plan", *paths)
    assert code == 0
    lines = out.splitlines()
    assert [line for line in lines if not line.startswith("  ")] == [
        *(f"{p}:" for p in paths),
        "Plan: 24 to create, 1 to check, 0 to replace, 0 to retry, 0 unchanged, 0 orphaned.",
        "Cost: 19 credits — photo 2 × 1, digital_twin 1 × 1, prompt 1 × 1, look 15 × 1",
    ]
    assert (
        "  check    riley                                 (existing look look_demo_existing)"
        not in lines
    )
    assert "  check    riley         (existing look look_demo_existing)" in lines


# -- --only ---------------------------------------------------------------------------------


def test_only_keeps_upstream(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "sarah.yaml"
    nodes = build_graph(load_recipe(recipe))
    up_sarah, up_office = nodes["sarah"].depends_on[0], nodes["sarah/navy-office"].depends_on[1]
    code, out, _ = run(capsys, "plan", str(recipe), "--only", "sarah/office-*")
    assert code == 0
    assert out.splitlines() == [
        f"{recipe}:",
        f"  create   {up_sarah}  media/sarah.png (new)",
        f"  create   {up_office}  media/office.png (new)",
        f"  create   {'sarah':<23}  (new)",
        f"  create   {'sarah/navy-office':<23}  (new)",
        f"  create   {'sarah/office-dusk':<23}  (new)",
        "Plan: 5 to create, 0 to replace, 0 to retry, 0 unchanged, 0 orphaned.",
        "Cost: 3 credits — photo 1 × 1, look 2 × 1",
    ]


def test_only_several_addresses_in_json(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "characters.yaml"
    code, out, _ = run(
        capsys, "plan", str(recipe), "--json", "--only", "commander/navy-suit", "--only", "*-calm"
    )
    assert code == 0
    assert [a["address"] for a in json.loads(out)["actions"]] == [
        "commander",
        "commander/navy-suit",
        "commander/mission-control-calm",
        "commander/city-street-calm",
    ]


def test_only_matching_nothing(recipes: Path, capsys: Capsys) -> None:
    code, out, err = run(capsys, "plan", str(recipes / "sarah.yaml"), "--only", "sarah/nope")
    assert (code, out, err) == (
        1,
        "",
        "looks: --only 'sarah/nope' matches no address in the recipe or manifest\n",
    )


# -- --json -----------------------------------------------------------------------------------


def test_plan_json(recipes: Path, capsys: Capsys) -> None:
    twin, sarah = recipes / "twin.yaml", recipes / "sarah.yaml"
    records = completed(sarah)
    records["marco/chef"] = records["marco/chef"].evolve(status="submitted")
    records["old"] = NodeRecord("old", "base", "3" * 64, "completed")
    write_manifest(sarah, list(records.values()))
    code, out, err = run(capsys, "plan", str(twin), str(sarah), "--json", "--detailed-exitcode")
    assert (code, err) == (2, "")
    data = json.loads(out)
    assert set(data) == {"version", "actions", "summary", "credits", "credits_breakdown"}
    # The twin and its two looks, and marco/chef, whose lost send may not have gone through.
    assert data["credits"] == 4
    assert data["credits_breakdown"] == [
        {"kind": "digital_twin", "count": 1, "price": 1, "credits": 1},
        {"kind": "look", "count": 3, "price": 1, "credits": 3},
    ]
    assert data["version"] == 1
    assert data["summary"] == {
        "create": 5,
        "check": 0,
        "adopt": 0,
        "move": 0,
        "reuse": 0,
        "update": 0,
        "replace": 0,
        "retry": 1,
        "keep": 8,
        "orphan": 1,
    }
    for action in data["actions"]:
        assert set(action) == {
            "recipe",
            "address",
            "action",
            "kind",
            "reason",
            "depends_on",
            "file",
            "changes",
            "credits",
        }
    by_address = {a["address"]: a for a in data["actions"]}
    twin_nodes = build_graph(load_recipe(twin))
    upload = next(a for a in twin_nodes if a.startswith("upload:"))
    assert by_address[upload] == {
        "recipe": str(twin),
        "address": upload,
        "action": "create",
        "kind": "upload",
        "reason": "new",
        "depends_on": [],
        "file": "media/alex.mp4",
        "changes": [],
        "credits": 0,
    }
    assert by_address["alex"]["depends_on"] == [upload]
    assert by_address["consent:alex"] == {
        "recipe": str(twin),
        "address": "consent:alex",
        "action": "create",
        "kind": "consent",
        "reason": "new",
        "depends_on": ["alex"],
        "file": None,
        "changes": [],
        "credits": 0,
    }
    assert by_address["marco/chef"]["action"] == "retry"
    assert by_address["marco/chef"]["reason"] == "unfinished: submitted when the last run stopped"
    assert by_address["old"]["action"] == "orphan"
    assert by_address["sarah/office-dusk"]["depends_on"] == ["sarah/navy-office"]
    # Upload addresses never collide with avatar addresses (which cannot hold ':').
    uploads = {a for a, v in by_address.items() if v["kind"] == "upload"}
    avatars = {a for a, v in by_address.items() if v["kind"] == "base"}
    assert len(uploads) == 4
    assert all(re.fullmatch(r"upload:[0-9a-f]{16}", u) for u in uploads)
    assert avatars == {"alex", "sarah", "marco", "old"}
    assert not uploads & avatars


# -- errors -------------------------------------------------------------------------------


def test_plan_invalid_recipe(recipes: Path, capsys: Capsys) -> None:
    bad = recipes / "bad.yaml"
    bad.write_text("version: 1\navatars:\n  s:\n    name: S\n    base: {type: photo}\n    x: 1\n")
    for argv in (["plan", str(bad), "--json"], ["graph", str(bad)]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (1, "")
        assert err.splitlines() == [
            f"{bad}:5: avatars.s.base: missing required key 'file'",
            f"{bad}:6: avatars.s.x: unknown key 'x'; expected one of base, consent, foreach,"
            " group_id, include, looks, name",
        ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "{not json",
            ":1: manifest is corrupt (Expecting property name enclosed in double quotes)",
        ),
        ('{"version": 1}', ": manifest is invalid at top level ('lineage' is a required property)"),
        (
            '{"version": 9, "lineage": "x", "serial": 0, "recipe": "r", "nodes": {}, "x": 1}',
            ": manifest format version 9 is not supported by this looks (it reads version 1)",
        ),
    ],
)
def test_plan_corrupt_manifest(recipes: Path, capsys: Capsys, content: str, message: str) -> None:
    recipe = recipes / "sarah.yaml"
    manifest = manifest_path_for(recipe)
    manifest.write_text(content)
    for argv in (["plan", str(recipe)], ["graph", str(recipe)]):
        code, out, err = run(capsys, *argv)
        assert (code, out) == (1, "")
        assert len(err.splitlines()) == 1
        assert err.startswith(f"looks: {manifest}{message}")
    assert manifest.read_text() == content  # left untouched


# -- looks graph ------------------------------------------------------------------------------


def _graph_setup(recipes: Path) -> tuple[Path, dict[str, str], set[tuple[str, str]]]:
    """sarah.yaml with one look replaced: the expected action of every node, and the edges."""
    recipe = recipes / "sarah.yaml"
    records = completed(recipe)
    records["sarah/podcast"] = records["sarah/podcast"].evolve(fingerprint="4" * 64)
    write_manifest(recipe, list(records.values()))
    nodes = build_graph(load_recipe(recipe))
    expected = dict.fromkeys(nodes, "keep")
    expected["sarah/podcast"] = "replace"
    edges = {(d, a) for a, n in nodes.items() for d in n.depends_on}
    assert len(edges) == 7
    return recipe, expected, edges


def test_graph_mermaid(recipes: Path, capsys: Capsys) -> None:
    recipe, expected, edges = _graph_setup(recipes)
    for argv in (["graph", str(recipe)], ["graph", str(recipe), "--format", "mermaid"]):
        code, out, err = run(capsys, *argv)
        assert (code, err) == (0, "")
        lines = out.splitlines()
        assert lines[0] == "flowchart LR"
        found = re.findall(r'^  (n\d+)\["([^<]+)<br/>(\w+): (\w+)"\]:::(\w+)$', out, re.M)
        ids = {address: node_id for node_id, address, _, _, _ in found}
        assert {address: action for _, address, _, action, _ in found} == expected
        assert all(action == style for *_, action, style in found)
        kinds = {address: kind for _, address, kind, _, _ in found}
        assert kinds["sarah"] == "base" and kinds["sarah/podcast"] == "look"
        arrows = set(re.findall(r"^  (n\d+) --> (n\d+)$", out, re.M))
        assert arrows == {(ids[d], ids[a]) for d, a in edges}
        assert "  classDef replace fill:#ffd9b3" in lines


def test_graph_dot(recipes: Path, capsys: Capsys) -> None:
    recipe, expected, edges = _graph_setup(recipes)
    code, out, err = run(capsys, "graph", str(recipe), "--format", "dot")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[:3] == ["digraph looks {", "  rankdir=LR;", "  node [shape=box];"]
    assert lines[-1] == "}"
    found = re.findall(r'^  (n\d+) \[label="([^\\]+)\\n(\w+): (\w+)"\];$', out, re.M)
    ids = {address: node_id for node_id, address, _, _ in found}
    assert {address: action for _, address, _, action in found} == expected
    arrows = set(re.findall(r"^  (n\d+) -> (n\d+);$", out, re.M))
    assert arrows == {(ids[d], ids[a]) for d, a in edges}


def test_graph_shows_orphans_dashed(recipes: Path, capsys: Capsys) -> None:
    recipe = recipes / "existing.yaml"
    write_manifest(recipe, [NodeRecord("riley/summer", "look", "5" * 64, "completed")])
    code, out, _ = run(capsys, "graph", str(recipe), "--format", "dot")
    assert code == 0
    assert re.search(r'^  n3 \[label="riley/summer\\nlook: orphan", style="dashed"\];$', out, re.M)


def test_graph_bad_format(recipes: Path, capsys: Capsys) -> None:
    code, out, err = run(capsys, "graph", str(recipes / "sarah.yaml"), "--format", "svg")
    assert (code, out) == (2, "")
    assert "invalid choice: 'svg'" in err


# -- pre-commit --------------------------------------------------------------------------------


def test_pre_commit_hook(capsys: Capsys) -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == ["looks-validate"]
    (hook,) = hooks
    assert hook["entry"] == "looks validate"
    assert hook["language"] == "python"
    files = re.compile(hook["files"])
    for name in ("recipes/sarah.yaml", "catalog/recipes/team.yml"):
        assert files.search(name), name
    for name in (".pre-commit-config.yaml", "recipes/sarah.manifest.json", ".github/ci.yaml"):
        assert not files.search(name), name
    # The entry is the console script this project installs, and it validates recipes.
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'looks = "looks.cli:entry"' in pyproject
    command, *args = hook["entry"].split()
    assert command == "looks"
    assert main([*args, str(ROOT / "recipes" / "twin.yaml")]) == 0
    assert capsys.readouterr().out.endswith("twin.yaml: ok (1 avatar, 2 looks)\n")
