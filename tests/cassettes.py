"""Replay the recorded OpenAI interactions in tests/cassettes through the real client.

Each interaction is served once, in order, by an ``httpx``/``httpx2``
``MockTransport`` (whichever the installed openai is built on). Requests are
checked against the recording by method, path and parsed JSON body (ignoring
keys the client or otelite may add), and the client is then driven with the
recorded request body as keyword arguments.
"""

from __future__ import annotations

import gzip
import inspect
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, urlsplit

import openai
import yaml

CASSETTES = Path(__file__).parent / "cassettes"
IGNORED_REQUEST_KEYS = {"encoding_format", "stream_options"}
ENDPOINTS = ("/chat/completions", "/completions", "/embeddings", "/responses")

# The HTTP library the installed openai uses: httpx (1.x, 2.x) or httpx2 (3.x).
http: Any = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]]


@dataclass
class Interaction:
    """One recorded request and its response."""

    method: str
    url: str
    request: Optional[dict[str, Any]]
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def endpoint(self) -> str:
        path = urlsplit(self.url).path
        return next(e for e in ENDPOINTS if path.endswith(e))

    @property
    def is_stream(self) -> bool:
        return bool(self.request and self.request.get("stream"))

    def response_json(self) -> Any:
        raw = gzip.decompress(self.body) if self.body[:2] == b"\x1f\x8b" else self.body
        return json.loads(raw)

    def sse_events(self) -> list[Any]:
        """The JSON data of every SSE event of a streamed response."""
        events = []
        for line in self.body.decode().splitlines():
            if line.startswith("data:"):
                data = line[5:].strip()
                if data and data != "[DONE]":
                    events.append(json.loads(data))
        return events

    def recorded_usage(self) -> Optional[dict[str, Any]]:
        """The usage object the server sent (last one for streams), or None."""
        if self.status >= 400:
            return None
        if not self.is_stream:
            return self.response_json().get("usage")
        usage = None
        for event in self.sse_events():
            if event.get("usage"):
                usage = event["usage"]
            response = event.get("response")
            if isinstance(response, dict) and response.get("usage"):
                usage = response["usage"]
        return usage


def _header_items(headers: Any, body: bytes) -> list[tuple[str, str]]:
    items = []
    for name, values in (headers or {}).items():
        lowered = name.lower()
        if lowered in ("content-length", "transfer-encoding"):
            continue
        if lowered == "content-encoding" and body[:2] != b"\x1f\x8b":
            continue
        for value in values if isinstance(values, list) else [values]:
            items.append((name, str(value)))
    if not any(n.lower() == "content-type" for n, _ in items):
        sse = body.lstrip().startswith((b"data:", b"event:", b":"))
        items.append(("Content-Type", "text/event-stream" if sse else "application/json"))
    return items


def load(name: str) -> list[Interaction]:
    """The interactions of one cassette, by path below tests/cassettes."""
    data = yaml.safe_load((CASSETTES / name).read_text())
    out = []
    for entry in data["interactions"]:
        request, response = entry["request"], entry["response"]
        if "parsed_body" in request:
            body_json = request["parsed_body"]
        else:
            body_json = json.loads(request["body"]) if request.get("body") else None
        if "parsed_body" in response:
            body = json.dumps(response["parsed_body"]).encode()
        else:
            raw = response["body"]["string"]
            body = raw if isinstance(raw, bytes) else raw.encode()
        out.append(
            Interaction(
                method=request["method"],
                url=request["uri"],
                request=body_json,
                status=response["status"]["code"],
                headers=_header_items(response.get("headers"), body),
                body=body,
            )
        )
    return out


@dataclass
class Replay:
    """A mock transport serving recorded interactions in order, noting any mismatch."""

    interactions: list[Interaction]
    served: int = 0
    mismatches: list[str] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: Any) -> Any:
        if self.served >= len(self.interactions):
            self.mismatches.append(f"unexpected extra request {request.method} {request.url}")
            return http.Response(500, json={"error": {"message": "no more recordings"}})
        recorded = self.interactions[self.served]
        self.served += 1
        sent = json.loads(request.content) if request.content else None
        self.sent.append(sent or {})
        if (
            request.method != recorded.method
            or urlsplit(str(request.url)).path != urlsplit(recorded.url).path
        ):
            self.mismatches.append(
                f"{request.method} {request.url} != {recorded.method} {recorded.url}"
            )

        def strip(body: Any) -> Any:
            return (
                {k: v for k, v in body.items() if k not in IGNORED_REQUEST_KEYS}
                if isinstance(body, dict)
                else body
            )

        if strip(sent) != strip(recorded.request):
            self.mismatches.append(
                f"body differs for {recorded.url}: {strip(sent)} != {strip(recorded.request)}"
            )
        return http.Response(recorded.status, headers=recorded.headers, content=recorded.body)


def _base(interaction: Interaction) -> tuple[str, dict[str, Any]]:
    """Client class name and constructor arguments that reproduce the recorded URL."""
    parts = urlsplit(interaction.url)
    origin = f"{parts.scheme}://{parts.netloc}"
    path = parts.path[: -len(interaction.endpoint)]
    if "/openai/deployments/" in path:
        version = parse_qs(parts.query).get("api-version", ["2024-10-21"])[0]
        deployment = path.split("/deployments/")[1].split("/")[0]
        return "AzureOpenAI", {
            "azure_endpoint": origin,
            "api_version": version,
            "azure_deployment": deployment,
        }
    return "OpenAI", {"base_url": origin + path}


def make_client(interactions: list[Interaction], *, is_async: bool = False) -> tuple[Any, Replay]:
    """A real openai client whose transport replays ``interactions``."""
    replay = Replay(interactions)
    kind, kwargs = _base(interactions[0])
    transport = http.MockTransport(replay.handle)
    if is_async:
        client_cls = getattr(openai, "Async" + kind)
        http_client = http.AsyncClient(transport=transport)
    else:
        client_cls = getattr(openai, kind)
        http_client = http.Client(transport=transport)
    client = client_cls(
        api_key="test-key-not-real", http_client=http_client, max_retries=0, **kwargs
    )
    return client, replay


def method_for(client: Any, interaction: Interaction) -> Any:
    return {
        "/chat/completions": lambda: client.chat.completions.create,
        "/completions": lambda: client.completions.create,
        "/embeddings": lambda: client.embeddings.create,
        "/responses": lambda: client.responses.create,
    }[interaction.endpoint]()


def call_kwargs(method: Any, interaction: Interaction) -> dict[str, Any]:
    """The recorded body as keyword arguments (unknown keys go through extra_body)."""
    body = dict(interaction.request or {})
    params = inspect.signature(method).parameters
    known = {k: v for k, v in body.items() if k in params}
    extra = {k: v for k, v in body.items() if k not in params}
    if extra:
        known["extra_body"] = extra
    return known


def all_cassettes() -> list[str]:
    """Every cassette file, relative to tests/cassettes."""
    return sorted(str(p.relative_to(CASSETTES)) for p in CASSETTES.rglob("*.yaml"))


def iter_calls(name: str) -> Iterator[Interaction]:
    yield from load(name)
