"""Twin footage over 32 MB: the three-step direct upload over real HTTP, killed and resumed.

Videos are generated sparse in tmp_path (an MP4 header, a hole, a tail), so 40 MB costs
almost no disk and no repository space.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API_KEY, Run, drop_target, looks_process

from engine import sim
from engine.client import AssetInfo, HeyGenClient
from engine.manifest import NodeRecord, journal_path_for, manifest_path_for
from engine.uploads import DirectUpload, LocalFile

MIB = 2**20
BIG = 40 * MIB
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
SLOW = 8 * MIB  # bytes per second for PUTs, so a 40 MB upload takes ~5 s and can be killed


def make_video(path: Path, size: int = BIG, tail: bytes = b"the end") -> Path:
    """A sparse MP4 of `size` bytes: its header, a hole, then `tail`."""
    with path.open("wb") as f:
        f.write(MP4_HEAD)
        f.truncate(size)
        f.seek(size - len(tail))
        f.write(tail)
    return path


def twin_recipe(directory: Path, video: str = "alex.mp4") -> Path:
    recipe = directory / "twin.yaml"
    recipe.write_text(
        "version: 1\n"
        "avatars:\n"
        "  alex:\n"
        "    name: Alex\n"
        "    consent: {}\n"
        "    base:\n"
        "      type: digital_twin\n"
        f"      file: {{path: {video}}}\n"
    )
    return recipe


@pytest.fixture
def upload_sim() -> Iterator[sim.RunningSimulator]:
    config = sim.SimConfig(api_key=API_KEY, generation_seconds=0.1, auto_consent=0.1)
    with sim.running_simulator(config) as s:
        yield s


@pytest.fixture
def env(upload_sim: sim.RunningSimulator, api_env: dict[str, str]) -> dict[str, str]:
    return {**api_env, "HEYGEN_BASE_URL": upload_sim.base_url}


@pytest.fixture
def simulator(upload_sim: sim.RunningSimulator) -> sim.RunningSimulator:
    return upload_sim  # api_env points the in-process CLI at the same simulator


def nodes(recipe: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest_path_for(recipe).read_text())["nodes"]
    return data


def journal(recipe: Path) -> list[dict[str, Any]]:
    """The records journaled so far (a killed run leaves its journal unfolded)."""
    path = journal_path_for(manifest_path_for(recipe))
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    changes = [json.loads(line) for line in lines if line.endswith("}")]
    return [c["record"] for c in changes if c["record"] is not None]


def twin_asset(s: sim.RunningSimulator) -> str:
    """The asset id the simulator's one digital twin was created from."""
    twins = [look for look in s.state()["looks"] if look["avatar_type"] == "digital_twin"]
    assert len(twins) == 1, twins
    asset_id: str = twins[0]["request"]["file"]["asset_id"]
    return asset_id


def completed_assets(s: sim.RunningSimulator) -> list[dict[str, Any]]:
    return [a for a in s.assets() if a["status"] == "completed"]


def start_and_kill_mid_put(recipe: Path, env: dict[str, str]) -> None:
    """Start apply, SIGKILL it once it reports upload progress (the PUT is under way)."""
    proc = looks_process("apply", recipe, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "uploading" in line:
            break
        assert time.monotonic() < deadline, "apply never started uploading"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def test_a_40_mb_twin_video_takes_the_direct_upload_and_its_twin_is_created(
    tmp_path: Path, upload_sim: sim.RunningSimulator, looks: Callable[..., Run], api_env: Any
) -> None:
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)

    run = looks("apply", recipe)

    assert run.code == 0, run.out + run.err
    assert "uploading (alex.mp4: 40/40 MiB)" in run.out  # progress, down to the last byte
    [asset] = upload_sim.assets()
    assert asset["status"] == "completed" and asset["size_bytes"] == BIG
    assert asset["mime_type"] == "video/mp4"
    assert twin_asset(upload_sim) == asset["asset_id"]
    routes = upload_sim.stats()["by_route"]
    assert routes["POST /v3/assets/direct-uploads"] == 1
    assert routes["PUT /_sim/uploads/{asset_id}"] == 1
    assert routes["POST /v3/assets/{asset_id}/complete"] == 1
    assert "POST /v3/assets" not in routes  # 40 MB never goes to the 32 MB endpoint
    recorded = nodes(recipe)
    upload = next(r for r in recorded.values() if r["kind"] == "upload")
    assert upload["status"] == "completed" and upload["asset_id"] == asset["asset_id"]
    assert "upload" not in upload  # the in-progress state is gone once completed
    assert all(r["status"] == "completed" for r in recorded.values())


def test_a_small_file_keeps_the_one_step_upload(
    tmp_path: Path, upload_sim: sim.RunningSimulator, looks: Callable[..., Run], api_env: Any
) -> None:
    make_video(tmp_path / "alex.mp4", 32 * MIB)  # at the cap: still POST /v3/assets
    run = looks("apply", twin_recipe(tmp_path))
    assert run.code == 0, run.out + run.err
    routes = upload_sim.stats()["by_route"]
    assert routes["POST /v3/assets"] == 1
    assert "POST /v3/assets/direct-uploads" not in routes


