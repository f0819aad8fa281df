"""Prices: the user's first, then the genai-prices table, else unknown (never a guess)."""

from __future__ import annotations

import importlib
import os

import pytest

from codeur_widgets.core.prices import ModelPrice, Prices

# A core dependency: under CI its absence fails the tests instead of skipping them.
if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
    genai_prices = importlib.import_module("genai_prices")
else:
    genai_prices = pytest.importorskip("genai_prices")


def table_cost(model: str, prompt: int, completion: int) -> float:
    """The oracle: the package itself."""
    usage = genai_prices.Usage(input_tokens=prompt, output_tokens=completion)
    return float(genai_prices.calc_price(usage, model_ref=model).total_price)


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4"])
def test_table_prices_match_genai_prices(model: str) -> None:
    prices = Prices()
    for prompt, completion in ((1_000, 200), (0, 5), (123_456, 7_890)):
        assert prices.cost(model, prompt, completion) == pytest.approx(
            table_cost(model, prompt, completion), rel=1e-9
        )
    found = prices.price(model)
    assert found is not None and found.source == "genai-prices"


def test_tiered_prices_are_computed_by_the_table() -> None:
    prices = Prices()
    small, large = (
        prices.cost("gemini-2.5-pro", 1_000, 100),
        prices.cost("gemini-2.5-pro", 300_000, 100),
    )
    assert small == pytest.approx(table_cost("gemini-2.5-pro", 1_000, 100))
    assert large == pytest.approx(table_cost("gemini-2.5-pro", 300_000, 100))
    assert prices.price("gemini-2.5-pro") is None  # not one linear price


def test_overrides_win_and_unknown_stays_unknown() -> None:
    prices = Prices({"gpt-4o": (1.0, 2.0), "mine": {"input_per_mtok": 3, "output_per_mtok": 4}})
    assert prices.cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(3.0)
    assert prices.cost("mine", 500_000, 0) == pytest.approx(1.5)
    assert prices.price("mine") == ModelPrice(3.0, 4.0, "user")
    assert prices.cost("no-such-model-xyz", 10, 10) is None
    prices.set("no-such-model-xyz", input_per_mtok=1, output_per_mtok=1)
    assert prices.cost("no-such-model-xyz", 10, 10) == pytest.approx(2e-5)
    assert prices.remove("gpt-4o") and not prices.remove("gpt-4o")
    assert prices.cost("gpt-4o", 1_000, 200) == pytest.approx(table_cost("gpt-4o", 1_000, 200))
    assert Prices(table=False).cost("gpt-4o", 1, 1) is None


@pytest.mark.parametrize(
    "args", [(None, 1, 1), ("gpt-4o", -1, 1), ("gpt-4o", 1.5, 1), ("gpt-4o", "x", 1), ("", 1, 1)]
)
def test_odd_input_is_unknown_not_an_error(args: tuple[object, object, object]) -> None:
    assert Prices().cost(*args) is None


def test_bad_overrides_are_refused() -> None:
    with pytest.raises(ValueError):
        Prices({"m": (-1, 1)})
    with pytest.raises(TypeError):
        Prices().set("m", input_per_mtok="1", output_per_mtok=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Prices().set("", input_per_mtok=1, output_per_mtok=1)


def test_a_price_seen_before_follows_a_new_override_and_odd_input() -> None:
    # cost() remembers the linear rate of each model it priced (its fast path): a user's
    # override set or removed afterwards must win at once, and odd input must stay unknown.
    prices = Prices()
    table = table_cost("gpt-4o", 1_000, 200)
    assert prices.cost("gpt-4o", 1_000, 200) == pytest.approx(table)
    assert prices.cost("gpt-4o", 1_000, 200) == pytest.approx(table)  # the fast path
    prices.set("gpt-4o", input_per_mtok=1, output_per_mtok=1)
    assert prices.cost("gpt-4o", 1_000_000, 0) == pytest.approx(1.0)
    assert prices.remove("gpt-4o")
    assert prices.cost("gpt-4o", 1_000, 200) == pytest.approx(table)
    for odd in ((-1, 1), (1, -1), (True, 1), (1.5, 1)):
        assert prices.cost("gpt-4o", *odd) is None
    assert prices.cost(["gpt-4o"], 1, 1) is None
