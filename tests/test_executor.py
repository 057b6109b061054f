"""The executor's status transitions, driven by a fake client: no server, no HTTP.

Each test reads what the run journaled (every change, in order, as written to the
manifest's journal on disk) and what was sent to the fake API.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.client import ApiErrorInfo, AssetInfo, GroupInfo, LookInfo
from engine.errors import ApiError, TransportError
from engine.executor import (
    ApplyOptions,
    ApplyResult,
    Batch,
    Executor,
    JobSlots,
    _Stop,
    idempotency_key,
)
from engine.manifest import ErrorInfo, ManifestStore, NodeRecord
from engine.plan import build_plan
from engine.progress import PlainReporter
from engine.recipe import load_recipe

PROMPT = """\
version: 1
avatars:
  ava:
    name: Ava
    base: {type: prompt, prompt: "A woman in her thirties, studio portrait"}
    looks:
      red: {prompt: Red dress on a city street, name: Ava Red}
"""

TWIN = """\
version: 1
avatars:
  alex:
    name: Alex
    consent: {reroute_url: "https://example.com/done"}
    base: {type: digital_twin, file: {url: "https://cdn.example.com/alex.mp4"}}
    looks:
      keynote: {prompt: On a keynote stage, name: Alex Keynote}
"""

EXISTING = """\
version: 1
avatars:
  riley:
    name: Riley
    base: {type: existing, look_id: look_old}
    looks:
      spring: {prompt: Spring outfit in a park, name: Riley Spring}
