"""`otelite drift`: the statistics against hand-computed values, and the command on stores
with a planted shift, a stable pair, empty or small windows, and bad flags."""

from __future__ import annotations

import json
import math
import random
import re
import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from otelite import _drift, _tokens
from otelite._drift import _compare, _statistics
from otelite._export import LocalStoreExporter
from otelite.cli import main
from otelite.testing import SequentialIdGenerator

DAY = 86_400 * 1_000_000_000
MS = 1_000_000
T0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
NOW = "2026-01-09"  # relative windows: baseline Jan 1-8, current Jan 8-9
ENGLISH = "What is the weather in Paris today?"
RUSSIAN = "Какая сегодня погода в Париже?"


# --- the statistics ---------------------------------------------------------------------------


def test_psi_hand_computed() -> None:
    """PSI on the baseline's medians: shares 1/2, 1/2 against 1/4, 3/4 give ln(3)/4."""
    assert _drift.psi([1, 2, 3, 4], [1, 3, 4, 4], bins=2) == pytest.approx(math.log(3) / 4)
    assert _drift.psi([1, 2, 3, 4], [4, 3, 2, 1], bins=2) == 0.0


def test_psi_floors_an_empty_bin() -> None:
    """A bin the current window leaves empty counts with share 1e-4, not 0 (no infinite PSI)."""
    expected = (1e-4 - 0.5) * math.log(1e-4 / 0.5) + 0.5 * math.log(2)
    assert _drift.psi([1, 2, 3, 4], [3, 4, 4, 4], bins=2) == pytest.approx(expected)


def test_quantile_edges_merge_ties() -> None:
    """Repeated deciles make one edge, and no edge sits at the maximum."""
    assert _drift.quantile_edges([1, 1, 1, 1, 2]) == [1]
    assert _drift.quantile_edges(list(range(1, 11))) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert _drift.quantile_edges([5, 5, 5]) == []


def test_psi_categorical_hand_computed() -> None:
    """Scripts 90/10 against 50/50: 0.4 ln 5 + 0.4 ln 9/5 = 0.4 ln 9; a new category counts."""
    assert _drift.psi_categorical({"Latin": 9, "Cyrillic": 1}, {"Latin": 5, "Cyrillic": 5}) == (
        pytest.approx(0.4 * math.log(9))
    )
    expected = (1e-4 - 1) * math.log(1e-4) + (1 - 1e-4) * math.log(1 / 1e-4)
    assert _drift.psi_categorical({"Latin": 3}, {"Han": 3}) == pytest.approx(expected)


def test_ks_hand_computed() -> None:
    """D is the largest gap between the empirical CDFs; p is Kolmogorov's series at sqrt(nm/(n+m)) D."""
    d, p = _drift.ks_2samp([1, 2, 3, 4], [3, 4, 5, 6])
    assert d == 0.5
    assert p == pytest.approx(2 * sum((-1) ** (j - 1) * math.exp(-j * j) for j in range(1, 6)))
    assert _drift.ks_2samp([1, 1, 2], [1, 2, 2])[0] == pytest.approx(1 / 3)
    assert _drift.ks_2samp([1, 2, 3], [1, 2, 3]) == (0.0, 1.0)
    assert _drift.ks_2samp([1, 2], [10, 20])[0] == 1.0


def test_two_proportion_z_hand_computed() -> None:
    """5/100 against 15/100: pooled 0.1, z = 0.1 / sqrt(0.1 * 0.9 * 0.02); equal rates give z 0."""
    z, p = _drift.two_proportion_z(5, 100, 15, 100)
    assert z == pytest.approx(0.1 / math.sqrt(0.0018))
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert p == pytest.approx(0.018422, abs=1e-6)
    assert _drift.two_proportion_z(0, 40, 0, 40) == (0.0, 1.0)
    assert _drift.two_proportion_z(4, 40, 2, 20) == (0.0, 1.0)


def test_welch_z_hand_computed() -> None:
    """Means 0.5 and 0.75, variances 1/3 and 1/4 over 4 values: z = 0.25 / sqrt(1/12 + 1/16)."""
    z, p = _drift.welch_z([0.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0])
    assert z == pytest.approx(0.25 / math.sqrt(1 / 12 + 1 / 16))
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert _drift.welch_z([1.0, 1.0], [1.0, 1.0]) == (0.0, 1.0)
    assert _drift.welch_z([1.0, 1.0], [0.0, 0.0]) == (-math.inf, 0.0)


