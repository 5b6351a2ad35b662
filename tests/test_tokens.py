"""otelite.tokens: the right encoding per model, chat overheads, and a marked estimate offline."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator

import pytest

from otelite import _tokens
from otelite.cli import main as cli_main
from otelite.tokens import count_message_tokens, count_tokens, encoding_for

needs_cache = pytest.mark.skipif(
    not os.environ.get("TIKTOKEN_CACHE_DIR"),
    reason="tiktoken encodings need TIKTOKEN_CACHE_DIR offline",
)


@pytest.fixture(autouse=True)
def _fresh_encodings() -> Iterator[None]:
    """Each test loads encodings itself (and sees its own warnings)."""
    _tokens._reset_for_tests()
    yield
    _tokens._reset_for_tests()


@pytest.mark.parametrize(
    ("model", "encoding", "guessed"),
    [
        ("gpt-4o", "o200k_base", False),
        ("gpt-4o-mini-2024-07-18", "o200k_base", False),
        ("gpt-4.1-nano", "o200k_base", False),
        ("gpt-5", "o200k_base", False),
        ("o3-mini", "o200k_base", False),
        ("o1-preview-2024-09-12", "o200k_base", False),
        ("gpt-4", "cl100k_base", False),
        ("gpt-4-0613", "cl100k_base", False),
        ("gpt-4-turbo", "cl100k_base", False),
        ("gpt-3.5-turbo-0125", "cl100k_base", False),
        ("gpt-35-turbo", "cl100k_base", False),
        ("text-embedding-3-small", "cl100k_base", False),
        ("ft:gpt-4o-mini-2024-07-18:acme::9x8y7z", "o200k_base", False),
        ("ft:gpt-3.5-turbo:acme::abc", "cl100k_base", False),
        ("openai/gpt-4o", "o200k_base", False),
        ("meta-llama/Llama-3.2-1B-Instruct", "o200k_base", True),
    ],
)
def test_encoding_per_model_family(model: str, encoding: str, guessed: bool) -> None:
    """Model families, dated snapshots and fine-tuned names map to their encoding."""
    assert encoding_for(model) == (encoding, guessed)


@needs_cache
def test_counts_differ_by_encoding() -> None:
    """o200k_base and cl100k_base count the same text differently, and exactly."""
    text = "Observability for LLM applications: tokens, cost, latency — 日本語のテキスト."
    new, old = count_tokens(text, "gpt-4o"), count_tokens(text, "gpt-4")
    assert (new.encoding, old.encoding) == ("o200k_base", "cl100k_base")
    assert not new.estimated
    assert not old.estimated
    assert int(new) != int(old)
    import tiktoken

    assert int(new) == len(tiktoken.get_encoding("o200k_base").encode(text))
    assert int(old) == len(tiktoken.get_encoding("cl100k_base").encode(text))


@needs_cache
def test_message_overheads() -> None:
    """Each message adds 3 tokens and its content, a name 1 more, the reply priming 3."""
    import tiktoken

    enc = tiktoken.get_encoding("o200k_base")
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Hi!", "name": "ana"},
    ]
    expected = 3 + sum(
        3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"])) for m in messages
    )
    expected += len(enc.encode("ana")) + 1
    got = count_message_tokens(messages, "gpt-4o")
    assert int(got) == expected
    assert not got.estimated


@needs_cache
def test_multipart_tools_and_images_mark_estimates() -> None:
    """Text parts are counted; an image part or tool definitions make the count an estimate."""
    text_only = count_message_tokens(
        [{"role": "user", "content": [{"type": "text", "text": "hello"}]}], "gpt-4o"
    )
    assert not text_only.estimated
    with_image = count_message_tokens(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                ],
            }
        ],
        "gpt-4o",
    )
    assert with_image.estimated
    assert int(with_image) == int(text_only)
    tool = {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Get weather.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "enum": ["Paris", "Rome"]}},
            },
        },
    }
    with_tools = count_message_tokens(
        [{"role": "user", "content": "hello"}], "gpt-4o", tools=[tool]
    )
    assert with_tools.estimated
    assert int(with_tools) > int(
        count_message_tokens([{"role": "user", "content": "hello"}], "gpt-4o")
    )


def test_unloadable_encoding_falls_back_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No encoding (offline, no cache): an estimate of 1 token per 4 characters, marked, one warning."""
    import tiktoken

    def offline(name: str) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with caplog.at_level(logging.WARNING, logger="otelite"):
        first = count_tokens("x" * 41, "gpt-4o")
        second = count_message_tokens([{"role": "user", "content": "abcd"}], "gpt-4o")
    assert (int(first), first.estimated, first.encoding) == (11, True, None)
    assert (int(second), second.estimated) == (3 + 3 + 1 + 1, True)
    warnings = [r.getMessage() for r in caplog.records if r.name == "otelite"]
    assert len(warnings) == 1
    assert "o200k_base could not be loaded" in warnings[0]
    assert "otelite tokenizers prefetch" in warnings[0]


@needs_cache
def test_concurrent_first_use_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many threads counting at once load each encoding exactly once."""
    import tiktoken

    real = tiktoken.get_encoding
    loads: list[str] = []

    def counting(name: str) -> object:
        loads.append(name)
        return real(name)

    monkeypatch.setattr(tiktoken, "get_encoding", counting)
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(int(count_tokens("hello world", "gpt-4o"))))
        for _ in range(16)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == ["o200k_base"]
    assert len(set(results)) == 1


def test_bad_text_is_type_error() -> None:
    """count_tokens refuses non-text with a message naming the argument."""
    with pytest.raises(TypeError, match="text must be a str"):
        count_tokens(42, "gpt-4o")  # type: ignore[arg-type]


@needs_cache
def test_cli_prefetch(capsys: pytest.CaptureFixture[str]) -> None:
    """`otelite tokenizers prefetch` reports each encoding; exit 0 when all are available."""
    assert cli_main(["tokenizers", "prefetch"]) == 0
    out = capsys.readouterr().out
    assert "o200k_base: ok" in out
    assert "cl100k_base: ok" in out


def test_cli_prefetch_failure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """When an encoding cannot be fetched the command says how to fix it and exits 1."""
    import tiktoken

    def offline(name: str) -> None:
        raise ConnectionError("no network")

    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    assert cli_main(["tokenizers", "prefetch", "o200k_base"]) == 1
    captured = capsys.readouterr()
    assert "o200k_base: failed: no network" in captured.out
    assert "TIKTOKEN_CACHE_DIR" in captured.err
