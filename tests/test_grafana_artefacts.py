"""The shipped Grafana / Prometheus / Collector / compose artefacts, checked statically.

The live checks (every dashboard query returns data from a real Prometheus, the
error-rate alert fires) run in `nox -s prometheus` (tests/prometheus/check.py).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from otelite import _semconv as sc
from otelite import cli
from otelite.integrations import grafana

ROOT = Path(__file__).resolve().parent.parent
HERE = grafana.HERE
DASHBOARDS = sorted((HERE / "dashboards").glob("*.json"))
ALERTS = yaml.safe_load((HERE / "prometheus/otelite-alerts.yml").read_text())
RULE_TESTS = sorted((HERE / "prometheus").glob("*.test.yml"))

# otelite's instruments as Prometheus names them (the exporter's unit suffixes applied).
PROMETHEUS_NAMES = {
    sc.METRIC_OPERATION_DURATION: "gen_ai_client_operation_duration_seconds",
    sc.METRIC_TIME_TO_FIRST_CHUNK: "gen_ai_client_operation_time_to_first_chunk_seconds",
    sc.METRIC_TOKEN_USAGE: "gen_ai_client_token_usage",
    sc.METRIC_TOKEN_DETAILS: "otelite_client_token_details_total",
    sc.METRIC_COST: "otelite_client_cost_USD_total",
    sc.METRIC_CHECK_FAILURES: "otelite_client_check_failures_total",
    sc.METRIC_EVALUATION_SCORE: "otelite_evaluation_score",
    sc.METRIC_API_CHANGES: "otelite_api_changes_total",
}
METRIC_NAME = re.compile(
    r"\b((?:gen_ai|otelite)_[a-zA-Z_]+?)(?:_bucket|_sum|_count)?\b(?=\s*[{\[])"
)


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, t) for panel in board["panels"] for t in panel.get("targets", [])]


def test_dashboards_are_what_the_grafana_sdk_builds() -> None:
    """Regenerating the dashboards with grafana-foundation-sdk gives the committed JSON exactly."""
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        pytest.skip("grafana-foundation-sdk needs Python 3.11+ (a dev dependency)")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import build_dashboards
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    built = build_dashboards.build()
    assert sorted(built) == [p.name for p in DASHBOARDS]
    for path in DASHBOARDS:
        assert build_dashboards.render(built[path.name]) == path.read_text(), (
            f"{path.name} differs from what scripts/build_dashboards.py builds; rerun it"
        )


def test_dashboards_load_into_the_grafana_sdk_models() -> None:
    """Each dashboard JSON decodes into the SDK's Dashboard model with every panel and variable."""
    if importlib.util.find_spec("grafana_foundation_sdk") is None:
        pytest.skip("grafana-foundation-sdk needs Python 3.11+ (a dev dependency)")
    from grafana_foundation_sdk.models.dashboard import Dashboard

    for path in DASHBOARDS:
        data = _load(path)
        model = Dashboard.from_json(data)
        assert model.uid == data["uid"]
        assert model.title == data["title"]
        assert len(model.panels or []) == len(data["panels"])
        assert [v.name for v in (model.templating.list_val or [])] == [
            v["name"] for v in data["templating"]["list"]
        ]


def test_dashboard_structure() -> None:
    """Overview plus one API-health board per provider; unique uids; a Prometheus datasource variable."""
    names = [p.name for p in DASHBOARDS]
    assert names == ["api-health-azure-ai-openai.json", "api-health-openai.json", "overview.json"]
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids)
    for path in DASHBOARDS:
        board = _load(path)
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        assert variables["tempo"]["query"] == "tempo"
        assert "provider" in variables
        assert board["schemaVersion"] >= 36
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel[
                "title"
            ]
            assert panel["targets"], panel["title"]
            assert [link["title"] for link in panel["links"]] == ["Traces of these calls (Tempo)"]
            assert "${tempo}" in panel["links"][0]["url"]
            ref_ids = [t["refId"] for t in panel["targets"]]
            assert len(set(ref_ids)) == len(ref_ids), panel["title"]


