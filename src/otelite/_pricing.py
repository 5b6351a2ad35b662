"""Prices: an offline, dated catalog snapshot plus user overrides; cost without network.

``prices.json`` beside this module is generated from the genai-prices catalog by
``scripts/update_prices.py`` (``nox -s prices``) and carries its source version
and date. Users add or override prices (fine-tuned and self-hosted models,
negotiated rates) with ``configure(prices=...)`` or ``OTELITE_PRICES_FILE``. The
catalog loads on first use; every lookup after that is a dictionary access.
An unknown model gets no cost — never a silent $0 — and one warning per model.

Catalog prices may depend on when a call is made: a price starting on a date,
or a daily time window (DeepSeek's off-peak hours, in UTC). The snapshot keeps
those constraints and each call is priced at its own start time.

Size: over 500 lines because the catalog reader, the time-dependent price rules
and user price overrides are one pricing decision; the price data itself is in
``prices.json``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

from otelite._exceptions import ConfigurationError

logger = logging.getLogger("otelite")

CATALOG_PATH = Path(__file__).with_name("prices.json")
USER_SOURCE = "user"

# otelite's gen_ai.provider.name -> the catalog's provider id
PROVIDER_IDS: Mapping[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "openrouter": "openrouter",
    "together_ai": "together",
    "perplexity": "perplexity",
    "gcp.gemini": "google",
    "fireworks_ai": "fireworks",
    "cerebras": "cerebras",
    "moonshot_ai": "moonshotai",
}
_PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "input_audio", "output_audio")
_CATALOG_FIELDS = {
    "input_mtok": "input",
    "output_mtok": "output",
    "cache_read_mtok": "cache_read",
    "cache_write_mtok": "cache_write",
    "input_audio_mtok": "input_audio",
    "output_audio_mtok": "output_audio",
}

# Providers whose server otelite does not recognise (an OpenAI client pointed at a gateway, a
# proxy or an unknown host): their models are priced from the catalog by name when unambiguous.
INFERRED_PROVIDERS = frozenset({"openai_compatible"})
INFERRED_MARK = "inferred from the model name"

PriceValue = Union[
    float, Mapping[str, Any]
]  # a number, or {"base": x, "tiers": [{"start": n, "price": y}]}


class TokenUsage(NamedTuple):
    """Token counts of one call, as the conventions define them (details are subsets).

    A named tuple: one is made for every priced call, and a tuple is the cheapest to make.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0


@dataclass(frozen=True)
class Price:
    """USD per million tokens for one model (``None``: not priced separately)."""

    input: PriceValue
    output: PriceValue = 0.0
    cache_read: Optional[PriceValue] = None
    cache_write: Optional[PriceValue] = None
    input_audio: Optional[PriceValue] = None
    output_audio: Optional[PriceValue] = None
    source: str = "genai-prices"
    override: bool = False


def _rate(value: Optional[PriceValue], input_tokens: int) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, Mapping):
        # Tiered: past a tier's start, every token is priced at that tier (as providers bill).
        rate = float(value["base"])
        for tier in value.get("tiers", ()):
            if input_tokens > int(tier["start"]):
                rate = float(tier["price"])
        return rate
    return float(value)


def flat_usd(price: Price, input_tokens: int, output_tokens: int) -> Optional[float]:
    """Cost in USD of text tokens alone at flat rates (most calls); ``None`` when the price
    has tiers by prompt size (then :func:`cost_usd` gives the sum)."""
    if type(price.input) is float and type(price.output) is float:
        return (
            max(input_tokens, 0) * price.input + max(output_tokens, 0) * price.output
        ) / 1_000_000
    return None


