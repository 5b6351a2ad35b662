"""``otelite graph``: one trace as a Mermaid flowchart."""

from __future__ import annotations

import argparse
from typing import Any

from otelite import _semconv as sc
from otelite.cli._format import fmt_duration_ns, fmt_tokens, print_json, walk_tree
from otelite.cli._options import add_store_options, open_store
from otelite.store import StoredSpan

_LLM_OPERATIONS = (sc.OP_CHAT, sc.OP_TEXT_COMPLETION, sc.OP_EMBEDDINGS)


def _mermaid_label(span: StoredSpan) -> str:
    text = f"{span.name}<br/>{fmt_duration_ns(span.duration_ns)}"
    a = span.attributes
    if sc.GEN_AI_USAGE_INPUT_TOKENS in a:
        tokens = fmt_tokens(
            int(a.get(sc.GEN_AI_USAGE_INPUT_TOKENS, 0)),
            int(a.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0)),
            bool(a.get(sc.OTELITE_USAGE_ESTIMATED)),
        )
        text += f"<br/>{tokens}"
    return text.replace('"', "#quot;")


def cmd_graph(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        roots = store.trace_tree(args.trace_id)
    rows = walk_tree(roots)
    ids = {span.span_id: f"s{i + 1}" for i, (_, span) in enumerate(rows)}
    lines = ["flowchart TD"]
    for _, span in rows:
        node = ids[span.span_id]
        label = _mermaid_label(span)
        operation = span.attributes.get(sc.GEN_AI_OPERATION_NAME)
        if operation in _LLM_OPERATIONS:
            shape = f'{node}(["{label}"])'
        elif operation == sc.OP_EXECUTE_TOOL:
            shape = f'{node}{{{{"{label}"}}}}'
        else:
            shape = f'{node}["{label}"]'
        lines.append(f"    {shape}")
        if span.status_code == "ERROR":
            lines.append(f"    style {node} stroke:#d33,stroke-width:2px")
    for _, span in rows:
        if span.parent_span_id in ids:
            lines.append(f"    {ids[span.parent_span_id]} --> {ids[span.span_id]}")
    text = "\n".join(lines) + "\n"
    if args.json:
        print_json({"mermaid": text})
    else:
        print(text, end="")
    return 0


def add_parser(commands: Any) -> None:
    """Register ``graph``."""
    graph = commands.add_parser("graph", help="a trace as a Mermaid flowchart")
    add_store_options(graph)
    graph.add_argument("trace_id")
    graph.set_defaults(handler=cmd_graph)
