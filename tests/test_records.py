"""The record transitions, one by one: (plan node, old record, event) -> new record."""

from __future__ import annotations

from engine import records
from engine.manifest import ErrorInfo, NodeRecord
from engine.plan import PlanNode

NODE = PlanNode(
    address="ava/red",
    kind="look",
    template={"type": "prompt", "prompt": "Red dress", "avatar_id": {"$look": "ava"}},
    depends_on=("ava",),
    fingerprint="fp1",
    name="Ava Red",
    avatar="ava",
)
UPSTREAM_ERROR = ErrorInfo("blocked", "upstream ava did not complete")


def record(status: str, **fields: object) -> NodeRecord:
    base: dict[str, object] = {"name": "Ava Red", "request": NODE.stored_request}
    return NodeRecord("ava/red", "look", "fp1", status, **{**base, **fields})  # type: ignore[arg-type]


def test_current_starts_a_new_record_for_a_new_node() -> None:
    new = records.current(NODE, None)
    assert (new.status, new.fingerprint, new.name, new.look_id, new.attempts) == (
        "pending",
        "fp1",
        "Ava Red",
        None,
        0,
    )


def test_current_keeps_what_was_made_under_the_same_fingerprint() -> None:
    old = record("failed", look_id="look_1", attempts=2, name="Old name")
    assert records.current(NODE, old) == old.evolve(name="Ava Red")


def test_current_supersedes_the_old_look_when_the_fingerprint_changed() -> None:
    old = record("completed", look_id="look_1", attempts=2).evolve(fingerprint="fp0")
    new = records.current(NODE, old)
    assert (new.status, new.look_id, new.superseded, new.attempts) == (
        "pending",
        None,
        ("look_1",),
        2,
    )


def test_submitted_counts_the_attempt_and_supersedes_a_failed_look() -> None:
    old = record("failed", look_id="look_1", attempts=1, error=ErrorInfo("x", "y"))
    sent = records.submitted(old, "key-2", 1000.0)
    assert (sent.status, sent.idempotency_key, sent.attempts, sent.look_id, sent.error) == (
        "submitted",
        "key-2",
        2,
        None,
        None,
    )
    assert sent.superseded == ("look_1",) and sent.submitted_at == 1000.0


def test_created_records_the_look_as_processing() -> None:
    sent = record("submitted", idempotency_key="k", attempts=1)
    made = records.created(sent, "look_2", "group_1")
    assert (made.status, made.look_id, made.group_id) == ("processing", "look_2", "group_1")
    assert records.is_live(made) and records.in_flight(made)


def test_awaiting_consent_is_live_and_not_blocked() -> None:
    waiting = records.awaiting_consent(record("processing", look_id="look_2"))
    assert waiting.status == "awaiting_consent"
    assert records.is_live(waiting) and records.in_flight(waiting)
    assert not records.legacy_blocked(waiting)


def test_blocked_never_inherits_a_failed_look_as_live() -> None:
    old = record("failed", look_id="look_1", attempts=1, error=ErrorInfo("gen", "failed"))
    blocked = records.blocked(NODE, old, "ava")
    assert blocked is not None
    assert (blocked.status, blocked.look_id, blocked.error) == ("blocked", None, UPSTREAM_ERROR)
    assert blocked.superseded == ("look_1",) and blocked.attempts == 1  # a new key next time
    assert not records.is_live(blocked) and not records.in_flight(blocked)


def test_blocked_from_nothing_is_a_new_blocked_record() -> None:
    blocked = records.blocked(NODE, None, "ava")
    assert blocked is not None
    assert (blocked.status, blocked.look_id, blocked.error) == ("blocked", None, UPSTREAM_ERROR)


def test_blocked_leaves_work_in_flight_in_flight() -> None:
    for old in (
        record("submitted", idempotency_key="k", attempts=1),
        record("processing", look_id="look_2", attempts=1),
        record("awaiting_consent", look_id="look_2", attempts=1),
    ):
        kept = records.blocked(NODE, old, "ava")
        assert kept == old.evolve(error=UPSTREAM_ERROR)


def test_blocked_leaves_a_completed_record_alone() -> None:
    assert records.blocked(NODE, record("completed", look_id="look_1"), "ava") is None


def test_legacy_blocked_records_are_recognised_for_the_server_to_settle() -> None:
    consent = record("blocked", look_id="look_9", error=ErrorInfo("consent_pending", "wait"))
    stale = record("blocked", look_id="look_1", error=UPSTREAM_ERROR)
    plain = record("blocked", error=UPSTREAM_ERROR)
    assert records.legacy_blocked(consent) and records.legacy_blocked(stale)
    assert not records.legacy_blocked(plain)
    assert not any(records.is_live(r) for r in (consent, stale, plain))
    # Counted as still generating only when it was a consent wait.
    assert records.in_flight(consent) and not records.in_flight(stale)


def test_blocked_keeps_a_lost_answer_under_an_older_fingerprint() -> None:
    # The base was replaced since the send: the key and group still find what it made.
    old = record("submitted", idempotency_key="k", attempts=1, group_id="group_old")
    old = old.evolve(fingerprint="fp0")
    kept = records.blocked(NODE, old, "ava")
    assert kept == old.evolve(error=UPSTREAM_ERROR)
    assert records.in_flight(kept)


def test_submitted_records_the_group_the_create_goes_into() -> None:
    sent = records.submitted(record("pending"), "key-1", 1000.0, "group_1")
    assert (sent.status, sent.group_id) == ("submitted", "group_1")
    again = records.submitted(sent.evolve(status="failed"), "key-2", 1001.0)
    assert again.group_id == "group_1"  # a retry goes into the same group