def cost_usd(price: Price, usage: TokenUsage) -> float:
    """Cost in USD: cached, cache-write and audio tokens at their own rates where priced."""
    if (
        not usage.cache_read_tokens
        and not usage.cache_write_tokens
        and not usage.input_audio_tokens
        and not usage.output_audio_tokens
    ):
        # Text tokens at flat rates: most calls (the general case below gives the same sum).
        flat = flat_usd(price, usage.input_tokens, usage.output_tokens)
        if flat is not None:
            return flat
    n = usage.input_tokens
    input_rate = _rate(price.input, n) or 0.0
    output_rate = _rate(price.output, n) or 0.0
    cache_read = _rate(price.cache_read, n)
    cache_write = _rate(price.cache_write, n)
    audio_in = _rate(price.input_audio, n)
    audio_out = _rate(price.output_audio, n)
    text_in = usage.input_tokens
    total = 0.0
    if cache_read is not None:
        text_in -= usage.cache_read_tokens
        total += usage.cache_read_tokens * cache_read
    if cache_write is not None:
        text_in -= usage.cache_write_tokens
        total += usage.cache_write_tokens * cache_write
    if audio_in is not None:
        text_in -= usage.input_audio_tokens
        total += usage.input_audio_tokens * audio_in
    text_out = usage.output_tokens
    if audio_out is not None:
        text_out -= usage.output_audio_tokens
        total += usage.output_audio_tokens * audio_out
    total += max(text_in, 0) * input_rate + max(text_out, 0) * output_rate
    return total / 1_000_000


def _matches(rule: Mapping[str, Any], name: str) -> bool:
    if "or" in rule:
        return any(_matches(r, name) for r in rule["or"])
    if "and" in rule:
        return all(_matches(r, name) for r in rule["and"])
    if "equals" in rule:
        return name == str(rule["equals"])
    if "starts_with" in rule:
        return name.startswith(str(rule["starts_with"]))
    if "ends_with" in rule:
        return name.endswith(str(rule["ends_with"]))
    if "contains" in rule:
        return str(rule["contains"]) in name
    if "regex" in rule:
        return re.search(str(rule["regex"]), name) is not None
    return False


def _catalog_price(prices: Mapping[str, Any]) -> Price:
    fields = {_CATALOG_FIELDS[k]: v for k, v in prices.items() if k in _CATALOG_FIELDS}
    return Price(
        input=fields.get("input", 0.0),
        output=fields.get("output", 0.0),
        cache_read=fields.get("cache_read"),
        cache_write=fields.get("cache_write"),
        input_audio=fields.get("input_audio"),
        output_audio=fields.get("output_audio"),
    )


_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(tz=_dt.timezone.utc)


