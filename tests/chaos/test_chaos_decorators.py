"""Chaos: bad request-time data, huge values and odd callables never break the app or the store."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider

import otelite
from otelite import _context
from otelite.store import LocalStore
from otelite.testing import capture_spans

MOD = __name__
MB10 = 10 * 1024 * 1024


def marker(dropped: int) -> str:
    """The visible truncation marker otelite appends to a cut value."""
    return f"…[truncated {dropped} chars]"


@pytest.fixture(autouse=True)
def _no_limit_vars(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No attribute length limit from the environment unless a test sets one."""
    monkeypatch.delenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", raising=False)
    monkeypatch.delenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", raising=False)
    _context.reset_dropped_reasons()
    yield
    _context.reset_dropped_reasons()


def one_span(cap: Any) -> dict[str, Any]:
    """The only captured span, as a dict."""
    spans = cap.as_dicts()
    assert len(spans) == 1, [s["name"] for s in spans]
    return spans[0]  # type: ignore[no-any-return]


# --- 1. ordinary data never raises; invalid values are dropped or coerced ----------------


def test_attributes_drop_empty_and_none_values_and_keep_the_rest() -> None:
    """Empty ids and tags, None values and bad keys are dropped; valid values beside them stay."""
    with capture_spans() as cap:
        with otelite.attributes(
            {"geo.country.iso_code": "DE", "none": None, "": "no-key", 3: "int-key"},  # type: ignore[dict-item]
            user_id="",
            session_id=None,
            conversation_id="c-1",
            tags=["", "beta", None, 3, "beta"],  # type: ignore[list-item]
            metadata={"plan": None, "seats": 2, "": "x", 7: "y", "empty": ""},  # type: ignore[dict-item]
        ):
            with otelite.span("s"):
                pass
    span = one_span(cap)
    assert span["name"] == "s"
    assert span["status"] == "UNSET"
    assert span["events"] == []
    assert span["attributes"] == {
        "geo.country.iso_code": "DE",
        "gen_ai.conversation.id": "c-1",
        "otelite.tags": ["beta"],
        "otelite.metadata.seats": 2,
        "otelite.metadata.empty": "",
    }


def test_attributes_coerce_ids_and_drop_unusable_arguments() -> None:
    """Int and UUID ids become text; a lone tag string is one tag; non-mapping arguments are dropped."""
    session = uuid.UUID("12345678-1234-5678-1234-567812345678")
    with capture_spans() as cap:
        with otelite.attributes(
            ["not", "a", "mapping"],  # type: ignore[arg-type]
            user_id=42,  # type: ignore[arg-type]
            session_id=session,  # type: ignore[arg-type]
            conversation_id=b"bytes",  # type: ignore[arg-type]
            tags="beta",
            metadata=["not-a-mapping"],  # type: ignore[arg-type]
        ):
            with otelite.span("s"):
                pass
    assert one_span(cap)["attributes"] == {
        "user.id": "42",
        "session.id": "12345678-1234-5678-1234-567812345678",
        "otelite.tags": ["beta"],
    }


def test_span_drops_none_and_coerces_unsupported_values() -> None:
    """span() keeps valid values, drops None, and records odd values as JSON text."""
    with capture_spans() as cap:
        with otelite.span(
            "x",
            top_k=None,
            k=3,
            empty="",
            flag=False,
            ratio=0.5,
            nan=math.nan,
            mixed=[1, "a"],
            with_none=["a", None],
            nested={"a": [1, 2]},
            huge_int=2**70,
            words=("a", "b"),
        ):
            pass
    span = one_span(cap)
    attrs = span["attributes"]
    assert math.isnan(attrs.pop("nan"))
    assert span["name"] == "x"
    assert span["status"] == "UNSET"
    assert attrs == {
        "k": 3,
        "empty": "",
        "flag": False,
        "ratio": 0.5,
        "mixed": '[1, "a"]',
        "with_none": '["a", null]',
        "nested": '{"a": [1, 2]}',
        "huge_int": str(2**70),
        "words": ["a", "b"],
    }


def test_trace_static_attributes_drop_none() -> None:
    """@trace(attributes=) drops None values instead of raising, and keeps the others."""

    @otelite.trace(attributes={"gone": None, "kept": "v"})
    def work() -> int:
        return 1

    with capture_spans() as cap:
        assert work() == 1
    span = one_span(cap)
    assert span["name"] == "test_trace_static_attributes_drop_none.<locals>.work"
    assert span["attributes"] == {
        "code.function.name": f"{MOD}.test_trace_static_attributes_drop_none.<locals>.work",
        "kept": "v",
    }


