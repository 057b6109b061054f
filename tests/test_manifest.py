"""The manifest store: journal, replay, atomic folds, git-friendly bytes, errors, locking."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from looks.errors import ManifestError, ManifestLockedError, StateWriteError
from looks.manifest import (
    ErrorInfo,
    ManifestStore,
    NodeRecord,
    journal_path_for,
    lock_path_for,
    read_manifest,
    with_serial,
)
from looks.records import idempotency_key

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text(encoding="utf-8"))
FP = "a" * 64
FP2 = "b" * 64
LINEAGE = "0b5f8a4e-1d2c-4e3f-9a8b-7c6d5e4f3a2b"


def rec(address: str = "sarah", **changes: Any) -> NodeRecord:
    fields: dict[str, Any] = {"kind": "base", "fingerprint": FP, "status": "pending"}
    fields.update(changes)
    return NodeRecord(address=address, **fields)


def journal_lines(store: ManifestStore) -> list[dict[str, Any]]:
    text = store.journal_path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def manifest_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def write_manifest(path: Path, nodes: dict[str, Any], serial: int = 3) -> bytes:
    """A manifest as a previous run left it."""
    data = {"version": 1, "lineage": LINEAGE, "serial": serial, "recipe": "r.yaml", "nodes": nodes}
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    path.write_text(text, encoding="utf-8")
    return text.encode()


def change(address: str, record: dict[str, Any] | None) -> str:
    return json.dumps({"address": address, "record": record}, sort_keys=True) + "\n"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "r.manifest.json"


@pytest.fixture
def store(path: Path) -> Iterator[ManifestStore]:
    s = ManifestStore(path, "r.yaml")
    yield s
    s.close()


# -- the journal -------------------------------------------------------------------------


def test_record_appends_one_journal_line_before_returning(store: ManifestStore, path: Path) -> None:
    assert store.journal_path == path.with_name("r.manifest.json.journal")
    first = rec(status="submitted", idempotency_key="looks:k1", attempts=1)
    store.record(first)
    lineage = store.manifest.lineage
    assert journal_lines(store) == [
        {"address": "sarah", "record": first.to_json(), "lineage": lineage}
    ]
    # The lineage (part of every key) went to disk before the first change; the change
    # itself is in the journal alone until a fold.
    assert manifest_json(path)["lineage"] == store.manifest.lineage
    assert manifest_json(path)["nodes"] == {}

    second = first.evolve(status="processing", look_id="look_1", group_id="group_1")
    store.record(second)
    assert journal_lines(store) == [
        {"address": "sarah", "record": first.to_json(), "lineage": store.manifest.lineage},
        {"address": "sarah", "record": second.to_json(), "lineage": store.manifest.lineage},
    ]
    assert store.pending_changes == 2
    assert store.nodes["sarah"] == second


def test_a_change_recorded_without_sync_is_made_durable_by_the_next_fsync(
    store: ManifestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change that guards no request (a completion) is written at once, in order, and
    fsynced with the next change that does guard one, or with the fold."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    key = rec(status="submitted", idempotency_key="looks:k1", attempts=1)
    store.record(key)
    assert len(synced) >= 1
    before = len(synced)
    done = key.evolve(status="completed", look_id="look_1", group_id="group_1")
    store.record(done, sync=False)
    assert len(synced) == before  # written, not waited on
    assert [line["record"]["status"] for line in journal_lines(store)] == ["submitted", "completed"]
    other = rec("mia", status="submitted", idempotency_key="looks:k2", attempts=1)
    store.record(other)
    assert len(synced) == before + 1  # one fsync covers both lines of the journal
    assert len(journal_lines(store)) == 3


def test_only_the_last_journal_line_ever_waits_on_a_fsync(
    store: ManifestStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two changes in a row recorded without sync: the second is fsynced, so a power loss
    can only tear the journal's last line (dropped with a note), never leave a hole in
    front of a later line (refused until `looks repair`)."""
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    store.record(rec(status="submitted", idempotency_key="looks:k1", attempts=1))
    before = len(synced)
    store.record(rec(status="completed", look_id="look_1", group_id="g"), sync=False)
    assert len(synced) == before
    store.record(rec("mia", status="completed", look_id="look_2", group_id="g"), sync=False)
    assert len(synced) == before + 1
    store.record(rec("zoe", status="completed", look_id="look_3", group_id="g"), sync=False)
    assert len(synced) == before + 1


