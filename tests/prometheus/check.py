"""otelite's Grafana/Prometheus artefacts against a real Prometheus (the `prometheus` nox session).

1. `promtool check config` / `check rules` / `test rules` on the shipped files (every alert
   has a unit test that fires on a bad series and stays silent on a good one).
2. An app (tests/prometheus/replay.py) replays recorded OpenAI traffic through the real
   client and serves otelite's metrics on 127.0.0.1. Snapshots of its /metrics, shifted one
   week back, are backfilled with `promtool tsdb create-blocks-from openmetrics`, so the
   "a week ago" queries have last week's data.
3. Prometheus (Debian's package) starts on 127.0.0.1 with a random free port and a temporary
   data directory, scraping the app every second and loading the shipped alert rules (their
   `for:` durations shortened to seconds, so the session stays short).
4. An error burst drives otelite until Prometheus reports `OteliteErrorRateHigh` firing
   (it is checked silent before the burst).
5. Every panel query of every shipped dashboard returns data through Prometheus' HTTP API;
   the one documented exception is the API-change panel (no detector feeds it yet).

Prometheus and the app are stopped in every case. Exit code 0 when everything holds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent.parent
GRAFANA = ROOT / "src/otelite/integrations/grafana"
DASHBOARDS = GRAFANA / "dashboards"
RULES_DIR = GRAFANA / "prometheus"
WEEK_S = 7 * 24 * 3600
# Panels allowed to return no data, and why (docs/grafana.md says the same).
NO_DATA_EXPECTED = {
    "otelite_api_changes_total": "fed by API-change detection, which has not landed yet",
}
RATE_INTERVAL = "2m"  # what Grafana picks for $__rate_interval at a 30s scrape interval
RANGE = "15m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(*cmd: str) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    print("$", " ".join(cmd), "->", done.returncode)
    if done.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def get_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # 127.0.0.1 only
        return json.loads(response.read())


class Replay:
    """The instrumented app process, driven line by line."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-u", str(Path(__file__).parent / "replay.py"), str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._expect("ready")

    def _expect(self, line: str) -> None:
        assert self.proc.stdout is not None
        got = self.proc.stdout.readline().strip()
        if got != line:
            raise SystemExit(f"replay app said {got!r}, expected {line!r}")

    def do(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        self._expect(f"done {command}")

    def openmetrics(self) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0; charset=utf-8"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait()


_SAMPLE = re.compile(r"^([^\s{#]+)(\{.*\})?\s+(\S+)$")


def merge_snapshots(snapshots: list[tuple[float, str]]) -> str:
    """One OpenMetrics text with every snapshot's samples at its timestamp (families kept whole)."""
    families: dict[str, list[str]] = {}
    samples: dict[str, dict[str, list[tuple[float, str]]]] = {}
    order: list[str] = []
    for ts, text in snapshots:
        family = None
        for line in text.splitlines():
            if line.startswith("# EOF"):
                break
            if line.startswith("#"):
                parts = line.split()
                family = parts[2]
                if family not in families:
                    families[family] = []
                    samples[family] = {}
                    order.append(family)
                if line not in families[family]:
                    families[family].append(line)
                continue
            match = _SAMPLE.match(line)
            if match is None or family is None:
                continue
            key = match.group(1) + (match.group(2) or "")
            samples[family].setdefault(key, []).append((ts, match.group(3)))
    out = []
    for family in order:
        if family.startswith(("python_", "process_")):
            continue
        out.extend(families[family])
        for key, points in samples[family].items():
            out.extend(f"{key} {value} {ts:.3f}" for ts, value in points)
    out.append("# EOF")
    return "\n".join(out) + "\n"


def live_rules(path: Path) -> None:
    """The shipped rules with every `for:` cut to 2s (the expressions are unchanged)."""
    text = (RULES_DIR / "otelite-alerts.yml").read_text()
    path.write_text(re.sub(r"(\n\s+for: )\S+", r"\g<1>2s", text))


def wait_for(what: str, probe: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def alert_states(prom: str, name: str) -> list[str]:
    alerts = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
    return [a["state"] for a in alerts if a["labels"].get("alertname") == name]


def query(prom: str, expr: str) -> list[Any]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        body = get_json(url)
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"query refused: {expr}: {exc.read().decode()}") from None
    if body.get("status") != "success":
        raise SystemExit(f"query failed: {expr}: {body}")
    return list(body["data"]["result"])


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, expr) of every target, with Grafana's variables filled in."""
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        provider = ".*"
        for variable in board["templating"]["list"]:
            if variable["name"] == "provider" and variable["type"] == "constant":
                provider = variable["query"]
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = (
                    target["expr"]
                    .replace("$__rate_interval", RATE_INTERVAL)
                    .replace("$__range", RANGE)
                    .replace("$provider", provider)
                )
                found.append((path.name, panel["title"], expr))
    return found


