"""An in-process OpenAI-compatible server for tests: JSON and SSE bodies built from parts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

import openai

from cassettes import http

Handler = Callable[[Any], Any]


def chat_completion(
    content: str = "Paris.",
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    usage: Optional[dict[str, Any]] = None,
    finish_reason: str = "stop",
    tool_calls: Optional[list[dict[str, Any]]] = None,
    choices: Optional[list[dict[str, Any]]] = None,
    **extra: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": choices
        if choices is not None
        else [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": usage
        if usage is not None
        else {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
        **extra,
    }


def chat_chunks(
    pieces: list[str], *, usage: bool = True, model: str = "gpt-4o-mini-2024-07-18"
) -> list[dict[str, Any]]:
    """A chat stream: one delta per piece, a finish chunk, and (optionally) a usage-only chunk."""
    base = {"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1, "model": model}
    chunks = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": p}, "finish_reason": None}
            ],
        }
        for p in pieces
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        chunks.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": 9,
                    "completion_tokens": len(pieces),
                    "total_tokens": 9 + len(pieces),
                },
            }
        )
    return chunks


def completion_chunks(pieces: list[str]) -> list[dict[str, Any]]:
    base = {
        "id": "cmpl-s",
        "object": "text_completion",
        "created": 1,
        "model": "gpt-3.5-turbo-instruct",
    }
    chunks = [
        {**base, "choices": [{"index": 0, "text": p, "finish_reason": None, "logprobs": None}]}
        for p in pieces
    ]
    chunks.append(
        {**base, "choices": [{"index": 0, "text": "", "finish_reason": "length", "logprobs": None}]}
    )
    return chunks


def response_object(text: str = "Paris.", status: str = "completed") -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": "gpt-4.1-mini-2025-04-14",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 20,
            "input_tokens_details": {"cached_tokens": 4},
            "output_tokens": 6,
            "output_tokens_details": {"reasoning_tokens": 2},
            "total_tokens": 26,
        },
    }


def response_events(pieces: list[str]) -> list[dict[str, Any]]:
    """A Responses API event stream for one text message, as the server sends it."""
    created = {**response_object(""), "status": "in_progress", "output": [], "usage": None}
    item = {
        "type": "message",
        "id": "msg_1",
        "status": "in_progress",
        "role": "assistant",
        "content": [],
    }
    part = {"type": "output_text", "text": "", "annotations": []}
    text = "".join(pieces)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": created},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {
            "type": "response.content_part.added",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "part": part,
        },
    ]
    for piece in pieces:
        events.append(
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
        )
    done_part = {**part, "text": text}
    events += [
        {
            "type": "response.output_text.done",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "text": text,
            "logprobs": [],
        },
        {
            "type": "response.content_part.done",
            "item_id": "msg_1",
            "output_index": 0,
            "content_index": 0,
            "part": done_part,
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {**item, "status": "completed", "content": [done_part]},
        },
        {"type": "response.completed", "response": response_object(text)},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def sse(events: list[dict[str, Any]], *, done: bool = True, named: bool = False) -> list[bytes]:
    """Server-sent event frames, one per event."""
    frames = []
    for event in events:
        prefix = f"event: {event['type']}\n" if named else ""
        frames.append(f"{prefix}data: {json.dumps(event)}\n\n".encode())
    if done:
        frames.append(b"data: [DONE]\n\n")
    return frames


class Frames:
    """A response body that yields frames one by one; can fail or stall after a given frame."""

    def __init__(
        self, frames: list[bytes], *, fail_after: Optional[int] = None, delay: float = 0.0
    ) -> None:
        self.frames = frames
        self.fail_after = fail_after
        self.delay = delay

    def __iter__(self) -> Iterator[bytes]:
        for i, frame in enumerate(self.frames):
            if self.fail_after is not None and i == self.fail_after:
                raise http.ReadError("connection dropped mid-stream")
            yield frame


class AsyncFrames(Frames):
    """The same frames for an async client (optionally with a delay between frames)."""

    __iter__ = None  # type: ignore[assignment]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for i, frame in enumerate(self.frames):
            if self.fail_after is not None and i == self.fail_after:
                raise http.ReadError("connection dropped mid-stream")
            if self.delay:
                await asyncio.sleep(self.delay)
            yield frame


def json_response(body: Any, status: int = 200) -> Any:
    return http.Response(status, json=body)


def stream_response(frames: Any) -> Any:
    return http.Response(200, headers={"content-type": "text/event-stream"}, content=frames)


def client(
    handler: Handler, *, is_async: bool = False, base_url: str = "https://api.openai.com/v1"
) -> Any:
    """A real openai client (sync or async) whose requests go to ``handler``."""
    transport = http.MockTransport(handler)
    if is_async:
        return openai.AsyncOpenAI(
            api_key="sk-test-0123456789abcdefghij",
            base_url=base_url,
            max_retries=0,
            http_client=http.AsyncClient(transport=transport),
        )
    return openai.OpenAI(
        api_key="sk-test-0123456789abcdefghij",
        base_url=base_url,
        max_retries=0,
        http_client=http.Client(transport=transport),
    )


class Recorder:
    """A handler that answers with ``respond(request)`` and keeps the requests it saw."""

    def __init__(self, respond: Callable[[Any], Any]) -> None:
        self.respond = respond
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        return self.respond(request)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) for r in self.requests]
