"""engine/_validators/: fastjsonschema's code for the schemas, kept so that no run of `looks`
pays for compiling them (docs/performance.md, start-up and exit), and used only when current."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import pytest
import yaml
from conftest import ROOT

from looks import _schemas, _validators


def _kept(check: Any) -> bool:
    """Whether a check is the kept code (fastjsonschema.compile's functions have no module)."""
    return (check.__module__ or "").startswith("looks._validators.")


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    _schemas._compiled.cache_clear()
    yield
    _schemas._compiled.cache_clear()


def _same_version() -> None:
    """Code made by another fastjsonschema is not used (nor wrong): a release of it must not
    fail the suite, but the skip says what to run."""
    if _validators.FASTJSONSCHEMA != fastjsonschema.VERSION:
        pytest.skip(
            f"engine/_validators/ was made by fastjsonschema {_validators.FASTJSONSCHEMA}, this"
            f" is {fastjsonschema.VERSION}: run `make validators`"
        )


def test_the_kept_code_was_made_from_these_schemas() -> None:
    """Fails after a schema changed: run `make validators`."""
    expected = {
        _schemas._stem(name, definition): _schemas._digest(_schemas._draft7(name, definition))
        for name, definition in _schemas.GENERATED
    }
    assert expected == _validators.DIGESTS, "engine/_validators/ is stale: run `make validators`"


def test_the_kept_code_is_current() -> None:
    _same_version()
    expected = _schemas.generated()
    kept = {p.name: p.read_text(encoding="utf-8") for p in _schemas.VALIDATORS.glob("*.py")}
    assert sorted(kept) == sorted(expected)
    for name, text in expected.items():
        assert kept[name] == text, f"engine/_validators/{name} is stale: run `make validators`"


@pytest.mark.parametrize("name, definition", _schemas.GENERATED)
def test_the_schemas_every_run_checks_use_the_kept_code(name: str, definition: str | None) -> None:
    _same_version()
    check = _schemas._compiled(name, definition)
    assert check.__module__ == f"looks._validators.{_schemas._stem(name, definition)}"


def test_an_avatar_alone_is_compiled_at_run_time() -> None:
    assert not _kept(_schemas._compiled("recipe", "avatar"))


@pytest.mark.parametrize(
    "change",
    [
        {"DIGESTS": {**_validators.DIGESTS, "recipe": "0" * 64}},  # made from another schema
        {"FASTJSONSCHEMA": "0.0.1"},  # made by another version
    ],
    ids=["schema", "version"],
)
def test_code_not_made_from_these_schemas_by_this_version_is_not_used(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, Any]
) -> None:
    for attribute, value in change.items():
        monkeypatch.setattr(_validators, attribute, value)
    assert not _kept(_schemas._compiled("recipe", None))
    assert _schemas.is_valid(_recipe("sarah.yaml"), "recipe")
    assert not _schemas.is_valid({"version": 1}, "recipe")


def _recipe(name: str) -> Any:
    return yaml.safe_load((ROOT / "recipes" / name).read_text(encoding="utf-8"))


def _spoiled(data: Any) -> Iterator[Any]:
    """Invalid variants of a valid recipe: each breaks one rule the schema states."""
    for key in ("version", "avatars"):
        broken = copy.deepcopy(data)
        del broken[key]
        yield broken
    broken = copy.deepcopy(data)
    broken["surprise"] = True
    yield broken
    broken = copy.deepcopy(data)
    broken["version"] = "one"
    yield broken
    broken = copy.deepcopy(data)
    first = next(iter(broken["avatars"].values()))
    first["looks"] = ["not", "a", "mapping"]
    yield broken


@pytest.mark.parametrize("recipe", sorted(p.name for p in (ROOT / "recipes").glob("*.yaml")))
def test_the_kept_code_judges_as_the_compiled_schema_does(recipe: str) -> None:
    compiled = fastjsonschema.compile(_schemas._draft7("recipe", None))
    kept = _schemas._compiled("recipe", None)
    valid = _recipe(recipe)
    for data, expected in [(valid, True), *((bad, False) for bad in _spoiled(valid))]:
        outcomes = []
        for check in (compiled, kept):
            try:
                check(data)
                outcomes.append(True)
            except fastjsonschema.JsonSchemaException:
                outcomes.append(False)
        assert outcomes == [expected, expected], (recipe, data)


def test_kept_code_left_in_conflict_by_a_merge_is_not_used_and_is_written_afresh(
    tmp_path: Path,
) -> None:
    # Two branches that each changed a schema both rewrote DIGESTS (and the code): merging
    # them leaves conflict markers. Every command imported them (a SyntaxError whatever the
    # command, `looks --version` included), and so did `make validators`, the one fix.
    package = tmp_path / "looks"
    shutil.copytree(ROOT / "engine", package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("__init__.py", "recipe.py"):
        path = package / "_validators" / name
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[8:8] = ["<<<<<<< HEAD\n", "    'recipe': '0',\n", "=======\n"]
        lines[12:12] = [">>>>>>> theirs\n"]
        path.write_text("".join(lines), encoding="utf-8")
    recipe = tmp_path / "ava.yaml"
    recipe.write_text(
        "version: 1\navatars:\n  ava:\n    name: Ava\n    base: {type: prompt, prompt: A person}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *argv], env=env, capture_output=True, text=True, timeout=120
        )

    checked = run("-m", "looks.cli", "validate", str(recipe))
    assert (checked.returncode, checked.stderr) == (0, ""), checked.stderr
    assert checked.stdout.endswith("ava.yaml: ok (1 avatar, 0 looks)\n")
    made = run("-c", "from looks._schemas import write_validators; write_validators()")
    assert made.returncode == 0, made.stderr
    for name, text in _schemas.generated().items():
        assert (package / "_validators" / name).read_text(encoding="utf-8") == text, name
