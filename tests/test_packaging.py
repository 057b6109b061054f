"""`pip install .` installs the package as `looks`: no top-level `engine` in site-packages,
one identity per module, the `looks` console script, the schemas and py.typed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("engine", "schemas", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project installed by pip (built offline, from a copy of the sources)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, src / name)
    site = tmp_path_factory.mktemp("site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    command += ["--no-build-isolation", "--target", str(site), str(src)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return site


def test_the_package_installs_as_looks_and_nothing_as_engine(site: Path) -> None:
    assert (site / "looks" / "__init__.py").is_file()
    assert not (site / "engine").exists()
    assert (site / "looks" / "py.typed").is_file()
    assert (site / "looks" / "schemas" / "recipe.schema.json").is_file()
    assert {p.name for p in (site / "looks").iterdir() if p.is_dir()} >= {
        "_validators",
        "commands",
        "sim",
        "steps",
    }


def test_the_installed_package_imports_and_runs(site: Path, tmp_path: Path) -> None:
    code = (
        "import sys, looks, looks.cli, looks.executor;"
        "looks.plan, looks.apply, looks.status;"
        "assert not any(m == 'engine' or m.startswith('engine.') for m in sys.modules);"
        "import fastjsonschema; from looks import _schemas, _validators;"
        "check = _schemas._compiled('recipe', None).__module__;"
        "assert check == 'looks._validators.recipe' or"
        " _validators.FASTJSONSCHEMA != fastjsonschema.VERSION;"
        "print(looks.__file__)"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "looks" / "__init__.py")
    script = (site / "bin" / "looks").read_text(encoding="utf-8")
    assert "from looks.cli import entry" in script
    version = subprocess.run(
        [sys.executable, "-m", "looks.cli", "--version"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert (version.returncode, version.stdout) == (0, "looks 0.1.0\n")
