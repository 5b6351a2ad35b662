"""Prices: the dated catalog snapshot, user overrides, tiers, and never a silent $0."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import otelite
from fakeopenai import Recorder, chat_completion, client, json_response
from otelite import _pricing
from otelite._pricing import Price, TokenUsage, cost_usd, parse_user_prices, price_call
from otelite.testing import capture_spans

MESSAGES = [{"role": "user", "content": "hi"}]


pytestmark = pytest.mark.usefixtures("openai_instrumented")


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    """Unknown-model warnings are reset per test."""
    _pricing._reset_warnings_for_tests()


def test_snapshot_has_provenance_and_major_providers() -> None:
    """The bundled snapshot says where and when it comes from and covers the detected providers."""
    data = json.loads(_pricing.CATALOG_PATH.read_text())
    assert data["source"] == "genai-prices"
    assert data["source_version"]
    assert len(data["date"]) == 10
    for provider in (
        "openai",
        "azure",
        "groq",
        "deepseek",
        "mistral",
        "x-ai",
        "openrouter",
        "together",
        "google",
    ):
        assert data["providers"][provider]["models"], provider
    book = _pricing.catalog()
    for model in (
        "gpt-4o",
        "gpt-4o-mini-2024-07-18",
        "gpt-5",
        "o3-mini",
        "text-embedding-3-small",
        "gpt-3.5-turbo",
        "gpt-4",
    ):
        assert book.lookup("openai", model) is not None, model
    assert book.lookup("azure.ai.openai", "gpt-4o") is not None  # via the openai fallback
    assert book.lookup("deepseek", "deepseek-chat") is not None
    assert book.lookup("openai_compatible", "gpt-4o") is None


def test_cost_components() -> None:
    """Cached input, audio and output tokens are each priced at their own rate."""
    price = Price(input=2.0, output=8.0, cache_read=0.5, input_audio=40.0, output_audio=80.0)
    usage = TokenUsage(
        input_tokens=1000,
        output_tokens=300,
        cache_read_tokens=200,
        input_audio_tokens=100,
        output_audio_tokens=50,
    )
    expected = (700 * 2.0 + 200 * 0.5 + 100 * 40.0 + 250 * 8.0 + 50 * 80.0) / 1e6
    assert cost_usd(price, usage) == pytest.approx(expected)
    tiered = Price(input={"base": 1.0, "tiers": [{"start": 200_000, "price": 2.0}]}, output=4.0)
    assert cost_usd(tiered, TokenUsage(100_000, 10)) == pytest.approx(
        (100_000 * 1.0 + 10 * 4.0) / 1e6
    )
    assert cost_usd(tiered, TokenUsage(300_000, 10)) == pytest.approx(
        (300_000 * 2.0 + 10 * 4.0) / 1e6
    )


def test_service_tiers_priced_as_billed() -> None:
    """flex, priority and batch use their own catalog prices."""
    usage = TokenUsage(1_000_000, 1_000_000)
    standard = price_call("openai", ("gpt-5",), usage, None, None)
    flex = price_call("openai", ("gpt-5",), usage, "flex", None)
    priority = price_call("openai", ("gpt-5",), usage, "priority", None)
    assert standard is not None
    assert flex is not None
    assert priority is not None
    assert standard.usd == pytest.approx(1.25 + 10.0)
    assert flex.usd == pytest.approx(standard.usd / 2)
    assert priority.usd == pytest.approx(standard.usd * 2)


def test_unknown_model_no_cost_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A model without a price gets no cost attribute, a marker, and one warning per model."""
    handler = Recorder(lambda request: json_response(chat_completion(model="my-private-model")))
    with caplog.at_level(logging.WARNING, logger="otelite"), capture_spans() as cap:
        for _ in range(3):
            client(handler).chat.completions.create(model="my-private-model", messages=MESSAGES)
    for span in cap.spans:
        assert "gen_ai.usage.cost" not in span.attributes
        assert span.attributes["otelite.cost.unpriced"] is True
        assert span.attributes["gen_ai.usage.input_tokens"] == 12
    warnings = [r.getMessage() for r in caplog.records if "no price for model" in r.getMessage()]
    assert warnings == [
        "otelite: no price for model 'my-private-model' at provider 'openai'; its calls get no cost "
        "attribute (marked otelite.cost.unpriced). Add it with configure(prices=...) or OTELITE_PRICES_FILE."
    ]
    assert "otelite.client.cost" not in cap.metrics()