def utc_datetime(at: Union[_dt.datetime, int, None]) -> _dt.datetime:
    """``at`` as an aware UTC datetime: a datetime (naive means UTC), nanoseconds since the epoch
    (an OpenTelemetry span start time) or ``None`` for now."""
    if at is None:
        return _utc_now()
    if isinstance(at, _dt.datetime):
        if at.tzinfo is None:
            return at.replace(tzinfo=_dt.timezone.utc)
        return at.astimezone(_dt.timezone.utc)
    return _EPOCH + _dt.timedelta(microseconds=int(at) // 1000)


def _time_of_day_us(text: str) -> int:
    t = _dt.time.fromisoformat(text)
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


@dataclass(frozen=True)
class Constraint:
    """When a catalog price applies: from a UTC date on, or in a daily UTC time window."""

    start_date: Optional[_dt.date] = None
    start_us: Optional[int] = None  # time of day, microseconds after UTC midnight
    end_us: Optional[int] = None

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Constraint:
        if "start_date" in data:
            return cls(start_date=_dt.date.fromisoformat(str(data["start_date"])))
        return cls(
            start_us=_time_of_day_us(str(data["start_time"])),
            end_us=_time_of_day_us(str(data["end_time"])),
        )

    def active(self, at: _dt.datetime) -> bool:
        """Whether the constraint holds at ``at`` (aware, UTC), with genai-prices' rules."""
        if self.start_date is not None:
            return at.date() >= self.start_date
        if self.start_us is None or self.end_us is None:
            return True
        now = ((at.hour * 60 + at.minute) * 60 + at.second) * 1_000_000 + at.microsecond
        if self.end_us < self.start_us:  # the window wraps past midnight
            return now >= self.start_us or now < self.end_us
        return self.start_us <= now < self.end_us


def _constraint(data: Mapping[str, Any]) -> Optional[Constraint]:
    found = data.get("constraint")
    return Constraint.parse(found) if found else None


@dataclass(frozen=True)
class CatalogModel:
    """One catalog model: default prices, time-constrained prices, and service-tier variants."""

    default: Price
    conditional: tuple[tuple[Optional[Constraint], Price], ...] = ()
    variants: tuple[tuple[str, Optional[Constraint], Mapping[str, PriceValue]], ...] = ()

    @classmethod
    def parse(cls, entry: Mapping[str, Any]) -> CatalogModel:
        return cls(
            default=_catalog_price(entry["prices"]),
            conditional=tuple(
                (_constraint(c), _catalog_price(c["prices"]))
                for c in entry.get("conditional_prices", ())
            ),
            variants=tuple(
                (
                    str(v["tier"]),
                    _constraint(v),
                    {_CATALOG_FIELDS[k]: p for k, p in v["prices"].items() if k in _CATALOG_FIELDS},
                )
                for v in entry.get("price_variants", ())
            ),
        )

    @functools.cached_property
    def tiers(self) -> frozenset[str]:
        """The service tiers with prices of their own."""
        return frozenset(tier for tier, _, _ in self.variants)

    @property
    def time_dependent(self) -> bool:
        """Whether the price depends on when the call is made."""
        return bool(self.conditional) or any(c is not None for _, c, _ in self.variants)

    def price(self, at: Union[_dt.datetime, int, None] = None, tier: Optional[str] = None) -> Price:
        """The prices in force at ``at`` (default: now) for ``tier``, as genai-prices resolves them.

        The last conditional price whose constraint is active wins (none: the default);
        then each price a matching, active tier variant sets replaces it (first variant wins).
        """
        if not self.conditional and not (tier and self.variants and tier in self.tiers):
            return self.default  # the common case: no date or time-of-day in play
        when = utc_datetime(at)
        standard = self.default
        for constraint, price in reversed(self.conditional):
            if constraint is None or constraint.active(when):
                standard = price
                break
        if not tier:
            return standard
        overrides: dict[str, PriceValue] = {}
        for variant_tier, constraint, values in self.variants:
            if variant_tier != tier or (constraint is not None and not constraint.active(when)):
                continue
            for key, value in values.items():
                overrides.setdefault(key, value)
        return replace(standard, **overrides) if overrides else standard  # type: ignore[arg-type]


class Catalog:
    """The bundled snapshot, loaded once, with a per-(provider, model) lookup cache."""

    def __init__(self, path: Path = CATALOG_PATH) -> None:
        data = json.loads(path.read_text(encoding="utf-8"))
        self.source: str = data["source"]
        self.version: str = data["source_version"]
        self.date: str = data["date"]
        self._providers: Mapping[str, Any] = data["providers"]
        self._cache: dict[tuple[str, str], Optional[CatalogModel]] = {}
        # (provider, models, service tier, id of the user prices) -> the price of a call that
        # does not depend on when it is made, with the user prices it was resolved against.
        self.resolved: dict[tuple[Any, ...], tuple[Any, Price, str, str, str, bool]] = {}
        self._matches: dict[str, tuple[tuple[str, CatalogModel], ...]] = {}

    def _find(
        self, provider_id: str, name: str, seen: frozenset[str] = frozenset()
    ) -> Optional[CatalogModel]:
        provider = self._providers.get(provider_id)
        if provider is None or provider_id in seen:
            return None
        for entry in provider["models"]:
            if _matches(entry["match"], name):
                return CatalogModel.parse(entry)
        for fallback in provider.get("fallback", ()):
            found = self._find(fallback, name, seen | {provider_id})
            if found is not None:
                return found
        return None

    def matches(self, model: str) -> tuple[tuple[str, CatalogModel], ...]:
        """Every catalog provider whose own models (no fallbacks) match ``model`` (cached)."""
        found = self._matches.get(model)
        if found is None:
            name = model.lower()
            hits = []
            for provider_id, provider in sorted(self._providers.items()):
                for entry in provider["models"]:
                    if _matches(entry["match"], name):
                        hits.append((provider_id, CatalogModel.parse(entry)))
                        break
            found = tuple(hits)
            if len(self._matches) > 4096:
                self._matches.clear()
            self._matches[model] = found
        return found

    def remember(
        self, key: tuple[Any, ...], resolved: tuple[Any, Price, str, str, str, bool]
    ) -> None:
        if len(self.resolved) > 4096:
            self.resolved.clear()
        self.resolved[key] = resolved

    def lookup(self, provider: str, model: str) -> Optional[CatalogModel]:
        """The catalog prices of ``model`` at ``provider`` (cached), or ``None``."""
        key = (provider, model)
        if key in self._cache:
            return self._cache[key]
        provider_id = PROVIDER_IDS.get(provider)
        found = self._find(provider_id, model.lower()) if provider_id else None
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = found
        return found


_catalog_lock = threading.Lock()
_catalog: Optional[Catalog] = None


def catalog() -> Catalog:
    """The bundled catalog, loaded on first use."""
    global _catalog
    if _catalog is None:
        with _catalog_lock:
            if _catalog is None:
                _catalog = Catalog()
    return _catalog


# --- user prices --------------------------------------------------------------------


@dataclass(frozen=True)
class UserPrices:
    """Validated user prices: exact model names, and prefixes written as ``name*``."""

    exact: Mapping[tuple[Optional[str], str], Price]
    prefixes: tuple[tuple[Optional[str], str, Price], ...]

    def lookup(self, provider: str, model: str) -> Optional[Price]:
        name = model.lower()
        for key in ((provider, name), (None, name)):
            if key in self.exact:
                return self.exact[key]
        for scope, prefix, price in self.prefixes:
            if (scope is None or scope == provider) and name.startswith(prefix):
                return price
        return None


def _entry_model() -> Any:
    """The pydantic model of one price entry (built on first use: pydantic loads lazily)."""
    global _ENTRY_MODEL
    if _ENTRY_MODEL is None:
        from pydantic import BaseModel, ConfigDict, Field

        price = Field(default=None, ge=0, allow_inf_nan=False)

        class PriceEntry(BaseModel):
            model_config = ConfigDict(extra="forbid", strict=True)

            input: float = Field(ge=0, allow_inf_nan=False)
            output: Optional[float] = price
            cache_read: Optional[float] = price
            cache_write: Optional[float] = price
            input_audio: Optional[float] = price
            output_audio: Optional[float] = price
            provider: Optional[str] = Field(default=None, min_length=1)

        _ENTRY_MODEL = PriceEntry
    return _ENTRY_MODEL


_ENTRY_MODEL: Any = None


def _validation_message(where: str, model: str, error: Any) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(entry)"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown field {field!r} (use {', '.join(_PRICE_FIELDS)} or provider)")
        elif item["type"] == "missing":
            problems.append(f"field {field!r} is required")
        else:
            problems.append(f"field {field!r}: {item['msg']} (got {item.get('input')!r})")
    return f"{where}: model {model!r}: " + "; ".join(problems)


