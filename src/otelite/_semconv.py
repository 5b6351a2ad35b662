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

# --- GenAI: usage --------------------------------------------------------------
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_COST: Final = "gen_ai.usage.cost"

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
USER_ID: Final = "user.id"
SESSION_ID: Final = "session.id"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"

# --- otelite's own -----------------------------------------------------------------
OTELITE_SPAN_KIND: Final = "otelite.span.kind"
OTELITE_INPUT: Final = "otelite.input"
OTELITE_OUTPUT: Final = "otelite.output"
OTELITE_TAGS: Final = "otelite.tags"
OTELITE_METADATA_PREFIX: Final = "otelite.metadata."
CODE_FUNCTION_NAME: Final = "code.function.name"

# Attributes the local store copies into indexed columns.
STORE_MODEL_KEYS: Final = (GEN_AI_REQUEST_MODEL, GEN_AI_RESPONSE_MODEL)
