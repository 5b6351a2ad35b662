"""The one reader of the GenAI role/parts schema, on every part type, and its three users."""

from __future__ import annotations

import json
from typing import Any, Optional

import pytest

from otelite import _checks, _messages
from otelite import _semconv as sc
from otelite._messages import ChatMessage, Part, UnsupportedPart, messages_text, text_of
from otelite.datasets import SKIP_UNSUPPORTED, finetune_records
from otelite.evals import Dataset

TEXT: Part = {"type": "text", "content": "Paris"}
TOOL_CALL: Part = {"type": "tool_call", "id": "c1", "name": "lookup", "arguments": {"q": "x"}}
TOOL_RESULT: Part = {"type": "tool_call_response", "id": "c1", "response": {"ok": True}}
REASONING: Part = {"type": "reasoning", "content": "thinking about capitals"}
URI: Part = {"type": "uri", "modality": "image", "uri": "https://example.com/a.png"}
BLOB: Part = {"type": "blob", "modality": "image", "mime_type": "image/png", "content": "iVBORw=="}
FILE: Part = {"type": "file", "modality": "document", "file_id": "file-1"}
GENERIC: Part = {"type": "generic", "generic_type": "input_audio"}
UNKNOWN: Any = {"type": "hologram", "content": "not text"}


@pytest.mark.parametrize(
    ("part", "text"),
    [
        pytest.param(TEXT, "Paris", id="text"),
        pytest.param({"type": "text", "content": None}, "", id="text-without-content"),
        pytest.param("plain string", "plain string", id="string-item"),
        pytest.param(TOOL_CALL, "", id="tool_call"),
        pytest.param(TOOL_RESULT, "", id="tool_call_response"),
        pytest.param(REASONING, "", id="reasoning"),
        pytest.param(URI, "", id="uri"),
        pytest.param(BLOB, "", id="blob"),
        pytest.param(FILE, "", id="file"),
        pytest.param(GENERIC, "", id="generic"),
        pytest.param(UNKNOWN, "", id="unknown"),
        pytest.param(42, "", id="not-a-part"),
    ],
)
def test_text_of_each_part_type(part: Any, text: str) -> None:
    """Only text parts (and bare strings) give text; every other part type is skipped."""
    assert text_of([part]) == text
    assert text_of([TEXT, part, {"type": "text", "content": "!"}]) == f"Paris{text}!"


@pytest.mark.parametrize(
    ("part", "supported"),
    [
        pytest.param(TEXT, True, id="text"),
        pytest.param(TOOL_CALL, True, id="tool_call"),
        pytest.param(TOOL_RESULT, True, id="tool_call_response"),
        pytest.param(REASONING, True, id="reasoning"),
        pytest.param(URI, False, id="uri"),
        pytest.param(BLOB, False, id="blob"),
        pytest.param(FILE, False, id="file"),
        pytest.param(GENERIC, False, id="generic"),
        pytest.param({"type": "server_tool_call", "name": "web"}, False, id="server_tool_call"),
        pytest.param(UNKNOWN, False, id="unknown"),
    ],
)
def test_strict_text_of_refuses_parts_text_cannot_stand_for(part: Any, supported: bool) -> None:
    """strict=True raises UnsupportedPart naming the type for media, provider tools and unknown kinds."""
    if supported:
        expected = "ParisParis" if part is TEXT else "Paris"
        assert text_of([TEXT, part], strict=True) == expected
        return
    with pytest.raises(UnsupportedPart) as caught:
        text_of([TEXT, part], strict=True)
    assert caught.value.kind == part["type"]
    assert str(caught.value) == f"message part of type {part['type']!r} has no text form"


def test_text_of_accepts_a_string_and_nothing() -> None:
    """A plain string is its own text; None and an empty list are empty text."""
    assert text_of("already text") == "already text"
    assert text_of(None) == ""
    assert text_of([]) == ""


