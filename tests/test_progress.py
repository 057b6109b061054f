"""Reporters: a live line on terminals, plain lines in pipes, JSON lines for machines."""

from __future__ import annotations

import io
import json
from collections import Counter

from engine.progress import Event, JsonReporter, LiveReporter, PlainReporter, reporter_for


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
    reporter.close("Apply: 1 completed.")
    assert out.getvalue().splitlines() == [
        "recipes/sarah.yaml: sarah/podcast: completed (look_1)",
        "sarah: submitted",
        "Apply: 1 completed.",
    ]


def test_json_lines_parse_and_carry_the_event() -> None:
    out = io.StringIO()
    reporter = JsonReporter(out)
    reporter.event(Event("sarah", "failed", "invalid_parameter: bad", "r.yaml"))
    reporter.close("Apply: 0 completed, 1 failed.")
    first, last = (json.loads(line) for line in out.getvalue().splitlines())
    assert {k: first[k] for k in ("event", "address", "message", "recipe")} == {
        "event": "failed",
        "address": "sarah",
        "message": "invalid_parameter: bad",
        "recipe": "r.yaml",
    }
    assert last == {"event": "summary", "message": "Apply: 0 completed, 1 failed."}


def test_live_view_redraws_one_status_line_and_prints_notable_events_above() -> None:
    out = Terminal()
    reporter = LiveReporter(out)
    counts = Counter(completed=3, in_flight=2, queued=4, failed=1)
    reporter.counts(counts, 10)
    assert "\r\x1b[2Kdone 3/10  in flight 2  queued 4  failed 1" in out.getvalue()
    reporter.event(Event("sarah", "submitted"))  # routine: not printed on a terminal
    reporter.event(Event("marco", "failed", "invalid_parameter: bad"))
    reporter.close("Apply: 3 completed, 1 failed.")
    text = out.getvalue()
    assert "sarah: submitted" not in text
    assert "marco: failed (invalid_parameter: bad)\n" in text
    assert text.endswith("\r\x1b[2KApply: 3 completed, 1 failed.\n")