"""


def bases(*names: str, looks: bool = False) -> str:
    """A recipe of independent prompt avatars, each optionally with one look on its base."""
    lines = ["version: 1", "avatars:"]
    for name in names:
        lines += [
            f"  {name}:",
            f"    name: {name.title()}",
            f'    base: {{type: prompt, prompt: "Portrait of {name}"}}',
        ]
        if looks:
            lines += ["    looks:", f"      x: {{prompt: {name} outdoors, name: {name.title()} X}}"]
    return "\n".join(lines) + "\n"


# -- a fake API ----------------------------------------------------------------------


@dataclass
class FakeLook:
    id: str
    group_id: str
    name: str
    statuses: list[str]  # shown by successive listings; the last one stays
    error: ApiErrorInfo | None = None

    def info(self) -> LookInfo:
        status = self.statuses[0]
        if len(self.statuses) > 1:
            self.statuses.pop(0)
        done = status == "completed"
        return LookInfo(
            id=self.id,
            name=self.name,
            avatar_type="photo",
            group_id=self.group_id,
            status=status,
            error=self.error if status == "failed" else None,
            preview_image_url=f"https://cdn.example.com/{self.id}.png" if done else None,
            image_width=512 if done else None,
            image_height=512 if done else None,
        )


@dataclass
class FakeClient:
    """The HeyGenClient methods the executor calls, answering from memory.

    `statuses[name]` scripts what listings show of the look named so (default: completed
    at the first listing); `create_error(body)` may return an exception to raise instead
    of creating; `on_create(body, key)` runs before the create is answered.
    """

    statuses: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, ApiErrorInfo] = field(default_factory=dict)
    create_error: Callable[[Mapping[str, Any]], BaseException | None] | None = None
    on_create: Callable[[Mapping[str, Any], str], None] | None = None
    existing: dict[str, LookInfo] = field(default_factory=dict)
    looks: dict[str, FakeLook] = field(default_factory=dict)
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    by_key: dict[str, tuple[LookInfo, GroupInfo]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def creates(self) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == "create"]

    def add_look(self, look: FakeLook) -> None:
        self.looks[look.id] = look

    async def create_avatar(
        self, body: Mapping[str, Any], *, idempotency_key: str
    ) -> tuple[LookInfo, GroupInfo]:
        await asyncio.sleep(0)  # a real request yields to the loop
        self.calls.append(("create", dict(body), idempotency_key))
        if self.on_create is not None:
            self.on_create(body, idempotency_key)
        if self.create_error is not None and (exc := self.create_error(body)) is not None:
            raise exc
        if idempotency_key in self.by_key:  # the API replays, never creates twice
            return self.by_key[idempotency_key]
        n = next(self._ids)
        parent = self.looks.get(str(body.get("avatar_id"))) or self.existing.get(
            str(body.get("avatar_id"))
        )
        group = parent.group_id if parent is not None else None
        look = FakeLook(
            id=f"look_{n}",
            group_id=group or f"group_{n}",
            name=str(body["name"]),
            statuses=list(self.statuses.get(str(body["name"]), ["completed"])),
            error=self.errors.get(str(body["name"])),
        )
        self.add_look(look)
        answer = (
            LookInfo(look.id, look.name, "photo", group_id=look.group_id, status="processing"),
            GroupInfo(look.group_id, look.name),
        )
        self.by_key[idempotency_key] = answer
        return answer

    async def upload_asset(
        self, path: Path, *, idempotency_key: str, media_type: str | None = None
    ) -> AssetInfo:
        await asyncio.sleep(0)
        self.calls.append(("upload", path.name, idempotency_key))
        return AssetInfo(asset_id=f"asset_{next(self._ids)}")

    async def start_consent(
        self, group_id: str, *, reroute_url: str | None, idempotency_key: str
    ) -> tuple[GroupInfo, str]:
        await asyncio.sleep(0)
        self.calls.append(("consent", group_id, reroute_url, idempotency_key))
        return GroupInfo(group_id, "Alex"), f"https://app.example.com/consent/{group_id}"

    async def get_look(self, look_id: str) -> LookInfo:
        await asyncio.sleep(0)
        self.calls.append(("get", look_id))
        return self.existing[look_id]

    async def list_looks(
        self, *, group_id: str | None = None, avatar_type: str | None = None, page_size: int = 50
    ) -> list[LookInfo]:
        await asyncio.sleep(0)
        self.calls.append(("list", group_id))
        return [look.info() for look in list(self.looks.values()) if look.group_id == group_id]

    async def rename_look(self, look_id: str, name: str) -> LookInfo:
        await asyncio.sleep(0)
        self.calls.append(("rename", look_id, name))
        self.looks[look_id].name = name
        return self.looks[look_id].info()


# -- harness -------------------------------------------------------------------------


class Journal:
    """Every change journaled to a store's journal file, read off disk before each fold."""

    def __init__(self, store: ManifestStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.changes: list[dict[str, Any]] = []
        fold = store.fold

        def tapped_fold() -> None:
            if store.journal_path.exists():
                for line in store.journal_path.read_text(encoding="utf-8").splitlines():
                    self.changes.append(json.loads(line))
            fold()

        monkeypatch.setattr(store, "fold", tapped_fold)

    def records(self, address: str) -> list[dict[str, Any]]:
        return [c["record"] for c in self.changes if c["address"] == address]

    def statuses(self, address: str) -> list[str]:
        return [r["status"] for r in self.records(address)]

    def order(self) -> list[tuple[str, str]]:
        return [(c["address"], c["record"]["status"]) for c in self.changes]


@dataclass
class Project:
    """A recipe in tmp_path, its manifest store, and runs of the executor over them."""

    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    recipe: Path = field(init=False)
    store: ManifestStore = field(init=False)
    journal: Journal = field(init=False)
    output: io.StringIO = field(default_factory=io.StringIO)

    def __post_init__(self) -> None:
        self.recipe = self.tmp_path / "r.yaml"
        self.store = None  # type: ignore[assignment]

    def write(self, text: str) -> Project:
        self.recipe.write_text(text, encoding="utf-8")
        return self

    def open(self) -> ManifestStore:
        """Open (or reopen, as a new `looks apply` would) the manifest."""
        if self.store is not None:
            self.store.close()
        self.store = ManifestStore(self.tmp_path / "r.manifest.json", "r.yaml")
        self.journal = Journal(self.store, self.monkeypatch)
        return self.store

    def executor(self, client: FakeClient, **options: Any) -> Executor:
        if self.store is None:
            self.open()
        plan = build_plan(load_recipe(self.recipe), self.store.nodes)
        # A node timeout well past any test's needs: a wrong script fails, never hangs.
        options.setdefault("node_timeout", 5.0)
        opts = ApplyOptions(poll_min=0.001, poll_max=0.01, **options)
        reporter = PlainReporter(self.output)
        return Executor(client, [Batch(plan, self.store)], reporter, opts)  # type: ignore[arg-type]

    def apply(self, client: FakeClient, **options: Any) -> ApplyResult:
        return asyncio.run(self.executor(client, **options).run())

    def record(self, address: str) -> NodeRecord:
        return self.store.nodes[address]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    p = Project(tmp_path, monkeypatch)
    yield p
    p.close()


def api_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, code, message, request_id="req_1")


