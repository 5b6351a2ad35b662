"""The CLI at its edges: output piped into a reader that closes early, prompt references in
export filters, the filter report, plurals, and `export otlp` selection and headers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otelite._export import LocalStoreExporter
from otelite.testing import SequentialIdGenerator
from storefixture import MS, T0

EXIT_BROKEN_PIPE = 141  # what a shell reports for a Unix tool killed by SIGPIPE (128 + 13)


def build_big_store(path: Path, traces: int = 1000) -> Path:
    """A store of ``traces`` one-span traces: far more output than a pipe buffer holds."""
    provider = TracerProvider(
        resource=Resource({"service.name": "big"}),
        id_generator=SequentialIdGenerator(),
        shutdown_on_exit=False,
    )
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otelite")
    for i in range(traces):
        span = tracer.start_span(
            f"invoke_workflow job-{i}", start_time=T0 + i * MS, attributes={"user.id": f"u{i}"}
        )
        span.end(end_time=T0 + i * MS + MS // 2)
    exporter = LocalStoreExporter(path / "otelite.db")
    exporter.export(memory.get_finished_spans())
    exporter.shutdown()
    provider.shutdown()
    return path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OTELITE_"))}
    env.pop("PYTHONUNBUFFERED", None)
    return env


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One thousand traces."""
    return str(build_big_store(tmp_path_factory.mktemp("big")))


@pytest.mark.parametrize(
    "argv",
    [
        ["traces", "--json", "-n", "1000"],
        ["traces", "-n", "1000"],
    ],
    ids=["json", "text"],
)
def test_output_into_a_reader_that_closes_early_ends_quietly(
    big_store: str, argv: list[str]
) -> None:
    """Piped into a reader that reads one line and closes: no traceback, exit 141 like Unix tools."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "otelite", *argv, "--store", big_store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    code = proc.wait(timeout=60)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert first.strip()
    assert err == ""
    assert code == EXIT_BROKEN_PIPE


def test_reader_closed_before_any_output_ends_quietly(big_store: str) -> None:
    """A reader gone before the first write (`otelite prompts list | true`): still no traceback."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "otelite", "traces", "-n", "5", "--store", big_store],
            stdout=write,
            stderr=subprocess.PIPE,
            env=_env(),
            timeout=60,
        )
    finally:
        os.close(write)
    assert proc.stderr.decode() == ""
    assert proc.returncode == EXIT_BROKEN_PIPE
