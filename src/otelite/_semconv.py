"""Every attribute, metric and event name otelite emits, spelled once.

The GenAI names follow the OpenTelemetry semantic conventions v1.41 (the last
release with GenAI content in the core repository). Names otelite invents live
under ``otelite.*``. No other module writes an attribute name as a literal.
"""

from __future__ import annotations

from typing import Final

SCHEMA_URL: Final = "https://opentelemetry.io/schemas/1.41.0"
INSTRUMENTATION_SCOPE: Final = "otelite"

# --- GenAI: operation, provider, model -------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"

# --- GenAI: request parameters -------------------------------------------------
GEN_AI_REQUEST_MAX_TOKENS: Final = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_CHOICE_COUNT: Final = "gen_ai.request.choice.count"
GEN_AI_REQUEST_TEMPERATURE: Final = "gen_ai.request.temperature"
GEN_AI_REQUEST_TOP_P: Final = "gen_ai.request.top_p"
GEN_AI_REQUEST_STOP_SEQUENCES: Final = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_FREQUENCY_PENALTY: Final = "gen_ai.request.frequency_penalty"
GEN_AI_REQUEST_PRESENCE_PENALTY: Final = "gen_ai.request.presence_penalty"
GEN_AI_REQUEST_SEED: Final = "gen_ai.request.seed"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_REQUEST_ENCODING_FORMATS: Final = "gen_ai.request.encoding_formats"
GEN_AI_EMBEDDINGS_DIMENSION_COUNT: Final = "gen_ai.embeddings.dimension.count"
GEN_AI_OUTPUT_TYPE: Final = "gen_ai.output.type"
GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: Final = "gen_ai.response.time_to_first_chunk"

# --- GenAI: usage --------------------------------------------------------------
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"

# --- GenAI: content (opt-in, decision D2) ----------------------------------------
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_SYSTEM_INSTRUCTIONS: Final = "gen_ai.system_instructions"
GEN_AI_TOOL_DEFINITIONS: Final = "gen_ai.tool.definitions"

# --- OpenAI-specific (only when gen_ai.provider.name is "openai") ------------------
OPENAI_REQUEST_SERVICE_TIER: Final = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT: Final = "openai.response.system_fingerprint"
OPENAI_API_TYPE: Final = "openai.api.type"

# gen_ai.operation.name values of LLM calls
OP_CHAT: Final = "chat"
OP_TEXT_COMPLETION: Final = "text_completion"
OP_EMBEDDINGS: Final = "embeddings"

# gen_ai.provider.name values
PROVIDER_OPENAI: Final = "openai"
PROVIDER_AZURE_OPENAI: Final = "azure.ai.openai"

# --- Metrics (v1.41) -------------------------------------------------------------
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_TIME_TO_FIRST_CHUNK: Final = "gen_ai.client.operation.time_to_first_chunk"
METRIC_TIME_PER_OUTPUT_CHUNK: Final = "gen_ai.client.operation.time_per_output_chunk"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
TOKEN_TYPE_INPUT: Final = "input"
TOKEN_TYPE_OUTPUT: Final = "output"
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TOKEN_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)

# --- GenAI: agents, tools, workflows, retrieval ----------------------------------
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE: Final = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_DATA_SOURCE_ID: Final = "gen_ai.data_source.id"

# Operation names (gen_ai.operation.name values) used by decorated spans.
OP_EXECUTE_TOOL: Final = "execute_tool"
OP_INVOKE_AGENT: Final = "invoke_agent"
OP_INVOKE_WORKFLOW: Final = "invoke_workflow"
OP_RETRIEVAL: Final = "retrieval"

# --- General conventions ---------------------------------------------------------
ERROR_TYPE: Final = "error.type"
ERROR_TYPE_OTHER: Final = "_OTHER"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
HTTP_REQUEST_RESEND_COUNT: Final = "http.request.resend_count"
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
GEO_COUNTRY: Final = "geo.country.iso_code"
GEO_REGION: Final = "geo.region.iso_code"

