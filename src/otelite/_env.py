"""Every environment variable otelite reads, declared once with its meaning.

``configure()`` arguments win over these; these win over built-in defaults.
``docs/configuration.md`` lists the same variables, and a test keeps the two in
step.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from otelite._exceptions import ConfigurationError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class EnvVar(NamedTuple):
    """One environment variable: its name and what it does."""

    name: str
    description: str

    def read(self) -> Optional[str]:
        """The stripped value, or ``None`` when unset or empty."""
        value = os.environ.get(self.name)
        if value is None or not value.strip():
            return None
        return value.strip()

    def read_bool(self, default: bool = False) -> bool:
        """Parse ``true/false/1/0/yes/no/on/off`` (any case); raise on anything else."""
        value = self.read()
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigurationError(
            f"{self.name}: {value!r} is not a boolean; set it to 'true' or 'false'"
        )


# --- Standard OpenTelemetry variables ---------------------------------------------
OTEL_SDK_DISABLED = EnvVar(
    "OTEL_SDK_DISABLED", "`true` turns otelite (and the OpenTelemetry SDK) into a no-op."
)
OTEL_SERVICE_NAME = EnvVar("OTEL_SERVICE_NAME", "Default for `service_name`.")
OTEL_RESOURCE_ATTRIBUTES = EnvVar(
    "OTEL_RESOURCE_ATTRIBUTES",
    "Extra resource attributes, `key=value` pairs separated by commas "
    "(read by the OpenTelemetry SDK; `resource_attributes=` wins).",
)
OTEL_EXPORTER_OTLP_ENDPOINT = EnvVar(
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "Default for `endpoint`: the OTLP base URL; `/v1/traces` and `/v1/metrics` are appended "
    "for http/protobuf.",
)
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = EnvVar(
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "The full OTLP URL for traces, used as is (wins over the base endpoint for traces).",
)
OTEL_EXPORTER_OTLP_METRICS_ENDPOINT = EnvVar(
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "The full OTLP URL for metrics, used as is (wins over the base endpoint for metrics).",
)
OTEL_EXPORTER_OTLP_PROTOCOL = EnvVar(
    "OTEL_EXPORTER_OTLP_PROTOCOL", "Default for `protocol`: `http/protobuf` or `grpc`."
)
OTEL_EXPORTER_OTLP_HEADERS = EnvVar(
    "OTEL_EXPORTER_OTLP_HEADERS",
    "Default for `headers`: `key=value` pairs separated by commas, values URL-encoded.",
)
OTEL_EXPORTER_OTLP_TIMEOUT = EnvVar(
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "Seconds one OTLP export request may take (as the OpenTelemetry Python exporters read it); "
    "default 10.",
)
OTEL_EXPORTER_OTLP_TRACES_TIMEOUT = EnvVar(
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "Seconds one OTLP span export request may take (wins over `OTEL_EXPORTER_OTLP_TIMEOUT`).",
)
OTEL_BSP_SCHEDULE_DELAY = EnvVar(
    "OTEL_BSP_SCHEDULE_DELAY",
    "Milliseconds between two exports of buffered spans (default 1000).",
)
OTEL_BSP_MAX_QUEUE_SIZE = EnvVar(
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "Spans buffered for an OTLP exporter before new ones are dropped and counted (default "
    "2048); the local store's queue is bounded by `OTELITE_MAX_QUEUE_MB` only.",
)
OTEL_BSP_MAX_EXPORT_BATCH_SIZE = EnvVar(
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "Most spans exported in one batch (default 512); OTLP batches are also split to stay "
    "under 4 MiB.",
)
OTEL_METRICS_EXPORTER = EnvVar(
    "OTEL_METRICS_EXPORTER",
    "`none` sends no metrics over OTLP (for backends that accept only traces); default `otlp`; "
    "`prometheus` serves them for scraping instead (`otlp,prometheus`: both).",
)
OTEL_EXPORTER_PROMETHEUS_HOST = EnvVar(
    "OTEL_EXPORTER_PROMETHEUS_HOST",
    "With `OTEL_METRICS_EXPORTER=prometheus`: the address `/metrics` is served on "
    "(default `localhost`; needs `otelite[prometheus]`).",
)
OTEL_EXPORTER_PROMETHEUS_PORT = EnvVar(
    "OTEL_EXPORTER_PROMETHEUS_PORT",
    "With `OTEL_METRICS_EXPORTER=prometheus`: the port `/metrics` is served on (default 9464).",
)
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT = EnvVar(
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "Default for `capture_content`: `true`/`false`, or the content modes "
    "`span_only`/`span_and_event` (on) and `no_content`/`event_only` (off).",
)

OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT = EnvVar(
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "Maximum characters of one string attribute value (default: `max_content_length`); "
    "longer values are cut with a visible marker that fits inside the limit.",
)
OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT = EnvVar(
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "Like `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, for span attributes only (wins over it).",
)

# --- otelite's own -------------------------------------------------------------------
OTELITE_HOME = EnvVar(
    "OTELITE_HOME", "Directory of the local store (default `.otelite` in the working directory)."
)
OTELITE_LOCAL_STORE = EnvVar(
    "OTELITE_LOCAL_STORE",
    "`true` keeps a local copy even when an OTLP endpoint is set; `false` disables the store.",
)
OTELITE_RETENTION = EnvVar(
    "OTELITE_RETENTION",
    "Default for `retention`: how long the local store keeps traces (e.g. `30d`); default forever.",
)
OTELITE_SAMPLE_RATIO = EnvVar(
    "OTELITE_SAMPLE_RATIO", "Default for `sample_ratio`: fraction of traces kept, 0.0 to 1.0."
)
OTELITE_MAX_CONTENT_LENGTH = EnvVar(
    "OTELITE_MAX_CONTENT_LENGTH",
    "Default for `max_content_length`: characters kept of one captured value (default 8192).",
)
OTELITE_REDACT_BUILTIN = EnvVar(
    "OTELITE_REDACT_BUILTIN",
    "Default for `redact_builtin`: `false` turns off the built-in e-mail and card-number "
    "patterns (API keys are always removed).",
)
OTELITE_PRICES_FILE = EnvVar(
    "OTELITE_PRICES_FILE",
    "Default for `prices`: a JSON file of per-model prices (USD per million tokens) that add to "
    "or override the bundled catalog.",
)
OTELITE_STREAM_USAGE = EnvVar(
    "OTELITE_STREAM_USAGE",
    "Default for `stream_usage`: `false` stops otelite from asking OpenAI and Azure OpenAI for "
    "usage in streams (it then estimates it).",
)
OTELITE_CHECKS = EnvVar(
    "OTELITE_CHECKS",
    "Default for `checks`: built-in online checks by name, comma-separated "
    "(`empty`, `refusal`, `truncated`, `error`, `invalid_json`, `pii`, `slow:SECONDS`).",
)
OTELITE_METRIC_DIMENSIONS = EnvVar(
    "OTELITE_METRIC_DIMENSIONS",
    "Default for `metric_dimensions`: opt-in metric labels, comma-separated "
    "(`user`, `prompt`, `service.version`, `geo`; `user:20` sets that one's cap).",
)
OTELITE_MAX_QUEUE_MB = EnvVar(
    "OTELITE_MAX_QUEUE_MB",
    "Memory (MB, estimated) each export queue may hold before new spans are dropped and "
    "counted (default 64); the local store's queue is bounded by this alone.",
)
OTELITE_EXIT_TIMEOUT = EnvVar(
    "OTELITE_EXIT_TIMEOUT",
    "Seconds `shutdown()` and interpreter exit may spend delivering buffered spans and "
    "metrics (default 2); what is left is counted as dropped.",
)
OTELITE_HANDLE_SIGNALS = EnvVar(
    "OTELITE_HANDLE_SIGNALS",
    "Default for `handle_signals`: `true` flushes on SIGTERM/SIGINT then chains to the app's "
    "handler or the default action; `false` installs no handler (default: on when otelite "
    "created the providers and the app has no handler of its own).",
)
OTELITE_OUTBOX = EnvVar(
    "OTELITE_OUTBOX",
    "`false` turns the outbox off: OTLP/HTTP exports that fail are then counted as dropped "
    "instead of kept on disk (`outbox.db` beside the local store) and resent (default on).",
)
OTELITE_OUTBOX_MAX_MB = EnvVar(
    "OTELITE_OUTBOX_MAX_MB",
    "Cap on the outbox's stored requests in MB (default 100); past it the oldest are "
    "dropped and counted.",
)
OTELITE_PROMPTS_DIR = EnvVar(
    "OTELITE_PROMPTS_DIR",
    "Directory of the prompt registry (default `prompts` in the working directory).",
)
OTELITE_AUTHOR = EnvVar(
    "OTELITE_AUTHOR",
    "Author recorded with prompt versions and label moves (default: GIT_AUTHOR_NAME, then the user).",
)
RAISE_INTERNAL_ERRORS = EnvVar(
    "OTELITE_RAISE_INTERNAL_ERRORS",
    "`true` makes otelite's own failures raise instead of being logged (for otelite's tests).",
)


def attribute_value_length_limit() -> Optional[int]:
    """The attribute value length limit from the environment, or ``None`` when unset.

    ``OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`` wins over ``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``,
    as in the OpenTelemetry SDK. Raises :class:`ConfigurationError` naming the variable when
    the value is not a non-negative whole number.
    """
    for var in (OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT):
        raw = var.read()
        if raw is None:
            continue
        try:
            limit = int(raw)
        except ValueError:
            limit = -1
        if limit < 0:
            raise ConfigurationError(
                f"{var.name}: {raw!r} must be a non-negative whole number of characters "
                "(such as 8192), or unset"
            )
        return limit
    return None


ALL: tuple[EnvVar, ...] = tuple(v for v in list(globals().values()) if isinstance(v, EnvVar))
