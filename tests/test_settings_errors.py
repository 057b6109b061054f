"""Bad HEYGEN_* settings are the user's to fix: one line, a usage error, never exit 3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Run

RECIPE = (
    "version: 1\navatars:\n  zoe:\n    name: Zoe\n    base: {type: prompt, prompt: a cafe owner}\n"
)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("HEYGEN_API_KEY", "sk-SECRET part2", "HEYGEN_API_KEY has whitespace"),
        ("HEYGEN_API_KEY", "sk-SECRET\x01", "HEYGEN_API_KEY has a control character"),
        ("HEYGEN_BASE_URL", "127.0.0.1:8080", "HEYGEN_BASE_URL='127.0.0.1:8080': must start"),
        ("HEYGEN_BASE_URL", "ftp://example.com", "HEYGEN_BASE_URL='ftp://example.com': must"),
    ],
)
def test_a_bad_setting_is_a_usage_error_not_an_internal_one(
    variable: str,
    value: str,
    said: str,
    tmp_path: Path,
    looks: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = tmp_path / "zoe.yaml"
    recipe.write_text(RECIPE)
    monkeypatch.setenv("HEYGEN_API_KEY", "sk-SECRET")
    monkeypatch.setenv("HEYGEN_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv(variable, value)

    for args, code in (
        (("apply", recipe), 2),
        (("plan", "--refresh", recipe), 2),
        (("plan", "--refresh", "--detailed-exitcode", recipe), 1),
    ):
        run = looks(*args)
        assert run.code == code, run.err
        [line] = run.err.splitlines()
        assert line.startswith(f"looks: {said}"), line
        assert "SECRET" not in run.err + run.out
    assert not (tmp_path / "zoe.manifest.json").exists()