# -- new -> submitted -> processing -> completed ---------------------------------------


def test_new_node_is_journaled_submitted_with_its_key_before_the_create_is_sent(
    project: Project,
) -> None:
    project.write(PROMPT).open()
    seen: list[tuple[str, str]] = []

    def on_create(body: Mapping[str, Any], key: str) -> None:
        address = {"Ava": "ava", "Ava Red": "ava/red"}[body["name"]]
        record = project.store.nodes[address]
        assert record.status == "submitted"
        assert record.idempotency_key == key
        assert record.attempts == 1
        assert record.look_id is None and record.error is None
        # Durable, not only in memory: the journal's last change for it says so already.
        lines = project.store.journal_path.read_text(encoding="utf-8").splitlines()
        last = [json.loads(line) for line in lines if json.loads(line)["address"] == address][-1]
        assert last["record"]["status"] == "submitted"
        assert last["record"]["idempotency_key"] == key
        seen.append((address, key))

    client = FakeClient(on_create=on_create)
    result = project.apply(client)

    assert result.ok and result.counts["completed"] == 2
    assert [a for a, _ in seen] == ["ava", "ava/red"]
    lineage = project.store.manifest.lineage
    for address, key in seen:
        node = build_plan(load_recipe(project.recipe), {}).nodes[address]
        assert key == idempotency_key(lineage, address, node.fingerprint, 1)

    j = project.journal
    assert j.statuses("ava") == ["submitted", "processing", "completed"]
    assert j.statuses("ava/red") == ["submitted", "processing", "completed"]
    # The look is only submitted once its base has completed.
    order = j.order()
    assert order.index(("ava", "completed")) < order.index(("ava/red", "submitted"))

    submitted, processing, completed = j.records("ava")
    assert submitted["idempotency_key"] == seen[0][1] and submitted["attempts"] == 1
    assert "look_id" not in submitted and "submitted_at" in submitted
    assert processing["look_id"] == "look_1" and processing["group_id"] == "group_1"
    assert "preview_image_url" not in processing
    assert completed["preview_image_url"] == "https://cdn.example.com/look_1.png"
    assert completed["look_id"] == "look_1" and completed["attempts"] == 1

    # The look was built on its base, in the base's group, under its own key.
    (_, body, key) = client.creates()[1]
    assert body == {
        "type": "prompt",
        "prompt": "Red dress on a city street",
        "avatar_id": "look_1",
        "name": "Ava Red",
    }
    red = project.record("ava/red")
    assert red.status == "completed" and red.group_id == "group_1" and red.look_id == "look_2"
    assert red.idempotency_key == key != seen[0][1]


