"""otelite.attributes: values stamped on every span, merged, carried across tasks and threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import otelite
from aio import asyncio_test
from otelite import _config
from otelite.testing import capture_spans


def test_attributes_stamped_on_every_span_with_standard_names() -> None:
    """user/session/conversation ids use standard names; tags and metadata use otelite.*."""
    with capture_spans() as cap:
        with (
            otelite.attributes(
                {"geo.country.iso_code": "DE"},
                user_id="u-1",
                session_id="s-1",
                conversation_id="c-1",
                tags=["beta", "rag"],
                metadata={"plan": "pro", "seats": 3},
            ),
            otelite.span("outer"),
            otelite.span("inner"),
        ):
            pass
        with otelite.span("after"):
            pass
    expected = {
        "geo.country.iso_code": "DE",
        "user.id": "u-1",
        "session.id": "s-1",
        "gen_ai.conversation.id": "c-1",
        "otelite.tags": ["beta", "rag"],
        "otelite.metadata.plan": "pro",
        "otelite.metadata.seats": 3,
    }
    outer, inner, after = cap.as_dicts()
    assert outer["attributes"] == expected
    assert inner["attributes"] == expected
    assert after["attributes"] == {}


def test_spans_from_any_tracer_on_the_provider_get_them() -> None:
    """A span made by another instrumentation's tracer on the same provider is stamped too."""
    with capture_spans() as cap:
        tracer = _config.active().tracer
        with otelite.attributes(user_id="u-9"):
            tracer.start_span("third-party").end()
    assert cap.spans[0].attributes == {"user.id": "u-9"}


def test_nested_blocks_merge_inner_wins_tags_accumulate() -> None:
    """Inner values override outer ones, tags accumulate without duplicates, and unwinding restores."""
    with capture_spans() as cap:
        with otelite.attributes(user_id="outer", tags=["a"], metadata={"k": "1"}):
            with otelite.attributes(user_id="inner", tags=["b", "a"], metadata={"j": "2"}):
                with otelite.span("deep"):
                    pass
            with otelite.span("back"):
                pass
    deep, back = cap.as_dicts()
    assert deep["attributes"] == {
        "user.id": "inner",
        "otelite.tags": ["a", "b"],
        "otelite.metadata.k": "1",
        "otelite.metadata.j": "2",
    }
    assert back["attributes"] == {
        "user.id": "outer",
        "otelite.tags": ["a"],
        "otelite.metadata.k": "1",
    }


def test_explicit_span_attribute_beats_context() -> None:
    """An attribute the span sets itself at start is not overwritten by the context."""
    with capture_spans() as cap, otelite.attributes(user_id="ctx"):
        with otelite.span("explicit", **{"user.id": "own"}):
            pass
    assert cap.spans[0].attributes["user.id"] == "own"


@asyncio_test
async def test_attributes_follow_asyncio_tasks() -> None:
    """Tasks created inside the block carry its attributes, each with its own values."""

    @otelite.trace(name="handle")
    async def handle(user: str) -> None:
        with otelite.attributes(user_id=user):
            await asyncio.sleep(0)
            with otelite.span("work"):
                await asyncio.sleep(0)

    with capture_spans() as cap, otelite.attributes(tags=["batch"]):
        await asyncio.gather(*(handle(f"u{i}") for i in range(5)))
    work = [s for s in cap.spans if s.name == "work"]
    assert sorted(s.attributes["user.id"] for s in work) == [f"u{i}" for i in range(5)]
    assert all(list(s.attributes["otelite.tags"]) == ["batch"] for s in work)
    handles = {s.context.span_id: s for s in cap.spans if s.name == "handle"}
    assert all(s.parent.span_id in handles for s in work)


def test_thread_pool_needs_bind_context() -> None:
    """bind_context carries attributes and parent into a plain ThreadPoolExecutor."""

    def work(i: int) -> str:
        with otelite.span("work", i=i):
            return threading.current_thread().name

    with capture_spans() as cap:
        with otelite.attributes(user_id="pool"), otelite.span("parent") as parent:
            with ThreadPoolExecutor(max_workers=3) as pool:
                names = list(pool.map(otelite.bind_context(work), range(6)))
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(work, 99).result()
    assert all(n != threading.current_thread().name for n in names)
    bound = [s for s in cap.spans if s.name == "work" and s.attributes["i"] != 99]
    unbound = [s for s in cap.spans if s.name == "work" and s.attributes["i"] == 99]
    assert len(bound) == 6
    assert all(s.attributes["user.id"] == "pool" for s in bound)
    assert all(s.parent.span_id == parent.get_span_context().span_id for s in bound)
    # Without the helper the worker has no context: a new trace, no attributes.
    assert unbound[0].parent is None
    assert "user.id" not in unbound[0].attributes


def test_attributes_as_decorator_sync_and_async() -> None:
    """Used as a decorator, the attributes apply for each call of the function."""

    @otelite.attributes(user_id="deco")
    def sync() -> None:
        with otelite.span("sync"):
            pass

    @otelite.attributes(session_id="s")
    async def coro() -> None:
        with otelite.span("coro"):
            pass

    with capture_spans() as cap:
        sync()
        asyncio.run(coro())
        with otelite.span("outside"):
            pass
    assert [dict(s.attributes) for s in cap.spans] == [
        {"user.id": "deco"},
        {"session.id": "s"},
        {},
    ]


def test_current_attributes_reads_merged_view() -> None:
    """current_attributes() shows what a span started now would get."""
    assert dict(otelite.current_attributes()) == {}
    with otelite.attributes(user_id="u", tags=["x"]):
        assert dict(otelite.current_attributes()) == {"user.id": "u", "otelite.tags": ("x",)}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"user_id": ""},
        {"session_id": b"s"},
        {"metadata": ["a"]},
        {"metadata": {1: "a"}},
        {"tags": ["", None]},
        {"metadata": {"k": None}},
    ],
)
def test_bad_values_are_dropped_not_raised(kwargs: dict[str, object]) -> None:
    """Invalid request-time values are dropped (as OpenTelemetry does) instead of raising."""
    with capture_spans() as cap, otelite.attributes(**kwargs), otelite.span("s"):  # type: ignore[arg-type]
        pass
    assert dict(cap.spans[0].attributes or {}) == {}


def test_non_scalar_metadata_stored_as_json() -> None:
    """A nested metadata value is recorded as JSON text rather than dropped."""
    with capture_spans() as cap, otelite.attributes(metadata={"flags": {"a": 1}}):
        with otelite.span("s"):
            pass
    assert cap.spans[0].attributes["otelite.metadata.flags"] == '{"a": 1}'