def test_dropped_values_logged_once_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    """Each reason for dropping a value is logged once at DEBUG, naming the argument."""
    caplog.set_level(logging.DEBUG, logger="otelite")
    for _ in range(3):
        otelite.attributes(user_id="", metadata={"plan": None})
        otelite.span("x", top_k=None)
    messages = [r.getMessage() for r in caplog.records if r.name == "otelite"]
    assert all(r.levelno == logging.DEBUG for r in caplog.records if r.name == "otelite")
    assert len(messages) == 3, messages
    assert any("user_id" in m and "empty" in m for m in messages)
    assert any("metadata['plan']" in m and "None" in m for m in messages)
    assert any("'top_k'" in m and "None" in m for m in messages)


# --- 2. every string attribute is capped at the source -----------------------------------


def test_huge_values_capped_everywhere() -> None:
    """attributes(), span(), @trace(attributes=) and score(comment=) cut strings to max_length + marker."""
    big = "a" * MB10
    capped = "a" * 8192 + marker(MB10 - 8192)

    @otelite.trace(attributes={"static": big})
    def work() -> None:
        otelite.score("thumbs", 1, comment=big)

    with capture_spans() as cap:
        with otelite.attributes(user_id=big, tags=[big], metadata={"doc": big}):
            with otelite.span("blk", value=big, items=[big, "b"], obj={"k": big}):
                work()
    spans = {s["name"]: s for s in cap.as_dicts()}
    assert sorted(spans) == [
        "blk",
        "evaluation thumbs",
        "test_huge_values_capped_everywhere.<locals>.work",
    ]
    context = {
        "user.id": capped,
        "otelite.tags": [capped],
        "otelite.metadata.doc": capped,
    }
    blk = spans["blk"]
    obj_json = '{"k": "' + big + '"}'
    assert blk["attributes"] == {
        **context,
        "value": capped,
        "items": [capped, "b"],
        "obj": obj_json[:8192] + marker(len(obj_json) - 8192),
    }
    work_span = spans["test_huge_values_capped_everywhere.<locals>.work"]
    assert work_span["attributes"] == {
        **context,
        "code.function.name": f"{MOD}.test_huge_values_capped_everywhere.<locals>.work",
        "static": capped,
    }
    evaluation = spans["evaluation thumbs"]
    assert evaluation["attributes"]["otelite.evaluation.comment"] == capped
    assert evaluation["events"][0]["attributes"]["otelite.evaluation.comment"] == capped
    assert evaluation["status"] == "UNSET"


def test_cap_follows_max_content_length() -> None:
    """The cap is the content policy's max_length when no OTel limit is set."""
    with capture_spans(max_content_length=10) as cap:
        with otelite.span("s", v="x" * 25, short="y" * 10):
            pass
    assert one_span(cap)["attributes"] == {"v": "x" * 10 + marker(15), "short": "y" * 10}


def test_otel_attribute_value_length_limit_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT wins; the marker fits inside it so the SDK keeps it."""
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "40")
    with capture_spans() as cap:
        with otelite.attributes(user_id="u" * 100), otelite.span("s", v="x" * 100, ok="y" * 40):
            pass
    kept = 40 - len(marker(100))  # room left when the marker is as long as it can be
    expected_v = "x" * kept + marker(100 - kept)
    assert len(expected_v) <= 40
    assert one_span(cap)["attributes"] == {
        "user.id": "u" * kept + marker(100 - kept),
        "v": expected_v,
        "ok": "y" * 40,
    }


def test_span_attribute_value_length_limit_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT wins over the general variable, as in the SDK."""
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4000")
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "30")
    with capture_spans() as cap, otelite.span("s", v="x" * 100):
        pass
    kept = 30 - len(marker(100))
    assert one_span(cap)["attributes"] == {"v": "x" * kept + marker(100 - kept)}


def test_bad_length_limit_refused_by_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT is a ConfigurationError naming it at configure()."""
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots")
    with pytest.raises(otelite.ConfigurationError, match="OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"):
        otelite.configure(local_store=False)
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "-3")
    with pytest.raises(otelite.ConfigurationError, match="non-negative whole number"):
        otelite.configure(local_store=False)


def test_bad_length_limit_ignored_at_request_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad limit appearing after start-up is ignored with one warning; max_length applies."""
    with capture_spans(max_content_length=5) as cap:
        monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "lots")
        with otelite.span("a", v="x" * 8), otelite.span("b", v="y" * 8):
            pass
        monkeypatch.delenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
    assert [s["attributes"] for s in cap.as_dicts()] == [
        {"v": "x" * 5 + marker(3)},
        {"v": "y" * 5 + marker(3)},
    ]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT" in warnings[0].getMessage()


