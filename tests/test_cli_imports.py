"""A run of `looks` imports its own command's module, not every command's (nor the simulator):
start-up time counts against every run (docs/performance.md, start-up and exit)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest
from conftest import ROOT

from looks import cli

_PROBE = """
import json, sys
import looks.cli
code = looks.cli.main(sys.argv[1:])
print(json.dumps([code, sorted(m for m in sys.modules if m.startswith("looks."))]))
"""


def _modules_after(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    code, modules = json.loads(done.stdout.splitlines()[-1])
    return code, set(modules)


def test_a_command_imports_its_own_module_only() -> None:
    code, modules = _modules_after("validate", str(ROOT / "recipes" / "twin.yaml"))
    assert code == 0
    commands = {m for m in modules if m.startswith("looks.commands.")}
    assert commands == {"looks.commands.validate"}
    assert not any(m == "looks.sim" or m.startswith("looks.sim.") for m in modules)


def test_help_lists_every_command_without_importing_them() -> None:
    code, modules = _modules_after("--help")
    assert code == 0
    assert not any(m.startswith(("looks.commands.", "looks.sim")) for m in modules)


@pytest.mark.parametrize(
    "name, module, function",
    [
        ("sim", "looks.sim", "serve"),
        ("apply", "looks.commands.apply", "run"),
        ("merge_driver", "looks.commands.merge_driver", "install"),
        ("import_groups", "looks.commands.import_groups", "run"),
    ],
)
def test_a_deferred_module_is_the_module(name: str, module: str, function: str) -> None:
    found = getattr(getattr(cli, name), function)
    assert found is getattr(importlib.import_module(module), function)


def test_a_command_module_that_fails_to_import_is_one_line_and_exit_3() -> None:
    # Imported when its command runs, inside main: its failure is main's internal error.
    probe = (
        "import sys; sys.modules['looks.commands.validate'] = None;"
        "from looks.cli import entry; entry()"
    )
    twin = str(ROOT / "recipes" / "twin.yaml")
    done = subprocess.run(
        [sys.executable, "-c", probe, "validate", twin], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 3
    assert done.stderr.startswith("looks: internal error: ModuleNotFoundError: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