def test_dashboard_queries_use_only_otelite_metrics() -> None:
    """Every panel query names only otelite's metrics (by their Prometheus names); latency panels carry exemplars."""
    known = set(PROMETHEUS_NAMES.values())
    used = set()
    for path in DASHBOARDS:
        for panel, target in _targets(_load(path)):
            names = set(METRIC_NAME.findall(target["expr"]))
            assert names, (panel["title"], target["expr"])
            assert names <= known, (panel["title"], names - known)
            used |= names
            latency = "p95" in panel["title"] or "p50" in panel["title"]
            if latency and "offset" not in target["expr"]:
                assert target.get("exemplar") is True, panel["title"]
    assert used == known


def test_overview_answers_the_questions() -> None:
    """The overview slices cost by model, user, prompt version and geo; shows p50/p95/p99, TTFT, errors, checks, scores."""
    board = _load(HERE / "dashboards/overview.json")
    exprs = " ".join(t["expr"] for _, t in _targets(board))
    for label in (
        "gen_ai_request_model",
        "user_id",
        "gen_ai_prompt_version",
        "geo_country_iso_code",
        "service_version",
        "error_type",
        "otelite_check_name",
        "gen_ai_evaluation_name",
        "gen_ai_token_type",
        "otelite_token_detail",
    ):
        assert f"by ({label}" in exprs or f", {label})" in exprs, label
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}, " in exprs
    assert "* 3600" in exprs  # burn rate per hour


def test_every_alert_has_a_runbook_and_unit_tests() -> None:
    """Each alert has a summary and a runbook naming an otelite command, and a firing and a silent promtool test."""
    alerts = [r for g in ALERTS["groups"] for r in g["rules"] if "alert" in r]
    assert [a["alert"] for a in alerts] == [
        "OteliteCostBurnRateOverBudget",
        "OteliteLatencyP95Regression",
        "OteliteErrorRateHigh",
        "OteliteRateLimited",
        "OteliteCheckFailureRateHigh",
        "OteliteEvaluationScoreDrop",
        "OteliteApiChangeSeen",
    ]
    cases: dict[str, list[bool]] = {}
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                cases.setdefault(check["alertname"], []).append(bool(check["exp_alerts"]))
    for alert in alerts:
        annotations = alert["annotations"]
        assert annotations["summary"], alert["alert"]
        assert annotations["description"], alert["alert"]
        assert re.search(r"`otelite [a-z]", annotations["runbook"]), alert["alert"]
        assert alert["labels"]["severity"] in ("critical", "warning", "info")
        assert sorted(cases.get(alert["alert"], [])) == [False, True], alert["alert"]


