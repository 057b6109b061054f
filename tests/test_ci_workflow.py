"""docs/ci.md's workflow, run step by step against `looks sim`, so the document cannot rot.

The workflow is read from the document itself. A small stand-in for GitHub Actions runs each
job in a fresh clone of a local `origin`, its `run:` steps with bash as Actions does
(`bash --noprofile --norc -eo pipefail`), and the three actions it uses as what they do here:
checkout clones, setup-python is the running interpreter's environment (where `looks` is
installed), the sticky comment keeps one comment per header, updated in place. Anything else
in the workflow (another action, another expression) fails the test until it is taught here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import API_KEY

from engine import sim

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ci.md"
BOT_EMAIL = "looks-bot@users.noreply.github.com"


def yaml_blocks(markdown: str) -> list[Any]:
    return [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", markdown, re.M | re.S)]


def workflow() -> dict[str, Any]:
    (found,) = [b for b in yaml_blocks(DOC.read_text(encoding="utf-8")) if "jobs" in b]
    return dict(found)


@dataclass
class Job:
    ran: bool = False
    ok: bool = True
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    log: str = ""


class Actions:
    """Just enough of GitHub Actions to run the documented workflow on this machine."""

    def __init__(self, root: Path, origin: Path, base_env: dict[str, str]) -> None:
        self.root = root
        self.origin = origin
        self.base_env = base_env
        self.vars: dict[str, str] = {}
        self.comments: dict[str, str] = {}  # header -> body: the pull request's comments
        self.comment_writes = 0
        self._runs = 0
        # step name -> what happens elsewhere just before it runs (a push to main, say)
        self.before: dict[str, Callable[[], None]] = {}

    def run(self, event: str, branch: str) -> dict[str, Job]:
        """Trigger the workflow: `push` of branch, or a `pull_request` from branch."""
        spec = workflow()
        triggers = spec[True] if True in spec else spec["on"]  # YAML 1.1 reads `on` as true
        assert event in triggers
        jobs: dict[str, Job] = {}
        for name, job in spec["jobs"].items():
            jobs[name] = Job()
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            if not self._condition(job.get("if"), event, branch):
                continue
            if not all(jobs[n].ran and jobs[n].ok for n in needs):
                continue
            jobs[name] = self._job(job, branch)
        return jobs

    def _condition(self, expression: str | None, event: str, branch: str) -> bool:
        if expression is None:
            return True
        values = {"github.event_name": event, "github.ref": f"refs/heads/{branch}"}
        result = True
        for term in expression.split("&&"):
            match = re.fullmatch(r"\s*([\w.]+) == '([^']*)'\s*", term)
            assert match, f"the stand-in cannot evaluate {expression!r}"
            result = result and values[match[1]] == match[2]
        return result

    def _expand(self, value: str) -> str:
        def one(m: re.Match[str]) -> str:
            expr = m[1].strip()
            if expr == "secrets.HEYGEN_API_KEY":
                return API_KEY
            var = re.fullmatch(r"vars\.(\w+) \|\| '([^']*)'", expr)
            assert var, f"the stand-in cannot evaluate ${{{{ {expr} }}}}"
            return self.vars.get(var[1]) or var[2]

        return re.sub(r"\$\{\{(.*?)\}\}", one, value)

    def _job(self, job: dict[str, Any], branch: str) -> Job:
        self._runs += 1
        work = self.root / f"run-{self._runs}"
        env = {**self.base_env, **{k: self._expand(str(v)) for k, v in job.get("env", {}).items()}}
        result = Job(ran=True)
        for step in job["steps"]:
            condition = step.get("if")
            assert condition in (None, "always()"), condition
            if not result.ok and condition != "always()":
                continue
            self.before.pop(step.get("name", ""), lambda: None)()
            ok = self._step(step, work, env, branch, result)
            result.ok = result.ok and ok
        return result

    def _step(
        self, step: dict[str, Any], work: Path, env: dict[str, str], branch: str, job: Job
    ) -> bool:
        uses = step.get("uses", "")
        given = step.get("with", {})
        if uses.startswith("actions/checkout@"):
            ref = given.get("ref", branch)
            clone = ["git", "clone", "--quiet", "--branch", ref, str(self.origin), str(work)]
            subprocess.run(clone, check=True, env=env)
            return True
        if uses.startswith("actions/setup-python@"):
            return True  # `looks` is installed in the running interpreter's environment
        if uses.startswith("marocchino/sticky-pull-request-comment@"):
            body = (work / given["path"]).read_text(encoding="utf-8")
            self.comments[given["header"]] = body
            self.comment_writes += 1
            return True
        assert not uses, f"the stand-in does not know {uses}"
        if step.get("id") == "install":
            assert step["run"].startswith("pip install ")
            return True  # installed already: this checkout's looks is on PATH
        env = {**env, **{k: self._expand(str(v)) for k, v in step.get("env", {}).items()}}
        outputs = work.parent / f"{work.name}-output-{len(job.outputs)}"
        outputs.write_text("")
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=work,
            env={**env, "GITHUB_OUTPUT": str(outputs), "GITHUB_RUN_ID": str(self._runs)},
            capture_output=True,
            text=True,
        )
        job.log += f"$ {step.get('name', step['run'])}\n{done.stdout}{done.stderr}"
        if "id" in step:
            pairs = [line.split("=", 1) for line in outputs.read_text().splitlines()]
            job.outputs[step["id"]] = {k: v for k, v in pairs}
        return done.returncode == 0


class Developer:
    """A person with a clone of origin, committing and merging."""

    def __init__(self, clone: Path, env: dict[str, str]) -> None:
        self.clone = clone
        self.env = {
            **env,
            "GIT_AUTHOR_NAME": "Dev",
            "GIT_AUTHOR_EMAIL": "dev@example.com",
            "GIT_COMMITTER_NAME": "Dev",
            "GIT_COMMITTER_EMAIL": "dev@example.com",
        }

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.clone, env=self.env, check=True, capture_output=True, text=True
        )
        return done.stdout

    def commit(self, branch: str, message: str, files: dict[str, str | Path]) -> None:
        self.git("checkout", "--quiet", "-B", branch, "origin/main")
        for name, content in files.items():
            target = self.clone / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_text(content, encoding="utf-8")
        self.git("add", "--all")
        self.git("commit", "--quiet", "-m", message)
        self.git("push", "--quiet", "--force", "origin", branch)

    def merge(self, branch: str) -> None:
        self.git("fetch", "--quiet", "origin")
        self.git("checkout", "--quiet", "-B", "main", "origin/main")
        self.git("merge", "--quiet", "--no-ff", "-m", f"Merge {branch}", f"origin/{branch}")
        self.git("push", "--quiet", "origin", "main")

    def origin_main(self, *log_args: str) -> str:
        """`git log -1 ARGS origin/main`, fetched first."""
        self.git("fetch", "--quiet", "origin")
        return self.git("log", "-1", *log_args, "origin/main")

    def show(self, path: str) -> str:
        self.git("fetch", "--quiet", "origin")
        return self.git("show", f"origin/main:{path}")


@pytest.fixture
def github(
    tmp_path: Path, simulator: sim.RunningSimulator
) -> tuple[Actions, Developer, sim.RunningSimulator]:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C.UTF-8",
        # Stands in for api.heygen.com: the workflow leaves HEYGEN_BASE_URL to its default.
        "HEYGEN_BASE_URL": simulator.base_url,
    }
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(origin)], check=True)
    clone = tmp_path / "dev"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True, env=env)
    dev = Developer(clone, env)
    dev.git("checkout", "--quiet", "-b", "main")
    (clone / "README.md").write_text("our avatars\n")
    (clone / ".gitignore").write_text("*.manifest.json.lock\n")
    dev.git("add", "--all")
    dev.git("commit", "--quiet", "-m", "start")
    dev.git("push", "--quiet", "origin", "main")
    return Actions(tmp_path, origin, env), dev, simulator


SARAH = {
    "recipes/sarah.yaml": ROOT / "recipes" / "sarah.yaml",
    **{f"recipes/media/{n}": ROOT / "recipes" / "media" / n for n in ("sarah.png", "office.png")},
    "recipes/media/marco.png": ROOT / "recipes" / "media" / "marco.png",
}


def test_the_documented_workflow(github: tuple[Actions, Developer, sim.RunningSimulator]) -> None:
    actions, dev, simulator = github

    # A push with a broken recipe: validation fails, nothing is planned or applied.
    broken = (ROOT / "recipes" / "sarah.yaml").read_text().replace("prompt:", "promt:", 1)
    dev.commit("typo", "a typo", {**SARAH, "recipes/sarah.yaml": broken})
    jobs = actions.run("push", "typo")
    assert jobs["validate"].ran and not jobs["validate"].ok
    assert "unknown key 'promt'; did you mean 'prompt'?" in jobs["validate"].log
    assert not jobs["plan"].ran and not jobs["apply"].ran

    # Pull request 1 adds sarah.yaml: validated, planned, commented; nothing is sent.
    dev.commit("add-sarah", "add sarah", SARAH)
    assert not actions.run("push", "add-sarah")["apply"].ran  # a branch push only validates
    jobs = actions.run("pull_request", "add-sarah")
    assert jobs["validate"].ok and jobs["plan"].ok, jobs["plan"].log
    assert not jobs["apply"].ran
    assert jobs["plan"].outputs["plan"] == {"changes": "true"}
    comment = actions.comments["looks-plan"]
    assert comment.startswith("<!-- looks-plan: recipes/sarah.yaml -->\n")
    assert "**Plan: 9 to create, 0 to replace" in comment
    assert "Cost: 6 credits — photo 2 × 1, look 4 × 1" in comment
    assert simulator.stats()["requests"] == 0

    # The merge applies it, then the manifest is committed back to main by the bot.
    dev.merge("add-sarah")
    jobs = actions.run("push", "main")
    assert jobs["validate"].ok and jobs["apply"].ok, jobs["apply"].log
    assert "Apply: 9 completed, 0 failed" in jobs["apply"].log
    assert len(simulator.state()["looks"]) == 6
    manifest = json.loads(dev.show("recipes/sarah.manifest.json"))
    assert all(n["status"] == "completed" for n in manifest["nodes"].values())
    assert API_KEY not in json.dumps(manifest) + jobs["apply"].log
    log = dev.origin_main("--format=%an <%ae>|%s")
    assert log == f"looks[bot] <{BOT_EMAIL}>|looks: record applied looks [skip ci]\n"

    # Pull request 2 changes a prompt and adds a recipe: the same comment is updated, with
    # the supersession warning; a merge over the budget spends nothing and commits nothing.
    sarah = (ROOT / "recipes" / "sarah.yaml").read_text().replace("navy blazer", "grey blazer")
    characters = {"recipes/characters.yaml": ROOT / "recipes" / "characters.yaml"}
    dev.commit("grey", "grey blazer", {"recipes/sarah.yaml": sarah, **characters})
    jobs = actions.run("pull_request", "grey")
    assert jobs["plan"].ok, jobs["plan"].log
    assert list(actions.comments) == ["looks-plan"]  # one comment, updated in place
    comment = actions.comments["looks-plan"]
    assert comment.startswith("<!-- looks-plan: recipes/characters.yaml recipes/sarah.yaml -->\n")
    assert "> **2 looks will be superseded**" in comment
    assert "Cost: 10 credits — prompt 1 × 1, look 9 × 1" in comment
    dev.merge("grey")
    head = dev.origin_main("--format=%H")
    actions.vars["LOOKS_MAX_CREDITS"] = "9"
    sent = simulator.stats()["requests"]
    jobs = actions.run("push", "main")
    assert not jobs["apply"].ok
    assert "the plan costs 10 credits, more than --max-credits 9; nothing was sent" in (
        jobs["apply"].log
    )
    assert simulator.stats()["requests"] == sent
    assert dev.origin_main("--format=%H") == head  # nothing to commit back
    # Raised on purpose, the same merge applies.
    actions.vars["LOOKS_MAX_CREDITS"] = "10"
    jobs = actions.run("push", "main")
    assert jobs["apply"].ok, jobs["apply"].log
    assert len(simulator.state()["looks"]) == 6 + 10
    assert "looks: record applied looks" in dev.origin_main("--format=%s")

    # The next pull request sees the applied manifests: nothing to do.
    dev.commit("docs", "docs only", {"README.md": "our avatars, applied\n"})
    jobs = actions.run("pull_request", "docs")
    assert jobs["plan"].outputs["plan"] == {"changes": "false"}
    assert "No changes: everything is up to date." in actions.comments["looks-plan"]
    assert "Cost: 0 credits" in actions.comments["looks-plan"]


def test_a_manifest_pushed_to_main_during_apply_is_merged_not_lost(
    github: tuple[Actions, Developer, sim.RunningSimulator],
) -> None:
    """The commit back rebases onto main: git merges the manifests by address there too."""
    actions, dev, simulator = github
    dev.commit("add-sarah", "add sarah", SARAH)
    dev.merge("add-sarah")
    assert actions.run("push", "main")["apply"].ok
    dev.git("fetch", "--quiet", "origin")
    recipe = dev.show("recipes/sarah.yaml")
    sarah_hat = recipe.replace("    looks:\n", "    looks:\n      hat: {prompt: A straw hat}\n", 1)
    dev.commit("hat", "sarah's hat", {"recipes/sarah.yaml": sarah_hat})
    dev.merge("hat")

    def push_meanwhile() -> None:
        """While apply runs, someone applies a look of their own and pushes it to main."""
        dev.git("fetch", "--quiet", "origin")
        dev.git("checkout", "--quiet", "-B", "main", "origin/main")
        # sarah/cap: its record sorts next to sarah/hat's, which git's line merge conflicts on
        podcast = "      podcast:\n"
        cap = "      cap: {prompt: A cap}\n"
        mine = dev.show("recipes/sarah.yaml").replace(podcast, cap + podcast)
        (dev.clone / "recipes" / "sarah.yaml").write_text(mine, encoding="utf-8")
        env = {**dev.env, "HEYGEN_API_KEY": API_KEY}
        applied = subprocess.run(
            ["looks", "apply", "recipes/sarah.yaml", "--only", "sarah/cap"],
            cwd=dev.clone,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert applied.returncode == 0, applied.stdout + applied.stderr
        dev.git("commit", "--quiet", "-am", "sarah's cap, applied by hand")
        dev.git("push", "--quiet", "origin", "main")

    actions.before["Commit the manifests back"] = push_meanwhile
    jobs = actions.run("push", "main")
    assert jobs["apply"].ok, jobs["apply"].log
    assert not actions.before  # it ran
    nodes = json.loads(dev.show("recipes/sarah.manifest.json"))["nodes"]
    assert nodes["sarah/hat"]["status"] == nodes["sarah/cap"]["status"] == "completed"
    dev.git("checkout", "--quiet", "-B", "main", "origin/main")
    created = simulator.stats()["by_route"]["POST /v3/avatars"]
    env = {**dev.env, "HEYGEN_API_KEY": API_KEY}
    plan = subprocess.run(
        ["looks", "plan", "--detailed-exitcode", "recipes/sarah.yaml"],
        cwd=dev.clone,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert simulator.stats()["by_route"]["POST /v3/avatars"] == created


def test_what_the_workflow_promises() -> None:
    """What the stand-in cannot show by running: triggers, permissions, the queue."""
    spec = workflow()
    assert set(spec[True]) == {"push", "pull_request"}  # validate on every push
    assert spec["permissions"] == {"contents": "read"}
    jobs = spec["jobs"]
    assert "if" not in jobs["validate"]
    plan = "\n".join(s.get("run", "") for s in jobs["plan"]["steps"])
    assert "--format markdown --detailed-exitcode" in plan
    assert jobs["plan"]["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "env" not in jobs["plan"]  # no secret reaches a pull request
    apply = jobs["apply"]
    assert apply["concurrency"] == {"group": "looks-apply", "cancel-in-progress": False}
    # The key is in the one step that calls the API: not in pip's (a dependency's build
    # runs code), nor in the commit back's.
    keyed = [s for s in apply["steps"] if "HEYGEN_API_KEY" in json.dumps(s)]
    assert [s.get("name") for s in keyed] == ["Apply"]
    assert keyed[0]["env"]["HEYGEN_API_KEY"] == "${{ secrets.HEYGEN_API_KEY }}"
    assert "HEYGEN_API_KEY" not in json.dumps(apply.get("env", {}))
    assert apply["permissions"] == {"contents": "write"}
    assert apply["steps"][0]["with"] == {"ref": "main"}
    assert apply["steps"][-1]["if"] == "always()"


def test_the_documented_pre_commit_hook(tmp_path: Path) -> None:
    (config,) = [b for b in yaml_blocks(DOC.read_text(encoding="utf-8")) if "repos" in b]
    (hook,) = config["repos"][0]["hooks"]
    shipped = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hook["id"] in shipped
    shipped_hook = shipped[hook["id"]]
    recipes = tmp_path / "recipes"
    shutil.copytree(ROOT / "recipes", recipes)
    files = sorted(
        str(p.relative_to(tmp_path))
        for p in recipes.rglob("*")
        if re.search(shipped_hook["files"], str(p.relative_to(tmp_path)))
    )
    assert "recipes/sarah.yaml" in files
    entry = shipped_hook["entry"].split()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(
        [*entry, *files], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    original = (recipes / "sarah.yaml").read_text()
    (recipes / "sarah.yaml").write_text(original + "  x: {name: X, base: {type: photo}}\n")
    line = len(original.splitlines()) + 1
    done = subprocess.run(
        [*entry, *files], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 1
    assert (
        done.stderr == f"recipes/sarah.yaml:{line}: avatars.x.base: missing required key 'file'\n"
    )
