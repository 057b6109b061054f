"""The documentation cannot drift: its links resolve inside the repository, every `looks`
command line in its code blocks parses, and those that can run against `looks sim` do."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import demo, sim
from engine.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
ALL_DOCS = [ROOT / "README.md", *DOCS]

FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s*(\S+)", re.M)


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int
    lang: str
    text: str

    def commands(self) -> list[str]:
        """The command lines: `$ ` lines of a console block, every line of a sh block."""
        lines = self.text.splitlines()
        if self.lang == "console":
            return [line[2:] for line in lines if line.startswith("$ ")]
        if self.lang in ("sh", "bash", "shell"):
            return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        return []


def blocks(doc: Path) -> Iterator[Block]:
    text = doc.read_text(encoding="utf-8")
    for match in FENCE.finditer(text):
        yield Block(doc, text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2))


def prose(doc: Path) -> str:
    """The document without its fenced code blocks."""
    return FENCE.sub("", doc.read_text(encoding="utf-8"))


def anchors(doc: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes."""
    out = set()
    for heading in re.findall(r"^#+\s+(.*)$", prose(doc), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


# -- links -------------------------------------------------------------------------------------


def links(doc: Path) -> list[str]:
    return [a or b for a, b in LINK.findall(prose(doc))]


@pytest.mark.parametrize("doc", ALL_DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves_to_a_file_in_the_repository(doc: Path) -> None:
    for target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.is_relative_to(ROOT), f"{doc.name}: {target} is outside the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{doc.name}: no heading for #{anchor}"


@pytest.mark.parametrize("doc", ALL_DOCS, ids=lambda p: p.name)
def test_no_doc_points_outside_the_repository(doc: Path) -> None:
    """Not even in plain text or code spans: `../shared/...` means nothing to a reader."""
    for mention in re.findall(r"(?<![\w./])((?:\.\./)+[\w.-][\w./-]*)", prose(doc)):
        resolved = (doc.parent / mention).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name}: {mention} is outside the repository"
        assert resolved.exists(), f"{doc.name}: {mention} is not in the repository"
    assert "/work/" not in prose(doc)


def test_the_link_checks_catch_what_they_should(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "See [a](../shared/a.md), [b](b.md#part), [c](https://example.com) and `../../elsewhere`.\n"
        "[ref]: other.md\n```sh\n[not](a-link.md)\n```\n"
    )
    assert links(doc) == ["../shared/a.md", "b.md#part", "https://example.com", "other.md"]
    assert re.findall(r"(?<![\w./])((?:\.\./)+[\w.-][\w./-]*)", prose(doc)) == [
        "../shared/a.md",
        "../../elsewhere",
    ]
    (tmp_path / "y.md").write_text("# Running it\n## The API: `/_sim/*`\n")
    assert anchors(tmp_path / "y.md") == {"running-it", "the-api-_sim"}


# -- command lines ------------------------------------------------------------------------------


def looks_argv(line: str) -> Iterator[list[str]]:
    """The arguments of every `looks` (or `python -m engine.cli`) command on a shell line."""
    words = shlex.split(line, comments=True)
    command: list[str] = []
    for word in [*words, ";"]:
        if word in (";", "&&", "||", "|", "&") or word.endswith(("&", ";")):
            yield from _looks_in(command)
            command = []
        elif re.match(r"^\d?>>?|^<", word):
            command.append(">")  # a redirection ends the arguments
        else:
            command.append(word)


def _looks_in(command: list[str]) -> Iterator[list[str]]:
    while command and re.match(r"^[A-Z_]+=", command[0]):  # VAR=value looks ...
        command = command[1:]
    if ">" in command:
        command = command[: command.index(">")]
    if command and Path(command[0]).name == "looks":
        yield command[1:]
    elif command[:3] in (["python", "-m", "engine.cli"], [sys.executable, "-m", "engine.cli"]):
        yield command[3:]


def shown_commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in ALL_DOCS:
        for block in blocks(doc):
            for line in block.commands():
                for argv in looks_argv(line):
                    found.append((f"{doc.name}:{block.line}: looks {shlex.join(argv)}", argv))
    return found


def test_the_command_extraction() -> None:
    assert list(looks_argv("looks sim --port 0 > sim.out &")) == [["sim", "--port", "0"]]
    assert list(looks_argv("X=1 looks plan a.yaml && .venv/bin/looks status a.yaml  # note")) == [
        ["plan", "a.yaml"],
        ["status", "a.yaml"],
    ]
    assert list(looks_argv("python -m engine.cli sim")) == [["sim"]]
    assert list(looks_argv('export "$(head -n1 sim.out)"')) == []
    found = shown_commands()
    assert len(found) >= 10
    assert any(argv[:1] == ["catalog"] for _, argv in found)


@pytest.mark.parametrize(("where", "argv"), shown_commands(), ids=lambda v: str(v)[:60])
def test_every_shown_command_parses(where: str, argv: list[str]) -> None:
    args, extra = build_parser().parse_known_args(argv)
    assert not extra, f"{where}: unrecognized {extra}"
    assert args.command


# -- running what can run --------------------------------------------------------------------------

# Commands a test cannot run as written: they never end (a simulator in the foreground), take
# minutes (the benchmarks) or open a browser. They are still parsed above.
_NOT_RUN = re.compile(r"^(looks sim(?!.*&)|make |\.venv/bin/python bench/)")


def runnable_blocks(doc: Path) -> list[str]:
    scripts = []
    for block in blocks(doc):
        commands = block.commands()
        if not commands or any(_NOT_RUN.match(c.strip()) for c in commands):
            continue
        script = "\n".join(commands) if block.lang == "console" else block.text
        scripts.append(re.sub(r"^xdg-open ", "true ", script, flags=re.M))
    return scripts


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A git work tree holding a copy of recipes/, and an environment aimed at a simulator
    that has the look existing.yaml builds on (as `make demo` sets it up)."""
    shutil.copytree(
        ROOT / "recipes", tmp_path / "recipes", ignore=shutil.ignore_patterns("*.manifest.json*")
    )
    config = sim.SimConfig(generation_seconds=0.2, auto_consent=0.2)
    with sim.running_simulator(config) as simulator:
        existing = tmp_path / "recipes" / "existing.yaml"
        look_id = demo._existing_look(simulator.base_url)
        existing.write_text(existing.read_text().replace("look_demo_existing", look_id))
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
            "HEYGEN_BASE_URL": simulator.base_url,
            "HEYGEN_API_KEY": demo.KEY,
            "GIT_AUTHOR_NAME": "docs",
            "GIT_AUTHOR_EMAIL": "docs@example.com",
            "GIT_COMMITTER_NAME": "docs",
            "GIT_COMMITTER_EMAIL": "docs@example.com",
        }
        subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
        yield tmp_path, env


@pytest.mark.parametrize("doc", [d for d in DOCS if runnable_blocks(d)], ids=lambda p: p.name)
def test_shown_commands_run(doc: Path, workspace: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workspace
    for script in runnable_blocks(doc):
        done = subprocess.run(
            ["bash", "-e", "-c", script],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "Traceback" not in done.stderr, f"{doc.name}:\n{script}\n{done.stderr}"
        assert done.returncode == 0, f"{doc.name}:\n{script}\n{done.stdout}\n{done.stderr}"


def test_the_runnable_blocks() -> None:
    """What the test above runs: the catalog and lifecycle examples, the simulator script."""
    by_doc = {doc.name: runnable_blocks(doc) for doc in DOCS}
    assert by_doc["performance.md"] == by_doc["reliability.md"] == []
    assert len(by_doc["catalog.md"]) == 2
    assert "true catalog/index.html" in by_doc["catalog.md"][0]
    assert by_doc["lifecycle.md"] == [
        "looks prune recipes/sarah.yaml",
        "looks consent recipes/twin.yaml\nlooks consent recipes/twin.yaml",
    ]
    (script,) = by_doc["simulator.md"]
    assert script.startswith("looks sim --generation-seconds 0.5 > sim.out &")