def test_promtool_checks_and_unit_tests_pass() -> None:
    """promtool check rules/config and every rule unit test pass (when promtool is installed)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool not installed (apt-get install prometheus; nox -s prometheus runs it)"
        )
    for args in (
        ["check", "rules", str(HERE / "prometheus/otelite-alerts.yml")],
        ["check", "config", str(HERE / "prometheus/prometheus.yml")],
        ["test", "rules", *map(str, RULE_TESTS)],
    ):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_compose_stack_is_consistent() -> None:
    """The compose file parses, pins every image, and every file it mounts exists in the export."""
    compose = yaml.safe_load((HERE / "stack/docker-compose.yml").read_text())
    services = compose["services"]
    assert sorted(services) == ["grafana", "jaeger", "otel-collector", "prometheus", "tempo"]
    for name, service in services.items():
        image = service["image"]
        repo, _, tag = image.rpartition(":")
        assert repo, (name, image)
        assert re.match(r"v?\d+\.\d+\.\d+$", tag), (name, image)  # pinned, never "latest"
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("."), (name, volume)
            assert (HERE / "stack" / source).resolve().exists(), (name, source)
    # What the mounted configs refer to exists too.
    grafana_volumes = dict(v.split(":")[:2] for v in services["grafana"]["volumes"])
    assert grafana_volumes["../dashboards"] == "/var/lib/grafana/dashboards/otelite"
    provisioning = yaml.safe_load(
        (HERE / "stack/grafana/provisioning/dashboards/otelite.yml").read_text()
    )
    assert provisioning["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/otelite"
    datasources = yaml.safe_load(
        (HERE / "stack/grafana/provisioning/datasources/datasources.yml").read_text()
    )["datasources"]
    by_uid = {d["uid"]: d for d in datasources}
    assert sorted(by_uid) == ["jaeger", "prometheus", "tempo"]
    exemplar_targets = by_uid["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert [t["datasourceUid"] for t in exemplar_targets] == ["tempo"]
    for source in datasources:
        host = re.match(r"http://([a-z-]+):\d+$", source["url"])
        assert host, source["url"]
        assert host.group(1) in services, source["url"]
    prometheus = yaml.safe_load((HERE / "prometheus/prometheus.yml").read_text())
    assert prometheus["rule_files"] == ["otelite-alerts.yml"]
    targets = [
        t
        for job in prometheus["scrape_configs"]
        for c in job["static_configs"]
        for t in c["targets"]
    ]
    assert "otel-collector:8889" in targets


def test_collector_config_is_consistent() -> None:
    """Every pipeline uses defined components; traces go to Tempo and Jaeger, metrics to Prometheus."""
    config = yaml.safe_load((HERE / "stack/otel-collector.yaml").read_text())
    services = yaml.safe_load((HERE / "stack/docker-compose.yml").read_text())["services"]
    pipelines = config["service"]["pipelines"]
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            for component in pipeline.get(kind, []):
                assert component in config[kind], component
    assert pipelines["traces"]["exporters"] == ["otlp/tempo", "otlp/jaeger"]
    assert pipelines["metrics"]["exporters"] == ["prometheus"]
    for name in ("otlp/tempo", "otlp/jaeger"):
        host = config["exporters"][name]["endpoint"].split(":")[0]
        assert host in services, name
    assert config["exporters"]["prometheus"]["enable_open_metrics"] is True  # exemplars
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_export_writes_every_artefact(tmp_path: Path) -> None:
    """export_dashboards copies every shipped artefact, keeping the layout, and sets the budget."""
    written = grafana.export_dashboards(tmp_path / "out", budget_usd_per_hour=25)
    relative = sorted(p.relative_to(tmp_path / "out") for p in written)
    assert relative == grafana.artefacts()
    assert {str(p) for p in relative} >= {
        "dashboards/overview.json",
        "prometheus/otelite-alerts.yml",
        "prometheus/prometheus.yml",
        "stack/docker-compose.yml",
        "stack/otel-collector.yaml",
    }
    alerts = (tmp_path / "out/prometheus/otelite-alerts.yml").read_text()
    assert "expr: vector(25)" in alerts
    assert "vector(10)" not in alerts
    for path in DASHBOARDS:
        assert (tmp_path / "out/dashboards" / path.name).read_text() == path.read_text()


def test_export_default_budget_is_the_shipped_file(tmp_path: Path) -> None:
    """Without a budget the rules are copied unchanged (budget 10 USD/hour)."""
    grafana.export_dashboards(tmp_path)
    shipped = (HERE / "prometheus/otelite-alerts.yml").read_text()
    assert (tmp_path / "prometheus/otelite-alerts.yml").read_text() == shipped
    assert "expr: vector(10)" in shipped


def test_export_bad_input(tmp_path: Path) -> None:
    """A file as the directory, or a budget that is not a positive number, is a clear error."""
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(grafana.ConfigurationError, match=r"file.txt is a file; give a directory"):
        grafana.export_dashboards(afile)
    with pytest.raises(
        grafana.ConfigurationError, match=r"budget_usd_per_hour: -5 is not a positive"
    ):
        grafana.export_dashboards(tmp_path / "x", budget_usd_per_hour=-5)
    assert not (tmp_path / "x").exists()


def test_cli_dashboards_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`otelite dashboards export DIR` writes the artefacts and prints each path; bad input exits 2."""
    assert cli.main(["dashboards", "export", str(tmp_path / "d")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "d" / p) for p in grafana.artefacts()]
    assert (
        cli.main(["dashboards", "export", str(tmp_path / "d"), "--budget-usd-per-hour", "0"]) == 2
    )
    assert "budget_usd_per_hour: 0.0 is not a positive number" in capsys.readouterr().err
