"""The plans of one or more recipes as one: what `looks plan` prints, in every format, and
what `looks.plan()` returns."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import plan_markdown
from .cost import Estimate, estimate
from .plan import PlanAction
from .plan_markdown import RecipePlan
from .report import merge_summaries, plan_document, plan_text


@dataclass(frozen=True)
class Plan:
    """Each recipe's plan, labelled by its path; `.actions` are all of them, recipe by recipe."""

    recipes: tuple[RecipePlan, ...]

    @property
    def actions(self) -> tuple[PlanAction, ...]:
        return tuple(a for r in self.recipes for a in r.plan.actions)

    @property
    def has_changes(self) -> bool:
        """Whether apply would do anything (orphans are only reported)."""
        return any(r.plan.has_changes for r in self.recipes)

    def summary(self) -> Mapping[str, int]:
        """How many actions of each verb, over every recipe."""
        return merge_summaries([r.plan for r in self.recipes])

    def cost(self) -> Estimate:
        """What applying the plan would cost, in credits."""
        return estimate(r.plan for r in self.recipes)

    def to_json(self) -> dict[str, Any]:
        """The document `looks plan --json` prints."""
        return plan_document(self._labelled())

    def to_text(self) -> str:
        """What `looks plan` prints."""
        return plan_text(self._labelled())

    def to_markdown(self) -> str:
        """What `looks plan --format markdown` prints: a pull-request comment."""
        return plan_markdown.render(self.recipes, self.to_text())

    def dumps(self) -> str:
        """to_json() as `looks plan --json` prints it."""
        return json.dumps(self.to_json(), indent=2)

    def _labelled(self) -> list[tuple[str, Any]]:
        return [(r.label, r.plan) for r in self.recipes]