def test_ten_spans_of_ten_megabytes_keep_the_store_small(tmp_path: Path) -> None:
    """10 spans with a 10 MB value each: every stored value is capped and the store stays small."""
    otelite.configure(tracer_provider=TracerProvider(), local_store=tmp_path)
    big = "z" * MB10
    for i in range(10):
        with otelite.attributes(metadata={"doc": big}), otelite.span(f"s{i}", blob=big):
            pass
    assert otelite.force_flush()
    with LocalStore(tmp_path) as store:
        spans = [s for t in store.traces() for s in store.spans(t.trace_id)]
    assert sorted(s.name for s in spans) == [f"s{i}" for i in range(10)]
    capped = "z" * 8192 + marker(MB10 - 8192)
    for s in spans:
        assert s.attributes == {"blob": capped, "otelite.metadata.doc": capped}
    otelite.shutdown()
    size = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024, size


# --- 3. odd callables ---------------------------------------------------------------------


def test_trace_on_class_refused() -> None:
    """@trace on a class is refused at decoration time, telling to decorate methods instead."""
    with pytest.raises(TypeError, match="decorate its methods") as info:

        @otelite.trace
        class Tool:
            pass

    assert isinstance(info.value, otelite.OteliteError)
    with pytest.raises(otelite.ConfigurationError, match="Pipeline"):

        @otelite.trace(kind="tool")
        class Pipeline:
            pass


class SyncTool:
    """A callable object."""

    def __call__(self, query: str) -> str:
        return query.upper()


class AsyncTool:
    """A callable object whose __call__ is a coroutine function."""

    async def __call__(self, query: str) -> str:
        with otelite.span("inside"):
            await asyncio.sleep(0)
        return query.upper()


class AsyncGenTool:
    """A callable object whose __call__ is an async generator function."""

    async def __call__(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0)
            yield i


def test_async_call_object_span_covers_the_coroutine() -> None:
    """An object with async __call__ gets an async wrapper: its span ends after the coroutine."""
    traced = otelite.trace(kind="tool")(AsyncTool())
    assert inspect.iscoroutinefunction(traced)
    with capture_spans(capture_content=True) as cap:
        assert asyncio.run(traced("q")) == "Q"
    outer, inner = cap.as_dicts()
    assert inner["parent_id"] == outer["span_id"]
    assert outer["end_time"] > inner["end_time"]
    assert (outer["name"], outer["status"], outer["events"]) == (
        "execute_tool AsyncTool",
        "UNSET",
        [],
    )
    assert outer["attributes"] == {
        "code.function.name": f"{MOD}.AsyncTool.__call__",
        "otelite.span.kind": "tool",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "AsyncTool",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.call.arguments": '{"query": "q"}',
        "gen_ai.tool.call.result": '"Q"',
    }


def test_async_generator_call_object_traced_as_async_generator() -> None:
    """An object with an async-generator __call__ gets the async generator wrapper."""
    traced = otelite.trace(AsyncGenTool())

    async def consume() -> list[int]:
        return [i async for i in traced(3)]

    with capture_spans(capture_content=True) as cap:
        assert asyncio.run(consume()) == [0, 1, 2]
    span = one_span(cap)
    assert (span["name"], span["status"], span["events"]) == ("AsyncGenTool", "UNSET", [])
    assert span["attributes"] == {
        "code.function.name": f"{MOD}.AsyncGenTool.__call__",
        "otelite.input": '{"n": 3}',
        "otelite.output": "[0, 1, 2]",
    }


