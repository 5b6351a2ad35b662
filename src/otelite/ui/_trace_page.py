"""One trace (``/trace/ID``): its spans as a waterfall, each with its LLM call, error, scores and content."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from otelite import _semconv as sc
from otelite._exceptions import StoreError
from otelite.cli._content import _CONTENT_KEYS, _messages
from otelite.store import SpanNode, StoredSpan
from otelite.ui._html import esc, money, ms, page, url, utc
from otelite.ui._request import HTTPError, Params, Site

_LLM_OPERATIONS = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS, "generate_content")


def trace(app: Site, params: Params, trace_id: str) -> str:
    """/trace/ID: the trace's spans as a waterfall with their details."""
    if not re.fullmatch(r"[0-9a-fA-F]{1,32}", trace_id):
        raise HTTPError(404, f"trace {trace_id!r}: not a trace id (hexadecimal)")
    with app._store() as (store, _):
        try:
            roots = store.trace_tree(trace_id)
            full = roots[0].span.trace_id if roots else trace_id
            scores = store.scores(trace_id=full)
        except StoreError as exc:
            raise HTTPError(404, str(exc)) from None
    if not roots:
        raise HTTPError(404, f"trace {trace_id!r}: no such trace")
    rows = _walk(roots)
    spans = [s for _, s in rows]
    start = min(s.start_time_ns for s in spans)
    end = max(s.end_time_ns for s in spans)
    total = max(end - start, 1)
    scored: dict[str, list[Any]] = {}
    for item in scores:
        scored.setdefault(item.span_id, []).append(item)
    costs = [
        float(s.attributes[sc.GEN_AI_USAGE_COST])
        for s in spans
        if sc.GEN_AI_USAGE_COST in s.attributes
    ]
    unpriced = sum(1 for s in spans if s.attributes.get(sc.OTELITE_COST_UNPRICED))
    facts = [
        f"<b>{esc(full)}</b>",
        esc(spans[0].resource.get(sc.SERVICE_NAME, "")),
        esc(utc(start)) + " UTC",
        esc(ms(end - start)),
        f"{len(spans)} span{'s' if len(spans) != 1 else ''}",
    ]
    if costs or unpriced:
        facts.append("cost " + esc(money(sum(costs) if costs else None, unpriced)))
    body = [f"<p>{' · '.join(f for f in facts if f)}</p>", "<table class=wf><tbody>"]
    for depth, span in rows:
        error = span.status_code == "ERROR"
        left = (span.start_time_ns - start) / total * 100
        width = span.duration_ns / total * 100
        body.append(
            f'<tr class="span{" error" if error else ""}" id="span-{esc(span.span_id)}">'
            f'<td class=name style="padding-left:{8 + depth * 16}px">{esc(span.name)}</td>'
            f"<td class=n>{esc(ms(span.duration_ns))}</td>"
            f'<td><div class=track><div class="bar{" error" if error else ""}" '
            f'style="left:{left:.3f}%;width:{width:.3f}%" title="{esc(span.name)}"></div></div></td></tr>'
        )
        details = _span_details(span, scored.get(span.span_id, []))
        if details:
            body.append(
                f'<tr class=detail><td colspan=3 style="padding-left:{24 + depth * 16}px">{details}</td></tr>'
            )
    body.append("</tbody></table>")
    if any(s.attributes.get(sc.OTELITE_USAGE_ESTIMATED) for s in spans):
        body.append(
            "<p class=note>(est.) tokens counted by otelite: the provider reported none</p>"
        )
    return page("Trace " + full[:12], "".join(body), nav="/traces")


def _walk(nodes: Sequence[SpanNode], depth: int = 0) -> list[tuple[int, StoredSpan]]:
    out: list[tuple[int, StoredSpan]] = []
    for node in nodes:
        out.append((depth, node.span))
        out.extend(_walk(node.children, depth + 1))
    return out


def _span_details(span: StoredSpan, scores: Sequence[Any]) -> str:
    """The LLM call's figures, the error, scores and captured content of one span, as HTML."""
    a = span.attributes
    out = []
    if a.get(sc.GEN_AI_OPERATION_NAME) in _LLM_OPERATIONS:
        bits = [esc(a.get(sc.GEN_AI_RESPONSE_MODEL) or a.get(sc.GEN_AI_REQUEST_MODEL) or "")]
        if sc.GEN_AI_USAGE_INPUT_TOKENS in a or sc.GEN_AI_USAGE_OUTPUT_TOKENS in a:
            estimated = " (est.)" if a.get(sc.OTELITE_USAGE_ESTIMATED) else ""
            bits.append(
                esc(
                    f"{int(a.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0))} in + "
                    f"{int(a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0))} out tokens{estimated}"
                )
            )
        if sc.GEN_AI_USAGE_COST in a:
            bits.append(esc(money(float(a[sc.GEN_AI_USAGE_COST]))))
        elif a.get(sc.OTELITE_COST_UNPRICED):
            bits.append("no price")
        if sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in a:
            bits.append(
                esc(f"ttfc {float(a[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]) * 1000:.0f}ms")
            )
        prompt, version = a.get(sc.GEN_AI_PROMPT_NAME), a.get(sc.GEN_AI_PROMPT_VERSION)
        if prompt:
            label = f"{prompt} v{version}" if version is not None else str(prompt)
            params = {"b": version} if version is not None else {}
            bits.append(
                f'prompt <a href="{url("/prompts/" + str(prompt), params)}">{esc(label)}</a>'
            )
        out.append(f"<div class=llm>{' · '.join(b for b in bits if b)}</div>")
    if span.status_code == "ERROR":
        reason = span.status_message or a.get(sc.ERROR_TYPE) or "error"
        out.append(f"<div class=err>{esc(reason)}</div>")
    for item in scores:
        shown = " ".join(str(v) for v in (item.value, item.label) if v is not None) or "none"
        verdict = "" if item.passed is None else (" pass" if item.passed else " fail")
        text = item.explanation or item.error or ""
        out.append(
            f"<div class=score>score {esc(item.name)} = {esc(shown)}{verdict}"
            + (f" <span class=dim>({esc(str(text).splitlines()[0])})</span>" if text else "")
            + "</div>"
        )
    # Only what was captured is on the span; what redaction removed never reached it.
    for key in _CONTENT_KEYS:
        if key not in a:
            continue
        for label, texts in _messages(key, a[key], None):
            kind = "tool" if label.startswith("tool") or label in ("arguments", "result") else ""
            body = "\n".join(texts)
            out.append(
                f'<div class="msg {kind}"><span class=role>{esc(label)}</span>: {esc(body)}</div>'
            )
    return f"<div class=details>{''.join(out)}</div>" if out else ""