def test_kill_9_during_the_put_then_resume_leaves_one_asset(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(upload_bytes_per_second=SLOW)

    start_and_kill_mid_put(recipe, env)

    # The asset id and the URL's expiry were journaled before the PUT began.
    last = [r for r in journal(recipe) if r["kind"] == "upload"][-1]
    assert last["status"] == "submitted" and last["upload"]["phase"] == "put"
    [pending] = upload_sim.assets()
    assert pending["status"] == "pending_upload"
    assert last["asset_id"] == pending["asset_id"]

    upload_sim.configure(upload_bytes_per_second=None)
    run = looks("apply", recipe)

    assert run.code == 0, run.out + run.err
    [asset] = upload_sim.assets()  # the same asset, completed: never a second one
    assert asset["asset_id"] == pending["asset_id"] and asset["status"] == "completed"
    assert twin_asset(upload_sim) == asset["asset_id"]


def test_an_expired_upload_url_is_recovered_with_a_fresh_init(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(upload_bytes_per_second=SLOW, upload_url_ttl=1.0)
    start_and_kill_mid_put(recipe, env)
    [first] = upload_sim.assets()
    time.sleep(1.5)  # past the URL's expiry
    assert upload_sim.assets()[0]["status"] == "expired"

    upload_sim.configure(upload_bytes_per_second=None, upload_url_ttl=3600.0)
    run = looks("apply", recipe)

    assert run.code == 0, run.out + run.err
    [asset] = completed_assets(upload_sim)
    assert asset["asset_id"] != first["asset_id"]
    assert twin_asset(upload_sim) == asset["asset_id"]
    # The expired one was never completed, so it can never be used or billed.
    assert {a["asset_id"]: a["status"] for a in upload_sim.assets()} == {
        first["asset_id"]: "expired",
        asset["asset_id"]: "completed",
    }


def test_bytes_that_landed_before_a_kill_are_completed_not_sent_again(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    """Killed between the storage's answer and the journal: the resume only completes."""
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(latency_ms=1500)  # the complete's answer is slow: kill during it
    proc = looks_process("apply", recipe, env=env)
    deadline = time.monotonic() + 60
    while not any(r.get("upload", {}).get("phase") == "uploaded" for r in journal(recipe)):
        assert proc.poll() is None and time.monotonic() < deadline, "never uploaded"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    upload_sim.configure(latency_ms=0)
    puts_before = upload_sim.stats()["by_route"]["PUT /_sim/uploads/{asset_id}"]

    run = looks("apply", recipe)

    assert run.code == 0, run.out + run.err
    assert upload_sim.stats()["by_route"]["PUT /_sim/uploads/{asset_id}"] == puts_before
    assert len(upload_sim.assets()) == 1 and completed_assets(upload_sim)


def test_a_file_changed_during_its_put_fails_with_a_checksum_mismatch(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    video = make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(upload_bytes_per_second=SLOW)
    proc = looks_process("apply", recipe, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "uploading" in line:
            break
    with video.open("r+b") as f:  # edited in place: same size, never shorter, other bytes
        f.seek(BIG - len(b"edited!"))
        f.write(b"edited!")  # before the PUT reaches them
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 1, out + err
    assert "checksum_mismatch" in out and "changed since it was planned" in out
    assert not completed_assets(upload_sim)
    assert "Traceback" not in err

    upload_sim.configure(upload_bytes_per_second=None)
    run = looks("apply", recipe)  # the new content is planned and uploaded
    assert run.code == 0, run.out + run.err
    [asset] = completed_assets(upload_sim)
    assert twin_asset(upload_sim) == asset["asset_id"]


def test_a_second_apply_on_the_same_recipe_is_refused_while_one_uploads(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(upload_bytes_per_second=SLOW)
    proc = looks_process("apply", recipe, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "uploading" in line:
            break

    second = looks("apply", recipe)

    assert second.code != 0
    [message] = drop_target(second.err).strip().splitlines()
    assert "lock" in message.lower() and "Traceback" not in second.err
    upload_sim.configure(upload_bytes_per_second=None)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out + err
    assert len(upload_sim.assets()) == 1 and completed_assets(upload_sim)


def test_kill_9_before_the_init_answered_replays_the_same_asset(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(latency_ms=800)  # the init's answer is still on its way at the kill
    proc = looks_process("apply", recipe, env=env)
    deadline = time.monotonic() + 60
    while not any(r["kind"] == "upload" for r in journal(recipe)):
        assert proc.poll() is None and time.monotonic() < deadline, "never sent the init"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    [sent] = [r for r in journal(recipe) if r["kind"] == "upload"]
    assert sent["status"] == "submitted" and "asset_id" not in sent  # key journaled, no answer
    time.sleep(1.2)  # the simulator finishes the init the killed run never heard of
    upload_sim.configure(latency_ms=0)

    run = looks("apply", recipe)

    assert run.code == 0, run.out + run.err
    [asset] = upload_sim.assets()  # the replayed init answered the same asset
    assert asset["status"] == "completed"
    assert twin_asset(upload_sim) == asset["asset_id"]


def test_a_file_cut_short_during_its_put_fails_at_once_and_is_planned_anew(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    video = make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(upload_bytes_per_second=SLOW)
    proc = looks_process("apply", recipe, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "uploading" in line:
            break
    with video.open("r+b") as f:
        f.truncate(BIG - MIB)  # still over 32 MB, but shorter than the size it declared
    out, err = proc.communicate(timeout=120)

    assert proc.returncode == 1, out + err
    assert "file_changed: alex.mp4 shrank while it was being uploaded" in out
    assert "Traceback" not in err
    assert upload_sim.stats()["by_route"]["PUT /_sim/uploads/{asset_id}"] == 1  # not retried
    upload_sim.configure(upload_bytes_per_second=None)
    run = looks("apply", recipe)
    assert run.code == 0, run.out + run.err
    [asset] = completed_assets(upload_sim)
    assert asset["size_bytes"] == BIG - MIB


def test_a_put_that_landed_before_the_journal_heard_of_it_is_completed_not_resent(
    tmp_path: Path, upload_sim: sim.RunningSimulator
) -> None:
    """A kill between the storage's 200 and journaling `uploaded`: the resume only completes."""
    video = make_video(tmp_path / "alex.mp4")
    sha = hashlib.sha256(video.read_bytes()).hexdigest()
    file = LocalFile(video, "alex.mp4", "video/mp4", sha, BIG)
    key = "looks:test:landed"

    def no_new_init(record: NodeRecord) -> NodeRecord:
        raise AssertionError("a fresh init was started")

    async def resume() -> tuple[str, AssetInfo]:
        async with HeyGenClient(upload_sim.base_url, API_KEY) as client:
            ticket = await client.start_direct_upload(
                filename="alex.mp4",
                content_type="video/mp4",
                size_bytes=BIG,
                checksum_sha256=sha,
                idempotency_key=key,
            )
            await client.put_upload(ticket, video, BIG)  # landed; then the kill
            journaled = NodeRecord(
                "upload:x",
                "upload",
                "f" * 64,
                "submitted",
                asset_id=ticket.asset_id,
                idempotency_key=key,
                submitted_at=time.time(),
                upload={"phase": "put", "expires_at": time.time() + 600},
            )
            flow = DirectUpload(client, file, save=lambda r: None, new_key=no_new_init)
            return ticket.asset_id, await flow.run(journaled)

    asset_id, asset = asyncio.run(resume())

    assert asset.asset_id == asset_id and asset.status == "completed"
    assert upload_sim.stats()["by_route"]["PUT /_sim/uploads/{asset_id}"] == 1
    assert [a["status"] for a in upload_sim.assets()] == ["completed"]


def test_urls_refused_at_every_put_end_in_one_clear_failure_not_a_loop(
    tmp_path: Path, upload_sim: sim.RunningSimulator, looks: Callable[..., Run], api_env: Any
) -> None:
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(upload_url_ttl=0)  # every URL has expired when its PUT arrives

    run = looks("apply", recipe)

    assert run.code == 1
    assert "upload_refused: alex.mp4: 3 upload URLs in a row expired or were refused" in run.out
    assert "Traceback" not in run.err
    assert [a["status"] for a in upload_sim.assets()] == ["expired"] * 3
    upload_sim.configure(upload_url_ttl=3600)
    assert looks("apply", recipe).code == 0
    assert len(completed_assets(upload_sim)) == 1


def test_ctrl_c_during_the_put_is_an_interrupt_not_an_internal_error(
    tmp_path: Path,
    upload_sim: sim.RunningSimulator,
    env: dict[str, str],
    looks: Callable[..., Run],
) -> None:
    # The twin waits on the upload; Ctrl-C cancels that wait while the PUT is in flight.
    # A cancelled wait must not cancel the upload's own outcome: the PUT that then
    # finished crashed on it (exit 3, InvalidStateError) instead of being recorded.
    make_video(tmp_path / "alex.mp4")
    recipe = twin_recipe(tmp_path)
    upload_sim.configure(upload_bytes_per_second=SLOW)
    proc = looks_process("apply", recipe, env=env)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "uploading (alex.mp4: 36/40 MiB)" in line:
            break  # the PUT ends well within the interrupt's grace period
        assert time.monotonic() < deadline, "apply never got far into its upload"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == 130, out + err
    assert "internal error" not in err
    upload_sim.configure(upload_bytes_per_second=None)
    run = looks("apply", recipe)
    assert run.code == 0, run.out + run.err
    assert [a["status"] for a in upload_sim.assets()] == ["completed"]
    assert all(r["status"] == "completed" for r in nodes(recipe).values())
