"""Pricing under time: off-peak windows and dated price changes priced at each call's start."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any, Optional

import pytest

import otelite
from fakeopenai import Recorder, chat_completion, client, json_response
from otelite import _pricing
from otelite._pricing import TokenUsage, price_call
from otelite.testing import capture_spans

UTC = dt.timezone.utc
MESSAGES = [{"role": "user", "content": "hi"}]
# deepseek-chat in the catalog: standard price 00:30-16:30 UTC, half price (off-peak) otherwise.
PEAK = {"input": 0.27, "cache_read": 0.07, "output": 1.1}
OFF_PEAK = {"input": 0.135, "cache_read": 0.035, "output": 0.55}
USAGE = TokenUsage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=200_000)
HAS_GENAI_PRICES = importlib.util.find_spec("genai_prices") is not None


def usd(rates: dict[str, float]) -> float:
    """The cost of USAGE at these rates (USD per million tokens)."""
    return 0.8 * rates["input"] + 0.2 * rates["cache_read"] + 1.0 * rates["output"]


def at(hh: int, mm: int, ss: int = 0, us: int = 0, day: int = 28) -> dt.datetime:
    return dt.datetime(2026, 11, day, hh, mm, ss, us, tzinfo=UTC)


WINDOWS = [
    pytest.param(at(3, 0), PEAK, id="03:00-peak"),
    pytest.param(at(20, 0), OFF_PEAK, id="20:00-off-peak"),
    pytest.param(at(0, 29, 59, 999_999), OFF_PEAK, id="00:29:59.999999-off-peak"),
    pytest.param(at(0, 30), PEAK, id="00:30-peak-starts"),
    pytest.param(at(16, 29, 59, 999_999), PEAK, id="16:29:59.999999-peak"),
    pytest.param(at(16, 30), OFF_PEAK, id="16:30-off-peak-starts"),
    pytest.param(at(0, 0), OFF_PEAK, id="midnight-off-peak"),
    pytest.param(at(23, 59, 59, 999_999), OFF_PEAK, id="23:59:59.999999-off-peak"),
]


pytestmark = pytest.mark.usefixtures("openai_instrumented")


@pytest.fixture(autouse=True)
def _fresh_warnings() -> None:
    """Unknown-model warnings are reset per test."""
    _pricing._reset_warnings_for_tests()


@pytest.fixture
def pinned_clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Pins the clock spans are stamped with; returns a setter taking an aware datetime."""
    import opentelemetry.sdk.trace as sdk_trace

    def pin(when: dt.datetime) -> int:
        ns = epoch_ns(when)
        monkeypatch.setattr(sdk_trace, "time_ns", lambda: ns)
        return ns

    return pin


def epoch_ns(when: dt.datetime) -> int:
    """``when`` as nanoseconds since the epoch, exactly (an OpenTelemetry timestamp)."""
    return ((when - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(microseconds=1)) * 1000


def genai_prices_cost(provider: str, model: str, usage: TokenUsage, when: dt.datetime) -> float:
    """The cost genai-prices itself computes for this call at ``when``."""
    import genai_prices

    result = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
        ),
        model,
        provider_id=provider,
        genai_request_timestamp=when,
    )
    return float(result.total_price)


@pytest.mark.parametrize(("when", "rates"), WINDOWS)
def test_deepseek_priced_at_call_time_both_windows(
    when: dt.datetime, rates: dict[str, float]
) -> None:
    """deepseek-chat costs the off-peak half price in 16:30-00:30 UTC and the standard price outside."""
    cost = price_call("deepseek", ("deepseek-chat",), USAGE, None, None, at=when)
    assert cost is not None
    assert cost.usd == pytest.approx(usd(rates), rel=1e-12)
    assert (cost.source, cost.override) == ("genai-prices", False)
    # The same instant as nanoseconds since the epoch (a span's start_time), naive UTC, or another zone.
    ns = epoch_ns(when)
    tokyo = when.astimezone(dt.timezone(dt.timedelta(hours=9)))
    for same in (ns, when.replace(tzinfo=None), tokyo):
        again = price_call("deepseek", ("deepseek-chat",), USAGE, None, None, at=same)
        assert again is not None
        assert again.usd == cost.usd
    if HAS_GENAI_PRICES:
        assert cost.usd == pytest.approx(
            genai_prices_cost("deepseek", "deepseek-chat", USAGE, when), rel=1e-9
        )