def test_user_prices_override_and_add(tmp_path: Path) -> None:
    """User prices add models and override the catalog, and say so on the span."""
    prices = {
        "my-private-model": {"input": 1.0, "output": 2.0},
        "gpt-4o-mini*": {"input": 0.1, "output": 0.2, "cache_read": 0.05},
    }
    handler = Recorder(
        lambda request: json_response(chat_completion(model=json.loads(request.content)["model"]))
    )
    with capture_spans(prices=prices) as cap:
        client(handler).chat.completions.create(model="my-private-model", messages=MESSAGES)
        client(handler).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    own, override = (dict(s.attributes) for s in cap.spans)
    assert own["gen_ai.usage.cost"] == pytest.approx((12 * 1.0 + 3 * 2.0) / 1e6)
    assert override["gen_ai.usage.cost"] == pytest.approx((12 * 0.1 + 3 * 0.2) / 1e6)
    for attrs in (own, override):
        assert attrs["otelite.cost.source"] == "user"
        assert attrs["otelite.cost.override"] is True
        assert "otelite.cost.catalog_version" not in attrs
    points = cap.metrics()["otelite.client.cost"]
    assert sum(p["value"] for p in points) == pytest.approx(
        own["gen_ai.usage.cost"] + override["gen_ai.usage.cost"]
    )


def test_cost_counter_metric() -> None:
    """Costs are summed in the otelite.client.cost counter (USD) by provider, model and operation."""
    handler = Recorder(lambda request: json_response(chat_completion()))
    with capture_spans() as cap:
        for _ in range(2):
            client(handler).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (point,) = cap.metrics()["otelite.client.cost"]
    assert point["value"] == pytest.approx(2 * (12 * 0.15 + 3 * 0.6) / 1e6)
    assert point["attributes"]["gen_ai.request.model"] == "gpt-4o-mini"
    assert point["attributes"]["gen_ai.operation.name"] == "chat"
    assert point["attributes"]["gen_ai.provider.name"] == "openai"


