"""End-to-end check against a real OTLP backend: Arize Phoenix on 127.0.0.1.

Run by `nox -s phoenix` (which installs arize-phoenix from PyPI). Starts
`phoenix serve` in a temporary working directory on free loopback ports, runs
examples/quickstart.py exporting over OTLP/HTTP to it, then reads the spans
back through Phoenix's REST API and checks names, parent links and token
attributes. The server is stopped in every case.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 180
ARRIVAL_TIMEOUT_S = 60
EXPECTED_NAMES = {
    "invoke_workflow rag_pipeline",
    "rewrite",
    "retrieval documents",
    "rerank",
    "answer",
    "chat gpt-4o-mini",
    "evaluation mentions_otlp",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Phoenix may nest dotted attribute names ({"gen_ai": {"usage": ...}}); flatten them back."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else key))
    return flat


def wait_for_server(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(
                f"phoenix exited early ({server.returncode}):\n{log.read_text()[-4000:]}"
            )
        try:
            get_json(f"{base}/v1/projects")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            time.sleep(1)
    raise SystemExit(
        f"phoenix did not answer within {STARTUP_TIMEOUT_S}s:\n{log.read_text()[-4000:]}"
    )


def fetch_spans(base: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + ARRIVAL_TIMEOUT_S
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        try:
            spans = get_json(f"{base}/v1/projects/default/spans?limit=100")["data"]
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # the project appears with the first span
                raise
        if {s["name"] for s in spans} >= EXPECTED_NAMES:
            return spans
        time.sleep(1)
    raise SystemExit(f"spans did not arrive in Phoenix; got {sorted(s['name'] for s in spans)}")


def check(spans: list[dict[str, Any]]) -> None:
    by_name = {s["name"]: s for s in spans}
    root = by_name["invoke_workflow rag_pipeline"]
    assert root["parent_id"] in (None, ""), root["parent_id"]
    root_id = root["context"]["span_id"]
    trace_id = root["context"]["trace_id"]
    for name in ("rewrite", "retrieval documents", "rerank", "answer"):
        span = by_name[name]
        assert span["parent_id"] == root_id, (name, span["parent_id"], root_id)
        assert span["context"]["trace_id"] == trace_id, name
    chat = by_name["chat gpt-4o-mini"]
    assert chat["parent_id"] == by_name["answer"]["context"]["span_id"]
    attrs = flatten(chat["attributes"])
    assert attrs["gen_ai.operation.name"] == "chat", attrs
    assert attrs["gen_ai.provider.name"] == "openai", attrs
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini", attrs
    for key in ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"):
        assert isinstance(attrs[key], int), attrs
        assert attrs[key] > 0, attrs
    root_attrs = flatten(root["attributes"])
    assert root_attrs["user.id"] == "quickstart-user", root_attrs
    # The score given in code arrives as a child of the scored span, with its event.
    evaluation = by_name["evaluation mentions_otlp"]
    assert evaluation["parent_id"] == root_id, evaluation["parent_id"]
    scored = flatten(evaluation["attributes"])
    assert scored["gen_ai.evaluation.name"] == "mentions_otlp", scored
    assert scored["gen_ai.evaluation.score.value"] == 1.0, scored
    assert scored["gen_ai.evaluation.score.label"] == "pass", scored
    events = [e["name"] for e in evaluation.get("events") or ()]
    assert events == ["gen_ai.evaluation.result"], evaluation
    print(
        f"phoenix: {len(EXPECTED_NAMES)} pipeline spans in trace {trace_id}, parents correct, "
        f"chat span tokens {attrs['gen_ai.usage.input_tokens']} in + "
        f"{attrs['gen_ai.usage.output_tokens']} out, "
        f"score mentions_otlp={scored['gen_ai.evaluation.score.value']} with its event"
    )


def main() -> int:
    phoenix = shutil.which("phoenix", path=str(Path(sys.executable).parent)) or shutil.which(
        "phoenix"
    )
    if phoenix is None:
        raise SystemExit("the phoenix command is not installed (pip install arize-phoenix)")
    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    with tempfile.TemporaryDirectory() as work:
        log = Path(work) / "phoenix.log"
        env = {
            **os.environ,
            "PHOENIX_WORKING_DIR": str(Path(work) / "phoenix"),
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(http_port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_TELEMETRY_ENABLED": "false",
        }
        with log.open("wb") as out:
            server = subprocess.Popen(
                [phoenix, "serve"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for_server(base, server, log)
            app_env = {
                k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))
            }
            app_env.pop("OPENAI_API_KEY", None)
            app_env["OTEL_EXPORTER_OTLP_ENDPOINT"] = base
            app_env["OTEL_METRICS_EXPORTER"] = "none"  # Phoenix receives traces only
            subprocess.run(
                [sys.executable, str(ROOT / "examples" / "quickstart.py")],
                env=app_env,
                cwd=work,
                check=True,
                timeout=120,
            )
            check(fetch_spans(base))
        finally:
            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