@pytest.mark.parametrize(("when", "rates"), WINDOWS)
def test_span_cost_uses_span_start_time(
    pinned_clock: Any, when: dt.datetime, rates: dict[str, float]
) -> None:
    """An instrumented DeepSeek call is priced at its span's start time, with the catalog's provenance."""
    start_ns = pinned_clock(when)
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000}
    handler = Recorder(
        lambda request: json_response(chat_completion(model="deepseek-chat", usage=usage))
    )
    with capture_spans() as cap:
        client(handler, base_url="https://api.deepseek.com/v1").chat.completions.create(
            model="deepseek-chat", messages=MESSAGES
        )
    (span,) = cap.spans
    assert span.start_time == start_ns
    attrs = dict(span.attributes or {})
    assert attrs["gen_ai.provider.name"] == "deepseek"
    assert attrs["gen_ai.usage.cost"] == pytest.approx(rates["input"] + rates["output"], rel=1e-12)
    assert attrs["otelite.cost.source"] == "genai-prices"
    assert attrs["otelite.cost.catalog_version"] == _pricing.catalog().version
    assert attrs["otelite.cost.catalog_date"] == _pricing.catalog().date
    assert attrs["otelite.cost.estimated"] is False
    assert attrs["otelite.cost.override"] is False
    assert "otelite.cost.unpriced" not in attrs


def test_snapshot_keeps_time_of_day_prices() -> None:
    """The bundled snapshot keeps deepseek-chat's daily UTC window instead of freezing one price."""
    data = json.loads(_pricing.CATALOG_PATH.read_text())
    (entry,) = [m for m in data["providers"]["deepseek"]["models"] if m["id"] == "deepseek-chat"]
    assert entry["prices"] == {"input_mtok": 0.135, "cache_read_mtok": 0.035, "output_mtok": 0.55}
    assert entry["conditional_prices"] == [
        {
            "prices": {"input_mtok": 0.27, "cache_read_mtok": 0.07, "output_mtok": 1.1},
            "constraint": {"start_time": "00:30:00", "end_time": "16:30:00"},
        }
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param(
            dt.datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), 0.75 + 3.75, id="before"
        ),
        pytest.param(dt.datetime(2027, 1, 1, tzinfo=UTC), 1.5 + 7.5, id="from-start-date"),
    ],
)
def test_dated_price_change_applies_from_its_utc_date(when: dt.datetime, expected: float) -> None:
    """A catalog price that starts on a date applies from that UTC date on, not from the snapshot's."""
    cost = price_call(
        "gcp.gemini", ("gemini-3.6-flash",), TokenUsage(1_000_000, 1_000_000), None, None, at=when
    )
    assert cost is not None
    assert cost.usd == pytest.approx(expected, rel=1e-12)


@pytest.mark.skipif(not HAS_GENAI_PRICES, reason="genai-prices needs Python 3.11+")
@pytest.mark.parametrize(
    "when",
    [
        at(3, 0),
        at(7, 0),
        at(20, 0),
        at(0, 45),
        dt.datetime(2025, 6, 1, 12, tzinfo=UTC),
        dt.datetime(2027, 2, 1, 2, tzinfo=UTC),
    ],
    ids=str,
)
def test_every_time_dependent_model_agrees_with_genai_prices(when: dt.datetime) -> None:
    """Every snapshot model whose price depends on time costs what genai-prices says at that instant."""
    book = _pricing.catalog()
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=1_000)
    checked = 0
    for provider, provider_id in _pricing.PROVIDER_IDS.items():
        for entry in book._providers[provider_id]["models"]:
            if "conditional_prices" not in entry:
                continue
            name = entry["id"]
            model = book.lookup(provider, name)
            if model is None or not model.time_dependent:
                continue
            try:
                expected = genai_prices_cost(provider_id, name, usage, when)
            except LookupError:
                continue
            cost = price_call(provider, (name,), usage, None, None, at=when)
            assert cost is not None, name
            assert cost.usd == pytest.approx(expected, rel=1e-9, abs=1e-12), (provider, name)
            checked += 1
    assert checked > 50


