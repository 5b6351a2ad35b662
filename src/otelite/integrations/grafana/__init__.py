"""Grafana dashboards, Prometheus alert rules, a Collector config and a compose stack.

The files next to this module ship in the wheel; :func:`export_dashboards` (the
``otelite dashboards export DIR`` command) copies them out, keeping their layout
(the compose file refers to the others by relative path)::

    DIR/dashboards/overview.json, api-health-*.json   Grafana dashboards (import, or provision)
    DIR/prometheus/otelite-alerts.yml                  alerting rules (+ .test.yml for promtool)
    DIR/prometheus/prometheus.yml                      a scrape config that loads them
    DIR/stack/otel-collector.yaml                      OTLP in; traces to Tempo/Jaeger; metrics out
    DIR/stack/docker-compose.yml                       Collector, Tempo, Jaeger, Prometheus, Grafana

See ``docs/grafana.md``.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import sys
from pathlib import Path
from typing import Optional, Union

from otelite._exceptions import ConfigurationError

HERE = Path(__file__).parent
PARTS = ("dashboards", "prometheus", "stack")
ALERTS = Path("prometheus") / "otelite-alerts.yml"
DEFAULT_BUDGET_USD_PER_HOUR = 10.0
_BUDGET = re.compile(r"(record: otelite:cost_budget:usd_per_hour\n\s+expr: vector\()([^)]*)(\))")


def artefacts() -> list[Path]:
    """Every shipped artefact, relative to this package's directory, sorted."""
    return sorted(
        path.relative_to(HERE)
        for part in PARTS
        for path in (HERE / part).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    )


def export_dashboards(
    directory: Union[str, Path], *, budget_usd_per_hour: Optional[float] = None
) -> list[Path]:
    """Write the dashboards, alert rules, Collector config and compose stack into ``directory``.

    Existing files of the same name are replaced; others are left alone.
    ``budget_usd_per_hour`` sets the cost budget of the ``OteliteCostBurnRateOverBudget``
    alert (default 10).

    Returns:
        The paths written, sorted.

    Raises:
        ConfigurationError: ``directory`` is a file, or the budget is not a positive number.

    Example:
        >>> import tempfile
        >>> from otelite.integrations.grafana import export_dashboards
        >>> any(p.name == "overview.json" for p in export_dashboards(tempfile.mkdtemp()))
        True
    """
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ConfigurationError(f"dashboards export: {target} is a file; give a directory")
    budget = None
    if budget_usd_per_hour is not None:
        try:
            budget = float(budget_usd_per_hour)
        except (TypeError, ValueError):
            budget = -1.0
        if isinstance(budget_usd_per_hour, bool) or not 0 < budget < math.inf:
            raise ConfigurationError(
                f"budget_usd_per_hour: {budget_usd_per_hour!r} is not a positive number of "
                "USD per hour; give e.g. 25"
            )
    written = []
    for relative in artefacts():
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        if relative == ALERTS and budget is not None:
            text = (HERE / relative).read_text(encoding="utf-8")
            text = _BUDGET.sub(lambda m: f"{m.group(1)}{budget:g}{m.group(3)}", text)
            destination.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(HERE / relative, destination)
        written.append(destination)
    return written


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``otelite dashboards export DIR`` on the CLI's subcommands."""
    dashboards = subparsers.add_parser(
        "dashboards", help="Grafana dashboards, Prometheus alerts, Collector and compose files"
    )
    actions = dashboards.add_subparsers(dest="dashboards_command", required=True)
    export = actions.add_parser("export", help="write every artefact into DIR")
    export.add_argument("directory", metavar="DIR")
    export.add_argument(
        "--budget-usd-per-hour",
        type=float,
        help=f"cost budget of the burn-rate alert (default {DEFAULT_BUDGET_USD_PER_HOUR:g})",
    )
    dashboards.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run ``otelite dashboards export``; prints the files written; exit code 2 on bad input."""
    try:
        written = export_dashboards(args.directory, budget_usd_per_hour=args.budget_usd_per_hour)
    except ConfigurationError as exc:
        print(f"otelite: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0
