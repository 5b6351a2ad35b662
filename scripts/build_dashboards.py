"""Generate otelite's Grafana dashboards with the official grafana-foundation-sdk.

Writes src/otelite/integrations/grafana/dashboards/*.json (committed, shipped in the
wheel). tests/test_grafana_artefacts.py regenerates them and fails when the committed
JSON differs, so the files stay what the SDK builds. Run after changing a panel:

    .venv/bin/python scripts/build_dashboards.py

Needs Python 3.11+ and `grafana-foundation-sdk` (a dev dependency, never a runtime one).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    VariableRefresh,
)

OUT = Path(__file__).resolve().parent.parent / "src/otelite/integrations/grafana/dashboards"
DS = DataSourceRef(type_val="prometheus", uid="${datasource}")
# The providers that get an "API health" dashboard (gen_ai.provider.name values).
PROVIDERS = {"openai": "OpenAI", "azure.ai.openai": "Azure OpenAI"}

# Metric names as Prometheus shows them (the OpenTelemetry Prometheus exporter and the
# Collector's prometheus / prometheusremotewrite exporters translate names the same way).
DURATION = "gen_ai_client_operation_duration_seconds"
TTFC = "gen_ai_client_operation_time_to_first_chunk_seconds"
TOKENS = "gen_ai_client_token_usage"
TOKEN_DETAILS = "otelite_client_token_details_total"
COST = "otelite_client_cost_USD_total"
CHECK_FAILURES = "otelite_client_check_failures_total"
SCORE = "otelite_evaluation_score"
API_CHANGES = "otelite_api_changes_total"

TRACES_LINK = (
    "/explore?schemaVersion=1&panes="
    '{"traces":{"datasource":"${tempo}","queries":[{"refId":"A","queryType":"traceql",'
    '"query":"{ span.gen_ai.provider.name =~ \\"${provider:regex}\\" }"}],'
    '"range":{"from":"${__from}","to":"${__to}"}}}'
)


def _query(expr: str, legend: str = "", ref: str = "A", exemplar: bool = False) -> Any:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    if legend:
        q = q.legend_format(legend)
    if exemplar:
        q = q.exemplar(True)
    return q


def _links() -> list[Any]:
    return [
        dash.DashboardLink("Traces of these calls (Tempo)")
        .type(DashboardLinkType.LINK)
        .url(TRACES_LINK)
        .target_blank(True)
    ]


def _series(title: str, unit: str, *queries: Any, description: str = "") -> Any:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DS).height(8).span(12)
    if description:
        panel = panel.description(description)
    for q in queries:
        panel = panel.with_target(q)
    return panel.links(_links())


def _stat(title: str, unit: str, query: Any, description: str = "") -> Any:
    panel = stat.Panel().title(title).unit(unit).datasource(DS).height(8).span(12)
    if description:
        panel = panel.description(description)
    return panel.with_target(query).links(_links())


def _table(title: str, unit: str, query: Any, description: str = "") -> Any:
    panel = table.Panel().title(title).unit(unit).datasource(DS).height(8).span(12)
    if description:
        panel = panel.description(description)
    return panel.with_target(query.instant()).links(_links())


def _variables(board: Any, provider_fixed: str | None) -> Any:
    board = board.with_variable(
        dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
    ).with_variable(dash.DatasourceVariable("tempo").label("Traces").type("tempo"))
    if provider_fixed is None:
        board = board.with_variable(
            dash.QueryVariable("provider")
            .label("Provider")
            .datasource(DS)
            .query(f"label_values({DURATION}_count, gen_ai_provider_name)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
        )
    else:
        board = board.with_variable(dash.ConstantVariable("provider").value(provider_fixed))
    return board


SEL = 'gen_ai_provider_name=~"$provider"'
RATE = "$__rate_interval"


def overview() -> Any:
    """Traffic, tokens, cost, latency, errors, checks and scores of every LLM call."""
    board = (
        dash.Dashboard("otelite: LLM overview")
        .uid("otelite-overview")
        .tags(["otelite", "genai"])
        .description(
            "Calls, tokens, cost, latency, errors, check failures and evaluation scores recorded by otelite."
        )
        .time("now-6h", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
    )
    board = _variables(board, None)
    p95 = "histogram_quantile({q}, sum by (le) (rate({m}_bucket{{{s}}}[{r}])))"
    board = (
        board.with_row(dash.Row("Traffic and cost"))
        .with_panel(
            _series(
                "Calls per second by model",
                "reqps",
                _query(
                    f"sum by (gen_ai_request_model) (rate({DURATION}_count{{{SEL}}}[{RATE}]))",
                    "{{gen_ai_request_model}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Tokens per second by type",
                "short",
                _query(
                    f"sum by (gen_ai_token_type) (rate({TOKENS}_sum{{{SEL}}}[{RATE}]))",
                    "{{gen_ai_token_type}}",
                ),
                _query(
                    f"sum by (otelite_token_detail) (rate({TOKEN_DETAILS}{{{SEL}}}[{RATE}]))",
                    "of which {{otelite_token_detail}}",
                    "B",
                ),
                description="Cached input tokens are part of input; reasoning tokens are part of output.",
            )
        )
        .with_panel(
            _series(
                "Cost burn rate by model (USD per hour)",
                "currencyUSD",
                _query(
                    f"sum by (gen_ai_request_model) (rate({COST}{{{SEL}}}[{RATE}])) * 3600",
                    "{{gen_ai_request_model}}",
                ),
                description="Compare with the OteliteCostBurnRateOverBudget alert's budget.",
            )
        )
        .with_panel(
            _table(
                "Cost in range by model",
                "currencyUSD",
                _query(
                    f"sum by (gen_ai_request_model) (increase({COST}{{{SEL}}}[$__range]))",
                    "{{gen_ai_request_model}}",
                ),
            )
        )
        .with_panel(
            _table(
                "Top users by cost",
                "currencyUSD",
                _query(
                    f"topk(10, sum by (user_id) (increase({COST}{{{SEL}}}[$__range])))",
                    "{{user_id}}",
                ),
                description='Needs configure(metric_dimensions=["user"]); values past the cap show as "other".',
            )
        )
        .with_panel(
            _table(
                "Cost by prompt version",
                "currencyUSD",
                _query(
                    "sum by (gen_ai_prompt_name, gen_ai_prompt_version) "
                    f"(increase({COST}{{{SEL}}}[$__range]))",
                    "{{gen_ai_prompt_name}} v{{gen_ai_prompt_version}}",
                ),
                description='Needs configure(metric_dimensions=["prompt"]).',
            )
        )
        .with_panel(
            _table(
                "Cost by country",
                "currencyUSD",
                _query(
                    f"sum by (geo_country_iso_code) (increase({COST}{{{SEL}}}[$__range]))",
                    "{{geo_country_iso_code}}",
                ),
                description='Needs configure(metric_dimensions=["geo"]) and geo.country.iso_code in otelite.attributes().',
            )
        )
        .with_panel(
            _series(
                "Calls per second by service version",
                "reqps",
                _query(
                    f"sum by (service_version) (rate({DURATION}_count{{{SEL}}}[{RATE}]))",
                    "{{service_version}}",
                ),
                description='Needs configure(metric_dimensions=["service.version"]).',
            )
        )
        .with_row(dash.Row("Latency"))
        .with_panel(
            _series(
                "Call duration p50 / p95 / p99",
                "s",
                _query(p95.format(q=0.5, m=DURATION, s=SEL, r=RATE), "p50", "A", True),
                _query(p95.format(q=0.95, m=DURATION, s=SEL, r=RATE), "p95", "B", True),
                _query(p95.format(q=0.99, m=DURATION, s=SEL, r=RATE), "p99", "C", True),
            )
        )
        .with_panel(
            _series(
                "Time to first chunk p50 / p95 (streams)",
                "s",
                _query(p95.format(q=0.5, m=TTFC, s=SEL, r=RATE), "p50", "A", True),
                _query(p95.format(q=0.95, m=TTFC, s=SEL, r=RATE), "p95", "B", True),
            )
        )
        .with_row(dash.Row("Errors and quality"))
        .with_panel(
            _series(
                "Errors per second by error.type",
                "reqps",
                _query(
                    f'sum by (error_type) (rate({DURATION}_count{{{SEL}, error_type!=""}}[{RATE}]))',
                    "{{error_type}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Error ratio",
                "percentunit",
                _query(
                    f'sum(rate({DURATION}_count{{{SEL}, error_type!=""}}[{RATE}])) '
                    f"/ sum(rate({DURATION}_count{{{SEL}}}[{RATE}]))",
                    "errors",
                ),
            )
        )
        .with_panel(
            _series(
                "Online check failures per second by check",
                "reqps",
                _query(
                    f"sum by (otelite_check_name) (rate({CHECK_FAILURES}{{{SEL}}}[{RATE}]))",
                    "{{otelite_check_name}}",
                ),
            )
        )
        .with_panel(
            _series(
                "Mean evaluation score by evaluator",
                "percentunit",
                _query(
                    f"sum by (gen_ai_evaluation_name) (rate({SCORE}_sum[{RATE}])) "
                    f"/ sum by (gen_ai_evaluation_name) (rate({SCORE}_count[{RATE}]))",
                    "{{gen_ai_evaluation_name}}",
                ),
            )
        )
    )
    return board


def api_health(provider: str, label: str) -> Any:
    """One provider's API: latency against last week, errors and rate limits, model changes."""
    board = (
        dash.Dashboard(f"otelite: {label} API health")
        .uid("otelite-api-" + provider.replace(".", "-"))
        .tags(["otelite", "genai", "api-health"])
        .description(f"Is the {label} API slower, failing more or different than before?")
        .time("now-24h", "now")
        .refresh("1m")
        .tooltip(DashboardCursorSync.CROSSHAIR)
    )
    board = _variables(board, provider)
    p = "histogram_quantile(0.95, sum by (le) (rate({m}_bucket{{{s}}}[{r}]{o})))"
    return (
        board.with_panel(
            _series(
                "Call duration p95, now and a week ago",
                "s",
                _query(p.format(m=DURATION, s=SEL, r=RATE, o=""), "now", "A", True),
                _query(p.format(m=DURATION, s=SEL, r=RATE, o=" offset 1w"), "a week ago", "B"),
            )
        )
        .with_panel(
            _series(
                "Time to first chunk p95, now and a week ago",
                "s",
                _query(p.format(m=TTFC, s=SEL, r=RATE, o=""), "now", "A", True),
                _query(p.format(m=TTFC, s=SEL, r=RATE, o=" offset 1w"), "a week ago", "B"),
            )
        )
        .with_panel(
            _series(
                "Error and rate-limit ratio",
                "percentunit",
                _query(
                    f'sum(rate({DURATION}_count{{{SEL}, error_type!=""}}[{RATE}])) '
                    f"/ sum(rate({DURATION}_count{{{SEL}}}[{RATE}]))",
                    "errors",
                ),
                _query(
                    f'sum(rate({DURATION}_count{{{SEL}, error_type=~".*RateLimitError"}}[{RATE}])) '
                    f"/ sum(rate({DURATION}_count{{{SEL}}}[{RATE}]))",
                    "rate limited",
                    "B",
                ),
            )
        )
        .with_panel(
            _series(
                "Calls per second by operation",
                "reqps",
                _query(
                    f"sum by (gen_ai_operation_name) (rate({DURATION}_count{{{SEL}}}[{RATE}]))",
                    "{{gen_ai_operation_name}}",
                ),
            )
        )
        .with_panel(
            _table(
                "Response models seen",
                "short",
                _query(
                    "sum by (gen_ai_request_model, gen_ai_response_model) "
                    f'(increase({DURATION}_count{{{SEL}, gen_ai_response_model!=""}}[$__range]))',
                    "{{gen_ai_request_model}} -> {{gen_ai_response_model}}",
                ),
                description="A request model answered by a new response model is a silent upgrade.",
            )
        )
        .with_panel(
            _series(
                "API changes by kind",
                "short",
                _query(
                    f"sum by (otelite_api_change_kind) (increase({API_CHANGES}{{{SEL}}}[$__range]))",
                    "{{otelite_api_change_kind}}",
                ),
                description="Response model, system fingerprint and response shape changes. Fed by change detection when it lands: empty until then.",
            )
        )
    )


def build() -> dict[str, dict[str, Any]]:
    """Every dashboard, by file name, as the JSON Grafana imports."""
    boards = {"overview.json": overview()}
    for provider, label in PROVIDERS.items():
        boards[f"api-health-{provider.replace('.', '-')}.json"] = api_health(provider, label)
    return {
        name: json.loads(json.dumps(board.build(), cls=JSONEncoder))
        for name, board in boards.items()
    }


def render(data: dict[str, Any]) -> str:
    """The file text of one dashboard (stable, so a regenerated file compares equal)."""
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in build().items():
        (OUT / name).write_text(render(data))
        print("wrote", OUT / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