def parse_user_prices(data: Any, where: str) -> UserPrices:
    """Validate ``{"model": {"input": x, "output": y, ...}, ...}`` (USD per million tokens) with pydantic.

    Optional fields: ``output``, ``cache_read``, ``cache_write``, ``input_audio``,
    ``output_audio`` and ``provider`` (restricts the entry to one
    ``gen_ai.provider.name``). A model name ending in ``*`` matches by prefix.
    """
    from pydantic import ValidationError

    if not isinstance(data, Mapping):
        raise ConfigurationError(
            f"{where}: expected a mapping of model names to prices, such as "
            '{"ft:gpt-4o-mini:acme::x1": {"input": 0.3, "output": 1.2}}'
        )
    entry_model = _entry_model()
    exact: dict[tuple[Optional[str], str], Price] = {}
    prefixes: list[tuple[Optional[str], str, Price]] = []
    for model, entry in data.items():
        if not isinstance(model, str) or not model.strip("* "):
            raise ConfigurationError(
                f"{where}: model names must be non-empty strings, got {model!r}"
            )
        if not isinstance(entry, Mapping):
            raise ConfigurationError(
                f"{where}: model {model!r}: expected a mapping of prices, got {type(entry).__name__}"
            )
        try:
            parsed = entry_model.model_validate(
                {k: float(v) if type(v) is int else v for k, v in entry.items()}
            )
        except ValidationError as exc:
            raise ConfigurationError(_validation_message(where, model, exc)) from None
        values = {f: getattr(parsed, f) for f in _PRICE_FIELDS if getattr(parsed, f) is not None}
        values.setdefault("output", 0.0)
        price = Price(source=USER_SOURCE, override=True, **values)
        name = model.strip().lower()
        if name.endswith("*"):
            prefixes.append((parsed.provider, name[:-1], price))
        else:
            exact[(parsed.provider, name)] = price
    prefixes.sort(key=lambda p: -len(p[1]))  # the most specific prefix wins
    return UserPrices(exact, tuple(prefixes))


