"""The prompt registry (``/prompts``) and one prompt (``/prompts/NAME``): versions, calls, diff, label history."""

from __future__ import annotations

from typing import Any

from otelite.store import StatsRow
from otelite.ui._html import esc, money, ms, page, table, url
from otelite.ui._request import HTTPError, Params, Site


def _registry(app: Site) -> Any:
    from otelite.prompts import PromptRegistry

    return PromptRegistry(app.prompts_dir)


def prompts(app: Site, params: Params) -> str:
    """/prompts: every prompt with its latest version and labels."""
    registry = _registry(app)
    try:
        names = registry.list()
    except OSError as exc:
        raise HTTPError(503, f"{registry.path}: cannot read the prompt registry ({exc})") from None
    if not names:
        return page(
            "Prompts",
            f"<p class=dim>no prompts in {esc(registry.path)}; add one with: otelite prompts push NAME --file F "
            "(or start the view with --prompts-dir DIR)</p>",
            nav="/prompts",
        )
    rows = []
    for name in names:
        versions = _versions(registry, name)
        labels = {label: v.version for v in versions for label in v.labels}
        rows.append(
            [
                f'<a href="{url("/prompts/" + name)}">{esc(name)}</a>',
                f"v{versions[-1].version}" if versions else "-",
                esc(", ".join(f"{k}=v{v}" for k, v in sorted(labels.items()))),
                esc(versions[-1].created if versions else ""),
            ]
        )
    return page(
        "Prompts",
        f"<p class=dim>registry {esc(registry.path)}</p>"
        + table(["Name", "Latest", "Labels", "Updated"], rows),
        nav="/prompts",
    )


def prompt(app: Site, params: Params, name: str) -> str:
    """/prompts/NAME: versions with their calls, a diff and the label history."""
    from otelite.prompts import PromptError

    registry = _registry(app)
    if name not in registry.list():
        raise HTTPError(404, f"prompt {name!r}: not in the registry {registry.path}")
    versions = _versions(registry, name)
    numbers = [v.version for v in versions]
    a = params.integer("a", numbers[-2] if len(numbers) > 1 else numbers[-1], 1, 10**9)
    b = params.integer("b", numbers[-1], 1, 10**9)
    for which, number in (("a", a), ("b", b)):
        if number not in numbers:
            raise HTTPError(
                404,
                f"{which}={number}: prompt {name!r} has versions {', '.join(map(str, numbers))}",
            )
    try:
        diff = registry.diff(name, a, b)
        history = registry.history(name)
    except PromptError as exc:
        raise HTTPError(503, str(exc)) from None
    since_text = params.text("since") or "24h"
    since_ns = params.time("since", "24h")
    usage: dict[str, StatsRow] = {}
    means: dict[str, list[str]] = {}
    store_note = ""
    try:
        with app._store() as (store, _):
            where = {"prompt": name}
            usage = {
                str(r.key[0]): r for r in store.stats(["prompt"], since_ns=since_ns, where=where)
            }
            for row in store.score_stats(["prompt"], since_ns=since_ns, where=where):
                if row.mean is not None:
                    means.setdefault(str(row.key[0]), []).append(f"{row.name} {row.mean:.3f}")
    except HTTPError as exc:
        store_note = f"<p class=note>calls not shown: {esc(exc.message)}</p>"
    rows = []
    for v in reversed(versions):
        stat = usage.get(f"{name}@{v.version}")
        rows.append(
            [
                f"v{v.version}",
                esc(", ".join(v.labels)),
                esc(v.created),
                esc(v.author),
                esc(v.message),
                str(stat.calls) if stat else "0",
                esc(money(stat.cost_usd, stat.unpriced)) if stat else "-",
                esc(ms(stat.p50_ms * 1e6)) if stat else "-",
                esc(ms(stat.p95_ms * 1e6)) if stat else "-",
                esc("; ".join(means.get(f"{name}@{v.version}", []))) or "-",
                f'<a href="{url("/traces", {"prompt": f"{name}@{v.version}"})}">traces</a>',
            ]
        )

    def select(field: str, chosen: int) -> str:
        options = "".join(
            f'<option value="{n}"{" selected" if n == chosen else ""}>v{n}</option>'
            for n in numbers
        )
        return f"<label>{field}<select name={field}>{options}</select></label>"

    diff_lines = []
    # The registry's diff, as the CLI prints it: every line ends in "\n", and a line of a
    # prompt may hold "\r" or a form feed, so it is split at "\n" only.
    for line in diff.split("\n")[:-1]:
        kind = (
            "add"
            if line.startswith("+") and not line.startswith("+++")
            else "del"
            if line.startswith("-") and not line.startswith("---")
            else "hunk"
            if line.startswith("@@")
            else ""
        )
        diff_lines.append(f'<span class="{kind}">{esc(line)}</span>' if kind else esc(line))
    history_rows = [
        [
            esc(e.get("time")),
            esc(e.get("author")),
            esc(e.get("action")),
            esc(e.get("label")),
            esc(f"v{e['from']}" if e.get("from") else "(none)"),
            esc(f"v{e.get('to')}"),
        ]
        for e in history
    ]
    body = [
        "<h2>Versions</h2>",
        f'<form class=filters method=get action="{url("/prompts/" + name)}">'
        f'<label>calls since (24h, 7d, date, all)<input name=since value="{esc(since_text)}"></label>'
        "<button>show</button></form>",
        table(
            [
                "Version",
                "Labels",
                "Created",
                "Author",
                "Message",
                "Calls",
                "Cost",
                "p50",
                "p95",
                "Mean scores",
                "",
            ],
            rows,
            numeric=(5, 6, 7, 8),
        ),
        store_note,
        f'<h2>Diff</h2><form class=filters method=get action="{url("/prompts/" + name)}">'
        f"{select('a', a)}{select('b', b)}"
        f'<input type=hidden name=since value="{esc(since_text)}"><button>diff</button></form>',
        f"<pre class=diff>{chr(10).join(diff_lines) or esc(f'v{a} and v{b} are the same')}</pre>",
        "<h2>Label history</h2>",
        table(["Time", "Author", "Action", "Label", "From", "To"], history_rows)
        if history_rows
        else "<p class=dim>no label moves yet</p>",
    ]
    return page(f"Prompt {name}", "".join(body), nav="/prompts")


def _versions(registry: Any, name: str) -> list[Any]:
    from otelite.prompts import PromptError

    try:
        return list(registry.versions(name))
    except PromptError as exc:
        raise HTTPError(503, str(exc)) from None