# --- prompts (otelite.prompts) ------------------------------------------------------
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_PROMPT_VERSION: Final = "gen_ai.prompt.version"
OTELITE_PROMPT_LABEL: Final = "otelite.prompt.label"
OTELITE_PROMPT_VARIABLES: Final = "otelite.prompt.variables"
# Not a span attribute: the Python attribute compiled prompts carry so that an
# instrumented call can tell which prompt version its input came from.
PROMPT_LINK: Final = "otelite_prompt"

# --- otelite's own -----------------------------------------------------------------
OTELITE_USAGE_ESTIMATED: Final = "otelite.usage.estimated"
# How estimated usage was counted: with the model family's tiktoken encoding, or
# (until that encoding is loaded, or when it cannot be) one token per 4 characters.
OTELITE_USAGE_ESTIMATE_METHOD: Final = "otelite.usage.estimate_method"
ESTIMATE_METHOD_TIKTOKEN: Final = "tiktoken"
ESTIMATE_METHOD_CHARS: Final = "chars/4"
OTELITE_USAGE_UNREADABLE: Final = "otelite.usage.unreadable"
OTELITE_COST_SOURCE: Final = "otelite.cost.source"
OTELITE_COST_CATALOG_VERSION: Final = "otelite.cost.catalog_version"
OTELITE_COST_CATALOG_DATE: Final = "otelite.cost.catalog_date"
OTELITE_COST_ESTIMATED: Final = "otelite.cost.estimated"
OTELITE_COST_OVERRIDE: Final = "otelite.cost.override"
OTELITE_COST_UNPRICED: Final = "otelite.cost.unpriced"
METRIC_COST: Final = "otelite.client.cost"

# API-change detection (otelite._llm._changes): one span event per change, one counter by kind.
EVENT_API_CHANGE: Final = "otelite.api.change"
API_CHANGE_KIND: Final = "kind"
API_CHANGE_OLD: Final = "old"
API_CHANGE_NEW: Final = "new"
METRIC_API_CHANGES: Final = "otelite.api.changes"
OTELITE_SPAN_KIND: Final = "otelite.span.kind"
OTELITE_INPUT: Final = "otelite.input"
OTELITE_OUTPUT: Final = "otelite.output"
OTELITE_TAGS: Final = "otelite.tags"
OTELITE_METADATA_PREFIX: Final = "otelite.metadata."
CODE_FUNCTION_NAME: Final = "code.function.name"

# --- evaluation (otelite.evals, otelite.score, online checks) -------------------------
# The conventions' evaluation event and its attributes (development status in v1.41).
GEN_AI_EVALUATION_RESULT: Final = "gen_ai.evaluation.result"
GEN_AI_EVALUATION_NAME: Final = "gen_ai.evaluation.name"
GEN_AI_EVALUATION_SCORE_VALUE: Final = "gen_ai.evaluation.score.value"
GEN_AI_EVALUATION_SCORE_LABEL: Final = "gen_ai.evaluation.score.label"
GEN_AI_EVALUATION_EXPLANATION: Final = "gen_ai.evaluation.explanation"
OTELITE_EVALUATION_PASSED: Final = "otelite.evaluation.passed"
OTELITE_EVALUATION_KIND: Final = "otelite.evaluation.kind"
OTELITE_EVALUATION_SOURCE: Final = "otelite.evaluation.source"
OTELITE_EVALUATION_COMMENT: Final = "otelite.evaluation.comment"
OTELITE_EVALUATION_ERROR: Final = "otelite.evaluation.error"
OTELITE_EVALUATION_AGREEMENT: Final = "otelite.evaluation.agreement"
OTELITE_EVALUATION_SAMPLES: Final = "otelite.evaluation.samples"
OTELITE_EVALUATION_INPUT_TOKENS: Final = "otelite.evaluation.usage.input_tokens"
OTELITE_EVALUATION_OUTPUT_TOKENS: Final = "otelite.evaluation.usage.output_tokens"
OTELITE_EVALUATION_COST: Final = "otelite.evaluation.cost"
# Marks spans made for evaluation (judge calls, dataset runs) or by canary runs so
# their cost is reported apart from the application's; its values:
OTELITE_TRAFFIC: Final = "otelite.traffic"
TRAFFIC_EVALUATION: Final = "evaluation"
TRAFFIC_CANARY: Final = "canary"
# Canary runs (`otelite canary run`): the run's root span and one span per canary.
OTELITE_CANARY_FILE: Final = "otelite.canary.file"
OTELITE_CANARY_COUNT: Final = "otelite.canary.count"
OTELITE_CANARY_CHANGED: Final = "otelite.canary.changed"
OTELITE_CANARY_FAILED: Final = "otelite.canary.failed"
OTELITE_CANARY_NAME: Final = "otelite.canary.name"
OTELITE_CANARY_STATUS: Final = "otelite.canary.status"
OTELITE_CANARY_REASONS: Final = "otelite.canary.reasons"
# Canary results by name and status, so a metrics backend can alert on `changed`/`failed`.
METRIC_CANARY_RESULTS: Final = "otelite.canary.results"
OTELITE_EVAL_RUN_NAME: Final = "otelite.eval.run.name"
OTELITE_EVAL_RUN_ID: Final = "otelite.eval.run.id"
OTELITE_EVAL_ROW: Final = "otelite.eval.row"
OTELITE_EVAL_REPEAT: Final = "otelite.eval.repeat"
# Online checks: the names of the checks a response failed, and the failure counter.
OTELITE_CHECKS_FAILED: Final = "otelite.checks.failed"
OTELITE_CHECK_NAME: Final = "otelite.check.name"
METRIC_CHECK_FAILURES: Final = "otelite.client.check.failures"

