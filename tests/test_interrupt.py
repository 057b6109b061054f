"""Ctrl-C and out-of-credit runs: exit codes, recorded answers and honest summaries."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import API_KEY, looks_process

from looks import sim
from looks.manifest import journal_path_for, manifest_path_for


@pytest.fixture
def lagging_sim() -> Iterator[sim.RunningSimulator]:
    """Every answer takes 1 s: a Ctrl-C always lands while creates are on their way."""
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.2, latency_ms=1000)
    with sim.running_simulator(config) as s:
        yield s


@pytest.fixture
def env(lagging_sim: sim.RunningSimulator, api_env: dict[str, str]) -> dict[str, str]:
    return {**api_env, "HEYGEN_BASE_URL": lagging_sim.base_url, "HEYGEN_API_KEY": API_KEY}


@pytest.fixture
def simulator(lagging_sim: sim.RunningSimulator) -> sim.RunningSimulator:
    return lagging_sim


def write_recipe(directory: Path, avatars: int, looks: int) -> Path:
    """Prompt avatars (no files to upload), each base with `looks` dependent looks."""
    lines = ["version: 1", "avatars:"]
    for a in range(avatars):
        lines += [
            f"  a{a}:",
            f"    name: Avatar {a}",
            "    base: {type: prompt, prompt: A person in a studio}",
        ]
        if looks:
            lines += [
                "    looks:",
                '      "outfit-{n}":',
                "        prompt: Outfit number {n}",
                f"        matrix: {{n: {list(range(looks))}}}",
            ]
    recipe = directory / "batch.yaml"
    recipe.write_text("\n".join(lines) + "\n")
    return recipe


def journal(recipe: Path) -> list[dict[str, object]]:
    try:
        text = journal_path_for(manifest_path_for(recipe)).read_text()
    except FileNotFoundError:
        return []
    # Complete lines only: read while the run appends, the last one may be half written.
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def wait_for_submissions(proc: subprocess.Popen[str], recipe: Path, count: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        submitted = [e for e in journal(recipe) if e["record"]["status"] == "submitted"]  # type: ignore[index]
        if len(submitted) >= count:
            return
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "apply submitted nothing"
        time.sleep(0.01)


def nodes(recipe: Path) -> dict[str, dict[str, object]]:
    data: dict[str, dict[str, object]] = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    return data


def test_ctrl_c_while_creates_are_slow_to_answer_records_them_and_exits_130(
    tmp_path: Path, lagging_sim: sim.RunningSimulator, env: dict[str, str]
) -> None:
    recipe = write_recipe(tmp_path, avatars=3, looks=2)
    proc = looks_process("apply", recipe, env=env)
    wait_for_submissions(proc, recipe, 3)  # the three bases are on their way; looks wait
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "InvalidStateError" not in err + out
    # Every answer arrived within the grace period and is recorded with its look.
    made = {look["name"]: look["id"] for look in lagging_sim.state()["looks"]}
    assert len(made) == 3
    recorded = nodes(recipe)
    for a in range(3):
        record = recorded[f"a{a}"]
        assert record["look_id"] == made[f"Avatar {a}"]
        assert record["status"] in ("processing", "completed")
    assert not any(a in recorded for a in ("a0/outfit-0", "a0/outfit-1"))  # never submitted


def summary_event(out: str) -> dict[str, object]:
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "summary", events[-1]
    last: dict[str, object] = events[-1]
    return last


@pytest.mark.parametrize("log_json", [False, True])
def test_ctrl_c_with_three_generations_running_counts_them_as_still_generating(
    tmp_path: Path, lagging_sim: sim.RunningSimulator, env: dict[str, str], log_json: bool
) -> None:
    lagging_sim.configure(latency_ms=0, generation_seconds=120)
    recipe = write_recipe(tmp_path, avatars=3, looks=1)
    proc = looks_process("apply", *(["--log-json"] if log_json else []), recipe, env=env)
    deadline = time.monotonic() + 30
    while sum(e["record"]["status"] == "processing" for e in journal(recipe)) < 3:  # type: ignore[index]
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert len(lagging_sim.state()["looks"]) == 3  # billed, still generating
    if log_json:
        last = summary_event(out)
        assert last["counts"] == {
            "completed": 0,
            "failed": 0,
            "blocked": 0,
            "in_flight": 3,
            "not_started": 3,
        }
        assert last["stopped"] == "interrupted"
        created = [json.loads(line) for line in out.splitlines()]
        created = [e for e in created if e["event"] == "created"]
        assert {e["look_id"] for e in created} == {
            look["id"] for look in lagging_sim.state()["looks"]
        }
        assert all(e["group_id"] for e in created)
    else:
        assert "Apply: 0 completed, 0 failed, 0 blocked, 3 still generating, 3 not started." in out
    assert {r["status"] for r in nodes(recipe).values()} == {"processing"}


def test_out_of_credits_counts_each_node_once_in_the_json_summary(
    tmp_path: Path, lagging_sim: sim.RunningSimulator, env: dict[str, str]
) -> None:
    lagging_sim.configure(latency_ms=0, generation_seconds=0.2, credits=3)
    recipe = write_recipe(tmp_path, avatars=1, looks=7)
    proc = looks_process("apply", "--log-json", "--max-jobs", "1", recipe, env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, out + err
    last = summary_event(out)
    assert last["stopped"] == "insufficient_credit"
    assert last["counts"] == {
        "completed": 3,
        "failed": 1,
        "blocked": 0,
        "in_flight": 0,
        "not_started": 4,
    }
    assert "; 5 looks remain to be created." in str(last["message"])
    failed = [json.loads(line) for line in out.splitlines()]
    failed = [e for e in failed if e["event"] == "failed"]
    assert len(failed) == 1
    error = failed[0]["error"]
    assert error["code"] == "insufficient_credit" and error["request_id"]
    assert error["request_id"] not in error["message"]
    recorded = nodes(recipe)
    assert sum(r["status"] == "completed" for r in recorded.values()) == 3


def check_made_once(s: sim.RunningSimulator, recipe: Path) -> None:
    recorded = nodes(recipe)
    assert {r["status"] for r in recorded.values()} == {"completed"}
    made = [look for look in s.state()["looks"]]
    assert sorted(look["id"] for look in made) == sorted(
        str(r["look_id"]) for r in recorded.values()
    )


@pytest.mark.parametrize(
    ("after", "twice"), [(1, False), (5, False), (12, False), (3, True), (9, True)]
)
def test_ctrl_c_at_any_moment_then_resume_counts_exactly_and_makes_each_look_once(
    tmp_path: Path, lagging_sim: sim.RunningSimulator, env: dict[str, str], after: int, twice: bool
) -> None:
    lagging_sim.configure(latency_ms=120, generation_seconds=0.4)
    recipe = write_recipe(tmp_path, avatars=3, looks=3)
    proc = looks_process("apply", "--log-json", recipe, env=env)
    deadline = time.monotonic() + 30
    while len(journal(recipe)) < after:  # the signal lands `after` state changes in
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGINT)
    if twice:  # the second Ctrl-C leaves at once: the journal already holds everything
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    if not twice:
        counts = summary_event(out)["counts"]
        recorded = nodes(recipe)
        statuses = [r["status"] for r in recorded.values()]
        assert counts["completed"] == statuses.count("completed")  # type: ignore[index]
        sent = statuses.count("submitted") + statuses.count("processing")
        assert counts["in_flight"] == sent  # type: ignore[index]
        assert sum(counts.values()) == 12  # type: ignore[attr-defined]
    looks_again = looks_process("apply", recipe, env=env)
    out, err = looks_again.communicate(timeout=60)
    assert looks_again.returncode == 0, out + err
    check_made_once(lagging_sim, recipe)


def test_an_answer_later_than_the_grace_period_is_replayed_by_the_next_apply(
    tmp_path: Path, lagging_sim: sim.RunningSimulator, env: dict[str, str]
) -> None:
    lagging_sim.configure(latency_ms=8000)  # longer than the 5 s grace period
    recipe = write_recipe(tmp_path, avatars=1, looks=0)
    proc = looks_process("apply", "--log-json", recipe, env=env)
    wait_for_submissions(proc, recipe, 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    last = summary_event(out)
    assert last["counts"] == {  # sent, unanswered: it may exist and be billed
        "completed": 0,
        "failed": 0,
        "blocked": 0,
        "in_flight": 1,
        "not_started": 0,
    }
    key = nodes(recipe)["a0"]["idempotency_key"]
    assert nodes(recipe)["a0"]["status"] == "submitted"
    lagging_sim.configure(latency_ms=0)
    again = looks_process("apply", recipe, env=env)
    out, err = again.communicate(timeout=60)
    assert again.returncode == 0, out + err
    made = lagging_sim.state()["looks"]
    assert [look["idempotency_key"] for look in made] == [key]  # replayed, not made twice
    check_made_once(lagging_sim, recipe)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_kill_or_a_closed_terminal_stops_apply_as_ctrl_c_does(
    tmp_path: Path, lagging_sim: sim.RunningSimulator, env: dict[str, str], signum: int
) -> None:
    # SIGHUP is what a closed terminal (or a dropped ssh session) sends: stop and record.
    lagging_sim.configure(latency_ms=0, generation_seconds=120)
    recipe = write_recipe(tmp_path, avatars=3, looks=1)
    proc = looks_process("apply", "--log-json", recipe, env=env)
    deadline = time.monotonic() + 30
    while sum(e["record"]["status"] == "processing" for e in journal(recipe)) < 3:  # type: ignore[index]
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (proc.returncode, out, err)
    last = summary_event(out)
    assert last["stopped"] == "interrupted"
    assert last["counts"] == {
        "completed": 0,
        "failed": 0,
        "blocked": 0,
        "in_flight": 3,
        "not_started": 3,
    }
    assert not journal_path_for(manifest_path_for(recipe)).exists()  # folded
    assert {r["status"] for r in nodes(recipe).values()} == {"processing"}


def test_under_nohup_a_closed_terminal_does_not_stop_apply(
    tmp_path: Path, lagging_sim: sim.RunningSimulator, env: dict[str, str]
) -> None:
    # `nohup looks apply ... &` ignores SIGHUP so that the run outlives the terminal.
    lagging_sim.configure(latency_ms=0, generation_seconds=1)
    recipe = write_recipe(tmp_path, avatars=2, looks=1)
    proc = looks_process(
        "apply",
        "--log-json",
        recipe,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN),
    )
    wait_for_submissions(proc, recipe, 2)
    proc.send_signal(signal.SIGHUP)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (proc.returncode, out, err)
    assert summary_event(out)["stopped"] is None
    assert {r["status"] for r in nodes(recipe).values()} == {"completed"}