def test_jensen_shannon_hand_computed() -> None:
    """P = (1/2, 1/2), Q = (1, 0): JS = (KL(P||M) + KL(Q||M)) / 2 with M = (3/4, 1/4), in bits."""
    kl_p = 0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25)
    kl_q = math.log2(1 / 0.75)
    assert _drift.jensen_shannon({"a": 1, "b": 1}, {"a": 3}) == pytest.approx((kl_p + kl_q) / 2)
    assert _drift.jensen_shannon({"a": 1}, {"b": 5}) == 1.0
    assert _drift.jensen_shannon({"a": 2, "b": 6}, {"a": 1, "b": 3}) == 0.0


def test_chi_square_hand_computed() -> None:
    """30/10 against 10/30: every cell 10 from its expected 20, chi-square 20 on 1 degree of
    freedom (p = erfc(sqrt(10))); one shared category is no change."""
    stat, p = _drift.chi_square({"Latin": 30, "Cyrillic": 10}, {"Latin": 10, "Cyrillic": 30})
    assert stat == 20.0
    assert p == pytest.approx(math.erfc(math.sqrt(10)))
    assert _drift.chi_square({"Latin": 4}, {"Latin": 9}) == (0.0, 1.0)
    # 3 categories, 2 degrees of freedom: p = exp(-stat / 2).
    stat, p = _drift.chi_square({"a": 10, "b": 10, "c": 10}, {"a": 20, "b": 5, "c": 5})
    assert p == pytest.approx(math.exp(-stat / 2))


def test_js_against_chance_hand_computed() -> None:
    """One call a window: both splits of the pooled pair give the same divergence, so the
    chance level equals it; identical calls give 0 and 0."""
    js, chance = _drift.js_against_chance([{"a": 1, "b": 1}], [{"a": 3}])
    assert js == pytest.approx(_drift.jensen_shannon({"a": 1, "b": 1}, {"a": 3}))
    assert chance == js
    assert _drift.js_against_chance([{"x": 2}] * 5, [{"x": 1}] * 7) == (0.0, 0.0)
    # The same calls in both windows are one more re-split: the excess is not positive here.
    calls = [{"w": i % 3, "v": i % 5 + 1} for i in range(40)]
    js, chance = _drift.js_against_chance(calls[::2], calls[1::2])
    assert js <= chance


def test_statistics_refuse_empty_samples() -> None:
    """An empty sample is a ValueError naming the statistic, never a division by zero."""
    for call in (
        lambda: _drift.psi([], [1.0]),
        lambda: _drift.ks_2samp([1.0], []),
        lambda: _drift.two_proportion_z(0, 0, 1, 3),
        lambda: _drift.welch_z([1.0], [1.0, 2.0]),
        lambda: _drift.jensen_shannon({}, {"a": 1}),
        lambda: _drift.js_against_chance([], [{"a": 1}]),
        lambda: _drift.chi_square({}, {"a": 1}),
    ):
        with pytest.raises(
            ValueError,
            match=r"^(psi|ks_2samp|two_proportion_z|welch_z|jensen_shannon|js_against_chance|chi_square): ",
        ):
            call()