def test_uploads_are_sent_with_a_key_and_referenced_by_asset_id(project: Project) -> None:
    (project.tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    project.write(
        "version: 1\navatars:\n  pat:\n    name: Pat\n"
        "    base: {type: photo, file: {path: p.png}}\n"
    ).open()
    client = FakeClient()
    assert project.apply(client).ok

    upload = next(a for a in project.store.nodes if a.startswith("upload:"))
    assert project.journal.statuses(upload) == ["submitted", "completed"]
    record = project.record(upload)
    assert record.asset_id == "asset_1"
    assert client.calls[0] == ("upload", "p.png", record.idempotency_key)
    (_, body, _) = client.creates()[0]
    assert body["file"] == {"type": "asset_id", "asset_id": "asset_1"}


# -- failures ----------------------------------------------------------------------------


def test_failed_generation_records_the_looks_error_and_blocks_dependents(
    project: Project,
) -> None:
    project.write(PROMPT).open()
    client = FakeClient(
        statuses={"Ava": ["processing", "failed"]},
        errors={"Ava": ApiErrorInfo("content_policy", "the prompt was refused")},
    )
    result = project.apply(client)

    assert project.journal.statuses("ava") == ["submitted", "processing", "failed"]
    ava = project.record("ava")
    assert ava.error == ErrorInfo("content_policy", "the prompt was refused")
    assert ava.look_id == "look_1"  # kept: the next attempt supersedes it
    red = project.record("ava/red")
    assert red.status == "blocked"
    assert red.error == ErrorInfo("blocked", "upstream ava did not complete")
    assert len(client.creates()) == 1
    assert result.counts["failed"] == 1 and result.counts["blocked"] == 1
    assert ("ava", "failed: content_policy: the prompt was refused") in result.failures
    assert not result.ok


def test_api_400_fails_the_node_with_the_apis_message_and_blocks_dependents(
    project: Project,
) -> None:
    project.write(PROMPT).open()
    client = FakeClient(
        create_error=lambda body: api_error(400, "invalid_parameter", "prompt is too vague")
    )
    result = project.apply(client)

    assert project.journal.statuses("ava") == ["submitted", "failed"]
    ava = project.record("ava")
    # The API's code and message, with the request id support asks for.
    assert ava.error == ErrorInfo("invalid_parameter", "prompt is too vague (request req_1)")
    assert ava.attempts == 1 and ava.idempotency_key is not None and ava.look_id is None
    assert project.journal.statuses("ava/red") == ["blocked"]
    assert project.record("ava/red").error == ErrorInfo("blocked", "upstream ava did not complete")
    assert len(client.creates()) == 1  # the look was never sent
    assert result.failures == [
        ("ava", "failed: invalid_parameter: prompt is too vague (request req_1)"),
        ("ava/red", "blocked: upstream ava did not complete"),
    ]
    assert result.stopped is None  # a 400 stops nothing else


def test_insufficient_credit_stops_new_submissions_and_lets_in_flight_finish(
    project: Project,
) -> None:
    project.write(bases("ann", "bob", "cid")).open()

    def out_of_credit(body: Mapping[str, Any]) -> BaseException | None:
        if body["name"] == "Ann":
            return None
        return api_error(402, "insufficient_credit", "not enough credits")

    client = FakeClient(create_error=out_of_credit)
    result = project.apply(client, max_jobs=2)

    assert result.stopped == "insufficient_credit"
    assert [body["name"] for _, body, _ in client.creates()] == ["Ann", "Bob"]
    assert project.record("ann").status == "completed"  # in flight: finished and recorded
    assert project.record("bob").status == "failed"
    assert project.record("bob").error == ErrorInfo(
        "insufficient_credit", "not enough credits (request req_1)"
    )
    assert "cid" not in project.store.nodes  # never started: left for the next apply
    assert result.counts["not_started"] == 1


def test_insufficient_credit_sends_no_further_create(project: Project) -> None:
    project.write(bases("ann", "bob", "cid")).open()
    client = FakeClient(
        create_error=lambda body: api_error(402, "insufficient_credit", "not enough credits")
    )
    result = project.apply(client, max_jobs=1)

    assert len(client.creates()) == 1
    assert result.stopped == "insufficient_credit"
    assert result.counts["not_started"] == 2
    assert [r.status for r in project.store.nodes.values()] == ["failed"]


def test_a_stop_with_chains_still_pending_ends_the_run(project: Project) -> None:
    project.write(bases("ann", "bob", looks=True)).open()
    client = FakeClient(
        create_error=lambda body: api_error(402, "insufficient_credit", "not enough credits")
    )
    # The stopped base's look waits on it: it must be released, not left hanging.
    executor = project.executor(client, max_jobs=1)

    async def run_guarded() -> ApplyResult:
        # A guard against a hang, not a timing assertion: the run takes milliseconds.
        return await asyncio.wait_for(executor.run(), 3.0)

    result = asyncio.run(run_guarded())
    assert len(client.creates()) == 1
    assert result.stopped == "insufficient_credit"
    assert result.counts["not_started"] == 3  # the other base and both looks: none of them started


def test_fail_fast_stops_after_the_first_failure(project: Project) -> None:
    project.write(bases("ann", "bob")).open()
    client = FakeClient(create_error=lambda body: api_error(400, "invalid_parameter", "bad"))
    result = project.apply(client, max_jobs=1, fail_fast=True)

    assert len(client.creates()) == 1
    assert result.stopped == "fail_fast"
    assert result.counts["not_started"] == 1
    assert len(project.store.nodes) == 1


def test_without_fail_fast_independent_work_continues(project: Project) -> None:
    project.write(bases("ann", "bob")).open()
    client = FakeClient(create_error=lambda body: api_error(400, "invalid_parameter", "bad"))
    result = project.apply(client, max_jobs=1)

    assert len(client.creates()) == 2
    assert result.stopped is None and result.counts["not_started"] == 0
    assert {a: r.status for a, r in project.store.nodes.items()} == {
        "ann": "failed",
        "bob": "failed",
    }


# -- re-runs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (TransportError("POST /v3/avatars: reset"), "transport_error"),
        (ApiError(503, "internal_error", "upstream timeout"), "internal_error"),
        (ApiError(409, "request_in_progress", "still answering"), "request_in_progress"),
        (ApiError(200, "invalid_response", "no id in the answer"), "invalid_response"),
    ],
)
def test_an_unknown_outcome_keeps_submitted_and_a_rerun_resends_the_same_key(
    project: Project, error: Exception, code: str
) -> None:
    project.write(bases("ann")).open()
    client = FakeClient(create_error=lambda body: error)
    result = project.apply(client)

    assert project.journal.statuses("ann") == ["submitted", "submitted"]
    first = project.record("ann")
    assert first.status == "submitted"  # the outcome is unknown: the key must be kept
    assert first.error is not None and first.error.code == code
    assert first.attempts == 1 and first.idempotency_key is not None
    assert result.counts["failed"] == 1

    project.open()  # a new run, as after a restart
    assert build_plan(load_recipe(project.recipe), project.store.nodes).actions[0].action == (
        "retry"
    )
    client.create_error = None
    assert project.apply(client).ok

    keys = [key for _, _, key in client.creates()]
    assert keys == [first.idempotency_key, first.idempotency_key]
    ann = project.record("ann")
    assert ann.status == "completed"
    assert ann.idempotency_key == first.idempotency_key and ann.attempts == 1
    assert ann.error is None


