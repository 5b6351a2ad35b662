"""``otelite export finetune`` and ``otelite export otlp``: recorded data out of the store."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Optional

from otelite._plural import plural
from otelite.cli._errors import EXIT_FAILED, EXIT_USAGE, UsageError
from otelite.cli._format import print_json
from otelite.cli._options import add_store_options, open_store, since_start_ns
from otelite.cli._prompt_ref import resolve_prompt_ref
from otelite.datasets import (
    SKIP_FILTERED,
    SKIP_LOW_SCORE,
    SKIP_NO_CONTENT,
    describe_skipped,
    explain_empty,
    finetune_records,
    write_jsonl,
)
from otelite.store import LocalStore, StoredSpan


def _parse_min_score(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise UsageError(
            f"--min-score {text!r}: write NAME=VALUE, e.g. --min-score correctness=1"
        ) from None


def _llm_calls(store: LocalStore, since_ns: Optional[int], where: dict[str, str]) -> int:
    return sum(row.calls for row in store.stats(["operation"], since_ns=since_ns, where=where))


def cmd_export_finetune(args: argparse.Namespace) -> int:
    out = Path(args.out)
    thresholds = [_parse_min_score(text) for text in args.min_score or ()]
    since_ns = since_start_ns(args)
    prompt = resolve_prompt_ref(args.prompt, "--prompt", args.prompts_dir) if args.prompt else None
    # (option as shown, option name, key of FinetuneResult.removed), in the order they apply
    filters = [
        (f"--prompt {prompt.describe()}" if prompt else "", "--prompt", "prompt"),
        (f"--label {args.label}", "--label", "label"),
        (f"--tag {','.join(args.tag or ())}", "--tag", "tags"),
        ("--min-score " + ",".join(args.min_score or ()), "--min-score", "keep"),
    ]
    removed: dict[str, int] = {}
    shown: list[str] = []
    with open_store(args) as store:
        keep = None
        if thresholds:
            lookups = [(name, limit, store.min_scores(name)) for name, limit in thresholds]

            def keep(span: Any) -> bool:
                # The call's own score counts; else the lowest score anywhere in its trace.
                for _, limit, (by_span, by_trace) in lookups:
                    found = by_span.get((span.trace_id, span.span_id))
                    if found is None:
                        found = by_trace.get(span.trace_id)
                    if found is None or found < limit:
                        return False
                return True

        result = finetune_records(
            store.llm_spans(model=args.model, since_ns=since_ns),
            prompt=prompt.spec if prompt else None,
            label=args.label,
            tags=args.tag or (),
            keep=keep,
        )
        total = result.seen
        if not result.records and (since_ns is not None or args.model):
            # The store filters these two; count what each left out for the report.
            total = _llm_calls(store, None, {})
            after_since = _llm_calls(store, since_ns, {}) if since_ns is not None else total
            for option, option_name, before, after in (
                (f"--since {args.since}", "--since", total, after_since),
                (f"--model {args.model}", "--model", after_since, result.seen),
            ):
                if before - after:
                    removed[option_name] = before - after
                    shown.append(f"{option} removed {before - after}")
    for option, option_name, key in filters:
        if result.removed[key]:
            removed[option_name] = result.removed[key]
            shown.append(f"{option} removed {result.removed[key]}")
    skips = [
        describe_skipped(why, n)
        for why, n in sorted(result.skipped.items())
        if why not in (SKIP_FILTERED, SKIP_LOW_SCORE)
    ]
    summary = {
        "written": len(result.records),
        "out": str(out),
        "skipped": dict(result.skipped),
        "removed_by": removed,
    }
    if not result.records:
        if total == 0 or (not shown and set(result.skipped) == {SKIP_NO_CONTENT}):
            reason = explain_empty(result)  # an empty store, or nothing was captured
        else:
            reason = f"0 of {plural(total, 'LLM call')} kept: {', '.join(shown + skips)}"
        if args.json:
            print_json({**summary, "written": 0, "reason": reason})
        else:
            print(f"nothing written: {reason}", file=sys.stderr)
        return EXIT_FAILED
    write_jsonl(out, result.records)
    if args.json:
        print_json(summary)
    else:
        notes = "; ".join(shown + ([f"skipped: {', '.join(skips)}"] if skips else []))
        print(
            f"wrote {plural(len(result.records), 'example')} to {out}"
            + (f" ({notes})" if notes else "")
        )
    return 0


def _to_readable(span: StoredSpan) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    def context(trace_id: str, span_id: str) -> SpanContext:
        return SpanContext(
            int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=TraceFlags(1)
        )

    def attrs(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v is not None}

    return ReadableSpan(
        name=span.name,
        context=context(span.trace_id, span.span_id),
        parent=context(span.trace_id, span.parent_span_id) if span.parent_span_id else None,
        resource=Resource(attrs(span.resource)),
        attributes=attrs(span.attributes),
        events=[
            Event(e["name"], attrs(e.get("attributes") or {}), e.get("time_ns"))
            for e in span.events
        ],
        kind=SpanKind[span.kind],
        status=Status(StatusCode[span.status_code], span.status_message),
        start_time=span.start_time_ns,
        end_time=span.end_time_ns,
        instrumentation_scope=InstrumentationScope(span.scope_name or "otelite"),
    )


def _otlp_headers(args: argparse.Namespace) -> dict[str, str]:
    """``OTEL_EXPORTER_OTLP_HEADERS`` with ``--headers`` added (winning on a shared name), each
    validated like ``configure(headers=)``: a line break or control character is refused, and
    the message names the option or variable, never the value."""
    from otelite import _env
    from otelite._settings import _parse_headers

    raw = _env.OTEL_EXPORTER_OTLP_HEADERS.read()
    headers = dict(_parse_headers(_env.OTEL_EXPORTER_OTLP_HEADERS.name, raw)) if raw else {}
    if args.headers is not None:
        headers.update(_parse_headers("--headers", args.headers))
    return headers


def _otlp_traces(store: LocalStore, args: argparse.Namespace) -> Optional[list[str]]:
    """The trace ids ``--trace`` / ``--since`` select (oldest first), or None for the whole store.

    ``--since`` keeps a trace when any of its spans started in the window (as ``otelite traces``
    does) and sends it whole, so that no trace arrives without its root."""
    since = since_start_ns(args)
    named = [store.resolve_trace_id(prefix) for prefix in args.trace or ()]
    if since is None:
        return list(dict.fromkeys(named)) if named else None
    recent = [t.trace_id for t in reversed(store.traces(limit=2**62, since_ns=since))]
    if not named:
        return recent
    wanted = set(named)
    return [trace_id for trace_id in recent if trace_id in wanted]


def cmd_export_otlp(args: argparse.Namespace) -> int:
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otelite import _export

    protocol = args.protocol
    url = args.endpoint if protocol == "grpc" else args.endpoint.rstrip("/") + "/v1/traces"
    if not re.match(r"^https?://[^/]+", args.endpoint):
        raise UsageError(
            f"--endpoint: {args.endpoint!r} is not a URL; write e.g. http://localhost:4318"
        )
    headers = _otlp_headers(args)
    with open_store(args) as store:
        selected = _otlp_traces(store, args)
        if selected is not None and not selected:
            which = "none of the --trace traces has" if args.trace else "no trace has"
            print(
                f"otelite: nothing to send: {which} a span newer than --since {args.since}",
                file=sys.stderr,
            )
            return EXIT_FAILED
        exporter = _export.otlp_span_exporter(url, protocol, headers)
        if selected is None:
            total = store.count()
            batches = store.iter_spans(batch=args.batch)
        else:
            traces = [store.spans(trace_id) for trace_id in selected]
            flat = [span for spans in traces for span in spans]
            total = len(flat)
            batches = iter([flat[i : i + args.batch] for i in range(0, total, args.batch)])
        sent = 0
        for batch in batches:
            if exporter.export([_to_readable(s) for s in batch]) is not SpanExportResult.SUCCESS:
                print(
                    f"otelite: the endpoint refused a batch after {plural(sent, 'span')}; "
                    "nothing more sent",
                    file=sys.stderr,
                )
                exporter.shutdown()
                return EXIT_USAGE
            sent += len(batch)
            if sys.stderr.isatty():
                print(f"\rsent {sent}/{plural(total, 'span')}", end="", file=sys.stderr)
    exporter.shutdown()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if args.json:
        result: dict[str, Any] = {"sent": sent, "endpoint": url}
        if selected is not None:
            result = {"sent": sent, "traces": len(selected), "endpoint": url}
        print_json(result)
    else:
        what = plural(sent, "span")
        if selected is not None:
            what += f" of {plural(len(selected), 'trace')}"
        print(f"sent {what} to {url} (span ids kept: re-sending is idempotent)")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``export finetune`` and ``export otlp``."""
    export = commands.add_parser("export", help="export recorded data")
    targets = export.add_subparsers(dest="export_command", required=True)
    finetune = targets.add_parser("finetune", help="LLM calls as OpenAI chat fine-tuning JSONL")
    add_store_options(finetune)
    finetune.add_argument("out")
    finetune.add_argument("--model")
    finetune.add_argument(
        "--prompt",
        metavar="REF",
        help="only calls made with this prompt: NAME (any version), NAME@VERSION, or NAME:LABEL "
        "(the version the label points at in the registry)",
    )
    finetune.add_argument(
        "--prompts-dir",
        metavar="DIR",
        help="prompt registry for NAME:LABEL (default $OTELITE_PROMPTS_DIR or ./prompts)",
    )
    finetune.add_argument(
        "--label", help="only calls made while the prompt was fetched by this label"
    )
    finetune.add_argument(
        "--tag", action="append", help="only calls carrying this tag (repeatable)"
    )
    finetune.add_argument("--since", help="only calls newer than this (30m, 24h, 7d)")
    finetune.add_argument(
        "--min-score",
        action="append",
        metavar="NAME=VALUE",
        help="only calls scored at least VALUE on NAME (the call's own score, else its trace's "
        "lowest); unscored calls are left out (repeatable)",
    )
    finetune.set_defaults(handler=cmd_export_finetune)
    otlp = targets.add_parser("otlp", help="replay stored spans to an OTLP endpoint")
    add_store_options(otlp)
    otlp.add_argument("--endpoint", required=True, help="OTLP base URL, e.g. http://localhost:4318")
    otlp.add_argument("--protocol", choices=["http/protobuf", "grpc"], default="http/protobuf")
    otlp.add_argument("--batch", type=int, default=512)
    otlp.add_argument(
        "--since", help="only traces with a span newer than this (30m, 24h, 7d), sent whole"
    )
    otlp.add_argument(
        "--trace",
        action="append",
        metavar="ID",
        help="only this trace (an id prefix is enough; repeatable)",
    )
    otlp.add_argument(
        "--headers",
        help="request headers as key=value pairs, comma-separated, values URL-encoded, e.g. "
        "authorization=Bearer%%20TOKEN (added to $OTEL_EXPORTER_OTLP_HEADERS)",
    )
    otlp.set_defaults(handler=cmd_export_otlp)
