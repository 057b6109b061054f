"""The plan's cost, without any server: prices, which actions are paid, the breakdown, Budget."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.cost import Budget, action_credits, charged, estimate, number_text
from engine.errors import RecipeError
from engine.manifest import ErrorInfo, NodeRecord
from engine.plan import Plan, build_graph, build_plan
from engine.recipe import CreditPrices, Recipe, load_recipe

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)

AVATARS = """\
avatars:
  sarah:
    name: Sarah
    base: {type: photo, file: {path: sarah.png}}
    looks:
      navy: {prompt: navy blazer}
      dusk: {prompt: dusk, from: navy}
  marco:
    name: Marco
    base: {type: photo, file: {url: "https://example.com/marco.png"}}
    looks:
      "{c}-suit": {prompt: "{c} suit", matrix: {c: [navy, grey, red]}}
  commander:
    name: Commander
    base: {type: prompt, prompt: a space commander}
    looks:
      calm: {prompt: calm}
  alex:
    name: Alex
    base: {type: digital_twin, file: {url: "https://example.com/alex.mp4"}}
    looks:
      keynote: {prompt: keynote}
  riley:
    name: Riley
    base: {type: existing, look_id: look_riley}
    looks:
      kept: {look_id: look_kept}
      spring: {prompt: spring, from: kept}