def test_a_failed_node_is_retried_with_a_new_key_and_supersedes_the_failed_look(
    project: Project,
) -> None:
    project.write(bases("ann")).open()
    client = FakeClient(
        statuses={"Ann": ["failed"]}, errors={"Ann": ApiErrorInfo("generation_failed", "oops")}
    )
    project.apply(client)
    failed = project.record("ann")
    assert failed.status == "failed" and failed.look_id == "look_1"

    project.open()
    client.statuses = {}
    assert project.apply(client).ok

    first_key, second_key = (key for _, _, key in client.creates())
    assert first_key == failed.idempotency_key and second_key != first_key
    assert project.journal.statuses("ann") == ["submitted", "processing", "completed"]
    submitted = project.journal.records("ann")[0]
    assert submitted["attempts"] == 2
    assert submitted["idempotency_key"] == second_key
    assert submitted["superseded"] == ["look_1"]
    assert "look_id" not in submitted and "error" not in submitted
    ann = project.record("ann")
    assert ann.look_id == "look_2" and ann.superseded == ("look_1",) and ann.attempts == 2
    lineage = project.store.manifest.lineage
    assert second_key == idempotency_key(lineage, "ann", ann.fingerprint, 2)


def test_a_processing_record_is_resumed_by_polling_without_a_create(project: Project) -> None:
    project.write(bases("ann")).open()
    node = build_plan(load_recipe(project.recipe), {}).nodes["ann"]
    project.store.record(
        NodeRecord(
            address="ann",
            kind="base",
            fingerprint=node.fingerprint,
            status="processing",
            name="Ann",
            request=node.stored_request,
            look_id="look_seed",
            group_id="group_seed",
            idempotency_key="looks:abc:seed",
            submitted_at=1.0,
            attempts=1,
        )
    )
    project.open()
    client = FakeClient()
    client.add_look(FakeLook("look_seed", "group_seed", "Ann", ["processing", "completed"]))
    executor = project.executor(client)
    assert asyncio.run(executor.run()).ok

    assert client.creates() == []
    assert set(client.calls) == {("list", "group_seed")}
    assert project.journal.statuses("ann") == ["completed"]
    ann = project.record("ann")
    assert ann.look_id == "look_seed" and ann.idempotency_key == "looks:abc:seed"
    assert ann.preview_image_url == "https://cdn.example.com/look_seed.png"
    assert executor.slots.peak == 1  # the running generation was counted against the limit


# -- digital twins ---------------------------------------------------------------------