def test_statistics_match_scipy() -> None:
    """On 200 and 150 seeded values, KS, the z-tests and JS agree with scipy's."""
    scipy_stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    distance = pytest.importorskip("scipy.spatial.distance")
    rng = random.Random(17)
    a = [rng.gauss(100, 15) for _ in range(200)]
    b = [rng.gauss(108, 20) for _ in range(150)]
    d, p = _drift.ks_2samp(a, b)
    assert d == pytest.approx(scipy_stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert p == pytest.approx(float(special.kolmogorov(math.sqrt(200 * 150 / 350) * d)), rel=1e-9)
    z, p = _drift.welch_z(a, b)
    welch = scipy_stats.ttest_ind(b, a, equal_var=False)
    assert z == pytest.approx(welch.statistic, rel=1e-9)
    assert p == pytest.approx(2 * scipy_stats.norm.sf(abs(z)), rel=1e-9)
    z, p = _drift.two_proportion_z(12, 200, 27, 150)
    assert p == pytest.approx(2 * scipy_stats.norm.sf(abs(z)), rel=1e-9)
    table = {"Latin": 50, "Cyrillic": 7, "Han": 3, "Arabic": 1}
    other = {"Latin": 31, "Cyrillic": 20, "Han": 9}
    stat, p = _drift.chi_square(table, other)
    keys = sorted(table.keys() | other.keys())
    expected = scipy_stats.chi2_contingency(
        [[table.get(k, 0) for k in keys], [other.get(k, 0) for k in keys]], correction=False
    )
    assert stat == pytest.approx(expected.statistic, rel=1e-9)
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
    for x, df in ((0.5, 1), (3.0, 4), (40.0, 7), (2.0, 9)):
        assert _statistics._upper_gamma_regularized(df / 2, x / 2) == pytest.approx(
            scipy_stats.chi2.sf(x, df), rel=1e-9
        )
    counts_p = {i: rng.randint(0, 9) + 1 for i in range(30)}
    counts_q = {i: rng.randint(0, 9) + (5 if i < 10 else 0) for i in range(30)}
    js = _drift.jensen_shannon(counts_p, counts_q)
    vec_p = [counts_p[i] for i in range(30)]
    vec_q = [counts_q[i] for i in range(30)]
    assert js == pytest.approx(distance.jensenshannon(vec_p, vec_q, base=2) ** 2, rel=1e-9)


def test_dominant_script() -> None:
    """The script of most letters wins; digits and punctuation have none."""
    assert _drift.dominant_script(ENGLISH) == "Latin"
    assert _drift.dominant_script(RUSSIAN) == "Cyrillic"
    assert _drift.dominant_script("Hello, Привет мир") == "Cyrillic"
    assert _drift.dominant_script("今天天气怎么样") == "Han"
    assert _drift.dominant_script("こんにちは") == "Japanese"
    assert _drift.dominant_script("مرحبا") == "Arabic"
    assert _drift.dominant_script("42 + 7 = ?") is None


def test_user_text_reads_only_user_text_parts() -> None:
    """System, assistant and tool parts are not the users' input; bad JSON gives no text."""
    messages = [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "one"}, {"type": "image"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "two"}]},
        {"role": "user", "parts": [{"type": "text", "content": "three"}]},
    ]
    assert _drift.user_text(json.dumps(messages)) == "one\nthree"
    assert _drift.user_text("{not json") == ""
    assert _drift.user_text('{"role": "user"}') == ""


# --- stores with planted shifts -----------------------------------------------------------------


def _messages(text: str) -> str:
    return json.dumps([{"role": "user", "parts": [{"type": "text", "content": text}]}])


def write_calls(path: Path, calls: Sequence[dict[str, Any]]) -> Path:
    """Write one chat span per call: ``start`` (ns), ``ms`` latency, optional ``model``,
    ``error``, ``text`` (captured input), ``score``, and any extra ``attrs``."""
    provider = TracerProvider(
        resource=Resource({"service.name": "drift", "service.version": "1.0"}),
        id_generator=SequentialIdGenerator(),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(LocalStoreExporter(path / "otelite.db")))
    tracer = provider.get_tracer("otelite")
    for call in calls:
        model = call.get("model", "gpt-4o-mini")
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": call.get("tokens_in", 100),
            "gen_ai.usage.output_tokens": call.get("tokens_out", 20),
            "gen_ai.usage.cost": 0.0001,
            **call.get("attrs", {}),
        }
        if "text" in call:
            attrs["gen_ai.input.messages"] = _messages(call["text"])
        span = tracer.start_span(
            f"chat {model}", kind=SpanKind.CLIENT, start_time=call["start"], attributes=attrs
        )
        if "score" in call:
            span.add_event(
                "gen_ai.evaluation.result",
                {
                    "gen_ai.evaluation.name": "helpful",
                    "gen_ai.evaluation.score.value": call["score"],
                },
                timestamp=call["start"] + MS,
            )
        if call.get("error"):
            span.set_attribute("error.type", "openai.RateLimitError")
            span.set_status(Status(StatusCode.ERROR, "RateLimitError"))
        span.end(end_time=call["start"] + call["ms"] * MS)
    provider.shutdown()
    return path


def window_calls(
    day: int,
    count: int = 40,
    *,
    ms: Optional[Sequence[float]] = None,
    errors: int = 0,
    text: Optional[str] = None,
    **extra: Any,
) -> list[dict[str, Any]]:
    """``count`` calls spread over day ``day`` after T0, latencies 100..139 ms by default."""
    latencies = ms if ms is not None else [100 + i for i in range(count)]
    calls = []
    for i in range(count):
        call: dict[str, Any] = {
            "start": T0 + day * DAY + i * 60_000 * MS,
            "ms": latencies[i],
            "error": i < errors,
            **extra,
        }
        if text is not None:
            call["text"] = text
        calls.append(call)
    return calls


