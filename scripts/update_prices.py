"""Regenerate src/otelite/prices.json from the genai-prices catalog (Pydantic, MIT).

Run with `nox -s prices` (genai-prices needs Python 3.11+; otelite reads the
snapshot on any Python, offline). The snapshot keeps, for the providers otelite
detects, each model's match rule, its token prices per million tokens, and its
service-tier and batch variants, each with the constraint that says when it
applies (a start date, or a daily UTC time window such as DeepSeek's off-peak
hours): otelite resolves them at each call's own start time, as genai-prices does.
"""

from __future__ import annotations

import datetime
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
from genai_prices import data
from genai_prices import types as gp

OUT = Path(__file__).resolve().parent.parent / "src" / "otelite" / "prices.json"
# genai-prices provider ids of the providers the OpenAI instrumentation detects.
PROVIDERS = (
    "openai",
    "azure",
    "groq",
    "deepseek",
    "mistral",
    "x-ai",
    "openrouter",
    "together",
    "perplexity",
    "google",
    "fireworks",
    "cerebras",
    "moonshotai",
)
TOKEN_PRICES = (
    "input_mtok",
    "output_mtok",
    "cache_read_mtok",
    "cache_write_mtok",
    "input_audio_mtok",
    "output_audio_mtok",
    "cache_audio_read_mtok",
)


def clause(logic: Any) -> Any:
    """A match rule as JSON: {"equals": ...}, {"starts_with": ...}, {"or": [...]}, ..."""
    if isinstance(logic, gp.ClauseOr):
        return {"or": [clause(c) for c in logic.or_]}
    if isinstance(logic, gp.ClauseAnd):
        return {"and": [clause(c) for c in logic.and_]}
    for kind in ("equals", "starts_with", "ends_with", "contains", "regex"):
        if hasattr(logic, kind):
            return {kind: getattr(logic, kind)}
    raise TypeError(f"unknown match clause {logic!r}")


def number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, gp.TieredPrices):
        return {
            "base": float(value.base),
            "tiers": [{"start": t.start, "price": float(t.price)} for t in value.tiers],
        }
    raise TypeError(f"unknown price {value!r}")


def prices(model_price: Any) -> dict[str, Any]:
    return {
        k: number(v) for k, v in model_price.__dict__.items() if k in TOKEN_PRICES and v is not None
    }


def constraint(value: Any) -> Any:
    """When a price applies: {"start_date": "YYYY-MM-DD"} or {"start_time": "HH:MM:SS", "end_time": ...} (UTC)."""
    if isinstance(value, gp.StartDateConstraint):
        return {"start_date": value.start_date.isoformat()}
    if isinstance(value, gp.TimeOfDateConstraint):
        return {"start_time": utc_time(value.start_time), "end_time": utc_time(value.end_time)}
    raise TypeError(f"unknown price constraint {value!r}")


def utc_time(value: datetime.time) -> str:
    """A time of day in UTC (naive times are UTC, as in genai-prices)."""
    if value.tzinfo is not None:
        value = (
            datetime.datetime.combine(datetime.date(1970, 1, 1), value)
            .astimezone(datetime.timezone.utc)
            .time()
        )
    return value.replace(tzinfo=None).isoformat()


def model_entry(model: Any) -> dict[str, Any]:
    """One model: its default prices, its constrained prices (last active one wins) and its variants."""
    entry: dict[str, Any] = {"id": model.id, "match": clause(model.match)}
    if isinstance(model.prices, gp.ModelPrice):
        entry["prices"] = prices(model.prices)
    else:
        # genai-prices: the last conditional price whose constraint is active wins; if none is, the first.
        entry["prices"] = prices(model.prices[0].prices)
        conditional = []
        for item in model.prices[1:]:
            one: dict[str, Any] = {"prices": prices(item.prices)}
            if item.constraint is not None:
                one["constraint"] = constraint(item.constraint)
            conditional.append(one)
        if conditional:
            entry["conditional_prices"] = conditional
    variants: list[dict[str, Any]] = []
    for variant in model.price_variants or ():
        tier = variant.when.get("service_tier") or (
            "batch" if variant.when.get("processing") == "batch" else None
        )
        if not tier or tier == "default":
            continue
        overrides = prices(variant.prices)
        if overrides:
            one = {"tier": tier, "prices": overrides}
            if variant.constraint is not None:
                one["constraint"] = constraint(variant.constraint)
            variants.append(one)
    if variants:
        # Resolved first to last, independently for each price: the first active variant setting it wins.
        entry["price_variants"] = variants
    return entry


def main() -> None:
    now = datetime.datetime.now(tz=datetime.timezone.utc)
    catalog: dict[str, Any] = {
        "source": "genai-prices",
        "source_version": genai_prices.__version__,
        "date": now.date().isoformat(),
        "units": "USD per million tokens",
        "providers": {},
    }
    for provider in data.providers:
        if provider.id not in PROVIDERS:
            continue
        models = [model_entry(m) for m in provider.models]
        catalog["providers"][provider.id] = {
            "fallback": list(provider.fallback_model_providers or ()),
            "models": [
                m
                for m in models
                if m["prices"] or any(c["prices"] for c in m.get("conditional_prices", ()))
            ],
        }
    missing = set(PROVIDERS) - set(catalog["providers"])
    if missing:
        sys.exit(f"genai-prices has no provider {sorted(missing)}")
    text = json.dumps(catalog, indent=1, sort_keys=False) + "\n"
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(OUT)
    count = sum(len(p["models"]) for p in catalog["providers"].values())
    print(
        f"wrote {OUT} ({count} models, genai-prices {genai_prices.__version__}, {catalog['date']})"
    )


if __name__ == "__main__":
    main()