def test_twin_pending_consent_is_blocked_then_completed_once_approved(
    project: Project,
) -> None:
    project.write(TWIN).open()
    client = FakeClient(
        statuses={
            "Alex": ["processing", "pending_consent", "pending_consent", "processing", "completed"]
        }
    )
    result = project.apply(client)

    assert result.ok, result.failures
    assert project.journal.statuses("alex") == [
        "submitted",
        "processing",
        "awaiting_consent",
        "completed",
    ]
    consents = [c for c in client.calls if c[0] == "consent"]
    assert len(consents) == 1
    (_, group, reroute, key) = consents[0]
    assert (group, reroute) == ("group_1", "https://example.com/done")
    consent = project.record("consent:alex")
    assert consent.status == "completed" and consent.idempotency_key == key
    assert consent.consent_url == "https://app.example.com/consent/group_1"
    alex = project.record("alex")
    assert alex.status == "completed" and alex.error is None
    # The look on the twin was only sent once the twin completed.
    order = project.journal.order()
    assert order.index(("alex", "completed")) < order.index(("alex/keynote", "submitted"))
    assert project.record("alex/keynote").status == "completed"
    assert "the subject must approve: https://app.example.com/consent/group_1" in (
        project.output.getvalue()
    )


def test_a_consent_timeout_blocks_with_the_url_and_the_next_apply_resumes(
    project: Project,
) -> None:
    project.write(TWIN).open()
    client = FakeClient(statuses={"Alex": ["pending_consent"]})
    result = project.apply(client, node_timeout=0.2)

    url = "https://app.example.com/consent/group_1"
    alex = project.record("alex")
    assert alex.status == "awaiting_consent" and alex.look_id == "look_1"
    assert alex.error == ErrorInfo("consent_pending", f"waiting for consent approval: {url}")
    assert project.record("alex/keynote").status == "blocked"
    assert ("alex", f"blocked: waiting for consent approval: {url}") in result.failures
    assert result.counts["blocked"] == 2

    # Approved meanwhile: the next apply polls the twin (no second create, no second
    # consent flow) and builds the look on it.
    client.looks["look_1"].statuses = ["completed"]
    project.open()
    assert project.apply(client).ok
    assert [body["name"] for _, body, _ in client.creates()] == ["Alex", "Alex Keynote"]
    assert len([c for c in client.calls if c[0] == "consent"]) == 1
    assert project.record("alex").status == "completed"
    assert project.record("alex").error is None
    assert project.record("alex/keynote").status == "completed"


# -- updates and existing bases ----------------------------------------------------------


def test_a_rename_sends_only_a_patch(project: Project) -> None:
    project.write(PROMPT).open()
    client = FakeClient()
    assert project.apply(client).ok
    before = project.record("ava/red")
    client.calls.clear()

    project.write(PROMPT.replace("name: Ava Red", "name: Ava in Red")).open()
    assert project.apply(client).ok

    assert client.calls == [("rename", before.look_id, "Ava in Red")]
    after = project.record("ava/red")
    assert after == before.evolve(name="Ava in Red")
    assert project.journal.statuses("ava/red") == ["completed"]
    assert "ava" not in {c["address"] for c in project.journal.changes}


def test_an_existing_base_that_is_not_completed_fails_look_not_ready(project: Project) -> None:
    project.write(EXISTING).open()
    client = FakeClient(
        existing={"look_old": LookInfo("look_old", "Old", "photo", "group_old", "processing")}
    )
    result = project.apply(client)

    assert client.creates() == []
    riley = project.record("riley")
    assert riley.status == "failed"
    assert riley.error is not None and riley.error.code == "look_not_ready"
    assert "look_old is processing" in riley.error.message
    assert project.record("riley/spring").error == ErrorInfo(
        "blocked", "upstream riley did not complete"
    )
    assert result.counts["failed"] == 1 and result.counts["blocked"] == 1


def test_an_existing_completed_base_is_checked_and_built_on(project: Project) -> None:
    project.write(EXISTING).open()
    old = LookInfo(
        "look_old",
        "Old",
        "photo",
        group_id="group_old",
        status="completed",
        preview_image_url="https://cdn.example.com/old.png",
        image_width=512,
        image_height=512,
    )
    client = FakeClient(existing={"look_old": old})
    assert project.apply(client).ok

    assert client.calls[0] == ("get", "look_old")
    riley = project.record("riley")
    assert riley.status == "completed" and riley.look_id == "look_old"
    assert riley.group_id == "group_old" and riley.idempotency_key is None
    (_, body, _) = client.creates()[0]
    assert body["avatar_id"] == "look_old"
    assert project.record("riley/spring").group_id == "group_old"


# -- idempotency keys ---------------------------------------------------------------------