def run_drift(capsys: pytest.CaptureFixture[str], store: Path, *flags: str) -> tuple[int, str]:
    code = main(["drift", "--store", str(store), "--now", NOW, *flags])
    return code, capsys.readouterr().out


def drift_json(capsys: pytest.CaptureFixture[str], store: Path, *flags: str) -> tuple[int, Any]:
    code, out = run_drift(capsys, store, "--json", *flags)
    return code, json.loads(out)


def verdicts(data: Any) -> dict[tuple[Any, ...], str]:
    return {(*r["group"].values(), r["metric"]): r["verdict"] for r in data["rows"]}


def test_planted_shift_names_the_drifted_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Latency doubled, errors 1/40 -> 15/40, English -> Russian inputs: exactly those rows drift."""
    store = write_calls(
        tmp_path,
        window_calls(1, errors=1, text=ENGLISH)
        + window_calls(7, ms=[200 + 2 * i for i in range(40)], errors=15, text=RUSSIAN),
    )
    code, data = drift_json(capsys, store, "--content")
    assert code == 1
    assert verdicts(data) == {
        ("input_tokens",): "stable",
        ("output_tokens",): "stable",
        ("latency_ms",): "drifted",
        ("cost_usd",): "stable",
        ("error_rate",): "drifted",
        ("refusal_rate",): "stable",
        ("truncation_rate",): "stable",
        ("check_failure_rate",): "stable",
        ("input_script",): "drifted",
        ("input_unigrams",): "drifted",
    }
    assert data["drifted"] == 4
    assert data["baseline"] == {
        "start": "2026-01-01 00:00:00",
        "end": "2026-01-08 00:00:00",
        "start_ns": T0,
        "end_ns": T0 + 7 * DAY,
    }
    assert data["current"]["start_ns"] == T0 + 7 * DAY
    assert data["current"]["end_ns"] == T0 + 8 * DAY
    rows = {r["metric"]: r for r in data["rows"]}
    # Every current latency is above the baseline's top decile edge (135 ms): one bin holds all.
    latency_psi = 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + 0.9 * math.log(10)
    kolmogorov = _drift.kolmogorov_sf(math.sqrt(20))  # D = 1 with 40 and 40 values
    assert rows["latency_ms"] == {
        "group": {},
        "metric": "latency_ms",
        "kind": "distribution",
        "baseline": {"n": 40, "mean": 119.5, "p50": 119.0, "p95": 137.0},
        "current": {"n": 40, "mean": 239.0, "p50": 238.0, "p95": 274.0},
        "statistics": {
            "psi": pytest.approx(latency_psi),
            "ks": 1.0,
            "p_value": pytest.approx(kolmogorov, abs=1e-15),
        },
        "verdict": "drifted",
        "reason": f"PSI {latency_psi:.3g} >= 0.1 and KS p {kolmogorov:.2g} < 0.01",
    }
    z = (15 / 40 - 1 / 40) / math.sqrt(0.2 * 0.8 * (2 / 40))
    assert rows["error_rate"]["baseline"] == {"n": 40, "count": 1, "rate": 0.025}
    assert rows["error_rate"]["current"] == {"n": 40, "count": 15, "rate": 0.375}
    assert rows["error_rate"]["statistics"]["z"] == pytest.approx(z)
    assert rows["error_rate"]["statistics"]["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)))
    assert rows["input_script"]["baseline"] == {"n": 40, "scripts": {"Latin": 40}}
    assert rows["input_script"]["current"] == {"n": 40, "scripts": {"Cyrillic": 40}}
    script_psi = 2 * (1 - 1e-4) * math.log(1 / 1e-4)
    assert rows["input_script"]["statistics"] == {
        "psi": pytest.approx(script_psi),
        "chi_square": 80.0,  # every cell 40 away from its expected 20: 4 * 40**2 / 20
        "p_value": pytest.approx(math.erfc(math.sqrt(40))),  # 1 degree of freedom
    }
    encoder = _tokens._load(_tokens.O200K, None)
    english, russian = Counter(encoder.encode(ENGLISH)), Counter(encoder.encode(RUSSIAN))
    unigrams = rows["input_unigrams"]
    js = _drift.jensen_shannon(english, russian)  # 40 copies of each: the same shares
    assert js > 0.8  # only "?" and spaces are shared
    # Re-splits mix English and Russian calls in both halves: far below the observed value.
    chance = unigrams["statistics"]["js_chance"]
    assert 0 < chance < js - 0.1
    assert unigrams["statistics"] == {
        "js": pytest.approx(js),
        "js_chance": chance,
        "js_excess": pytest.approx(js - chance),
    }
    assert unigrams["baseline"] == {
        "n": 40,
        "tokens": 40 * sum(english.values()),
        "distinct": len(english),
    }
    assert unigrams["reason"] == f"JS {js:.3g}, {js - chance:.3g} above chance {chance:.3g} >= 0.1"
    assert data["tokenizer"] == "o200k_base"
    assert "ttfc_ms" not in rows  # no stream in either window: no row rather than "no data"

    code, out = run_drift(capsys, store, "--content")
    assert code == 1
    assert "4 of 10 rows drifted: latency_ms, error_rate, input_script, input_unigrams" in out
    assert f"drifted: PSI {latency_psi:.3g} >= 0.1 and KS p {kolmogorov:.2g} < 0.01" in out


def test_stable_pair_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same traffic in both windows (order shuffled): every row is stable, exit 0."""
    latencies = [100 + i for i in range(40)]
    shuffled = latencies[::-1]
    store = write_calls(
        tmp_path,
        window_calls(1, ms=latencies, errors=2, text=ENGLISH)
        + window_calls(7, ms=shuffled, errors=2, text=ENGLISH),
    )
    code, data = drift_json(capsys, store, "--content")
    assert code == 0
    assert set(verdicts(data).values()) == {"stable"}
    assert len(data["rows"]) == 10
    code, out = run_drift(capsys, store)
    assert code == 0
    assert out.splitlines()[-1] == "no drift in 8 compared rows"


