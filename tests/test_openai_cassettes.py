"""Every recorded interaction replayed through an instrumented real client: one correct span per call."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
from typing import Any, Optional

import openai
import pytest

import otelite
from cassettes import Interaction, all_cassettes, call_kwargs, load, make_client, method_for
from otelite.testing import Captured, capture_spans

CONTENT_KEYS = {
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "gen_ai.tool.definitions",
}
OPERATIONS = {
    "/chat/completions": "chat",
    "/completions": "text_completion",
    "/embeddings": "embeddings",
    "/responses": "chat",
}


pytestmark = pytest.mark.usefixtures("openai_instrumented")


def dump(value: Any) -> Any:
    """A comparable snapshot of what the caller received."""
    if hasattr(value, "model_dump"):
        return value.model_dump(warnings=False)
    return value


def run_sync(client: Any, interaction: Interaction) -> tuple[Any, Optional[BaseException]]:
    """Make the recorded call; return what the caller got (chunks for streams) or the error."""
    method = method_for(client, interaction)
    try:
        result = method(**call_kwargs(method, interaction))
        if interaction.is_stream:
            return [dump(chunk) for chunk in result], None
        return dump(result), None
    except openai.OpenAIError as exc:
        return None, exc


async def run_async(client: Any, interaction: Interaction) -> tuple[Any, Optional[BaseException]]:
    method = method_for(client, interaction)
    try:
        result = await method(**call_kwargs(method, interaction))
        if interaction.is_stream:
            return [dump(chunk) async for chunk in result], None
        return dump(result), None
    except openai.OpenAIError as exc:
        return None, exc


def expected_provider(interaction: Interaction) -> str:
    url = interaction.url
    if "openai.azure.com" in url:
        return "azure.ai.openai"
    if "api.openai.com" in url:
        return "openai"
    if "localhost:8000" in url:
        return "vllm"
    if "openrouter.ai" in url:
        return "openrouter"
    if "api.deepseek.com" in url:
        return "deepseek"
    raise AssertionError(f"no expected provider for {url}")


def expected_usage(interaction: Interaction) -> dict[str, int]:
    """The gen_ai.usage.* attributes the recording implies, computed from the raw JSON."""
    usage = interaction.recorded_usage()
    if not usage:
        return {}
    out = {}
    input_tokens = usage.get("prompt_tokens", usage.get("input_tokens"))
    output_tokens = usage.get("completion_tokens", usage.get("output_tokens"))
    if input_tokens is not None:
        out["gen_ai.usage.input_tokens"] = input_tokens
    if output_tokens is not None and interaction.endpoint != "/embeddings":
        out["gen_ai.usage.output_tokens"] = output_tokens
    details_in = usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {}
    if details_in.get("cached_tokens") is not None:
        out["gen_ai.usage.cache_read.input_tokens"] = details_in["cached_tokens"]
    details_out = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    if details_out.get("reasoning_tokens") is not None:
        out["gen_ai.usage.reasoning.output_tokens"] = details_out["reasoning_tokens"]
    return out


def check_span(
    cap: Captured, interaction: Interaction, model: str, error: Optional[BaseException]
) -> None:
    """Exactly one CLIENT span with the operation, provider, usage and status the recording implies."""
    (span,) = cap.spans
    attrs = dict(span.attributes or {})
    operation = OPERATIONS[interaction.endpoint]
    assert span.name == f"{operation} {model}"
    assert span.kind.name == "CLIENT"
    assert attrs["gen_ai.operation.name"] == operation
    assert attrs["gen_ai.provider.name"] == expected_provider(interaction)
    assert attrs["gen_ai.request.model"] == model
    assert attrs["server.address"] == interaction.url.split("/")[2].split(":")[0]
    assert isinstance(attrs["server.port"], int)
    tokens = {
        k: v for k, v in attrs.items() if k.startswith("gen_ai.usage.") and k.endswith("_tokens")
    }
    recorded = expected_usage(interaction)
    if error is not None:
        assert tokens == {}
    elif recorded:
        assert tokens == recorded
        assert "otelite.usage.estimated" not in attrs
    else:
        # The server sent no usage (a stream without include_usage): counted, and marked so.
        assert attrs["otelite.usage.estimated"] is True
        assert tokens["gen_ai.usage.input_tokens"] > 0
    check_cost(attrs, interaction, call_time(span.start_time))
    assert not CONTENT_KEYS & attrs.keys(), "content must not be captured by default"
    if error is None:
        assert span.status.status_code.name == "UNSET"
        assert "error.type" not in attrs
    else:
        assert span.status.status_code.name == "ERROR"
        assert attrs["error.type"] == f"{type(error).__module__}.{type(error).__qualname__}"
    if attrs["gen_ai.provider.name"] != "openai":
        assert not [k for k in attrs if k.startswith("openai.")], (
            "openai.* only for provider openai"
        )
    points = cap.metrics()["gen_ai.client.operation.duration"]
    assert len(points) == 1
    assert points[0]["count"] == 1
    assert points[0]["attributes"]["gen_ai.provider.name"] == attrs["gen_ai.provider.name"]
    if error is not None:
        assert points[0]["attributes"]["error.type"] == attrs["error.type"]


# gen_ai.provider.name -> genai-prices provider id (the test's own map, independent of otelite's)
CATALOG_PROVIDERS = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "deepseek": "deepseek",
    "openrouter": "openrouter",
}


def call_time(start_time_ns: Optional[int]) -> dt.datetime:
    """The instant a call started (its span's start time): both sides price the call then."""
    assert start_time_ns is not None
    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(
        microseconds=start_time_ns // 1000
    )


def expected_cost(
    attrs: dict[str, Any], interaction: Interaction, when: dt.datetime
) -> Optional[float]:
    """The cost from the genai-prices library itself (the catalog otelite's snapshot comes from),
    at the call's own start time: never "now", so time-of-day prices agree at any hour."""
    import genai_prices

    provider = CATALOG_PROVIDERS.get(attrs["gen_ai.provider.name"])
    if provider is None:
        return None
    details = {
        "input_tokens": attrs.get("gen_ai.usage.input_tokens", 0),
        "output_tokens": attrs.get("gen_ai.usage.output_tokens", 0),
        "cache_read_tokens": attrs.get("gen_ai.usage.cache_read.input_tokens", 0),
    }
    usage = interaction.recorded_usage() or {}
    audio = (usage.get("prompt_tokens_details") or {}).get("audio_tokens")
    if audio:
        details["input_audio_tokens"] = audio
    audio_out = (usage.get("completion_tokens_details") or {}).get("audio_tokens")
    if audio_out:
        details["output_audio_tokens"] = audio_out
    tier = response_service_tier(interaction)
    for model in (attrs.get("gen_ai.response.model"), attrs["gen_ai.request.model"]):
        if not model:
            continue
        try:
            result = genai_prices.calc_price(
                genai_prices.Usage(**details),
                model,
                provider_id=provider,
                genai_request_timestamp=when,
                price_context={"service_tier": tier} if tier else None,
            )
        except LookupError:
            continue
        return float(result.total_price)
    return None


def response_service_tier(interaction: Interaction) -> Optional[str]:
    """The service tier the server reported (the last one seen in a stream)."""
    if interaction.status >= 400:
        return None
    if not interaction.is_stream:
        tier = interaction.response_json().get("service_tier")
        return tier if isinstance(tier, str) else None
    found = None
    for event in interaction.sse_events():
        source = event.get("response") if isinstance(event.get("response"), dict) else event
        if isinstance(source.get("service_tier"), str):
            found = source["service_tier"]
    return found


def check_cost(attrs: dict[str, Any], interaction: Interaction, when: dt.datetime) -> None:
    """Priced calls carry the catalog's cost and provenance; unpriced ones are marked, never $0."""
    if "gen_ai.usage.input_tokens" not in attrs:
        assert "gen_ai.usage.cost" not in attrs
        return
    if importlib.util.find_spec("genai_prices") is None:
        # genai-prices needs Python 3.11+; there the figure is checked against it.
        assert ("gen_ai.usage.cost" in attrs) is not attrs.get("otelite.cost.unpriced", False)
        return
    expected = expected_cost(attrs, interaction, when)
    if expected is None:
        assert "gen_ai.usage.cost" not in attrs
        assert attrs["otelite.cost.unpriced"] is True
        return
    assert attrs["gen_ai.usage.cost"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert attrs["otelite.cost.source"] == "genai-prices"
    assert attrs["otelite.cost.estimated"] is bool(attrs.get("otelite.usage.estimated", False))


def model_of(interaction: Interaction) -> str:
    body = interaction.request or {}
    if "/openai/deployments/" in interaction.url:
        return interaction.url.split("/deployments/")[1].split("/")[0]
    return str(body["model"])


@pytest.mark.parametrize("name", all_cassettes())
def test_replay_sync(name: str) -> None:
    """Sync client: each recorded call gives exactly one correct span, and the caller's result is unchanged."""
    interactions = load(name)
    otelite.uninstrument_openai()
    plain_client, plain_replay = make_client(interactions)
    plain = [run_sync(plain_client, i) for i in interactions]
    otelite.instrument_openai()
    client, replay = make_client(interactions)
    for interaction, (plain_result, plain_error) in zip(interactions, plain):
        with capture_spans() as cap:
            result, error = run_sync(client, interaction)
        assert result == plain_result
        assert type(error) is type(plain_error)
        check_span(cap, interaction, model_of(interaction), error)
    assert replay.mismatches == plain_replay.mismatches == []


@pytest.mark.parametrize("name", all_cassettes())
def test_replay_async(name: str) -> None:
    """Async client: the same, one correct span per call."""
    interactions = load(name)
    client, replay = make_client(interactions, is_async=True)

    async def main() -> None:
        for interaction in interactions:
            with capture_spans() as cap:
                _, error = await run_async(client, interaction)
            check_span(cap, interaction, model_of(interaction), error)

    asyncio.run(main())
    assert replay.mismatches == []


DEEPSEEK_CASSETTE = (
    "openllmetry/test_streaming_with_api_usage/test_streaming_with_api_usage_capture.yaml"
)


@pytest.mark.parametrize(
    ("hour", "minute", "off_peak"),
    [(3, 0, False), (20, 0, True), (16, 29, False), (16, 30, True), (0, 29, True), (0, 30, False)],
    ids=["03:00", "20:00", "16:29", "16:30", "00:29", "00:30"],
)
def test_deepseek_cassette_priced_at_pinned_call_time(
    monkeypatch: pytest.MonkeyPatch, hour: int, minute: int, off_peak: bool
) -> None:
    """The recorded DeepSeek stream, replayed at a pinned clock: off-peak (16:30-00:30 UTC) costs half."""
    import opentelemetry.sdk.trace as sdk_trace

    when = dt.datetime(2026, 11, 28, hour, minute, tzinfo=dt.timezone.utc)
    start_ns = int(when.timestamp()) * 10**9
    monkeypatch.setattr(sdk_trace, "time_ns", lambda: start_ns)
    (interaction,) = load(DEEPSEEK_CASSETTE)
    client, replay = make_client([interaction])
    with capture_spans() as cap:
        run_sync(client, interaction)
    assert replay.mismatches == []
    (span,) = cap.spans
    assert span.start_time == start_ns
    attrs = dict(span.attributes or {})
    tokens_in = attrs["gen_ai.usage.input_tokens"]
    cached = attrs.get("gen_ai.usage.cache_read.input_tokens", 0)
    tokens_out = attrs["gen_ai.usage.output_tokens"]
    rates = (0.135, 0.035, 0.55) if off_peak else (0.27, 0.07, 1.1)
    expected = ((tokens_in - cached) * rates[0] + cached * rates[1] + tokens_out * rates[2]) / 1e6
    assert attrs["gen_ai.usage.cost"] == pytest.approx(expected, rel=1e-12)
    check_cost(attrs, interaction, when)
