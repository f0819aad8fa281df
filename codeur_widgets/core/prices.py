"""The price of an LLM call: your own prices first, then the ``genai-prices`` table, else unknown.

A span that reports tokens and a model but no cost gets its cost here (DESIGN section 11):

* a price set by the user for that model (``Hub(prices={"my-model": (0.5, 1.5)})`` or
  ``hub.prices.set("my-model", input_per_mtok=0.5, output_per_mtok=1.5)``, USD per million
  tokens) wins;
* else the maintained table of the `genai-prices <https://github.com/pydantic/genai-prices>`_
  package (imported on first use: it brings pydantic, too heavy for the import of ``core``);
* else the cost is unknown: :meth:`Prices.cost` returns ``None`` and views say "cost unknown".
  A guess (a similar model's price, a default) is never made.

Look-ups are cached per model (the table is asked once per model, ~0.1 ms, plus ~0.25 s for the
first import), so pricing a span costs a dict look-up and two multiplications. A model whose
table price is tiered (e.g. a higher rate above 200k input tokens) is priced by the table on
every call instead, with its own small cache.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

__all__ = ["ModelPrice", "Prices"]

log = logging.getLogger("codeur_widgets.prices")

MAX_MODELS = 4_096
"""Models remembered by the cache (a stream of random model names cannot grow it without bound)."""
_TIERED_CACHE = 4_096


class ModelPrice(NamedTuple):
    """USD per million input (prompt) and output (completion) tokens, where it came from, and
    a fixed price per call (a few providers charge per request)."""

    input_per_mtok: float
    output_per_mtok: float
    source: str  # "user" or "genai-prices"
    per_call: float = 0.0


def _rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number (USD per million tokens), got {value!r}")
    rate = float(value)
    if not math.isfinite(rate) or rate < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return rate


_UNKNOWN = object()  # cached: the table has no price for this model
_TIERED = object()  # cached: the table's price is not linear in the token counts


class Prices:
    """Prices per model: user overrides, then the ``genai-prices`` table, else unknown.

    Args:
        overrides: ``{model: (input_per_mtok, output_per_mtok)}`` or
            ``{model: {"input_per_mtok": ..., "output_per_mtok": ...}}``.
        table: consult the ``genai-prices`` package for models without an override (default
            True; False: only the overrides are known).

    Thread-safe for reading; :meth:`set` and :meth:`remove` may be called from any thread.
    """

    def __init__(
        self,
        overrides: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
        *,
        table: bool = True,
    ) -> None:
        self.table = table
        self._overrides: dict[str, ModelPrice] = {}
        self._cache: dict[tuple[str, str | None], object] = {}
        self._tiered: dict[tuple[str, str | None, int, int], float | None] = {}
        # model -> (input rate, output rate, per call) of the linear prices met with no provider:
        # cost()'s fast path. Cleared whenever an override changes.
        self._linear: dict[str, tuple[float, float, float]] = {}
        self._lock = threading.Lock()
        self._before_change: list[Callable[[], None]] = []
        self._module: Any = None
        self._import_failed = False
        self._warming = False
        items = overrides.items() if isinstance(overrides, Mapping) else (overrides or ())
        for model, price in items:
            if isinstance(price, Mapping):
                self.set(model, **price)
            else:
                inp, out = price
                self.set(model, input_per_mtok=inp, output_per_mtok=out)

    # -- overrides -----------------------------------------------------------------------------
    def before_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` before each :meth:`set` or :meth:`remove` takes effect: a store
        that prices its events in batches folds what it holds, at the prices they came with."""
        self._before_change.append(callback)

    def _changing(self) -> None:
        for callback in self._before_change:
            callback()

    def set(self, model: str, *, input_per_mtok: float, output_per_mtok: float) -> None:
        """Use this price (USD per million tokens) for ``model`` from now on (exact name)."""
        if not isinstance(model, str) or not model:
            raise TypeError("model must be a non-empty string")
        price = ModelPrice(
            _rate("input_per_mtok", input_per_mtok),
            _rate("output_per_mtok", output_per_mtok),
            "user",
        )
        self._changing()
        with self._lock:
            self._overrides[model] = price
            self._linear.clear()

    def remove(self, model: str) -> bool:
        """Forget the user's price for ``model``; returns False when there was none."""
        self._changing()
        with self._lock:
            self._linear.clear()
            return self._overrides.pop(model, None) is not None

    @property
    def overrides(self) -> dict[str, ModelPrice]:
        """The user's prices, by model."""
        return dict(self._overrides)

    def warm(self) -> None:
        """Import the table and price one call in a daemon thread, so that the first call priced
        on the event loop does not wait ~0.3 s for the import (``Hub.start`` calls this)."""
        if not self.table or self._module is not None or self._warming or self._import_failed:
            return
        self._warming = True
        threading.Thread(
            target=self.cost, args=("gpt-4o", 1, 1), name="codeur_widgets.prices.warm", daemon=True
        ).start()

    # -- look-ups ------------------------------------------------------------------------------
    def price(self, model: str, provider: str | None = None) -> ModelPrice | None:
        """The linear price of ``model``: the user's, else the table's; None when unknown or
        tiered (a tiered table price is still used by :meth:`cost`)."""
        override = self._overrides.get(model)
        if override is not None:
            return override
        found = self._table_entry(model, provider)
        return found if isinstance(found, ModelPrice) else None

    def cost(
        self,
        model: object,
        prompt_tokens: object,
        completion_tokens: object,
        provider: str | None = None,
    ) -> float | None:
        """The cost in USD of a call, or None when the model's price is unknown.

        Never raises for odd input: a missing model or a token count that is not a whole
        number >= 0 gives None (unknown), as does a table that cannot be imported.
        """
        if (
            provider is None
            and type(model) is str
            and type(prompt_tokens) is int
            and type(completion_tokens) is int
        ):
            # The usual call (a model seen before, whole token counts, no provider), in a few
            # C calls: this runs for every priced span, in the trace store and on the cards.
            linear = self._linear.get(model)
            if linear is not None and prompt_tokens >= 0 and completion_tokens >= 0:
                rate_in, rate_out, per_call = linear
                return (prompt_tokens * rate_in + completion_tokens * rate_out) / 1e6 + per_call
        if not model or not isinstance(model, str):
            return None
        # Whole numbers >= 0 (the common case tested first: this runs for every priced span).
        prompt = prompt_tokens if type(prompt_tokens) is int else _tokens(prompt_tokens)
        completion = (
            completion_tokens if type(completion_tokens) is int else _tokens(completion_tokens)
        )
        if prompt is None or completion is None or prompt < 0 or completion < 0:
            return None
        price: object = self._overrides.get(model)
        if price is None:
            price = self._cache.get((model, provider))
            if price is None:
                price = self._table_entry(model, provider)
        if isinstance(price, ModelPrice):
            if provider is None and len(self._linear) < MAX_MODELS:
                self._linear[model] = (price.input_per_mtok, price.output_per_mtok, price.per_call)
            rates = prompt * price.input_per_mtok + completion * price.output_per_mtok
            return rates / 1e6 + price.per_call
        if price is _TIERED:
            return self._tiered_cost(model, provider, prompt, completion)
        return None

    def _table_entry(self, model: str, provider: str | None) -> object:
        key = (model, provider)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        entry = self._ask_table(model, provider)
        with self._lock:
            if len(self._cache) >= MAX_MODELS:
                self._cache.clear()
            self._cache[key] = entry
        return entry

    def _genai_prices(self) -> Any:
        if self._module is None and not self._import_failed and self.table:
            try:
                import genai_prices
            except Exception as exc:  # not installed, or broken: costs stay unknown
                self._import_failed = True
                log.warning("genai-prices unavailable (%s): costs without a price are unknown", exc)
            else:
                self._module = genai_prices
        return self._module

    def _ask_table(self, model: str, provider: str | None) -> object:
        gp = self._genai_prices()
        if gp is None:
            return _UNKNOWN

        def total(inp: int, out: int) -> float:
            usage = gp.Usage(input_tokens=inp, output_tokens=out)
            return float(gp.calc_price(usage, model_ref=model, provider_id=provider).total_price)

        try:
            calc = gp.calc_price(
                gp.Usage(input_tokens=0, output_tokens=0), model_ref=model, provider_id=provider
            )
            parts = getattr(getattr(calc, "model_price", None), "__dict__", {})
            if any(type(v).__name__ == "TieredPrices" for v in parts.values()):
                return _TIERED  # the rate depends on the size of the call
            # Linear: one call's fixed price, and the rates from a million tokens of each kind;
            # checked on a small call too, in case a tier the check above missed applies.
            base = float(calc.total_price)
            inp = total(1_000_000, 0) - base
            out = total(0, 1_000_000) - base
            small = base + (inp + out) / 1_000
            if not math.isclose(total(1_000, 1_000), small, rel_tol=1e-9, abs_tol=1e-12):
                return _TIERED
            return ModelPrice(inp, out, "genai-prices", base)
        except LookupError:
            return _UNKNOWN
        except Exception as exc:  # a table bug must not break ingest: unknown, said once
            log.warning("genai-prices failed for model %r: %r", model, exc)
            return _UNKNOWN

    def _tiered_cost(
        self, model: str, provider: str | None, prompt: int, completion: int
    ) -> float | None:
        key = (model, provider, prompt, completion)
        if key in self._tiered:
            return self._tiered[key]
        gp = self._genai_prices()
        value: float | None
        try:
            calc = gp.calc_price(
                gp.Usage(input_tokens=prompt, output_tokens=completion),
                model_ref=model,
                provider_id=provider,
            )
            value = float(calc.total_price)
        except Exception:
            value = None
        with self._lock:
            if len(self._tiered) >= _TIERED_CACHE:
                self._tiered.clear()
            self._tiered[key] = value
        return value

    def __repr__(self) -> str:
        table = "genai-prices" if self.table else "no table"
        return f"<Prices {len(self._overrides)} override(s), {table}>"


def _tokens(value: object) -> int | None:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        return None
    return int(value) if value >= 0 else None
