"""The GenAI role/parts message schema: its shapes, and the one reader of it.

``gen_ai.input.messages``, ``gen_ai.output.messages`` and
``gen_ai.system_instructions`` hold JSON in the OpenTelemetry GenAI conventions'
schema (v1.41): a message is ``{"role", "parts", ...}`` and each part is a dict
tagged by ``type``. The TypedDicts below spell those shapes once; every module
that reads recorded messages back (online checks, evaluation datasets, the
fine-tuning export) reads them through :func:`text_of` and
:func:`messages_text`, so all agree on what counts as text.

The writer side (turning a provider's request and response into these shapes) is
the adapter's job; a writer shared by adapters belongs beside this reader and
should build the same TypedDicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Optional, TypedDict, Union

# --- the shapes (semantic conventions v1.41, "Capturing instructions, inputs and outputs") ---


class TextPart(TypedDict):
    """Text sent to or received from the model."""

    type: Literal["text"]
    content: str


class _ToolCallRequired(TypedDict):
    type: Literal["tool_call"]
    name: str


class ToolCallPart(_ToolCallRequired, total=False):
    """A tool call the model asked for; ``arguments`` is the parsed object when it parses."""

    id: Optional[str]
    arguments: Any


class _ToolCallResponseRequired(TypedDict):
    type: Literal["tool_call_response"]
    response: Any


class ToolCallResponsePart(_ToolCallResponseRequired, total=False):
    """What a tool returned, sent back to the model."""

    id: Optional[str]


class ReasoningPart(TypedDict):
    """The model's reasoning (a summary of it, where the provider gives one)."""

    type: Literal["reasoning"]
    content: str


class _MediaPart(TypedDict):
    modality: str  # image, video, audio (document in newer conventions)


class _BlobRequired(_MediaPart):
    type: Literal["blob"]
    content: str  # base64


class BlobPart(_BlobRequired, total=False):
    """Inline binary data (an image, audio) as base64."""

    mime_type: str


class _UriRequired(_MediaPart):
    type: Literal["uri"]
    uri: str


class UriPart(_UriRequired, total=False):
    """Media referenced by URI (an image URL)."""

    mime_type: str


class _FileRequired(_MediaPart):
    type: Literal["file"]
    file_id: str


class FilePart(_FileRequired, total=False):
    """A file uploaded to the provider, referenced by id."""

    mime_type: str


class _GenericRequired(TypedDict):
    type: str  # "generic", or any type a newer convention adds


class GenericPart(_GenericRequired, total=False):
    """A part of a kind the conventions name no shape for (``generic_type`` says which)."""

    generic_type: str


Part = Union[
    TextPart,
    ToolCallPart,
    ToolCallResponsePart,
    ReasoningPart,
    BlobPart,
    UriPart,
    FilePart,
    GenericPart,
]


class _ChatMessageRequired(TypedDict):
    role: str  # system, user, assistant, tool, or any string
    parts: list[Part]


class ChatMessage(_ChatMessageRequired, total=False):
    """One input message."""

    name: str


class OutputMessage(ChatMessage, total=False):
    """One output message (a choice)."""

    finish_reason: str


# --- the reader -----------------------------------------------------------------------------

TEXT = "text"
TOOL_CALL = "tool_call"
TOOL_CALL_RESPONSE = "tool_call_response"
REASONING = "reasoning"

# Part types whose meaning survives as text plus tool calls (what the fine-tuning export keeps).
TEXTUAL_PART_TYPES = frozenset({TEXT, TOOL_CALL, TOOL_CALL_RESPONSE, REASONING})


class UnsupportedPart(Exception):
    """A part that plain text cannot stand for (media, provider-run tools, unknown kinds).

    Internal: raised by :func:`text_of` with ``strict=True``; ``kind`` is the part's type.
    """

    def __init__(self, kind: object) -> None:
        super().__init__(f"message part of type {kind!r} has no text form")
        self.kind = kind


def text_of(parts: Union[str, Iterable[Any], None], *, strict: bool = False) -> str:
    """The text of a message's parts: the ``content`` of its text parts, joined.

    A plain string stands for one text part (as do string items); ``None`` is
    ``""``. Tool calls, tool results and reasoning carry no text of the message and
    are skipped; so are media, provider-run tools and unknown kinds, unless
    ``strict``, which raises :class:`UnsupportedPart` for them instead (for readers
    that would otherwise lose part of the message silently).
    """
    if parts is None:
        return ""
    if isinstance(parts, str):
        return parts
    texts: list[str] = []
    for part in parts:
        if isinstance(part, str):
            texts.append(part)
            continue
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == TEXT:
            texts.append(str(part.get("content") or ""))
        elif strict and kind not in TEXTUAL_PART_TYPES:
            raise UnsupportedPart(kind)
    return "".join(texts)


def messages_text(
    messages: Union[str, Iterable[Any], None], system: Union[str, Iterable[Any], None] = None
) -> str:
    """A conversation as ``role: text`` lines, system instructions first.

    A lone user message is its bare text (no ``user:`` prefix); a ``str`` in place
    of the messages is taken as already rendered. Items that are not messages are
    skipped.
    """
    lines = []
    if system:
        lines.append(f"system: {text_of(system)}")
    if isinstance(messages, str):
        return "\n".join([*lines, messages])
    for message in messages or ():
        if isinstance(message, Mapping):
            lines.append(f"{message.get('role', 'user')}: {text_of(message.get('parts'))}")
    if len(lines) == 1 and lines[0].startswith("user: "):
        return lines[0][len("user: ") :]
    return "\n".join(lines)