def test_empty_window_is_not_enough_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No call in the baseline: every row says "not enough data" and the exit code is 0."""
    store = write_calls(tmp_path, window_calls(7, errors=30))
    code, data = drift_json(capsys, store)
    assert code == 0
    assert set(verdicts(data).values()) == {"not enough data"}
    assert {r["reason"] for r in data["rows"]} == {"fewer than 30 in a window"}
    assert data["rows"][0]["baseline"] == {"n": 0}
    code, out = run_drift(capsys, store)
    assert code == 0
    assert "8 rows: not enough data (fewer than 30 values in a window" in out


def test_no_calls_in_either_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Windows with no LLM call at all say so (not enough data), exit 0."""
    store = write_calls(tmp_path, window_calls(30, count=3))
    code, out = run_drift(capsys, store)
    assert code == 0
    assert "not enough data: no LLM calls in either window" in out


def test_min_calls_decides_when_a_verdict_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """10 calls a window is too few by default; with --min-calls 5 the doubled latency drifts."""
    store = write_calls(
        tmp_path, window_calls(1, count=10) + window_calls(7, count=10, ms=[300] * 10)
    )
    code, data = drift_json(capsys, store)
    assert code == 0
    assert verdicts(data)[("latency_ms",)] == "not enough data"
    code, data = drift_json(capsys, store, "--min-calls", "5")
    assert code == 1
    assert verdicts(data)[("latency_ms",)] == "drifted"
    assert data["thresholds"] == {
        "psi": 0.1,
        "alpha": 0.01,
        "js": 0.1,
        "min_calls": 5,
    }


def test_by_model_names_the_group_that_drifted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--by model compares each model on its own: only gpt-4o's latency and errors moved."""
    calls = (
        window_calls(1, model="gpt-4o")
        + window_calls(1, model="gpt-4o-mini")
        + window_calls(7, model="gpt-4o", ms=[400 + i for i in range(40)], errors=20)
        + window_calls(7, model="gpt-4o-mini")
    )
    store = write_calls(tmp_path, calls)
    code, data = drift_json(capsys, store, "--by", "model")
    assert code == 1
    drifted = sorted(k for k, v in verdicts(data).items() if v == "drifted")
    assert drifted == [("gpt-4o", "error_rate"), ("gpt-4o", "latency_ms")]
    assert data["by"] == ["model"]
    code, out = run_drift(capsys, store, "--by", "model")
    assert "2 of 16 rows drifted: gpt-4o latency_ms, gpt-4o error_rate" in out