def load_user_prices(
    value: Union[str, Path, Mapping[str, Any], None], env_file: Optional[str]
) -> Optional[UserPrices]:
    """User prices from ``configure(prices=...)`` (mapping or file) or ``OTELITE_PRICES_FILE``."""
    if value is None and env_file is None:
        return None
    if isinstance(value, Mapping):
        return parse_user_prices(value, "prices")
    path = Path(value if value is not None else env_file)  # type: ignore[arg-type]
    where = f"prices file {path}" if value is not None else f"OTELITE_PRICES_FILE ({path})"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{where}: cannot read it ({exc})") from exc
    except ValueError as exc:
        raise ConfigurationError(f"{where}: not valid JSON ({exc})") from exc
    return parse_user_prices(data, where)


# --- the one call instrumentation makes --------------------------------------------


class Cost(NamedTuple):
    """A priced call: USD and where the price came from (a named tuple: cheap to make)."""

    usd: float
    source: str
    version: str
    date: str
    override: bool


_warned_lock = threading.Lock()
_warned: set[tuple[str, str]] = set()


def resolved(
    provider: str,
    models: tuple[Optional[str], ...],
    service_tier: Optional[str],
    user: Optional[UserPrices],
) -> Optional[tuple[Any, Price, str, str, str, bool]]:
    """The price :func:`price_call` resolved before for these names, if it holds at any time.

    ``(user, price, source, version, date, override)``, or ``None`` when this call must
    go through :func:`price_call` (not priced yet, priced by the time of day, or unpriced).
    """
    book = _catalog
    if book is None:
        return None
    hit = book.resolved.get((provider, models, service_tier, id(user)))
    return hit if hit is not None and hit[0] is user else None  # not a reused id