def test_default_time_is_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a start time, a call is priced at the current UTC time, read when pricing."""
    calls: list[int] = []

    def now() -> dt.datetime:
        calls.append(1)
        return at(20, 0)

    monkeypatch.setattr(_pricing, "_utc_now", now)
    cost = price_call("deepseek", ("deepseek-chat",), USAGE, None, None)
    assert cost is not None
    assert cost.usd == pytest.approx(usd(OFF_PEAK), rel=1e-12)
    assert calls == [1]


GATEWAY = "https://llm-gateway.example.com/v1"


def gateway_call(model: str, response_model: str) -> dict[str, Any]:
    """One chat call through an unrecognised OpenAI-compatible host; the span's attributes."""
    usage = {"prompt_tokens": 1_000_000, "completion_tokens": 1_000_000, "total_tokens": 2_000_000}
    handler = Recorder(
        lambda request: json_response(chat_completion(model=response_model, usage=usage))
    )
    with capture_spans() as cap:
        client(handler, base_url=GATEWAY).chat.completions.create(model=model, messages=MESSAGES)
    (span,) = cap.spans
    return dict(span.attributes or {})


def test_gateway_model_priced_from_catalog_by_unambiguous_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An OpenAI model behind an unknown gateway is priced from the catalog, marked as inferred, with one hint."""
    with caplog.at_level(logging.INFO, logger="otelite"):
        for _ in range(2):
            attrs = gateway_call("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    assert attrs["gen_ai.provider.name"] == "openai_compatible"
    assert attrs["gen_ai.usage.cost"] == pytest.approx(0.15 + 0.6, rel=1e-12)
    assert attrs["otelite.cost.source"] == "genai-prices inferred from the model name (openai)"
    assert attrs["otelite.cost.catalog_version"] == _pricing.catalog().version
    assert attrs["otelite.cost.catalog_date"] == _pricing.catalog().date
    assert attrs["otelite.cost.override"] is False
    assert attrs["otelite.cost.estimated"] is False
    assert "otelite.cost.unpriced" not in attrs
    messages = [r.getMessage() for r in caplog.records if r.name == "otelite"]
    assert messages == [
        "otelite: model 'gpt-4o-mini-2024-07-18' reached through an unrecognised OpenAI-compatible "
        "server is priced from the catalog by its name (openai); its spans say so in "
        "otelite.cost.source. If the server relays that provider (a gateway or proxy), name it: "
        'otelite.register_provider("<host>", "openai") (or the provider it relays).'
    ]
    assert [r.levelno for r in caplog.records if r.name == "otelite"] == [logging.WARNING]


def test_registered_gateway_priced_as_its_provider() -> None:
    """Once the gateway's host is registered as openai, its calls are priced as openai, not inferred."""
    otelite.register_provider("llm-gateway.example.com", "openai")
    try:
        attrs = gateway_call("gpt-4o-mini", "gpt-4o-mini-2024-07-18")
    finally:
        otelite.unregister_provider("llm-gateway.example.com")
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.usage.cost"] == pytest.approx(0.15 + 0.6, rel=1e-12)
    assert attrs["otelite.cost.source"] == "genai-prices"


def test_gateway_model_with_ambiguous_name_stays_unpriced(caplog: pytest.LogCaptureFixture) -> None:
    """A name the catalog prices differently at several providers is not guessed: unpriced, and the hint names them."""
    with caplog.at_level(logging.WARNING, logger="otelite"):
        attrs = gateway_call("deepseek-r1-distill-llama-70b", "deepseek-r1-distill-llama-70b")
    assert "gen_ai.usage.cost" not in attrs
    assert "otelite.cost.source" not in attrs
    assert attrs["otelite.cost.unpriced"] is True
    assert [r.getMessage() for r in caplog.records if r.name == "otelite"] == [
        "otelite: no price for model 'deepseek-r1-distill-llama-70b' at provider 'openai_compatible': "
        "its name matches catalog models at deepseek, groq with different prices, so it is not "
        "guessed; its calls get no cost attribute (marked otelite.cost.unpriced). If the server "
        'relays one of them (a gateway or proxy), name it: otelite.register_provider("<host>", '
        '"openai"); or add the price with configure(prices=...) or OTELITE_PRICES_FILE.'
    ]