def test_recording_an_unchanged_record_writes_nothing(store: ManifestStore) -> None:
    store.record(rec())
    store.record(rec())
    assert len(journal_lines(store)) == 1
    assert store.pending_changes == 1


def test_fold_writes_the_manifest_and_removes_the_journal(store: ManifestStore, path: Path) -> None:
    store.record(rec("sarah", status="completed", look_id="look_1"))
    store.record(rec("marco"))
    store.fold()
    assert not store.journal_path.exists()
    data = manifest_json(path)
    assert data["nodes"] == {
        "marco": {"fingerprint": FP, "kind": "base", "status": "pending", "attempts": 0},
        "sarah": {
            "attempts": 0,
            "fingerprint": FP,
            "kind": "base",
            "look_id": "look_1",
            "status": "completed",
        },
    }
    assert data["serial"] == 2 and data["recipe"] == "r.yaml" and data["version"] == 1
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    # The journal starts again with the next change.
    store.record(rec("marco", status="submitted"))
    assert [c["address"] for c in journal_lines(store)] == ["marco"]


def test_reopening_after_a_crash_replays_the_journal(path: Path) -> None:
    # A run that records and dies without closing: its journal is all that is left.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        from looks.manifest import ManifestStore, NodeRecord
        store = ManifestStore(Path({str(path)!r}), "r.yaml")
        store.record(NodeRecord("sarah", "base", {FP!r}, "submitted", idempotency_key="k1"))
        store.record(NodeRecord("marco", "base", {FP!r}, "pending"))
        store.record(NodeRecord("sarah", "base", {FP!r}, "processing", look_id="look_1"))
        os._exit(0)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    journal = journal_path_for(path)
    assert manifest_json(path)["nodes"] == {}  # the lineage alone, written before the journal
    lineage = manifest_json(path)["lineage"]
    assert len(journal.read_text().splitlines()) == 3

    # Reading alone replays but writes nothing.
    before = path.read_bytes()
    assert read_manifest(path, "r.yaml").nodes["sarah"].status == "processing"
    assert read_manifest(path, "r.yaml").lineage == lineage
    assert path.read_bytes() == before and journal.exists()

    with ManifestStore(path, "r.yaml") as store:
        assert store.nodes == {
            "sarah": rec("sarah", status="processing", look_id="look_1"),
            "marco": rec("marco"),
        }
        # Folded at open: the manifest holds it all, the journal is gone.
        assert not journal.exists()
        assert manifest_json(path)["nodes"]["sarah"]["look_id"] == "look_1"
        assert "idempotency_key" not in manifest_json(path)["nodes"]["sarah"]
    assert not journal.exists()


def test_replay_applies_changes_in_order_over_the_folded_manifest(path: Path) -> None:
    write_manifest(
        path,
        {
            "sarah": {"kind": "base", "fingerprint": FP, "status": "completed", "look_id": "L0"},
            "old": {"kind": "look", "fingerprint": FP, "status": "completed", "look_id": "L9"},
        },
        serial=7,
    )
    journal_path_for(path).write_text(
        change("marco", rec("marco", status="submitted").to_json())
        + change("marco", rec("marco", status="processing", look_id="L1").to_json())
        + change("old", None)
        + change("marco", rec("marco", status="completed", look_id="L1").to_json())
    )
    with ManifestStore(path, "r.yaml") as store:
        assert set(store.nodes) == {"sarah", "marco"}
        assert store.nodes["marco"] == rec("marco", status="completed", look_id="L1")
        assert store.nodes["sarah"].look_id == "L0"
    data = manifest_json(path)
    assert data["serial"] == 8 and data["lineage"] == LINEAGE
    assert set(data["nodes"]) == {"marco", "sarah"}
    assert not journal_path_for(path).exists()


