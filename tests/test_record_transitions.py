"""The record transitions of engine/records.py that the executor, the uploads and the
lifecycle call, one by one (the others are in tests/test_records.py)."""

from __future__ import annotations

from looks import records
from looks.manifest import ErrorInfo, NodeRecord

PROCESSING = NodeRecord(
    "ava/red",
    "look",
    "fp",
    "processing",
    name="Ava Red",
    look_id="look_1",
    group_id="g1",
    idempotency_key="k1",
    attempts=1,
    error=ErrorInfo("timeout", "still processing after 15 min"),
)


def test_failed_keeps_the_look_for_a_new_attempt_to_supersede() -> None:
    error = ErrorInfo("generation_failed", "bad prompt")
    out = records.failed(PROCESSING, error)
    assert (out.status, out.error, out.look_id, out.idempotency_key) == (
        "failed",
        error,
        "look_1",
        "k1",
    )
    assert records.failed(PROCESSING, None).error == PROCESSING.error  # settled, cause kept
    assert records.failed(PROCESSING, error, "missing").status == "missing"
    assert records.submitted(out, "k2", 10.0).superseded == ("look_1",)


def test_noted_keeps_the_state_and_the_key() -> None:
    out = records.noted(PROCESSING, ErrorInfo("transport_error", "reset"))
    assert (out.status, out.idempotency_key, out.error) == (
        "processing",
        "k1",
        ErrorInfo("transport_error", "reset"),
    )


def test_completed_takes_the_looks_ids_and_clears_the_error() -> None:
    out = records.completed(PROCESSING, "look_1", None, "https://cdn/p.png")
    assert (out.status, out.group_id, out.preview_image_url, out.error) == (
        "completed",
        "g1",  # a look answered without its group keeps the recorded one
        "https://cdn/p.png",
        None,
    )
    assert records.completed(PROCESSING, "look_1", "g2", None).group_id == "g2"


def test_upload_transitions() -> None:
    upload = NodeRecord("upload:a", "upload", "fp", "submitted", upload={"phase": "put"})
    progress = records.upload_progress(upload, "asset_1", {"phase": "uploaded"})
    assert (progress.asset_id, progress.upload) == ("asset_1", {"phase": "uploaded"})
    done = records.uploaded(progress, "asset_1")
    assert (done.status, done.asset_id, done.upload, done.error) == (
        "completed",
        "asset_1",
        None,
        None,
    )
    lost = records.asset_lost(done, "asset asset_1 is not available")
    assert (lost.status, lost.error) == (
        "failed",
        ErrorInfo("asset_not_available", "asset asset_1 is not available"),
    )
    again = records.upload_restarted(progress)
    assert (again.status, again.asset_id, again.upload) == ("pending", None, None)


def test_small_transitions() -> None:
    assert records.in_group(PROCESSING, "g9").group_id == "g9"
    consent = NodeRecord("consent:alex", "consent", "fp", "submitted", idempotency_key="k")
    started = records.consent_started(consent, "https://app/consent/g1")
    assert (started.status, started.consent_url) == ("completed", "https://app/consent/g1")
    renamed = records.renamed(PROCESSING, "Ava Crimson")
    assert (renamed.name, renamed.error, renamed.status) == ("Ava Crimson", None, "processing")
    assert records.expired(PROCESSING.evolve(status="submitted")).status == "pending"
    assert records.made_here(PROCESSING.evolve(attempts=0)).attempts == 1
    assert records.made_here(PROCESSING.evolve(attempts=3)).attempts == 3


def test_superseded_looks_are_added_then_pruned_one_by_one() -> None:
    out = records.superseding(PROCESSING, "look_0", "look_00")
    assert out.superseded == ("look_0", "look_00")
    assert records.pruned(out, "look_0").superseded == ("look_00",)
    assert records.pruned(out, "look_9").superseded == ("look_0", "look_00")


def test_gone_clears_the_id_so_nothing_deletes_it() -> None:
    out = records.gone(PROCESSING.evolve(preview_image_url="https://cdn/p.png"), "deleted")
    assert (out.status, out.look_id, out.preview_image_url) == ("missing", None, None)
    assert out.error == ErrorInfo("missing", "look look_1 was deleted")
