"""Regenerate src/otelite/prices.json from the genai-prices catalog (Pydantic, MIT).

Run with `nox -s prices` (genai-prices needs Python 3.11+; otelite reads the
snapshot on any Python, offline). The snapshot keeps, for the providers otelite
detects, each model's match rule, its token prices per million tokens in force
on the day of the snapshot, and its service-tier and batch variants.
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
        return {"base": float(value.base), "tiers": [{"start": t.start, "price": float(t.price)} for t in value.tiers]}
    raise TypeError(f"unknown price {value!r}")


def prices(model_price: Any) -> dict[str, Any]:
    return {k: number(v) for k, v in model_price.__dict__.items() if k in TOKEN_PRICES and v is not None}


def model_entry(model: Any, today: datetime.datetime) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": model.id, "match": clause(model.match), "prices": prices(model.get_prices(today))}
    variants: dict[str, Any] = {}
    for variant in model.price_variants or ():
        if variant.constraint is not None and not variant.constraint.active(today):
            continue
        tier = variant.when.get("service_tier") or ("batch" if variant.when.get("processing") == "batch" else None)
        if tier and tier != "default":
            overrides = prices(variant.prices)
            if overrides:
                variants.setdefault(tier, overrides)
    if variants:
        entry["service_tiers"] = variants
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
        models = [model_entry(m, now) for m in provider.models]
        catalog["providers"][provider.id] = {
            "fallback": list(provider.fallback_model_providers or ()),
            "models": [m for m in models if m["prices"]],
        }
    missing = set(PROVIDERS) - set(catalog["providers"])
    if missing:
        sys.exit(f"genai-prices has no provider {sorted(missing)}")
    text = json.dumps(catalog, indent=1, sort_keys=False) + "\n"
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(text)
    tmp.replace(OUT)
    count = sum(len(p["models"]) for p in catalog["providers"].values())
    print(f"wrote {OUT} ({count} models, genai-prices {genai_prices.__version__}, {catalog['date']})")


if __name__ == "__main__":
    main()