def test_replaying_a_journal_already_folded_gives_the_same_manifest(path: Path) -> None:
    # A crash after the fold's rename but before the journal was removed.
    with ManifestStore(path, "r.yaml") as store:
        store.record(rec("sarah", status="submitted"))
        store.record(rec("sarah", status="completed", look_id="L1"))
        store.forget("sarah")
        store.record(rec("marco", status="completed", look_id="L2"))
        journal = store.journal_path.read_bytes()
    folded = path.read_bytes()
    inode = path.stat().st_ino
    journal_path_for(path).write_bytes(journal)

    with ManifestStore(path, "r.yaml") as store:
        assert store.nodes == {"marco": rec("marco", status="completed", look_id="L2")}
    assert path.read_bytes() == folded  # same content, same serial: not even rewritten
    assert path.stat().st_ino == inode
    assert not journal_path_for(path).exists()


def test_a_torn_last_journal_line_is_ignored(path: Path) -> None:
    good = rec("sarah", status="submitted", idempotency_key="k1")
    torn = change("marco", rec("marco").to_json())[:25]  # the run died mid-append
    journal_path_for(path).write_text(change("sarah", good.to_json()) + torn)
    with ManifestStore(path, "r.yaml") as store:
        assert store.nodes == {"sarah": good}
    assert set(manifest_json(path)["nodes"]) == {"sarah"}
    assert not journal_path_for(path).exists()


def test_a_corrupt_journal_line_in_the_middle_is_an_error(path: Path) -> None:
    manifest = write_manifest(path, {})
    journal = journal_path_for(path)
    text = (
        change("sarah", rec("sarah").to_json())
        + '{"address": "marco", "rec\n'
        + change("marco", rec("marco").to_json())
    )
    journal.write_text(text)
    with pytest.raises(ManifestError) as caught:
        ManifestStore(path, "r.yaml")
    message = str(caught.value)
    assert message.startswith(f"{journal}:2: journal is damaged")
    assert "looks repair" in message and "do not delete" in message
    assert "aside to" not in message  # the old advice, which made every look again
    assert path.read_bytes() == manifest and journal.read_text() == text
    assert not lock_path_for(path).exists()  # the failed open released its lock


def test_a_journal_line_nested_too_deep_is_damage_not_a_crash(path: Path) -> None:
    write_manifest(path, {})
    journal = journal_path_for(path)
    journal.write_text("[" * 100_000 + "]" * 100_000 + "\n" + change("sarah", rec().to_json()))
    with pytest.raises(ManifestError, match=f"^{re.escape(str(journal))}:1: journal is damaged"):
        ManifestStore(path, "r.yaml")


def test_a_journal_line_that_is_not_a_change_is_an_error(path: Path) -> None:
    journal = journal_path_for(path)
    journal.write_text('["not", "a", "change"]\n' + change("sarah", rec().to_json()))
    with pytest.raises(ManifestError, match=re.escape(f"{journal}:1: journal is damaged")):
        ManifestStore(path, "r.yaml")
    assert not path.exists()


@pytest.mark.parametrize(
    "line",
    [
        {"address": "marco", "record": {"kind": "base", "status": "pending"}},
        {"address": "marco", "record": {**rec("marco").to_json(), "colour": "red"}},
        {"address": "marco", "record": 5},
        {"address": "marco"},
    ],
    ids=["no-fingerprint", "unknown-field", "not-an-object", "no-record-key"],
)
def test_a_journal_line_with_a_malformed_record_is_an_error(
    path: Path, line: dict[str, Any]
) -> None:
    manifest = write_manifest(path, {"marco": rec("marco", status="completed").to_json()})
    journal = journal_path_for(path)
    text = change("sarah", rec().to_json()) + json.dumps(line) + "\n" + change("ann", None)
    journal.write_text(text)
    with pytest.raises(ManifestError, match=re.escape(f"{journal}:2: journal is damaged")):
        ManifestStore(path, "r.yaml")
    assert path.read_bytes() == manifest and journal.read_text() == text