_t0 = time.monotonic()


def step(what: str) -> None:
    print(f"[{time.monotonic() - _t0:6.1f}s] {what}", flush=True)


def main() -> int:
    prometheus = shutil.which("prometheus")
    promtool = shutil.which("promtool")
    if not prometheus or not promtool:
        raise SystemExit("prometheus/promtool not found: apt-get install -y prometheus")
    print(run(prometheus, "--version").splitlines()[0])

    # 1. Static checks of the shipped files.
    run(promtool, "check", "rules", str(RULES_DIR / "otelite-alerts.yml"))
    run(promtool, "check", "config", str(RULES_DIR / "prometheus.yml"))
    for tests in sorted(RULES_DIR.glob("*.test.yml")):
        print(run(promtool, "test", "rules", str(tests)))

    work = Path(tempfile.mkdtemp(prefix="otelite-prometheus-"))
    app_port, prom_port = free_port(), free_port()
    replay: Optional[Replay] = None
    server: Optional[subprocess.Popen[bytes]] = None
    try:
        replay = Replay(app_port)

        step("Last week")
        # 2. Last week's data: snapshots of real traffic, backfilled one week back.
        # One snapshot per round of traffic, 30 s apart in last week's time, around the
        # moment (a week ago) the panel queries below will look at.
        snapshots = []
        start = time.time() - WEEK_S - 240
        for i in range(16):
            replay.do("traffic")
            snapshots.append((start + 30 * i, replay.openmetrics()))
        (work / "lastweek.om").write_text(merge_snapshots(snapshots))
        data = work / "data"
        run(
            promtool,
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(work / "lastweek.om"),
            str(data),
        )

        step("Prometheus on")
        # 3. Prometheus on 127.0.0.1, scraping the app every second.
        live_rules(work / "otelite-alerts.yml")
        config = work / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "rule_files: [otelite-alerts.yml]\n"
            "scrape_configs:\n  - job_name: otelite-replay\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{app_port}']\n"
        )
        run(promtool, "check", "config", str(config))
        log = open(work / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
        server = subprocess.Popen(
            [
                prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={data}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                "--storage.tsdb.retention.time=30d",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        prom = f"http://127.0.0.1:{prom_port}"

        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"{prom}/-/ready", timeout=2).status == 200
            except OSError:
                return False

        wait_for("Prometheus to be ready", ready, 60)
        wait_for(
            "the first scrapes",
            lambda: any(
                float(r["value"][1]) >= 3 for r in query(prom, "count_over_time(target_info[1m])")
            ),
            60,
        )

        step("Healthy traffic")
        # 4. Healthy traffic: the error-rate alert stays silent; an error burst makes it fire.
        for _ in range(3):
            replay.do("ok 40")
            time.sleep(1.5)
        states = alert_states(prom, "OteliteErrorRateHigh")
        if states:
            raise SystemExit(f"OteliteErrorRateHigh is {states} on healthy traffic")
        print("OteliteErrorRateHigh: silent on healthy traffic")
        replay.do("burst 60")

        def firing() -> bool:
            replay.do("burst 5")
            return "firing" in alert_states(prom, "OteliteErrorRateHigh")

        wait_for("OteliteErrorRateHigh to fire", firing, 90)
        print("OteliteErrorRateHigh: firing after the error burst")

        step("Every dashboard")
        # 5. Every dashboard query returns data (fresh traffic inside every rate window).
        for _ in range(3):
            replay.do("traffic")
            time.sleep(1.5)
        failures = []
        checked = 0
        for board, title, expr in panel_queries():
            result = query(prom, expr)
            exempt = next((why for key, why in NO_DATA_EXPECTED.items() if key in expr), None)
            checked += 1
            if result:
                print(f"ok     {board}: {title}: {len(result)} series")
            elif exempt:
                print(f"exempt {board}: {title}: no data ({exempt})")
            else:
                failures.append(f"{board}: {title}: no data for {expr}")
        if failures:
            raise SystemExit("panels without data:\n" + "\n".join(failures))
        print(f"{checked} panel queries checked against Prometheus")
        return 0
    finally:
        if replay is not None:
            replay.stop()
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if os.environ.get("OTELITE_KEEP_PROMETHEUS_DIR"):
            print("kept", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