def test_by_prompt_and_prompt_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`prompt` groups every version of a prompt; `prompt_version` keeps NAME@VERSION apart."""
    v1 = {"gen_ai.prompt.name": "qa", "gen_ai.prompt.version": 1}
    v2 = {"gen_ai.prompt.name": "qa", "gen_ai.prompt.version": 2}
    store = write_calls(
        tmp_path,
        window_calls(1, count=20, attrs=v1)
        + window_calls(1, count=20, attrs=v2)
        + window_calls(7, count=40, attrs=v2),
    )
    _, data = drift_json(capsys, store, "--by", "prompt")
    assert {tuple(r["group"].values()) for r in data["rows"]} == {("qa",)}
    _, data = drift_json(capsys, store, "--by", "prompt_version", "--min-calls", "20")
    groups = {tuple(r["group"].values()) for r in data["rows"]}
    assert groups == {("qa@1",), ("qa@2",)}
    assert verdicts(data)[("qa@1", "latency_ms")] == "not enough data"


def test_refusal_truncation_and_check_rates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refusals (content_filter, a failed refusal check), truncations (length) and failed
    checks are counted per call and compared as rates."""
    kinds = (
        [{"gen_ai.response.finish_reasons": ["content_filter"]}] * 5
        + [{"otelite.checks.failed": ["refusal"], "gen_ai.response.finish_reasons": ["stop"]}] * 5
        + [{"gen_ai.response.finish_reasons": ["length"], "otelite.checks.failed": ["truncated"]}]
        * 10
        + [{"gen_ai.response.finish_reasons": ["stop"]}] * 20
    )
    current = [dict(c, attrs=a) for c, a in zip(window_calls(7), kinds)]
    store = write_calls(tmp_path, window_calls(1, attrs={"otelite.checks.failed": []}) + current)
    code, data = drift_json(capsys, store)
    rows = {r["metric"]: r for r in data["rows"]}
    assert rows["refusal_rate"]["current"] == {"n": 40, "count": 10, "rate": 0.25}
    assert rows["truncation_rate"]["current"] == {"n": 40, "count": 10, "rate": 0.25}
    assert rows["check_failure_rate"]["current"] == {"n": 40, "count": 15, "rate": 0.375}
    assert rows["refusal_rate"]["baseline"] == {"n": 40, "count": 0, "rate": 0.0}
    assert rows["check_failure_rate"]["baseline"] == {"n": 40, "count": 0, "rate": 0.0}
    assert [m for m, v in verdicts(data).items() if v == "drifted"] == [
        ("refusal_rate",),
        ("truncation_rate",),
        ("check_failure_rate",),
    ]
    assert code == 1


