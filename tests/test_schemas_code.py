"""engine/_validators/: fastjsonschema's code for the schemas, kept so that no run of `looks`
pays for compiling them (docs/performance.md, start-up and exit), and used only when current."""

from __future__ import annotations

import copy
from collections.abc import Iterator
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