def test_callable_object_and_partial_named_without_addresses() -> None:
    """Callable objects are named by class, partials by the function they wrap: no 0x addresses."""

    def search(query: str, limit: int) -> list[str]:
        return [query] * limit

    traced_obj = otelite.trace(SyncTool())
    traced_partial = otelite.trace(functools.partial(search, limit=2))
    traced_nested = otelite.trace(kind="tool")(functools.partial(functools.partial(search), "q"))
    with capture_spans() as cap:
        assert traced_obj("a") == "A"
        assert traced_partial("b") == ["b", "b"]
        assert traced_nested(limit=1) == ["q"]
    qual = "test_callable_object_and_partial_named_without_addresses.<locals>.search"
    spans = cap.as_dicts()
    assert [(s["name"], s["status"], s["events"]) for s in spans] == [
        ("SyncTool", "UNSET", []),
        (qual, "UNSET", []),
        (f"execute_tool {qual}", "UNSET", []),
    ]
    assert [s["attributes"] for s in spans] == [
        {"code.function.name": f"{MOD}.SyncTool.__call__"},
        {"code.function.name": f"{MOD}.{qual}"},
        {
            "code.function.name": f"{MOD}.{qual}",
            "otelite.span.kind": "tool",
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": qual,
            "gen_ai.tool.type": "function",
        },
    ]


def test_async_generator_broken_out_of_under_asyncio_run_is_not_an_error() -> None:
    """Breaking out of a traced async generator under asyncio.run leaves status UNSET; one span."""

    @otelite.trace
    async def ticks() -> AsyncIterator[int]:
        for i in range(10):
            await asyncio.sleep(0)
            yield i

    async def main() -> list[int]:
        seen = []
        async for i in ticks():
            seen.append(i)
            if i == 1:
                break
        return seen

    with capture_spans(capture_content=True) as cap:
        assert asyncio.run(main()) == [0, 1]
    span = one_span(cap)
    name = "test_async_generator_broken_out_of_under_asyncio_run_is_not_an_error.<locals>.ticks"
    assert span["name"] == name
    assert span["status"] == "UNSET"
    assert span["status_description"] is None
    assert span["events"] == []
    assert span["attributes"] == {
        "code.function.name": f"{MOD}.{name}",
        "otelite.input": "{}",
        "otelite.output": "[0, 1]",
    }


def test_async_generator_closed_or_cancelled_at_yield_is_not_an_error() -> None:
    """aclose() and a CancelledError thrown in at a yield end the span once, status UNSET."""

    @otelite.trace
    async def ticks() -> AsyncIterator[int]:
        for i in range(10):
            yield i

    async def main() -> None:
        closed = ticks()
        assert await closed.__anext__() == 0
        await closed.aclose()
        await closed.aclose()
        cancelled = ticks()
        assert await cancelled.__anext__() == 0
        with pytest.raises(asyncio.CancelledError):
            await cancelled.athrow(asyncio.CancelledError())

    with capture_spans() as cap:
        asyncio.run(main())
    spans = cap.as_dicts()
    assert len(spans) == 2
    assert [(s["status"], s["events"]) for s in spans] == [("UNSET", []), ("UNSET", [])]
    assert all("error.type" not in s["attributes"] for s in spans)


def test_sync_generator_broken_out_of_is_not_an_error() -> None:
    """Breaking out of a traced generator (then dropping it) ends its span once, status UNSET."""

    @otelite.trace
    def numbers() -> Iterator[int]:
        yield from range(10)

    with capture_spans(capture_content=True) as cap:
        for i in numbers():
            if i == 2:
                break
    span = one_span(cap)
    name = "test_sync_generator_broken_out_of_is_not_an_error.<locals>.numbers"
    assert (span["name"], span["status"], span["events"]) == (name, "UNSET", [])
    assert span["attributes"] == {
        "code.function.name": f"{MOD}.{name}",
        "otelite.input": "{}",
        "otelite.output": "[0, 1, 2]",
    }


def test_generators_real_errors_still_recorded() -> None:
    """An exception raised inside a traced generator or async generator is still an ERROR."""

    @otelite.trace
    def bad_sync() -> Iterator[int]:
        yield 1
        raise KeyError("sync")

    @otelite.trace
    async def bad_async() -> AsyncIterator[int]:
        yield 1
        raise RuntimeError("async")

    async def drain() -> None:
        async for _ in bad_async():
            pass

    with capture_spans() as cap:
        with pytest.raises(KeyError):
            list(bad_sync())
        with pytest.raises(RuntimeError):
            asyncio.run(drain())
    sync_span, async_span = cap.as_dicts()
    assert sync_span["status"] == "ERROR"
    assert sync_span["status_description"] == "KeyError: 'sync'"
    assert sync_span["attributes"]["error.type"] == "KeyError"
    assert [e["name"] for e in sync_span["events"]] == ["exception"]
    assert async_span["status"] == "ERROR"
    assert async_span["status_description"] == "RuntimeError: async"
    assert async_span["attributes"]["error.type"] == "RuntimeError"
    assert [e["name"] for e in async_span["events"]] == ["exception"]
