"""Closing lines of a run: every node counted once, under the outcome it really has."""

from __future__ import annotations

from engine.summary import RunSummary, summary_text


def test_a_clean_run_reads_as_before() -> None:
    text = summary_text(RunSummary({"completed": 9}))
    assert text == "Apply: 9 completed, 0 failed, 0 blocked, 0 not started."


def test_generations_still_running_are_neither_done_nor_unstarted() -> None:
    text = summary_text(RunSummary({"in_flight": 3, "not_started": 2}, "interrupted"))
    assert text.splitlines() == [
        "Apply: 0 completed, 0 failed, 0 blocked, 3 still generating, 2 not started.",
        "3 looks still generating on the server (submitted, billed): the next apply picks"
        " them up without creating them again.",
        "Interrupted: what was answered is recorded; run apply again to resume.",
    ]


def test_out_of_credits_counts_what_remains_to_be_created() -> None:
    summary = RunSummary(
        {"completed": 3, "failed": 1, "in_flight": 2, "not_started": 9},
        "insufficient_credit",
        (("a/x", "failed: insufficient_credit: not enough credits"),),
    )
    lines = summary_text(summary).splitlines()
    assert lines[0] == "Apply: 3 completed, 1 failed, 0 blocked, 2 still generating, 9 not started."
    assert lines[1] == "  a/x: failed: insufficient_credit: not enough credits"
    assert lines[-1] == (
        "Out of credits: stopped submitting; 10 looks remain to be created."
        " Add credits and run apply again."
    )
    assert summary.json_counts() == {
        "completed": 3,
        "failed": 1,
        "blocked": 0,
        "in_flight": 2,
        "not_started": 9,
    }


def test_other_stops_are_named() -> None:
    assert summary_text(RunSummary({"failed": 1}, "fail_fast")).endswith(
        "Stopped at the first failure (--fail-fast)."
    )
    assert summary_text(RunSummary({}, "state_write_failed")).endswith(
        "Stopped submitting (state write failed)."
    )


def test_notes_of_what_stopped_the_run_close_the_summary() -> None:
    summary = RunSummary({"completed": 3, "not_started": 3}, "max_credits", notes=("Budget.",))
    assert summary_text(summary).splitlines() == [
        "Apply: 3 completed, 0 failed, 0 blocked, 3 not started.",
        "Budget.",
    ]