def test_score_means(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A score whose mean falls from about 0.9 to about 0.5 drifts (Welch z on the means)."""
    base = [dict(c, score=0.8 + 0.2 * (i % 2)) for i, c in enumerate(window_calls(1))]
    cur = [dict(c, score=0.4 + 0.2 * (i % 2)) for i, c in enumerate(window_calls(7))]
    store = write_calls(tmp_path, base + cur)
    code, data = drift_json(capsys, store)
    row = {r["metric"]: r for r in data["rows"]}["score:helpful"]
    assert row["kind"] == "mean"
    assert row["baseline"]["mean"] == pytest.approx(0.9)
    assert row["current"]["mean"] == pytest.approx(0.5)
    variance = 0.01 * 40 / 39  # values 0.1 either side of the mean
    assert row["statistics"]["z"] == pytest.approx(-0.4 / math.sqrt(2 * variance / 40))
    assert row["verdict"] == "drifted"
    assert code == 1


def test_evaluation_traffic_is_left_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Judge and dataset-run calls (otelite.traffic=evaluation) are not the app's traffic."""
    judges = window_calls(7, ms=[5000] * 40, attrs={"otelite.traffic": "evaluation"})
    store = write_calls(tmp_path, window_calls(1) + window_calls(7) + judges)
    code, data = drift_json(capsys, store)
    assert code == 0
    assert {r["metric"]: r for r in data["rows"]}["latency_ms"]["current"]["n"] == 40


def test_content_is_compared_only_when_asked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --content no text is read and no content row appears; without captured
    content, --content adds no row either."""
    store = write_calls(tmp_path, window_calls(1, text=ENGLISH) + window_calls(7, text=RUSSIAN))
    code, data = drift_json(capsys, store)
    assert code == 0
    assert data["tokenizer"] is None
    assert not {"input_script", "input_unigrams"} & {r["metric"] for r in data["rows"]}
    bare = write_calls(tmp_path / "bare", window_calls(1) + window_calls(7))
    code, data = drift_json(capsys, bare, "--content")
    assert code == 0
    assert not {"input_script", "input_unigrams"} & {r["metric"] for r in data["rows"]}


def test_unigrams_fall_back_to_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no tiktoken encoding, unigrams are words, and the output says so."""
    monkeypatch.setattr(_tokens, "_load", lambda encoding, wait: None)
    store = write_calls(tmp_path, window_calls(1, text="a b c d") + window_calls(7, text="a b c e"))
    code, data = drift_json(capsys, store, "--content")
    assert code == 1
    assert data["tokenizer"] == "words"
    row = {r["metric"]: r for r in data["rows"]}["input_unigrams"]
    # P = Q = 1/4 on a, b, c; d and e alone: JS = 2 * (1/2 * 1/4 * log2(2)) = 1/4.
    assert row["statistics"]["js"] == pytest.approx(0.25)
    assert row["statistics"]["js_excess"] >= 0.1
    assert row["baseline"] == {"n": 40, "tokens": 160, "distinct": 4}
    assert row["verdict"] == "drifted"
    _, out = run_drift(capsys, store, "--content")
    assert "input unigrams are words: the o200k_base encoding could not be loaded" in out


def test_explicit_ranges(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--baseline-range and --current-range take ISO dates or times (UTC unless they say)."""
    store = write_calls(tmp_path, window_calls(1) + window_calls(3, ms=[900] * 40))
    code, data = drift_json(
        capsys,
        store,
        "--baseline-range",
        "2026-01-02..2026-01-03",
        "--current-range",
        "2026-01-04T00:00:00Z..2026-01-04T12:00+00:00",
    )
    assert code == 1
    assert data["baseline"]["start_ns"] == T0 + DAY
    assert data["current"] == {
        "start": "2026-01-04 00:00:00",
        "end": "2026-01-04 12:00:00",
        "start_ns": T0 + 3 * DAY,
        "end_ns": T0 + 3 * DAY + DAY // 2,
    }
    code, data = drift_json(capsys, store, "--current-range", "2026-01-04..2026-01-05")
    assert data["baseline"]["start_ns"] == T0 + 3 * DAY - 7 * DAY  # the 7 days before it


def test_custom_thresholds_change_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A moderate, significant shift drifts at the default PSI 0.1; --psi-threshold 0.25
    (the convention's "major shift") makes the same data stable."""
    rng = random.Random(3)
    base = [rng.gauss(100, 10) for _ in range(400)]
    cur = [rng.gauss(103, 10) for _ in range(400)]
    store = write_calls(tmp_path, window_calls(1, 400, ms=base) + window_calls(7, 400, ms=cur))
    code, data = drift_json(capsys, store)
    row = {r["metric"]: r for r in data["rows"]}["latency_ms"]
    stats = row["statistics"]
    assert 0.1 <= stats["psi"] < 0.25
    assert stats["p_value"] < 0.01
    assert row["verdict"] == "drifted"
    assert row["reason"] == f"PSI {stats['psi']:.3g} >= 0.1 and KS p {stats['p_value']:.2g} < 0.01"
    assert code == 1
    code, data = drift_json(capsys, store, "--psi-threshold", "0.25")
    row = {r["metric"]: r for r in data["rows"]}["latency_ms"]
    assert row["verdict"] == "stable"
    assert row["reason"] == f"PSI {stats['psi']:.3g} < 0.25 (KS p {stats['p_value']:.2g})"
    assert code == 0


def test_small_samples_of_one_population_are_stable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """30 calls a window from one latency distribution: PSI is large by chance alone
    (about 9 * 2/30), KS says it is chance, and the verdict is stable."""
    rng = random.Random(4)
    base = [rng.lognormvariate(5, 0.5) for _ in range(30)]
    cur = [rng.lognormvariate(5, 0.5) for _ in range(30)]
    store = write_calls(tmp_path, window_calls(1, 30, ms=base) + window_calls(7, 30, ms=cur))
    code, data = drift_json(capsys, store)
    row = {r["metric"]: r for r in data["rows"]}["latency_ms"]
    stats = row["statistics"]
    assert stats["psi"] > 0.25
    assert stats["p_value"] >= 0.01
    assert row["verdict"] == "stable"
    assert row["reason"] == f"KS p {stats['p_value']:.2g} >= 0.01 (PSI {stats['psi']:.3g})"
    assert code == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--baseline", "7x"], "argument --baseline: '7x' is not a positive duration"),
        (["--current", "0d"], "argument --current: '0d' is not a positive duration"),
        (["--by", "colour"], "argument --by: unknown key 'colour'; valid keys: model,"),
        (["--alpha", "2"], "argument --alpha: '2': a significance level is between 0 and 1"),
        (["--psi-threshold", "-1"], "argument --psi-threshold: '-1' is not a positive number"),
        (["--min-calls", "1"], "argument --min-calls: '1' is not a whole number of at least 2"),
        (
            ["--baseline-range", "2026-01-01"],
            "argument --baseline-range: '2026-01-01' is not a range",
        ),
        (["--current-range", "2026-01-08..2026-01-01"], "END must come after START"),
        (["--current-range", "yesterday..today"], "'yesterday' is not a date"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    """A malformed flag is a usage error (exit 2) whose message names the flag."""
    with pytest.raises(SystemExit) as exited:
        main(["drift", "--store", str(tmp_path), *flags])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            ["--baseline", "7d", "--baseline-range", "2026-01-01..2026-01-02"],
            "otelite drift: --baseline and --baseline-range: give one of them, not both",
        ),
        (
            ["--current", "1d", "--current-range", "2026-01-01..2026-01-02"],
            "otelite drift: --current and --current-range: give one of them, not both",
        ),
    ],
)
def test_contradicting_flags_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    """Flags that contradict each other exit 2 with a message naming both."""
    store = write_calls(tmp_path, window_calls(1, count=1))
    assert main(["drift", "--store", str(store), *flags]) == 2
    assert message in capsys.readouterr().err