def test_a_journal_record_the_schema_rejects_is_never_folded(path: Path) -> None:
    manifest = write_manifest(path, {"marco": rec("marco", status="completed").to_json()})
    journal = journal_path_for(path)
    bad = {**rec().to_json(), "status": "bogus"}
    journal.write_text(change("sarah", bad))
    with pytest.raises(ManifestError, match=re.escape(f"{journal}:1: journal is damaged")):
        ManifestStore(path, "r.yaml").close()
    assert path.read_bytes() == manifest
    assert journal.exists()


def test_forget_removes_a_record_through_the_journal(store: ManifestStore, path: Path) -> None:
    store.record(rec("sarah"))
    store.record(rec("marco"))
    store.fold()
    store.forget("sarah")
    lineage = store.manifest.lineage
    assert journal_lines(store) == [{"address": "sarah", "record": None, "lineage": lineage}]
    assert "sarah" not in store.nodes
    assert set(read_manifest(path, "r.yaml").nodes) == {"marco"}  # replayed from the journal
    store.forget("nobody")
    assert len(journal_lines(store)) == 1
    store.fold()
    assert set(manifest_json(path)["nodes"]) == {"marco"}


def test_a_failed_fold_leaves_the_old_manifest_and_the_journal(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ManifestStore(path, "r.yaml") as store:
        store.record(rec("sarah"))
    before = path.read_bytes()

    store = ManifestStore(path, "r.yaml")
    store.record(rec("sarah", status="completed", look_id="L1"))

    def crash(src: object, dst: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StateWriteError, match=r"No space left on device \[ENOSPC\]"):
        store.close()
    monkeypatch.undo()
    assert path.read_bytes() == before  # never half-written
    assert journal_path_for(path).exists()
    assert not lock_path_for(path).exists()

    with ManifestStore(path, "r.yaml") as store:
        assert store.nodes["sarah"].look_id == "L1"
    assert manifest_json(path)["nodes"]["sarah"]["status"] == "completed"


# -- serial and unchanged bytes --------------------------------------------------------------


def test_serial_increments_on_every_write_that_changes_content_only(path: Path) -> None:
    def serial() -> int:
        value: int = manifest_json(path)["serial"]
        return value

    with ManifestStore(path, "r.yaml") as store:
        store.record(rec())
        assert serial() == 1  # the lineage, written before the first change
        store.fold()
        assert serial() == 2
        store.fold()  # nothing new
        assert serial() == 2
        store.record(rec(status="submitted"))
        store.record(rec(status="processing"))
        store.fold()
        assert serial() == 3  # one write, however many changes
        store.record(rec(status="completed"))
        store.record(rec(status="processing"))  # back to what was written
        store.fold()
        assert serial() == 3
    assert serial() == 3  # close folds nothing new
    with ManifestStore(path, "r.yaml") as store:
        pass
    assert serial() == 3
    with ManifestStore(path, "r.yaml") as store:
        store.forget("sarah")
    assert serial() == 4
    with ManifestStore(path, "other.yaml", rehome=True):  # re-homed: that is a change too
        pass
    assert serial() == 5 and manifest_json(path)["recipe"] == "other.yaml"


def test_open_and_close_without_changes_leaves_the_file_untouched(path: Path) -> None:
    with ManifestStore(path, "r.yaml") as store:
        store.record(rec(status="completed", look_id="L1", name="Sarah — Navy"))
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # so a rewrite would show
    before = path.read_bytes()
    stat = path.stat()
    with ManifestStore(path, "r.yaml") as store:
        store.record(rec(status="completed", look_id="L1", name="Sarah — Navy"))  # the same
    after = path.stat()
    assert path.read_bytes() == before
    assert (after.st_mtime_ns, after.st_ino) == (stat.st_mtime_ns, stat.st_ino)
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.manifest.json"]


def test_a_store_that_records_nothing_writes_no_file(tmp_path: Path, path: Path) -> None:
    with ManifestStore(path, "r.yaml") as store:
        store.fold()
    assert list(tmp_path.iterdir()) == []


def test_output_is_git_friendly(path: Path) -> None:
    with ManifestStore(path, "recipes/r.yaml") as store:
        store.record(rec("zed", kind="look", request={"prompt": "b", "avatar_id": {"$look": "a"}}))
        store.record(
            rec(
                "anna",
                status="failed",
                name="Anna — Büro",
                error=ErrorInfo("invalid_parameter", "bad prompt"),
            )
        )
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert '\n  "lineage": ' in text  # two-space indent
    assert "Anna — Büro" in text  # readable in a diff, not \u escapes
    assert "null" not in text
    assert data["nodes"]["zed"] == {
        "attempts": 0,
        "fingerprint": FP,
        "kind": "look",
        "request": {"avatar_id": {"$look": "a"}, "prompt": "b"},
        "status": "pending",
    }
    assert list(data["nodes"]) == ["anna", "zed"]
    # None fields, empty tuples and the address (it is the key) are left out.
    for node in data["nodes"].values():
        assert "address" not in node and "superseded" not in node and "look_id" not in node


def test_the_written_text_is_the_manifests_dump_with_its_serial(path: Path) -> None:
    # The store dumps a manifest once per write and adds the serial's line to that text
    # (manifest.with_serial); values that look like the line it goes before change nothing.
    tricky = 'x\n  "version": 9\n  "serial": 1,'
    with ManifestStore(path, tricky) as store:
        store.record(rec("sarah", name=tricky, request={"version": tricky, "z": [1, {}]}))
        store.record(rec("zed", kind="look", status="completed", look_id="L1"))
        store.fold()
        assert path.read_text(encoding="utf-8") == store.manifest.dumps()
        assert store.manifest.serial == 2
    for data in ({"version": 1}, json.loads(store.manifest.dumps(with_serial=False))):
        text = with_serial(json.dumps(data, indent=2, sort_keys=True) + "\n", 7)
        assert text == json.dumps({**data, "serial": 7}, indent=2, sort_keys=True) + "\n"


def test_a_realistic_manifest_validates_against_the_schema(path: Path) -> None:
    with ManifestStore(path, "recipes/sarah.yaml") as store:
        lineage = store.manifest.lineage
        key = idempotency_key(lineage, "sarah", FP, 2)
        store.record(
            NodeRecord(
                "upload:0123456789abcdef",
                "upload",
                FP2,
                "completed",
                name="media/sarah.png",
                request={"sha256": FP2, "media_type": "image/png"},
                asset_id="asset_1",
                idempotency_key=idempotency_key(lineage, "upload:0123456789abcdef", FP2, 1),
                submitted_at=1_700_000_000.125,
                attempts=1,
            )
        )
        store.record(
            NodeRecord(
                "sarah",
                "base",
                FP,
                "completed",
                name="Sarah",
                request={"type": "photo", "file": {"$asset": "upload:0123456789abcdef"}},
                look_id="look_2",
                group_id="group_1",
                preview_image_url="https://cdn.example.com/look_2.png",
                idempotency_key=key,
                submitted_at=1_700_000_100.5,
                attempts=2,
                superseded=("look_1",),
            )
        )
        store.record(
            NodeRecord(
                "consent:alex",
                "consent",
                FP,
                "completed",
                group_id="group_9",
                consent_url="https://app.example.com/consent/group_9",
                idempotency_key=idempotency_key(lineage, "consent:alex", FP, 1),
                attempts=1,
            )
        )
        store.record(
            NodeRecord(
                "alex",
                "base",
                FP2,
                "blocked",
                name="Alex",
                look_id="look_9",
                group_id="group_9",
                error=ErrorInfo("consent_pending", "waiting for consent approval: https://x"),
            )
        )
        store.record(
            NodeRecord(
                "sarah/navy",
                "look",
                FP,
                "failed",
                name="Sarah — Navy",
                error=ErrorInfo("content_policy", "refused"),
                attempts=1,
            )
        )
        store.record(NodeRecord("sarah/dusk", "look", FP, "submitted", attempts=1))
        store.record(NodeRecord("sarah/night", "look", FP, "processing", look_id="look_5"))
        store.record(NodeRecord("sarah/gone", "look", FP, "missing", look_id="look_6"))
        store.record(NodeRecord("marco", "base", FP, "pending"))
    data = manifest_json(path)
    jsonschema.Draft202012Validator(SCHEMA).validate(data)
    assert len(data["nodes"]) == 9


# -- a manifest that must not be overwritten -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"version": 1, "lineage": "x", "serial": ', r"r\.manifest\.json:1: manifest is corrupt"),
        (
            '{"version": 1, "lineage": "x", "serial": 1, "recipe": "r.yaml",'
            ' "nodes": {"sarah": {"kind": "base", "fingerprint": "' + FP + '",'
            ' "status": "bogus"}}}',
            r"r\.manifest\.json: manifest is invalid at nodes\.sarah\.status",
        ),
        ('{"version": 1, "lineage": "x"}', r"r\.manifest\.json: manifest is invalid at top level"),
        ("[]", r"r\.manifest\.json: manifest is invalid at top level"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, r"r\.manifest\.json: manifest is corrupt"),
        (
            # Part of every idempotency key: a space would make keys the API refuses.
            '{"version": 1, "lineage": "team lineage", "serial": 1, "recipe": "r.yaml",'
            ' "nodes": {}}',
            r"r\.manifest\.json: manifest is invalid at lineage",
        ),
    ],
    ids=[
        "truncated",
        "bad-status",
        "missing-fields",
        "not-an-object",
        "nested-too-deep",
        "lineage-unfit-for-keys",
    ],
)
def test_a_corrupt_or_invalid_manifest_is_an_error_and_left_untouched(
    path: Path, text: str, expected: str
) -> None:
    path.write_text(text)
    journal_path_for(path).write_text(change("marco", rec("marco").to_json()))
    with pytest.raises(ManifestError, match=expected) as caught:
        ManifestStore(path, "r.yaml")
    message = str(caught.value)
    assert str(path) in message
    assert "left untouched" in message
    assert "git checkout HEAD -- r.manifest.json" in message and "do not delete it" in message
    assert "move it aside" not in message  # a new manifest would pay for every look again
    assert path.read_text() == text
    assert journal_path_for(path).exists()  # not folded, not dropped
    assert not lock_path_for(path).exists()


