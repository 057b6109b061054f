"""API settings: bad keys and URLs are one-line usage errors; every API command names its target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import API_KEY, ROOT, Run

from engine import sim
from engine.errors import UsageError
from engine.manifest import manifest_path_for
from engine.settings import api_settings

GOOD = {"HEYGEN_API_KEY": "sk-a-perfectly-good-key-1234"}


def test_defaults_to_heygen_production_and_names_it() -> None:
    settings = api_settings(GOOD)
    assert settings.base_url == "https://api.heygen.com"
    assert settings.production
    assert settings.host_port == "api.heygen.com:443"
    assert settings.target_line() == (
        "looks: calling https://api.heygen.com (HeyGen production) with key ending in 1234"
    )


def test_another_base_url_is_not_called_production() -> None:
    settings = api_settings({**GOOD, "HEYGEN_BASE_URL": "http://127.0.0.1:8080/"})
    assert settings.base_url == "http://127.0.0.1:8080"
    assert not settings.production
    assert settings.host_port == "127.0.0.1:8080"
    assert settings.target_line() == "looks: calling http://127.0.0.1:8080 with key ending in 1234"


@pytest.mark.parametrize("key", ["k", "short-key", "fifteen-chars!!"])
def test_a_short_key_shows_none_of_its_characters(key: str) -> None:
    line = api_settings({"HEYGEN_API_KEY": key}).target_line()
    assert line.endswith(f"with key of {len(key)} characters (too short to show any)")


def test_settings_never_show_the_key_in_their_repr() -> None:
    assert GOOD["HEYGEN_API_KEY"] not in repr(api_settings(GOOD))
    assert GOOD["HEYGEN_API_KEY"] not in str(api_settings(GOOD))


def test_surrounding_whitespace_of_a_key_is_dropped() -> None:
    assert (
        api_settings({"HEYGEN_API_KEY": "  sk-key-from-a-file\n"}).api_key == "sk-key-from-a-file"
    )


BAD_SETTINGS = [
    ({"HEYGEN_API_KEY": "sk-two words"}, "HEYGEN_API_KEY has whitespace at character 7 of 12"),
    ({"HEYGEN_API_KEY": "sk-line\nbreak"}, "HEYGEN_API_KEY has whitespace at character 8 of 13"),
    ({"HEYGEN_API_KEY": "sk-tab\there"}, "HEYGEN_API_KEY has whitespace at character 7 of 11"),
    ({"HEYGEN_API_KEY": "sk-ключ"}, "HEYGEN_API_KEY has a non-ASCII character at character 4"),
    ({"HEYGEN_API_KEY": "sk-\x07bell"}, "HEYGEN_API_KEY has a control character at character 4"),
    ({"HEYGEN_BASE_URL": "ftp://x"}, "HEYGEN_BASE_URL='ftp://x': must start with http:// or"),
    ({"HEYGEN_BASE_URL": "api.heygen.com"}, "HEYGEN_BASE_URL='api.heygen.com': must start with"),
    ({"HEYGEN_BASE_URL": "localhost:8080"}, "HEYGEN_BASE_URL='localhost:8080': must start with"),
    (
        {"HEYGEN_BASE_URL": "http://127.0.0.1:99999"},
        "HEYGEN_BASE_URL='http://127.0.0.1:99999': Port",
    ),
    ({"HEYGEN_BASE_URL": "http://127.0.0.1:x"}, "HEYGEN_BASE_URL='http://127.0.0.1:x': Port"),
    ({"HEYGEN_BASE_URL": "http://:8080"}, "HEYGEN_BASE_URL='http://:8080': has no host"),
    ({"HEYGEN_BASE_URL": "http://héllo"}, "HEYGEN_BASE_URL='http://héllo': not a URL"),
    ({"LOOKS_REQUEST_TIMEOUT": "-1"}, "LOOKS_REQUEST_TIMEOUT='-1': must be a number of seconds"),
    ({"LOOKS_REQUEST_TIMEOUT": "soon"}, "LOOKS_REQUEST_TIMEOUT='soon': must be a number"),
    ({"LOOKS_REQUEST_TIMEOUT": "inf"}, "LOOKS_REQUEST_TIMEOUT='inf': must be a number"),
]


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS)
def test_bad_settings_are_usage_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        api_settings({**GOOD, **env})
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    key = env.get("HEYGEN_API_KEY", "")
    if key:
        assert key not in str(info.value)  # a rejected key is still a key


@pytest.mark.parametrize("command", ["apply", "refresh", "prune", "consent", "import"])
@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS[:2] + BAD_SETTINGS[5:9])
def test_every_api_command_refuses_bad_settings_in_one_line(
    tmp_path: Path, recipes: Path, command: str, env: dict[str, str], message: str
) -> None:
    args = ["--group", "group_1"] if command == "import" else [recipes / "twin.yaml"]
    environ = {**os.environ, "PYTHONPATH": str(ROOT), **GOOD, **env}
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", command, *map(str, args)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"looks: {message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


# -- the target line, against a real simulator --------------------------------------------------


def test_apply_names_its_target_on_stderr_and_keeps_stdout_json(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    result = looks("apply", "--log-json", recipes / "sarah.yaml")
    assert result.code == 0, result.err
    assert result.err.splitlines()[0] == (
        f"looks: calling {simulator.base_url} with key ending in {API_KEY[-4:]}"
    )
    assert "production" not in result.err
    for line in result.out.splitlines():
        json.loads(line)  # stdout is JSON lines only


def test_a_no_op_apply_against_production_says_so_and_sends_nothing(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recipe = recipes / "sarah.yaml"
    assert looks("apply", recipe).code == 0
    before = manifest_path_for(recipe).read_bytes()
    monkeypatch.delenv("HEYGEN_BASE_URL")  # the mistake of the README tour
    result = looks("apply", recipe)
    assert result.code == 0, result.err
    assert result.err.splitlines()[0] == (
        "looks: calling https://api.heygen.com (HeyGen production)"
        f" with key ending in {API_KEY[-4:]}"
    )
    assert manifest_path_for(recipe).read_bytes() == before  # nothing to do, nothing sent


@pytest.mark.parametrize("command", ["refresh", "prune", "consent"])
def test_lifecycle_commands_name_their_target_first(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    command: str,
) -> None:
    recipe = recipes / "twin.yaml"
    assert looks("apply", recipe).code == 0
    result = looks(command, recipe, *(["--yes"] if command == "prune" else []))
    assert result.code == 0, result.err
    assert result.err.startswith(f"looks: calling {simulator.base_url} with key ending in ")


def test_a_refused_key_stops_every_api_command_before_anything_is_sent(
    recipes: Path,
    simulator: sim.RunningSimulator,
    api_env: dict[str, str],
    looks: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HEYGEN_API_KEY", "sk-not-the-right-key-0000")
    for args in (["apply", recipes / "sarah.yaml"], ["import", "--group", "group_x"]):
        result = looks(*args)
        assert result.code == 1
        lines = result.err.splitlines()
        assert len(lines) == 2 and lines[0].endswith("with key ending in 0000"), result.err
        assert lines[1].startswith("looks: HTTP 401 unauthorized: ")
        assert f"{simulator.base_url} refused HEYGEN_API_KEY" in lines[1]
        assert "nothing was sent" in lines[1]
    routes = simulator.stats()["by_route"]
    assert set(routes) <= {"GET /v3/avatars"}, routes  # only the preflight: no upload, no create
