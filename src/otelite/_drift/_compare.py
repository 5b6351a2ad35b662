"""Drift between two windows of the local store: reading the calls, and the verdicts.

``otelite drift`` (``otelite.cli._drift``) reads LLM calls of a baseline and a current window
and compares them per group (model, prompt, ...):

* distributions (input and output tokens, latency, time to first chunk, cost per call):
  PSI on the baseline's deciles and the two-sample Kolmogorov-Smirnov test;
* rates (errors, refusals, truncations, failed online checks): two-proportion z-test;
* score means: a two-sample z-test on the means (Welch's standard error);
* with ``content=True`` and captured content: the Unicode script mix of the users'
  input text (PSI and chi-square) and the Jensen-Shannon divergence of its tiktoken
  unigrams against its chance level.

Numbers are read with SQL (no span is decoded); message text is read only when the
content metrics are asked for. The statistics are in ``_statistics``; the thresholds
and their rationale in :class:`Thresholds` and docs/monitoring.md.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

from otelite import _semconv as sc
from otelite import _tokens
from otelite._drift._statistics import (
    chi_square,
    dominant_script,
    js_against_chance,
    ks_2samp,
    psi,
    psi_categorical,
    sum_counts,
    two_proportion_z,
    welch_z,
)
from otelite.store import _schema as _sqlite

__all__ = ["DriftReport", "DriftRow", "Thresholds", "Window", "compare", "user_text"]

MAX_CONTENT_CALLS = 2000  # per window and group: the content comparison reads an even sample
_LLM_OPERATIONS = ("chat", "text_completion", "generate_content", "embeddings")

STABLE = "stable"
DRIFTED = "drifted"
NOT_ENOUGH = "not enough data"


# --- thresholds and windows ---------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """When a comparison is called drifted (see docs/monitoring.md for the rationale).

    A distribution (or the script mix) has drifted when its shift is both large enough
    (PSI) and more than chance (KS or chi-square p-value below ``alpha``): PSI alone is
    inflated by small samples (about (bins - 1)(1/n + 1/m) with no change at all: 0.6
    for 30 calls a window), and a test alone flags shifts too small to matter once a
    window holds thousands of calls.

    Attributes:
        psi: PSI at or above which a significant shift counts (0.1: the credit scoring
            convention's "moderate shift"; 0.25 is its "major shift").
        alpha: significance level of the KS, chi-square, two-proportion and mean tests
            (0.01: a daily cron over ~10 metrics raises a false alarm about once in ten
            days, not daily).
        js: how far the Jensen-Shannon divergence (base 2) of input token unigrams must
            rise above its chance level (:func:`js_against_chance`) for the inputs to have
            drifted (0.1: another topic in the same domain rises 0.1 to 0.16 above it,
            another language about 0.5; the same traffic does not rise above it).
        min_calls: fewer values than this in either window gives "not enough data".
    """

    psi: float = 0.1
    alpha: float = 0.01
    js: float = 0.1
    min_calls: int = 30

    def as_dict(self) -> dict[str, Any]:
        """The thresholds as JSON-ready values."""
        return {
            "psi": self.psi,
            "alpha": self.alpha,
            "js": self.js,
            "min_calls": self.min_calls,
        }


@dataclass(frozen=True)
class Window:
    """A half-open time range [start_ns, end_ns) of span start times."""

    start_ns: int
    end_ns: int


@dataclass(frozen=True)
class DriftRow:
    """One metric of one group compared between the windows."""

    group: tuple[Optional[str], ...]
    metric: str
    kind: str  # distribution | rate | mean | categories | unigrams
    baseline: dict[str, Any]
    current: dict[str, Any]
    statistics: dict[str, Any]
    verdict: str  # stable | drifted | not enough data
    reason: str

    @property
    def drifted(self) -> bool:
        """Whether this row passed a threshold."""
        return self.verdict == DRIFTED


@dataclass(frozen=True)
class DriftReport:
    """Every compared row, with the windows and thresholds used."""

    baseline: Window
    current: Window
    by: tuple[str, ...]
    thresholds: Thresholds
    rows: list[DriftRow] = field(default_factory=list)
    tokenizer: Optional[str] = None  # the unigrams' encoding, "words" when none could load

    @property
    def drifted(self) -> list[DriftRow]:
        """The rows that drifted."""
        return [r for r in self.rows if r.drifted]


# --- reading the store ------------------------------------------------------------------------

# (metric, SQL of its value per call)
_DISTRIBUTIONS = (
    ("input_tokens", "s.input_tokens"),
    ("output_tokens", "s.output_tokens"),
    ("latency_ms", "(s.end_time_ns - s.start_time_ns) / 1e6"),
    ("ttfc_ms", "s.ttfc_s * 1000.0"),
    ("cost_usd", "s.cost_usd"),
)
_FINISH = f"json_extract(s.attributes, '$.\"{sc.GEN_AI_RESPONSE_FINISH_REASONS}\"')"
_CHECKS = f"json_extract(s.attributes, '$.\"{sc.OTELITE_CHECKS_FAILED}\"')"
# (metric, SQL that is 1 when the call counts): finish reasons and failed checks are JSON arrays.
_RATES = (
    ("error_rate", "s.status_code = 'ERROR'"),
    (
        "refusal_rate",
        f"(COALESCE(instr({_FINISH}, '\"content_filter\"'), 0) > 0 "
        f"OR COALESCE(instr({_CHECKS}, '\"refusal\"'), 0) > 0)",
    ),
    (
        "truncation_rate",
        f"(COALESCE(instr({_FINISH}, '\"length\"'), 0) > 0 "
        f"OR COALESCE(instr({_FINISH}, '\"max_tokens\"'), 0) > 0 "
        f"OR COALESCE(instr({_CHECKS}, '\"truncated\"'), 0) > 0)",
    ),
    ("check_failure_rate", f"COALESCE({_CHECKS} NOT IN ('[]', ''), 0)"),
)
_APP_TRAFFIC = "COALESCE(json_extract(s.attributes, '$.\"otelite.traffic\"'), 'app') = 'app'"

GroupKey = tuple[Optional[str], ...]
Tokenizer = Callable[[str], list[Any]]


def _calls_filter() -> str:
    ops = ",".join("?" for _ in _LLM_OPERATIONS)
    return f"s.operation IN ({ops}) AND s.start_time_ns >= ? AND s.start_time_ns < ? AND {_APP_TRAFFIC}"


def _window_params(window: Window) -> list[Any]:
    return [*_LLM_OPERATIONS, window.start_ns, window.end_ns]


_FROM = "FROM spans s LEFT JOIN resources r ON r.id = s.resource_id"


def _keys_sql(by: Sequence[tuple[str, str]]) -> str:
    return ", ".join(f"{expr} AS k{i}" for i, (_, expr) in enumerate(by)) or "NULL AS k0"


def _width(by: Sequence[tuple[str, str]]) -> int:
    return max(1, len(by))


def _group(row: Sequence[Any], width: int, by: Sequence[tuple[str, str]]) -> GroupKey:
    return tuple(None if v is None else str(v) for v in row[:width]) if by else ()


def _read_values(
    conn: sqlite3.Connection, window: Window, by: Sequence[tuple[str, str]]
) -> dict[GroupKey, dict[str, list[float]]]:
    """Per group, each distribution metric's values (calls without the value left out)."""
    values_sql = ", ".join(expr for _, expr in _DISTRIBUTIONS)
    cursor = conn.execute(
        f"SELECT {_keys_sql(by)}, {values_sql} {_FROM} WHERE {_calls_filter()}",
        _window_params(window),
    )
    width = _width(by)
    out: dict[GroupKey, dict[str, list[float]]] = {}
    for row in cursor:
        metrics = out.setdefault(_group(row, width, by), {m: [] for m, _ in _DISTRIBUTIONS})
        for (metric, _), value in zip(_DISTRIBUTIONS, row[width:]):
            if value is not None:
                metrics[metric].append(float(value))
    return out


def _read_rates(
    conn: sqlite3.Connection, window: Window, by: Sequence[tuple[str, str]]
) -> dict[GroupKey, tuple[int, dict[str, int]]]:
    """Per group, the number of calls and of calls counted by each rate (one SQL aggregate)."""
    width = _width(by)
    sums = ", ".join(f"TOTAL({expr})" for _, expr in _RATES)
    groups = ", ".join(f"k{i}" for i in range(width))
    rows = conn.execute(
        f"SELECT {_keys_sql(by)}, COUNT(*), {sums} {_FROM} WHERE {_calls_filter()} GROUP BY {groups}",
        _window_params(window),
    ).fetchall()
    return {
        _group(row, width, by): (
            int(row[width]),
            {metric: int(v) for (metric, _), v in zip(_RATES, row[width + 1 :])},
        )
        for row in rows
    }


def _read_scores(
    conn: sqlite3.Connection, window: Window, by: Sequence[tuple[str, str]]
) -> dict[GroupKey, dict[str, list[float]]]:
    """Per group, each score name's values, for scores recorded in the window."""
    if not _sqlite.has_scores(conn):
        return {}
    width = _width(by)
    cursor = conn.execute(
        f"""SELECT {_keys_sql(by)}, e.name, e.value FROM scores e
            LEFT JOIN spans s ON s.trace_id = e.trace_id AND s.span_id = e.span_id
            LEFT JOIN resources r ON r.id = s.resource_id
            WHERE e.time_ns >= ? AND e.time_ns < ? AND e.value IS NOT NULL""",
        (window.start_ns, window.end_ns),
    )
    out: dict[GroupKey, dict[str, list[float]]] = {}
    for row in cursor:
        out.setdefault(_group(row, width, by), {}).setdefault(str(row[width]), []).append(
            float(row[width + 1])
        )
    return out


def user_text(messages_json: str) -> str:
    """The text parts of the user messages in a ``gen_ai.input.messages`` JSON value."""
    try:
        messages = json.loads(messages_json)
    except ValueError:
        return ""
    texts: list[str] = []
    if not isinstance(messages, list):
        return ""
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        for part in message.get("parts") or ():
            if (
                isinstance(part, dict)
                and isinstance(part.get("content"), str)
                and part.get("type", "text") == "text"
            ):
                texts.append(part["content"])
    return "\n".join(texts)


@dataclass
class _Content:
    calls: int = 0
    scripts: Counter[str] = field(default_factory=Counter)
    unigrams: list[Counter[Any]] = field(default_factory=list)  # one table per call


def _read_content(
    conn: sqlite3.Connection, window: Window, by: Sequence[tuple[str, str]], tokenize: Tokenizer
) -> dict[GroupKey, _Content]:
    """Per group, the script of each call's user text and the unigrams of all of it.

    Parsing and tokenizing text is the slow part (milliseconds a call), so a group with
    more than :data:`MAX_CONTENT_CALLS` calls with content is read at an even stride.
    """
    width = _width(by)
    messages = f"json_extract(s.attributes, '$.\"{sc.GEN_AI_INPUT_MESSAGES}\"')"
    groups = ", ".join(f"k{i}" for i in range(width))
    strides = {
        _group(row, width, by): -(-int(row[width]) // MAX_CONTENT_CALLS)
        for row in conn.execute(
            f"SELECT {_keys_sql(by)}, COUNT(*) {_FROM} WHERE {_calls_filter()} "
            f"AND {messages} IS NOT NULL GROUP BY {groups}",
            _window_params(window),
        )
    }
    seen: Counter[GroupKey] = Counter()
    cursor = conn.execute(
        f"SELECT {_keys_sql(by)}, {messages} {_FROM} WHERE {_calls_filter()} "
        f"AND {messages} IS NOT NULL ORDER BY s.start_time_ns",  # the stride spans the window
        _window_params(window),
    )
    out: dict[GroupKey, _Content] = {}
    for row in cursor:
        group = _group(row, width, by)
        seen[group] += 1
        if (seen[group] - 1) % strides.get(group, 1):
            continue
        text = user_text(str(row[width]))
        if not text.strip():
            continue
        content = out.setdefault(group, _Content())
        content.calls += 1
        content.scripts[dominant_script(text) or "none"] += 1
        content.unigrams.append(Counter(tokenize(text)))
    return out


def default_tokenizer(wait: Optional[float] = None) -> tuple[Tokenizer, str]:
    """o200k_base token ids (today's OpenAI encoding), or words when it cannot be loaded."""
    encoder = _tokens._load(_tokens.O200K, wait)
    if encoder is None:
        return (lambda text: text.split()), "words"

    def tokenize(text: str) -> list[Any]:
        return list(encoder.encode(text, disallowed_special=()))

    return tokenize, _tokens.O200K


# --- verdicts ---------------------------------------------------------------------------------


def _percentile(ordered: Sequence[float], percent: float) -> float:
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def _summary(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    return {
        "n": len(values),
        "mean": sum(values) / len(values),
        "p50": _percentile(ordered, 50),
        "p95": _percentile(ordered, 95),
    }


def _distribution_row(
    group: GroupKey, metric: str, base: Sequence[float], cur: Sequence[float], t: Thresholds
) -> DriftRow:
    summaries = (_summary(base), _summary(cur))
    if min(len(base), len(cur)) < t.min_calls:
        return DriftRow(group, metric, "distribution", *summaries, {}, NOT_ENOUGH, _few(t))
    index = psi(base, cur)
    d, p = ks_2samp(base, cur)
    stats = {"psi": index, "ks": d, "p_value": p}
    verdict, reason = _shift_verdict(index, p, "KS", t)
    return DriftRow(group, metric, "distribution", *summaries, stats, verdict, reason)


def _shift_verdict(index: float, p: float, test: str, t: Thresholds) -> tuple[str, str]:
    """Drifted when the shift is large (PSI) and more than chance (the test's p-value)."""
    if p >= t.alpha:
        return STABLE, f"{test} p {p:.2g} >= {t.alpha:g} (PSI {index:.3g})"
    if index < t.psi:
        return STABLE, f"PSI {index:.3g} < {t.psi:g} ({test} p {p:.2g})"
    return DRIFTED, f"PSI {index:.3g} >= {t.psi:g} and {test} p {p:.2g} < {t.alpha:g}"


def _few(t: Thresholds) -> str:
    return f"fewer than {t.min_calls} in a window"


def _rate_row(
    group: GroupKey, metric: str, base: tuple[int, int], cur: tuple[int, int], t: Thresholds
) -> DriftRow:
    (x1, n1), (x2, n2) = base, cur
    summaries = (
        {"n": n1, "count": x1, "rate": x1 / n1 if n1 else None},
        {"n": n2, "count": x2, "rate": x2 / n2 if n2 else None},
    )
    if min(n1, n2) < t.min_calls:
        return DriftRow(group, metric, "rate", *summaries, {}, NOT_ENOUGH, _few(t))
    z, p = two_proportion_z(x1, n1, x2, n2)
    verdict = DRIFTED if p < t.alpha else STABLE
    reason = f"z {z:.3g}, p {p:.2g} {'<' if p < t.alpha else '>='} {t.alpha:g}"
    return DriftRow(group, metric, "rate", *summaries, {"z": z, "p_value": p}, verdict, reason)


def _mean_row(
    group: GroupKey, metric: str, base: Sequence[float], cur: Sequence[float], t: Thresholds
) -> DriftRow:
    summaries = (_summary(base), _summary(cur))
    if min(len(base), len(cur)) < max(2, t.min_calls):
        return DriftRow(group, metric, "mean", *summaries, {}, NOT_ENOUGH, _few(t))
    z, p = welch_z(base, cur)
    verdict = DRIFTED if p < t.alpha else STABLE
    reason = f"z {z:.3g}, p {p:.2g} {'<' if p < t.alpha else '>='} {t.alpha:g}"
    return DriftRow(group, metric, "mean", *summaries, {"z": z, "p_value": p}, verdict, reason)


def _content_rows(
    group: GroupKey, base: Optional[_Content], cur: Optional[_Content], t: Thresholds
) -> list[DriftRow]:
    base, cur = base or _Content(), cur or _Content()
    mix = (
        {"n": base.calls, "scripts": dict(base.scripts.most_common())},
        {"n": cur.calls, "scripts": dict(cur.scripts.most_common())},
    )
    base_sample, cur_sample = base.unigrams, cur.unigrams
    base_total, cur_total = sum_counts(base_sample), sum_counts(cur_sample)
    words = (
        {"n": len(base_sample), "tokens": sum(base_total.values()), "distinct": len(base_total)},
        {"n": len(cur_sample), "tokens": sum(cur_total.values()), "distinct": len(cur_total)},
    )
    if min(base.calls, cur.calls) < t.min_calls:
        return [
            DriftRow(group, "input_script", "categories", *mix, {}, NOT_ENOUGH, _few(t)),
            DriftRow(group, "input_unigrams", "unigrams", *words, {}, NOT_ENOUGH, _few(t)),
        ]
    index = psi_categorical(base.scripts, cur.scripts)
    stat, p = chi_square(base.scripts, cur.scripts)
    script_verdict, script_reason = _shift_verdict(index, p, "chi-square", t)
    script_stats = {"psi": index, "chi_square": stat, "p_value": p}
    rows = [
        DriftRow(
            group, "input_script", "categories", *mix, script_stats, script_verdict, script_reason
        )
    ]
    if not base_total or not cur_total:
        rows.append(DriftRow(group, "input_unigrams", "unigrams", *words, {}, NOT_ENOUGH, _few(t)))
        return rows
    js, chance = js_against_chance(base_sample, cur_sample)
    excess = js - chance
    verdict = DRIFTED if excess >= t.js else STABLE
    reason = (
        f"JS {js:.3g}, {excess:.3g} above chance {chance:.3g} "
        f"{'>=' if excess >= t.js else '<'} {t.js:g}"
    )
    stats = {"js": js, "js_chance": chance, "js_excess": excess}
    rows.append(DriftRow(group, "input_unigrams", "unigrams", *words, stats, verdict, reason))
    return rows


def _sort_key(group: GroupKey) -> list[tuple[int, str]]:
    return [(0, "") if v is None else (1, v) for v in group]


def compare(
    store: Union[str, os.PathLike[str], None],
    baseline: Window,
    current: Window,
    *,
    by: Sequence[tuple[str, str]] = (),
    thresholds: Thresholds = Thresholds(),
    content: bool = False,
    tokenizer: Optional[tuple[Tokenizer, str]] = None,
) -> DriftReport:
    """Compare the LLM calls of two windows of a local store.

    Args:
        store: the store directory or ``.db`` file (default ``$OTELITE_HOME`` or ``.otelite``).
        baseline, current: the windows.
        by: ``(name, SQL expression)`` pairs that group the calls (``otelite.cli._drift`` maps
            ``--by`` names to the expressions of ``otelite stats``).
        thresholds: when a row is drifted.
        content: also compare the users' input text (script mix, token unigrams); only
            then is message content read.
        tokenizer: ``(function, name)`` splitting text into unigrams; default o200k_base.

    Raises:
        StoreError: no store there, or not readable.
    """
    path = _sqlite.resolve_store_path(store)
    conn = _sqlite.open_for_reading(path)
    tokenizer_name: Optional[str] = None
    try:
        values = [_read_values(conn, w, by) for w in (baseline, current)]
        rates = [_read_rates(conn, w, by) for w in (baseline, current)]
        scores = [_read_scores(conn, w, by) for w in (baseline, current)]
        texts: list[dict[GroupKey, _Content]] = [{}, {}]
        if content:
            tokenize, tokenizer_name = tokenizer or default_tokenizer()
            texts = [_read_content(conn, w, by, tokenize) for w in (baseline, current)]
    finally:
        conn.close()
    report = DriftReport(
        baseline, current, tuple(name for name, _ in by), thresholds, tokenizer=tokenizer_name
    )
    groups = set(values[0]) | set(values[1]) | set(scores[0]) | set(scores[1])
    for group in sorted(groups, key=_sort_key):
        if group in values[0] or group in values[1]:
            empty: dict[str, list[float]] = {}
            base_values = values[0].get(group, empty)
            cur_values = values[1].get(group, empty)
            for metric, _ in _DISTRIBUTIONS:
                a, b = base_values.get(metric, []), cur_values.get(metric, [])
                if a or b:
                    report.rows.append(_distribution_row(group, metric, a, b, thresholds))
            n1, counts1 = rates[0].get(group, (0, {}))
            n2, counts2 = rates[1].get(group, (0, {}))
            for metric, _ in _RATES:
                report.rows.append(
                    _rate_row(
                        group,
                        metric,
                        (counts1.get(metric, 0), n1),
                        (counts2.get(metric, 0), n2),
                        thresholds,
                    )
                )
        base_scores, cur_scores = scores[0].get(group, {}), scores[1].get(group, {})
        for name in sorted(set(base_scores) | set(cur_scores)):
            report.rows.append(
                _mean_row(
                    group,
                    f"score:{name}",
                    base_scores.get(name, []),
                    cur_scores.get(name, []),
                    thresholds,
                )
            )
        if content and (group in texts[0] or group in texts[1]):
            report.rows.extend(
                _content_rows(group, texts[0].get(group), texts[1].get(group), thresholds)
            )
    return report