def test_idempotency_key_is_derived_deterministically() -> None:
    lineage = "0b5f8a4e-1d2c-4e3f-9a8b-7c6d5e4f3a2b"
    fp = "a" * 64
    key = idempotency_key(lineage, "sarah/navy", fp, 1)
    assert key == idempotency_key(lineage, "sarah/navy", fp, 1)
    assert key.startswith("looks:0b5f8a4e:")
    assert re.fullmatch(r"[A-Za-z0-9_:.\-]{1,255}", key)
    others = {
        idempotency_key("1b5f8a4e-1d2c-4e3f-9a8b-7c6d5e4f3a2b", "sarah/navy", fp, 1),
        idempotency_key(lineage, "sarah/dusk", fp, 1),
        idempotency_key(lineage, "sarah/navy", "b" * 64, 1),
        idempotency_key(lineage, "sarah/navy", fp, 2),
    }
    assert key not in others and len(others) == 4


# -- job slots --------------------------------------------------------------------------


def test_job_slots_serve_the_highest_priority_first_within_the_limit() -> None:
    async def scenario() -> tuple[list[int], list[int]]:
        slots = JobSlots(1)
        await slots.acquire(0)
        order: list[int] = []
        in_use: list[int] = []

        async def job(priority: int) -> None:
            await slots.acquire(priority)
            order.append(priority)
            in_use.append(slots.in_use)
            await asyncio.sleep(0)
            slots.release()

        tasks = [asyncio.create_task(job(p)) for p in (1, 5, 3, 5)]
        await asyncio.sleep(0)  # every job is now waiting
        assert order == [] and slots.in_use == 1
        slots.release()
        await asyncio.gather(*tasks)
        return order, in_use

    order, in_use = asyncio.run(scenario())
    assert order == [5, 5, 3, 1]  # by priority; equal priorities first come, first served
    assert in_use == [1, 1, 1, 1]


def test_job_slots_respect_the_limit() -> None:
    async def scenario() -> None:
        slots = JobSlots(2)
        await slots.acquire(1)
        await slots.acquire(1)
        third = asyncio.create_task(slots.acquire(1))
        await asyncio.sleep(0)
        assert not third.done() and slots.in_use == 2
        slots.release()
        await third
        assert slots.in_use == 2 and slots.peak == 2

    asyncio.run(scenario())


def test_throttled_lowers_the_limit_below_what_is_held() -> None:
    slots = JobSlots(10)
    for _ in range(6):
        slots.force()
    slots.throttled()
    assert slots.limit == 5
    slots.in_use = 1
    slots.throttled()
    assert slots.limit == 1  # never below one
    assert slots.max == 10


def test_force_counts_past_the_limit_and_later_acquires_wait() -> None:
    async def scenario() -> None:
        slots = JobSlots(1)
        await slots.acquire(1)
        slots.force()
        assert slots.in_use == 2 and slots.peak == 2
        waiting = asyncio.create_task(slots.acquire(9))
        await asyncio.sleep(0)
        slots.release()
        await asyncio.sleep(0)
        assert not waiting.done()  # one still held and the limit is one
        slots.release()
        await waiting
        assert slots.in_use == 1

    asyncio.run(scenario())


def test_cancel_waiters_stops_everyone_waiting() -> None:
    async def scenario() -> None:
        slots = JobSlots(1)
        await slots.acquire(1)
        waiting = asyncio.create_task(slots.acquire(1))
        await asyncio.sleep(0)
        slots.cancel_waiters()
        with pytest.raises(_Stop):
            await waiting
        assert slots.in_use == 1

    asyncio.run(scenario())


# -- rate limits -----------------------------------------------------------------------


def test_a_429_storm_past_the_clients_retries_waits_instead_of_failing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write(bases("ann")).open()
    refusals = iter(range(3))

    def refuse(body: Mapping[str, Any]) -> BaseException | None:
        if next(refusals, None) is None:
            return None
        return ApiError(429, "rate_limit_exceeded", "too many jobs", retry_after=0.0)

    client = FakeClient(create_error=refuse)
    result = project.apply(client)

    assert result.ok
    keys = {key for _, _, key in client.creates()}
    assert len(client.creates()) == 4 and len(keys) == 1  # the same key every time
    assert project.store.nodes["ann"].status == "completed"


def test_429_on_a_poll_does_not_lower_the_job_limit(project: Project) -> None:
    project.write(bases("ann")).open()
    executor = project.executor(FakeClient(), max_jobs=5)

    async def poll_throttled() -> int:
        executor.on_retry(ApiError(429, "rate_limit_exceeded", "slow down"), 1.0)
        return executor.slots.limit

    assert asyncio.run(poll_throttled()) == 5
    assert executor.result.requests_429 == 1