def test_messages_text_renders_roles_in_order() -> None:
    """System instructions first, then role: text lines; non-messages are skipped."""
    conversation: list[Any] = [
        ChatMessage(role="user", parts=[TEXT, URI]),
        ChatMessage(role="assistant", parts=[TOOL_CALL]),
        ChatMessage(role="tool", parts=[TOOL_RESULT]),
        "not a message",
        {"parts": [{"type": "text", "content": "no role"}]},
    ]
    assert messages_text(conversation, system=[{"type": "text", "content": "Be brief."}]) == (
        "system: Be brief.\nuser: Paris\nassistant: \ntool: \nuser: no role"
    )


def test_messages_text_lone_user_message_is_bare() -> None:
    """A single user message reads as its text alone; a pre-rendered string is kept."""
    assert messages_text([{"role": "user", "parts": [TEXT]}]) == "Paris"
    assert messages_text("user: hi", system="Be brief.") == "system: Be brief.\nuser: hi"
    assert messages_text(None) == ""


def test_online_checks_read_through_the_shared_reader() -> None:
    """_checks.messages_text is the shared reader applied to captured content."""
    content = {
        sc.GEN_AI_SYSTEM_INSTRUCTIONS: [{"type": "text", "content": "Be brief."}],
        sc.GEN_AI_INPUT_MESSAGES: [{"role": "user", "parts": [TEXT, REASONING, BLOB]}],
    }
    assert _checks.messages_text(content) == "system: Be brief.\nuser: Paris"


class Recorded:
    """A recorded chat call as the store gives it."""

    def __init__(
        self, inputs: list[Any], outputs: list[Any], system: Optional[list[Any]] = None
    ) -> None:
        self.trace_id = "t" * 32
        self.span_id = "s" * 16
        self.status_code = "OK"
        self.attributes: dict[str, Any] = {
            sc.GEN_AI_OPERATION_NAME: sc.OP_CHAT,
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            sc.GEN_AI_INPUT_MESSAGES: json.dumps(inputs),
            sc.GEN_AI_OUTPUT_MESSAGES: json.dumps(outputs),
        }
        if system is not None:
            self.attributes[sc.GEN_AI_SYSTEM_INSTRUCTIONS] = json.dumps(system)


class Store:
    """A store holding the given calls."""

    def __init__(self, *calls: Recorded) -> None:
        self.calls = calls

    def llm_spans(self, **_: Any) -> Any:
        return iter(self.calls)


def test_evaluation_dataset_reads_text_parts_only() -> None:
    """Dataset.from_store takes the last user message's text and the answer's text, skipping other parts."""
    call = Recorded(
        [
            {"role": "user", "parts": [{"type": "text", "content": "first"}]},
            {"role": "user", "parts": [URI, {"type": "text", "content": "Capital of France?"}]},
        ],
        [{"role": "assistant", "parts": [REASONING, TEXT, TOOL_CALL]}],
    )
    dataset = Dataset.from_store(Store(call))
    assert [(e.input, e.expected) for e in dataset.examples] == [("Capital of France?", "Paris")]


def test_finetune_export_skips_calls_with_parts_text_cannot_stand_for() -> None:
    """The fine-tuning export keeps text and tool parts and skips a call with an image, counted as unsupported."""
    plain = Recorded(
        [{"role": "user", "parts": [{"type": "text", "content": "Capital?"}]}],
        [{"role": "assistant", "parts": [REASONING, TEXT]}],
        system=[{"type": "text", "content": "Be brief."}],
    )
    with_image = Recorded(
        [{"role": "user", "parts": [{"type": "text", "content": "What is this?"}, BLOB]}],
        [{"role": "assistant", "parts": [TEXT]}],
    )
    result = finetune_records([plain, with_image])
    assert result.records == [
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Capital?"},
                {"role": "assistant", "content": "Paris"},
            ]
        }
    ]
    assert result.skipped[SKIP_UNSUPPORTED] == 1


def test_part_types_match_the_conventions() -> None:
    """The reader's textual part types are the conventions' names."""
    assert (
        {
            _messages.TEXT,
            _messages.TOOL_CALL,
            _messages.TOOL_CALL_RESPONSE,
            _messages.REASONING,
        }
        == _messages.TEXTUAL_PART_TYPES
        == {"text", "tool_call", "tool_call_response", "reasoning"}
    )