def test_gateway_unknown_model_warning_points_to_register_provider(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unknown model at an unrecognised server stays unpriced; the warning says how to name the server."""
    with caplog.at_level(logging.WARNING, logger="otelite"):
        attrs = gateway_call("my-private-model", "my-private-model")
    assert "gen_ai.usage.cost" not in attrs
    assert attrs["otelite.cost.unpriced"] is True
    assert [r.getMessage() for r in caplog.records if r.name == "otelite"] == [
        "otelite: no price for model 'my-private-model' at provider 'openai_compatible'; its calls "
        "get no cost attribute (marked otelite.cost.unpriced). If the server relays a known "
        'provider (a gateway or proxy), name it: otelite.register_provider("<host>", "openai"); '
        "or add the price with configure(prices=...) or OTELITE_PRICES_FILE."
    ]


def test_local_server_models_are_not_inferred() -> None:
    """A recognised self-hosted server (vLLM) is never priced from a cloud catalog by name."""
    cost = price_call("vllm", ("gpt-4o-mini",), USAGE, None, None, at=at(3, 0))
    assert cost is None


# --- unknown cost is not zero: evaluation runs, the store CLI ----------------------------


def eval_run(tmp_path: Path, models: list[str]) -> Any:
    """A 2-row run whose task calls each of ``models`` once per row (fake OpenAI, fixed usage)."""
    from otelite import evals

    handler = Recorder(
        lambda request: json_response(chat_completion(model=json.loads(request.content)["model"]))
    )
    llm = client(handler)

    def task(question: str) -> str:
        for model in models:
            llm.chat.completions.create(model=model, messages=MESSAGES)
        return "4"

    rows = [{"input": "2+2", "expected": "4"}, {"input": "3+1", "expected": "4"}]
    with capture_spans():
        return evals.evaluate(rows, task, [evals.exact_match()], progress=False, name="r")


def run_lines(run: Any, tmp_path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's JSONL: its header's summary and its rows."""
    lines = run.to_jsonl(tmp_path / "run.jsonl").read_text().splitlines()
    return json.loads(lines[0])["summary"], [json.loads(line) for line in lines[1:]]


def test_eval_with_no_priced_call_reports_unknown_cost(tmp_path: Path) -> None:
    """No call priced: the report says the cost is unknown and why; JSON has null, never 0."""
    run = eval_run(tmp_path, ["my-private-model"])
    s = run.summary
    assert (s.task_cost, s.task_llm_calls, s.task_unpriced_calls) == (None, 2, 2)
    assert [(r.cost, r.llm_calls, r.unpriced_calls) for r in run.rows] == [(None, 1, 1)] * 2
    report = run.report()
    assert (
        "  task: cost unknown (2 LLM calls without a price; add the model's price with "
        "configure(prices=...)), latency p50" in report
    )
    assert "$0.000000" not in report
    summary, rows = run_lines(run, tmp_path)
    assert (summary["task_cost"], summary["task_unpriced_calls"]) == (None, 2)
    assert summary["judge_cost"] is None
    assert [(r["cost"], r["llm_calls"], r["unpriced_calls"]) for r in rows] == [(None, 1, 1)] * 2
    again = type(run).from_jsonl(tmp_path / "run.jsonl")
    assert (again.summary.task_cost, again.summary.task_unpriced_calls) == (None, 2)


def test_eval_with_some_priced_calls_flags_the_rest(tmp_path: Path) -> None:
    """Some calls priced: the figure covers those and says how many calls it leaves out."""
    run = eval_run(tmp_path, ["gpt-4o-mini", "my-private-model"])
    per_row = (12 * 0.15 + 3 * 0.6) / 1e6
    s = run.summary
    assert s.task_cost == pytest.approx(2 * per_row)
    assert (s.task_llm_calls, s.task_unpriced_calls) == (4, 2)
    assert "  task: cost $0.0000072 + 2 LLM calls unpriced, latency p50" in run.report()
    summary, rows = run_lines(run, tmp_path)
    assert summary["task_cost"] == pytest.approx(2 * per_row)
    assert summary["task_unpriced_calls"] == 2
    assert [(r["llm_calls"], r["unpriced_calls"]) for r in rows] == [(2, 1)] * 2


def test_eval_without_llm_calls_reports_unknown_not_zero(tmp_path: Path) -> None:
    """A task with no recorded LLM call has an unknown cost, not $0."""
    run = eval_run(tmp_path, [])
    assert run.summary.task_cost is None
    assert "  task: cost unknown (no LLM calls recorded), latency p50" in run.report()
    assert "judges:" not in run.report()
    summary, _ = run_lines(run, tmp_path)
    assert summary["task_cost"] is None


def test_eval_fully_priced_unchanged(tmp_path: Path) -> None:
    """Every call priced: a plain dollar figure, no flag."""
    run = eval_run(tmp_path, ["gpt-4o-mini"])
    per_row = (12 * 0.15 + 3 * 0.6) / 1e6
    assert run.summary.task_cost == pytest.approx(2 * per_row)
    assert run.summary.task_unpriced_calls == 0
    assert "  task: cost $0.0000072, latency p50" in run.report()


T0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
MS = 1_000_000


def cost_store(path: Path) -> Path:
    """A store with a trace of one priced and one unpriced call, and a trace of one unpriced call."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind, set_span_in_context

    from otelite._export import LocalStoreExporter
    from otelite.testing import SequentialIdGenerator

    provider = TracerProvider(
        resource=Resource({"service.name": "snap"}),
        id_generator=SequentialIdGenerator(),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(LocalStoreExporter(path / "otelite.db")))
    tracer = provider.get_tracer("otelite")

    def chat(model: str, start: int, cost: Optional[float], ctx: Any = None) -> None:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": 100,
            "gen_ai.usage.output_tokens": 20,
        }
        if cost is None:
            attrs["otelite.cost.unpriced"] = True
        else:
            attrs["gen_ai.usage.cost"] = cost
        span = tracer.start_span(
            f"chat {model}", context=ctx, kind=SpanKind.CLIENT, start_time=start, attributes=attrs
        )
        span.end(end_time=start + 10 * MS)

    root = tracer.start_span("invoke_workflow mixed", start_time=T0)
    ctx = set_span_in_context(root)
    chat("gpt-4o-mini", T0 + 1 * MS, 0.000027, ctx)
    chat("my-private-model", T0 + 12 * MS, None, ctx)
    root.end(end_time=T0 + 30 * MS)
    chat("my-private-model", T0 + 3600 * 1000 * MS, None)
    provider.shutdown()
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    from otelite.cli import main

    assert main(list(argv)) == 0
    out: str = capsys.readouterr().out
    return out


def test_store_cli_never_shows_unknown_cost_as_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """traces, trace and stats: 'unknown' when no call was priced, '+' and a count when some were."""
    store = str(cost_store(tmp_path / "store"))
    monkeypatch.setenv("COLUMNS", "120")
    assert cli(capsys, "traces", "--store", store) == (
        "ID                               START (UTC)    ROOT                  DURATION LLM  IN OUT       COST ST USER\n"
        "00000000000000000000000000000002 01-01 01:00:00 chat my-private-model   10.0ms   1 100  20    unknown OK -\n"
        "00000000000000000000000000000001 01-01 00:00:00 invoke_workflow mixed   30.0ms   2 200  40 $0.000027+ OK -\n"
        "2 traces; show one with: otelite trace <ID>\n"
        "cost: 'unknown' = no call priced; '+' = some calls have no price (not counted)\n"
    )
    monkeypatch.setenv("COLUMNS", "80")
    traces = json.loads(cli(capsys, "traces", "--store", store, "--json"))
    assert [(t["cost_usd"], t["unpriced_calls"]) for t in traces] == [(None, 1), (0.000027, 1)]
    tree = cli(capsys, "trace", "--store", store, "00000000000000000000000000000001")
    assert tree.splitlines()[:3] == [
        "00000000000000000000000000000001  snap",
        "30.0ms  3 spans  200 in + 40 out tokens  $0.000027+",
        "cost: $0.000027 + 1 LLM call unpriced",
    ]
    assert "    ↳ my-private-model · 100 in + 20 out tokens · no price" in tree
    tree = cli(capsys, "trace", "--store", store, "00000000000000000000000000000002")
    assert tree.splitlines()[:3] == [
        "00000000000000000000000000000002  snap",
        "10.0ms  1 span  100 in + 20 out tokens  unknown",
        "cost: unknown (1 LLM call without a price)",
    ]
    note = "cost: 'unknown' = no call priced; '+' = some calls have no price (not counted)\n"
    footer = "3 LLM calls; 2 without a price (add them with configure(prices=...))\n" + note
    stats = cli(capsys, "stats", "--store", store, "--by", "model")
    assert stats == (
        "MODEL            CALLS ERR%  IN OUT      COST    P50    P95    P99 TTFC EST%\n"
        "my-private-model     2  0.0 200  40   unknown 10.0ms 10.0ms 10.0ms    -    0\n"
        "gpt-4o-mini          1  0.0 100  20 $0.000027 10.0ms 10.0ms 10.0ms    -    0\n" + footer
    )
    assert max(len(line) for line in stats.splitlines()) <= 80
    assert cli(capsys, "stats", "--store", store, "--by", "service") == (
        "SERVICE CALLS ERR%  IN OUT       COST    P50    P95    P99 TTFC EST%\n"
        "snap        3  0.0 300  60 $0.000027+ 10.0ms 10.0ms 10.0ms    -    0\n" + footer
    )
    rows = json.loads(cli(capsys, "stats", "--store", store, "--by", "service", "--json"))
    assert [(r["cost_usd"], r["unpriced"], r["calls"]) for r in rows] == [(0.000027, 2, 3)]