def test_a_waiter_stopped_then_cancelled_gives_back_no_slot() -> None:
    async def scenario() -> int:
        slots = JobSlots(1)
        await slots.acquire(1)
        waiter = asyncio.ensure_future(slots.acquire(1))
        await asyncio.sleep(0)
        slots.cancel_waiters()  # a stop: the waiter is told, not granted
        waiter.cancel()  # and an interrupt cancels its task at once
        with contextlib.suppress(BaseException):
            await waiter
        return slots.in_use

    assert asyncio.run(scenario()) == 1


@dataclass
class LaggingListings(FakeClient):
    """Listings that never show new looks; a GET shows them, or answers 404 when `gone`."""

    gone: bool = False

    async def list_looks(
        self, *, group_id: str | None = None, avatar_type: str | None = None, page_size: int = 50
    ) -> list[LookInfo]:
        await asyncio.sleep(0)
        self.calls.append(("list", group_id))
        return []

    async def get_look(self, look_id: str) -> LookInfo:
        await asyncio.sleep(0)
        self.calls.append(("get", look_id))
        if self.gone:
            raise api_error(404, "not_found", "no such look")
        return self.looks[look_id].info()


@pytest.mark.parametrize("gone", [False, True])
def test_a_look_absent_from_listings_is_confirmed_by_a_get(project: Project, gone: bool) -> None:
    project.write(bases("ann")).open()
    client = LaggingListings(gone=gone)
    result = project.apply(client, missing_after=0.05)

    ann = project.record("ann")
    gets = [c for c in client.calls if c[0] == "get"]
    assert len(gets) == 1  # asked once, after the listings lost sight of it
    lists = [c for c in client.calls if c[0] == "list"]
    assert len(lists) >= 3
    if gone:
        assert ann.status == "missing" and not result.ok
        assert ann.error == ErrorInfo("missing", f"look {ann.look_id} no longer exists")
    else:
        assert ann.status == "completed" and result.ok


# -- manifests written before `awaiting_consent` ------------------------------------------


def legacy_blocked_red(project: Project, error: ErrorInfo | None) -> FakeClient:
    """Ava completed; Ava Red recorded `blocked` with look_9, as older versions wrote."""
    project.write(PROMPT).open()
    client = FakeClient()
    assert project.apply(client).ok
    red = project.record("ava/red")
    project.store.record(red.evolve(status="blocked", look_id="look_9", error=error))
    project.store.fold()
    client.calls.clear()
    return client


def test_a_legacy_blocked_record_with_a_failed_look_is_created_again(project: Project) -> None:
    client = legacy_blocked_red(project, ErrorInfo("blocked", "upstream ava did not complete"))
    client.existing["look_9"] = LookInfo("look_9", "Ava Red", "photo", "group_1", "failed")
    project.open()
    assert project.apply(client).ok
    assert [body["name"] for _, body, _ in client.creates()] == ["Ava Red"]
    red = project.record("ava/red")
    assert red.status == "completed" and red.look_id != "look_9"
    assert "look_9" in red.superseded


def test_a_legacy_blocked_consent_wait_is_polled_not_created_again(project: Project) -> None:
    client = legacy_blocked_red(project, ErrorInfo("consent_pending", "waiting for consent"))
    client.existing["look_9"] = LookInfo("look_9", "Ava Red", "photo", "group_1", "processing")
    client.add_look(FakeLook("look_9", "group_1", "Ava Red", ["completed"]))
    project.open()
    assert project.apply(client).ok
    assert client.creates() == []
    red = project.record("ava/red")
    assert red.status == "completed" and red.look_id == "look_9"


def test_a_legacy_blocked_twin_still_awaiting_consent_is_not_created_again(
    project: Project,
) -> None:
    client = legacy_blocked_red(project, ErrorInfo("consent_pending", "waiting for consent"))
    client.existing["look_9"] = LookInfo("look_9", "Ava Red", "photo", "group_1", "pending_consent")
    client.add_look(FakeLook("look_9", "group_1", "Ava Red", ["pending_consent", "completed"]))
    project.open()
    assert project.apply(client).ok
    assert client.creates() == []
    assert project.journal.statuses("ava/red")[:1] == ["awaiting_consent"]
    assert project.record("ava/red").status == "completed"