def test_prices_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTELITE_PRICES_FILE is read and validated by configure()."""
    from opentelemetry.sdk.trace import TracerProvider

    good = tmp_path / "prices.json"
    good.write_text(json.dumps({"llama-3-70b": {"input": 0.5, "output": 0.8, "provider": "vllm"}}))
    monkeypatch.setenv("OTELITE_PRICES_FILE", str(good))
    otelite.configure(tracer_provider=TracerProvider(), local_store=False)
    prices = otelite._config.active().prices
    assert prices is not None
    assert prices.lookup("vllm", "llama-3-70b") is not None
    assert prices.lookup("openai", "llama-3-70b") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "expected a mapping of model names to prices"),
        ({"m": {"input": 1, "outptu": 2}}, "model 'm': unknown field 'outptu'"),
        (
            {"m": {"input": -1}},
            "model 'm': field 'input': Input should be greater than or equal to 0 (got -1.0)",
        ),
        (
            {"m": {"input": "cheap"}},
            "model 'm': field 'input': Input should be a valid number (got 'cheap')",
        ),
        (
            {"m": {"input": True}},
            "model 'm': field 'input': Input should be a valid number (got True)",
        ),
        ({"m": {"output": 1}}, "model 'm': field 'input' is required"),
        ({"m": 3}, "model 'm': expected a mapping of prices"),
        ({"": {"input": 1}}, "model names must be non-empty strings"),
    ],
)
def test_bad_user_prices(data: object, message: str) -> None:
    """A bad price entry is refused, naming the model and the field."""
    with pytest.raises(otelite.ConfigurationError) as info:
        parse_user_prices(data, "prices")
    assert message in str(info.value)


def test_bad_prices_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A prices file that is missing, not JSON, or wrong is a ConfigurationError naming the file."""
    from opentelemetry.sdk.trace import TracerProvider

    bad = tmp_path / "prices.json"
    bad.write_text("{not json")
    with pytest.raises(
        otelite.ConfigurationError, match=r"prices file .*prices\.json: not valid JSON"
    ):
        otelite.configure(tracer_provider=TracerProvider(), local_store=False, prices=bad)
    monkeypatch.setenv("OTELITE_PRICES_FILE", str(tmp_path / "missing.json"))
    with pytest.raises(
        otelite.ConfigurationError, match=r"OTELITE_PRICES_FILE .*missing\.json.*cannot read it"
    ):
        otelite.configure(tracer_provider=TracerProvider(), local_store=False)
    bad.write_text(json.dumps({"m": {"input": 1, "output": -2}}))
    monkeypatch.delenv("OTELITE_PRICES_FILE")
    with pytest.raises(
        otelite.ConfigurationError,
        match=r"model 'm': field 'output': Input should be greater than or equal to 0",
    ):
        otelite.configure(tracer_provider=TracerProvider(), local_store=False, prices=bad)


def test_lookup_is_cached() -> None:
    """The hot-path lookup is a cached dictionary access after the first call."""
    book = _pricing.catalog()
    first = book.lookup("openai", "gpt-4o-2024-08-06")
    assert book.lookup("openai", "gpt-4o-2024-08-06") is first
    assert ("openai", "gpt-4o-2024-08-06") in book._cache


def test_resolved_prices_are_reused_only_when_nothing_else_could_change_them() -> None:
    """A call's resolved price is reused for the same provider, models, tier and user prices,
    and never across dates when the tier's price depends on the date."""
    usage = TokenUsage(1_000_000, 1_000_000)
    models = ("gpt-4o-mini-2024-07-18", "gpt-4o-mini")
    # gpt-4o-mini's "priority" price starts on 2026-10-12; "default" has no price of its own.
    before = 1_760_000_000 * 10**9  # 2025-10-09
    after = 1_800_000_000 * 10**9  # 2027-01-15
    book = _pricing.catalog()
    for _ in range(2):  # the second round is served from what the first resolved
        standard = price_call("openai", models, usage, "default", None, at=before)
        assert standard is not None
        assert standard.usd == pytest.approx(0.15 + 0.6)
        assert price_call("openai", models, usage, "default", None, at=after) == standard
        early = price_call("openai", models, usage, "priority", None, at=before)
        late = price_call("openai", models, usage, "priority", None, at=after)
        assert early is not None
        assert late is not None
        assert (early.usd, late.usd) == (pytest.approx(0.75), pytest.approx(1.25))
    assert ("openai", models, "default", id(None)) in book.resolved
    assert not any(key[2] == "priority" for key in book.resolved)

    # Other user prices give their own answer, even for the same models and tier.
    cheap = parse_user_prices({"gpt-4o-mini*": {"input": 0.1, "output": 0.2}}, "prices")
    dear = parse_user_prices({"gpt-4o-mini*": {"input": 1.0, "output": 2.0}}, "prices")
    for _ in range(2):
        got = [price_call("openai", models, usage, "default", p) for p in (cheap, dear, None)]
        assert [c.usd if c else None for c in got] == [
            pytest.approx(0.3),
            pytest.approx(3.0),
            pytest.approx(0.75),
        ]
        assert [c.source if c else None for c in got] == ["user", "user", "genai-prices"]