def test_an_unsupported_format_version_is_an_error_and_left_untouched(path: Path) -> None:
    text = '{"version": 2, "lineage": "x", "serial": 1, "recipe": "r.yaml", "nodes": {}}\n'
    path.write_text(text)
    with pytest.raises(ManifestError) as caught:
        ManifestStore(path, "r.yaml")
    message = str(caught.value)
    assert message.startswith(f"{path}: manifest format version 2 is not supported")
    assert "version 1" in message
    assert path.read_text() == text


# -- the lock ------------------------------------------------------------------------------


def test_a_second_store_on_the_same_manifest_is_refused(path: Path) -> None:
    with ManifestStore(path, "r.yaml") as store:
        assert lock_path_for(path).exists()
        with pytest.raises(ManifestLockedError) as caught:
            ManifestStore(path, "r.yaml")
        pattern = (
            rf"{re.escape(str(path))} is locked by pid {os.getpid()}"
            rf" on {re.escape(socket.gethostname())} since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
        )
        assert re.fullmatch(pattern, str(caught.value)), str(caught.value)
        store.record(rec())  # the holder is unaffected
    assert not lock_path_for(path).exists()
    with ManifestStore(path, "r.yaml") as again:
        assert set(again.nodes) == {"sarah"}


def test_the_lock_of_a_killed_holder_is_free_again(path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        from looks.manifest import ManifestStore
        store = ManifestStore(Path({str(path)!r}), "r.yaml")
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(ManifestLockedError, match=rf"is locked by pid {holder.pid} on "):
            ManifestStore(path, "r.yaml")
        holder.send_signal(signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    assert lock_path_for(path).exists()  # left behind by the dead holder, but not held
    with ManifestStore(path, "r.yaml") as store:
        store.record(rec())
        holder_line = lock_path_for(path).read_text()
        assert holder_line.startswith(f"pid {os.getpid()} on ")
    assert not lock_path_for(path).exists()