def test_missing_store_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No store at --store: exit 2 with the store error, no traceback."""
    assert main(["drift", "--store", str(tmp_path / "nowhere")]) == 2
    assert "otelite drift: " in capsys.readouterr().err


def test_docs_examples_match_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/monitoring.md's `$ otelite drift` table and JSON row are what the planted store prints."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "monitoring.md").read_text("utf-8")
    section = text[text.index("## Drift between two windows") :]
    command, _, shown = re.findall(r"```text\n(.*?)```", section, re.DOTALL)[0].partition("\n")
    assert command == "$ otelite drift --content"
    store = write_calls(
        tmp_path,
        window_calls(1, errors=1, text=ENGLISH)
        + window_calls(7, ms=[200 + 2 * i for i in range(40)], errors=15, text=RUSSIAN),
    )
    code, out = run_drift(capsys, store, *shlex.split(command)[3:])
    assert code == 1
    assert out == shown
    row = json.loads(re.findall(r"```json\n(.*?)```", section, re.DOTALL)[0])
    _, data = drift_json(capsys, store)
    assert {r["metric"]: r for r in data["rows"]}["latency_ms"] == row


def test_content_is_read_at_an_even_stride(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_CONTENT_CALLS calls with content, a window's texts are read at an even
    stride: 40 calls and a cap of 10 read every 4th (n 10), numbers still count all 40."""
    monkeypatch.setattr(_compare, "MAX_CONTENT_CALLS", 10)
    texts = [ENGLISH if i % 4 == 0 else RUSSIAN for i in range(40)]
    calls = [dict(c, text=t) for c, t in zip(window_calls(1), texts)]
    store = write_calls(tmp_path, calls + window_calls(7, text=ENGLISH))
    code, data = drift_json(capsys, store, "--content", "--min-calls", "10")
    rows = {r["metric"]: r for r in data["rows"]}
    assert rows["input_script"]["baseline"] == {"n": 10, "scripts": {"Latin": 10}}
    assert rows["input_script"]["current"] == {"n": 10, "scripts": {"Latin": 10}}
    assert rows["input_unigrams"]["baseline"]["n"] == 10
    assert rows["latency_ms"]["baseline"]["n"] == 40
    assert code == 0


def test_by_two_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--by model,user groups by both; a call without a user groups under "-" in the table."""
    calls = (
        window_calls(1, attrs={"user.id": "u1"})
        + window_calls(1, model="gpt-4o")
        + window_calls(7, attrs={"user.id": "u1"}, ms=[500] * 40)
        + window_calls(7, model="gpt-4o")
    )
    store = write_calls(tmp_path, calls)
    code, data = drift_json(capsys, store, "--by", "model,user")
    assert code == 1
    assert data["by"] == ["model", "user"]
    assert {(r["group"]["model"], r["group"]["user"]) for r in data["rows"]} == {
        ("gpt-4o", None),
        ("gpt-4o-mini", "u1"),
    }
    assert sorted(k for k, v in verdicts(data).items() if v == "drifted") == [
        ("gpt-4o-mini", "u1", "latency_ms")
    ]
    _, out = run_drift(capsys, store, "--by", "model,user")
    assert "1 of 16 rows drifted: gpt-4o-mini/u1 latency_ms" in out
    assert any(line.startswith("gpt-4o, -  ") for line in out.splitlines())