# --- dashboard metrics (docs/grafana.md) -----------------------------------------------
# Cached input and reasoning output tokens, counted apart (they are included in the
# input and output counts of gen_ai.client.token.usage, so never sum the two).
METRIC_TOKEN_DETAILS: Final = "otelite.client.token.details"
OTELITE_TOKEN_DETAIL: Final = "otelite.token.detail"
TOKEN_DETAIL_CACHE_READ: Final = "cache_read"
TOKEN_DETAIL_REASONING: Final = "reasoning"
# Every score recorded (evaluators, judges, humans, online judges), by evaluator.
METRIC_EVALUATION_SCORE: Final = "otelite.evaluation.score"
SCORE_BUCKETS: Final = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
# Provider API changes (response model, system fingerprint, response shape), by kind.
# Fed by change detection when it lands; dashboards and alerts already read it.
OTELITE_API_CHANGE_KIND: Final = "otelite.api.change.kind"
# The value an opt-in metric dimension takes once its cap of distinct values is reached.
DIMENSION_OTHER: Final = "other"

# --- SDK self-observability (the conventions' otel.sdk.* metrics, development status) ---
# Counted by otelite's batching processor and its OTLP metric exporter, read on the
# metric reader's thread (observable instruments): nothing is added to the hot path.
METRIC_SDK_PROCESSOR_SPAN_PROCESSED: Final = "otel.sdk.processor.span.processed"
METRIC_SDK_PROCESSOR_SPAN_QUEUE_SIZE: Final = "otel.sdk.processor.span.queue.size"
METRIC_SDK_PROCESSOR_SPAN_QUEUE_CAPACITY: Final = "otel.sdk.processor.span.queue.capacity"
METRIC_SDK_EXPORTER_SPAN_EXPORTED: Final = "otel.sdk.exporter.span.exported"
METRIC_SDK_EXPORTER_METRIC_POINT_EXPORTED: Final = "otel.sdk.exporter.metric_data_point.exported"
OTEL_COMPONENT_TYPE: Final = "otel.component.type"
OTEL_COMPONENT_NAME: Final = "otel.component.name"
COMPONENT_BATCHING_SPAN_PROCESSOR: Final = "batching_span_processor"
# otelite's own: every span or metric point that was not delivered, by reason and signal.
METRIC_SDK_DROPPED: Final = "otelite.sdk.dropped"
# An observable hook with no data: its callback records the LLM-call measurements still queued.
METRIC_SDK_METRICS_PENDING: Final = "otelite.sdk.metrics.pending"
OTELITE_DROP_REASON: Final = "otelite.drop.reason"
OTELITE_SIGNAL: Final = "otelite.signal"
SIGNAL_SPANS: Final = "spans"
SIGNAL_METRICS: Final = "metrics"

# Attributes the local store copies into indexed columns.
STORE_MODEL_KEYS: Final = (GEN_AI_REQUEST_MODEL, GEN_AI_RESPONSE_MODEL)
