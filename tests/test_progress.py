"""Reporters: a live line on terminals, plain lines in pipes, JSON lines for machines."""

from __future__ import annotations

import io
import json
import re
from collections import Counter

from engine.progress import (
    Event,
    EventError,
    JsonReporter,
    LiveReporter,
    PlainReporter,
    reporter_for,
)
from engine.summary import RunSummary

DONE = RunSummary({"completed": 1})
FAILED = RunSummary({"failed": 1}, failures=(("sarah", "failed: invalid_parameter: bad"),))


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_reporter_follows_the_output() -> None:
    assert isinstance(reporter_for(Terminal(), log_json=False), LiveReporter)
    assert isinstance(reporter_for(io.StringIO(), log_json=False), PlainReporter)
    assert isinstance(reporter_for(Terminal(), log_json=True), JsonReporter)


def test_plain_lines_name_recipe_address_and_event() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out)
    reporter.event(Event("sarah/podcast", "completed", "look_1", "recipes/sarah.yaml"))
    reporter.event(Event("sarah", "submitted"))
    reporter.close(DONE)
    assert out.getvalue().splitlines() == [
        "recipes/sarah.yaml: sarah/podcast: completed (look_1)",
        "sarah: submitted",
        "Apply: 1 completed, 0 failed, 0 blocked, 0 not started.",
    ]


def test_json_lines_parse_and_carry_the_event() -> None:
    out = io.StringIO()
    reporter = JsonReporter(out)
    error = EventError("invalid_parameter", "bad", "req_9")
    reporter.event(
        Event("sarah", "failed", "invalid_parameter: bad", "r.yaml", "look_1", "group_1", error)
    )
    reporter.close(FAILED)
    first, last = (json.loads(line) for line in out.getvalue().splitlines())
    del first["time"]
    assert first == {
        "event": "failed",
        "address": "sarah",
        "message": "invalid_parameter: bad",
        "recipe": "r.yaml",
        "look_id": "look_1",
        "group_id": "group_1",
        "error": {"code": "invalid_parameter", "message": "bad", "request_id": "req_9"},
    }
    del last["time"]
    assert last == {
        "event": "summary",
        "counts": {"completed": 0, "failed": 1, "blocked": 0, "in_flight": 0, "not_started": 0},
        "stopped": None,
        "message": "Apply: 0 completed, 1 failed, 0 blocked, 0 not started.\n"
        "  sarah: failed: invalid_parameter: bad",
    }


def test_live_view_redraws_one_status_line_and_prints_notable_events_above() -> None:
    out = Terminal()
    reporter = LiveReporter(out)
    counts = Counter(completed=3, in_flight=2, queued=4, failed=1)
    reporter.counts(counts, 10)
    assert "] 4/10 done  1 failed  2 in flight  4 queued  " in out.getvalue()
    reporter.event(Event("sarah", "submitted"))  # routine: not printed on a terminal
    reporter.event(Event("marco", "failed", "invalid_parameter: bad"))
    reporter.close(RunSummary({"completed": 3, "failed": 1}))
    text = out.getvalue()
    assert "sarah: submitted" not in text
    assert "\r\x1b[2Kmarco: failed (invalid_parameter: bad)\n" in text
    assert text.endswith("\nApply: 3 completed, 1 failed, 0 blocked, 0 not started.\n")


def test_the_live_count_is_redrawn_at_once_whenever_it_changes() -> None:
    out = Terminal()
    reporter = LiveReporter(out)
    for completed in range(1, 57):  # 56 events in a burst, faster than any throttle
        reporter.counts(Counter(completed=completed), 56)
    assert "56/56 done  0 failed" in out.getvalue().rsplit("\r\x1b[2K", 1)[-1]
    reporter.close(RunSummary({"completed": 56}))
    final_bar, summary = out.getvalue().rsplit("\r\x1b[2K", 1)[-1].splitlines()
    assert re.match(r"\[#+\] 56/56 done  0 failed", final_bar) and len(final_bar) < 80
    assert summary.startswith("Apply: 56 completed")


def test_plain_progress_lines_come_at_the_injected_interval() -> None:
    quiet, chatty = io.StringIO(), io.StringIO()
    counts = Counter(completed=2, in_flight=3, queued=5)
    PlainReporter(quiet, every=3600).counts(counts, 10)
    PlainReporter(chatty, every=0).counts(counts, 10)
    assert quiet.getvalue() == ""
    assert chatty.getvalue().startswith("progress: 2/10 done  0 failed  3 in flight  5 queued  ")


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_gone_silences_every_reporter_without_raising() -> None:
    for reporter in (PlainReporter(ClosedPipe()), JsonReporter(ClosedPipe())):
        reporter.event(Event("sarah", "completed", "look_1"))
        reporter.close(DONE)  # nothing raised: the run goes on recording its state


def test_plain_progress_lines_keep_coming_however_many_events_come_between() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out, every=0)
    for n in range(3):
        reporter.event(Event(f"a{n}", "completed"))
        reporter.counts(Counter(completed=n + 1), 3)
    assert [line.split(" ")[0] for line in out.getvalue().splitlines()] == [
        "a0:",
        "progress:",
        "a1:",
        "progress:",
        "a2:",
        "progress:",
    ]


def test_json_progress_objects_come_at_the_injected_interval() -> None:
    quiet, chatty = io.StringIO(), io.StringIO()
    counts = Counter(completed=2, in_flight=3, queued=5)
    JsonReporter(quiet, every=3600).counts(counts, 10)
    JsonReporter(chatty, every=0).counts(counts, 10)
    assert quiet.getvalue() == ""
    progress = json.loads(chatty.getvalue())
    del progress["time"]
    assert progress == {
        "event": "progress",
        "total": 10,
        "counts": {"completed": 2, "failed": 0, "blocked": 0, "in_flight": 3, "queued": 5},
    }