def price_call(
    provider: str,
    models: tuple[Optional[str], ...],
    usage: TokenUsage,
    service_tier: Optional[str],
    user: Optional[UserPrices],
    at: Union[_dt.datetime, int, None] = None,
) -> Optional[Cost]:
    """Cost of a call, trying each model name in turn (response model first); ``None`` if unknown.

    ``at`` is when the call started (a datetime, or nanoseconds since the epoch as in a
    span's ``start_time``; default now): catalog prices that depend on the time of day
    or on the date are taken at that moment.
    """
    book = _catalog or catalog()
    key = (provider, models, service_tier, id(user))
    hit = book.resolved.get(key)
    if hit is not None and hit[0] is user:  # the same user prices, not a reused id
        _, price, source, version, date, override = hit
        return Cost(cost_usd(price, usage), source, version, date, override)
    names = [m for m in models if m]
    for name in names:
        if user is not None:
            own = user.lookup(provider, name)
            if own is not None:
                book.remember(key, (user, own, USER_SOURCE, "", "", True))
                return Cost(cost_usd(own, usage), USER_SOURCE, "", "", True)
    for name in names:
        model = book.lookup(provider, name)
        if model is not None:
            price = model.price(at, service_tier)
            if not model.conditional and not (
                service_tier and service_tier in model.tiers and model.time_dependent
            ):
                # The same price at any time: resolved once for this provider, models and tier.
                book.remember(key, (user, price, book.source, book.version, book.date, False))
            return Cost(cost_usd(price, usage), book.source, book.version, book.date, False)
    if provider in INFERRED_PROVIDERS:
        for name in names:
            inferred = _infer(book, name, usage, service_tier, at)
            if inferred is not None:
                return inferred
    name = names[0] if names else ""
    if provider in INFERRED_PROVIDERS:
        candidates = sorted({pid for n in names for pid, _ in book.matches(n)})
        if candidates:
            _warn_once(
                (provider, name),
                "otelite: no price for model %r at provider %r: its name matches catalog models at "
                "%s with different prices, so it is not guessed; its calls get no cost attribute "
                "(marked otelite.cost.unpriced). If the server relays one of them (a gateway or "
                'proxy), name it: otelite.register_provider("<host>", "openai"); or add the price '
                "with configure(prices=...) or OTELITE_PRICES_FILE.",
                name,
                provider,
                ", ".join(candidates),
            )
        else:
            _warn_once(
                (provider, name),
                "otelite: no price for model %r at provider %r; its calls get no cost attribute "
                "(marked otelite.cost.unpriced). If the server relays a known provider (a gateway "
                'or proxy), name it: otelite.register_provider("<host>", "openai"); or add the price '
                "with configure(prices=...) or OTELITE_PRICES_FILE.",
                name,
                provider,
            )
        return None
    _warn_once(
        (provider, name),
        "otelite: no price for model %r at provider %r; its calls get no cost attribute "
        "(marked otelite.cost.unpriced). Add it with configure(prices=...) or OTELITE_PRICES_FILE.",
        name,
        provider,
    )
    return None


def _infer(
    book: Catalog,
    name: str,
    usage: TokenUsage,
    service_tier: Optional[str],
    at: Union[_dt.datetime, int, None],
) -> Optional[Cost]:
    """The catalog price of a model an unrecognised server serves, if its name is unambiguous.

    Unambiguous: every catalog provider whose own models match the name charges the same
    for this call. The cost's source says the price was inferred, and from which provider.
    """
    found = book.matches(name)
    if not found:
        return None
    prices = [model.price(at, service_tier) for _, model in found]
    if any(price != prices[0] for price in prices[1:]):
        return None
    providers = ", ".join(pid for pid, _ in found)
    _warn_once(
        ("inferred", name),
        "otelite: model %r reached through an unrecognised OpenAI-compatible server is priced "
        "from the catalog by its name (%s); its spans say so in otelite.cost.source. If the "
        'server relays that provider (a gateway or proxy), name it: otelite.register_provider("<host>", '
        '"openai") (or the provider it relays).',
        name,
        providers,
    )
    return Cost(
        cost_usd(prices[0], usage),
        f"{book.source} {INFERRED_MARK} ({providers})",
        book.version,
        book.date,
        False,
    )


def _warn_once(
    key: tuple[str, str], message: str, *args: Any, level: int = logging.WARNING
) -> None:
    if key in _warned:
        return
    with _warned_lock:
        first = key not in _warned
        _warned.add(key)
    if first:
        logger.log(level, message, *args)


def _reset_warnings_for_tests() -> None:
    with _warned_lock:
        _warned.clear()


def fmt_money(usd: float) -> str:
    """US dollars for people: cents above $1 (``$2.40``), two significant digits below
    (``$0.027``, ``$0.0000024``), ``<$0.00000001`` under that; never scientific notation."""
    if usd == 0:
        return "$0"
    if usd < 0:  # a credit or refund
        return "-" + fmt_money(-usd)
    if usd >= 1:
        return f"${usd:,.2f}"
    if usd < 1e-8:
        return "<$0.00000001"
    decimals = min(max(2, 1 - math.floor(math.log10(usd))), 8)
    text = f"{usd:.{decimals}f}".rstrip("0")
    if len(text.partition(".")[2]) < 2:
        text = f"{float(text):.2f}"
    return f"${text}"