"""


def recipe(tmp_path: Path, defaults: str = "", name: str = "r.yaml") -> Recipe:
    (tmp_path / "sarah.png").write_bytes(PNG)
    path = tmp_path / name
    path.write_text(f"version: 1\n{defaults}{AVATARS}", encoding="utf-8")
    return load_recipe(path)


def done(r: Recipe) -> dict[str, NodeRecord]:
    """Records of a run that made everything in the recipe as it is now."""
    return {
        a: NodeRecord(
            a,
            n.kind,
            n.fingerprint,
            "completed",
            name=n.name,
            request=n.stored_request,
            look_id=f"look_{a}" if n.kind in ("base", "look") else None,
        )
        for a, n in build_graph(r).items()
    }


def cost(plan: Plan) -> str:
    return estimate([plan]).line()


# -- prices ---------------------------------------------------------------------------------


def test_default_prices_are_one_credit_per_generation(tmp_path: Path) -> None:
    r = recipe(tmp_path)
    assert r.credits == CreditPrices()
    # Free: the upload, alex's consent flow, riley's existing base and adopted look.
    assert cost(build_plan(r, {})) == (
        "Cost: 12 credits — photo 2 × 1, digital_twin 1 × 1, prompt 1 × 1, look 8 × 1"
    )


def test_prices_set_per_recipe(tmp_path: Path) -> None:
    r = recipe(tmp_path, "defaults:\n  credits: {photo: 2, look: 0.25, digital_twin: 0}\n")
    assert r.credits == CreditPrices(Decimal(2), Decimal(0), Decimal(1), Decimal("0.25"))
    line = cost(build_plan(r, {}))
    assert line == (
        "Cost: 7 credits — photo 2 × 2, digital_twin 1 × 0, prompt 1 × 1, look 8 × 0.25"
    )


def test_decimal_prices_add_up_exactly(tmp_path: Path) -> None:
    r = recipe(tmp_path, "defaults: {credits: {look: 0.1, photo: 0, prompt: 0, digital_twin: 0}}\n")
    total = estimate([build_plan(r, {})]).credits
    assert total == Decimal("0.8")  # not 0.7999999999999999
    assert number_text(total) == "0.8"


def test_several_recipes_each_priced_by_their_own(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    cheap = recipe(tmp_path, "defaults: {credits: {look: 0.5}}\n")
    dear = recipe(tmp_path / "b", "defaults: {credits: {look: 2}}\n")
    line = estimate([build_plan(cheap, {}), build_plan(dear, {})]).line()
    assert line == (
        "Cost: 28 credits — photo 4 × 1, digital_twin 2 × 1, prompt 2 × 1, look 8 × 0.5, look 8 × 2"
    )


def test_nothing_to_pay(tmp_path: Path) -> None:
    r = recipe(tmp_path)
    plan = build_plan(r, done(r))
    assert cost(plan) == "Cost: 0 credits"
    one = recipe(tmp_path, "defaults: {credits: {look: 1}}\n")
    records = done(one)
    del records["sarah/dusk"]
    assert cost(build_plan(one, records)) == "Cost: 1 credit — look 1 × 1"


# -- which actions are paid --------------------------------------------------------------


def test_reuses_renames_moves_and_adoptions_are_free(tmp_path: Path) -> None:
    r = recipe(tmp_path)
    records = done(r)
    records["sarah/navy"] = records["sarah/navy"].evolve(name="Old name")  # a rename
    # The photo moved: same content, another path; nothing is made again.
    (tmp_path / "photos").mkdir()
    (tmp_path / "sarah.png").rename(tmp_path / "photos" / "sarah.png")
    text = (tmp_path / "r.yaml").read_text().replace("path: sarah.png", "path: photos/sarah.png")
    (tmp_path / "r.yaml").write_text(text)
    moved = load_recipe(tmp_path / "r.yaml")
    plan = build_plan(moved, records)
    assert {a.action for a in plan.actions} == {"keep", "update"}
    assert cost(plan) == "Cost: 0 credits"
    # Adopted and existing looks are checked, never generated, even when first planned.
    fresh = build_plan(r, {})
    free = {a.address for a in fresh.actions if a.action == "create" and not charged(a)}
    assert free == {"riley", "riley/kept", "consent:alex", *(a for a in free if "upload:" in a)}
    assert any(a.startswith("upload:") for a in free)


def test_replacements_are_paid_with_everything_built_on_them(tmp_path: Path) -> None:
    r = recipe(tmp_path)
    records = done(r)
    text = (tmp_path / "r.yaml").read_text().replace("navy blazer", "grey blazer")
    (tmp_path / "r.yaml").write_text(text)
    plan = build_plan(load_recipe(tmp_path / "r.yaml"), records)
    replaced = [a.address for a in plan.actions if a.action == "replace"]
    assert replaced == ["sarah/navy", "sarah/dusk"]
    assert cost(plan) == "Cost: 2 credits — look 2 × 1"


def test_orphans_cost_nothing(tmp_path: Path) -> None:
    r = recipe(tmp_path)
    records = done(r)
    records["gone"] = NodeRecord("gone", "base", "1" * 64, "completed", look_id="look_gone")
    plan = build_plan(r, records)
    assert [a.action for a in plan.actions if a.address == "gone"] == ["orphan"]
    assert cost(plan) == "Cost: 0 credits"


@pytest.mark.parametrize(
    ("status", "look_id", "error", "paid"),
    [
        ("failed", "look_x", ErrorInfo("generation_failed", "boom"), True),
        ("missing", "look_x", None, True),
        ("pending", None, None, True),
        # A lost answer: the replay is free only if the first send went through.
        ("submitted", None, None, True),
        # Upstream did not complete: a new generation will be sent.
        ("blocked", None, ErrorInfo("blocked", "upstream sarah did not complete"), True),
        # A stale id a blocked node kept from a failed generation is not a live look.
        ("blocked", "look_x", ErrorInfo("blocked", "upstream sarah did not complete"), True),
        # Already running, or a twin waiting for its consent: picked up, not paid again.
        ("processing", "look_x", None, False),
        ("blocked", "look_x", None, False),
        ("blocked", "look_x", ErrorInfo("consent_pending", "waiting for approval"), False),
    ],
)
def test_retries(
    tmp_path: Path, status: str, look_id: str | None, error: ErrorInfo | None, paid: bool
) -> None:
    r = recipe(tmp_path)
    records = done(r)
    records["alex"] = records["alex"].evolve(status=status, look_id=look_id, error=error)
    plan = build_plan(r, records)
    (action,) = [a for a in plan.actions if a.action == "retry"]
    assert action.address == "alex"
    assert charged(action) is paid
    assert action_credits(action, r.credits) == (1 if paid else 0)
    assert cost(plan) == ("Cost: 1 credit — digital_twin 1 × 1" if paid else "Cost: 0 credits")


def test_json_breakdown(tmp_path: Path) -> None:
    r = recipe(tmp_path, "defaults: {credits: {look: 0.25}}\n")
    assert estimate([build_plan(r, {})]).to_json() == [
        {"kind": "photo", "count": 2, "price": 1, "credits": 2},
        {"kind": "digital_twin", "count": 1, "price": 1, "credits": 1},
        {"kind": "prompt", "count": 1, "price": 1, "credits": 1},
        {"kind": "look", "count": 8, "price": 0.25, "credits": 2},
    ]


# -- Budget --------------------------------------------------------------------------------


def test_budget_counts_until_the_next_would_pass(tmp_path: Path) -> None:
    r = recipe(tmp_path, "defaults: {credits: {look: 0.5}}\n")
    nodes = build_graph(r)
    budget = Budget(Decimal("1.5"))
    assert budget.spend(nodes["sarah/navy"], r.credits)
    assert budget.spend(nodes["sarah"], r.credits)
    assert not budget.spend(nodes["sarah/dusk"], r.credits)  # 2 > 1.5
    assert budget.spent == Decimal("1.5")
    assert budget.spend(nodes["consent:alex"], r.credits)  # free things always fit
    zero = Budget(Decimal(0))
    assert zero.spend(nodes["riley/kept"], r.credits)
    assert not zero.spend(nodes["riley/spring"], r.credits)


# -- defaults.credits in the recipe -----------------------------------------------------------


@pytest.mark.parametrize(
    ("credits", "problem"),
    [
        ("{photo: -1}", "defaults.credits.photo: must be at least 0; got -1"),
        ("{look: -0.5}", "defaults.credits.look: must be at least 0; got -0.5"),
        ("{photo: .nan}", "defaults.credits.photo: must be a finite number; got nan"),
        ("{photo: .inf}", "defaults.credits.photo: must be at most 1000000; got inf"),
        ("{look: 1.0e+400}", "defaults.credits.look: must be at most 1000000; got inf"),
        ("{look: 10000001}", "defaults.credits.look: must be at most 1000000; got 10000001"),
        ("{look: '1'}", "defaults.credits.look: must be a number, not a string"),
        ("{look: true}", "defaults.credits.look: must be a number, not a boolean"),
        ("{looks: 1}", "defaults.credits.looks: unknown key 'looks'; did you mean 'look'?"),
        (
            "{video: 1}",
            "defaults.credits.video: unknown key 'video'; expected one of digital_twin, look,"
            " photo, prompt",
        ),
        ("[1]", "defaults.credits: must be a mapping, not a list"),
    ],
)
def test_bad_credits_are_refused_with_their_line(
    tmp_path: Path, credits: str, problem: str
) -> None:
    with pytest.raises(RecipeError) as e:
        recipe(tmp_path, f"defaults:\n  prompt_suffix: x\n  credits: {credits}\n")
    assert [str(p) for p in e.value.problems] == [f"{tmp_path / 'r.yaml'}:4: {problem}"]


def test_zero_and_huge_prices_are_fine(tmp_path: Path) -> None:
    r = recipe(tmp_path, "defaults: {credits: {photo: 0, look: 1000000}}\n")
    assert cost(build_plan(r, {})) == (
        "Cost: 8000002 credits — photo 2 × 0, digital_twin 1 × 1, prompt 1 × 1, look 8 × 1000000"
    )


def test_adopting_a_look_found_unrecorded_is_free(tmp_path: Path) -> None:
    r = recipe(tmp_path)
    records = done(r)
    del records["sarah/dusk"]
    plan = build_plan(r, records, adoptable={"sarah/dusk": "look_found"})
    assert [a.action for a in plan.actions if a.address == "sarah/dusk"] == ["adopt"]
    assert cost(plan) == "Cost: 0 credits"
