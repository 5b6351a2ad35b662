"""@otelite.trace and otelite.span: whole spans for every kind of function."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
import sys
from typing import Any

import pydantic
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.instrumentation.utils import suppress_instrumentation

import otelite
from aio import asyncio_test
from otelite.testing import capture_spans

MOD = __name__


def fn_attrs(qualname: str, **extra: Any) -> dict[str, Any]:
    """The attributes every decorated span carries, plus ``extra``."""
    return {"code.function.name": f"{MOD}.{qualname}", **extra}


def span_dict(
    name: str,
    span_id: int,
    parent_id: int | None,
    start: int,
    end: int,
    attributes: dict[str, Any],
    *,
    kind: str = "INTERNAL",
    status: str = "UNSET",
    description: str | None = None,
    events: list[dict[str, Any]] | None = None,
    trace_id: int = 1,
) -> dict[str, Any]:
    """A whole span, as Captured.as_dicts() renders it."""
    return {
        "name": name,
        "kind": kind,
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_id": parent_id,
        "start_time": start,
        "end_time": end,
        "status": status,
        "status_description": description,
        "attributes": attributes,
        "events": events or [],
    }


def exception_event(timestamp: int, exc_type: str, message: str, last_line: str) -> dict[str, Any]:
    """The event record_exception() adds."""
    return {
        "name": "exception",
        "timestamp": timestamp,
        "attributes": {
            "exception.type": exc_type,
            "exception.message": message,
            "exception.stacktrace": last_line,
            "exception.escaped": "False",
        },
    }


@otelite.trace
def rewrite(question: str) -> str:
    return question.strip().lower()


@otelite.trace(kind="retriever", name="docs")
def retrieve(query: str, k: int = 2) -> list[str]:
    return [f"{query}-{i}" for i in range(k)]


@otelite.trace(kind="workflow", name="rag")
def pipeline(question: str) -> list[str]:
    return retrieve(rewrite(question))


def test_nested_sync_spans_whole() -> None:
    """A workflow calling two decorated steps gives three whole spans with the right tree."""
    with capture_spans() as cap:
        assert pipeline("  Hello ") == ["hello-0", "hello-1"]
    assert cap.as_dicts() == [
        span_dict(
            "invoke_workflow rag",
            1,
            None,
            1,
            6,
            fn_attrs(
                "pipeline",
                **{
                    "otelite.span.kind": "workflow",
                    "gen_ai.operation.name": "invoke_workflow",
                    "gen_ai.workflow.name": "rag",
                },
            ),
        ),
        span_dict("rewrite", 2, 1, 2, 3, fn_attrs("rewrite")),
        span_dict(
            "retrieval docs",
            3,
            1,
            4,
            5,
            fn_attrs(
                "retrieve",
                **{"otelite.span.kind": "retriever", "gen_ai.operation.name": "retrieval"},
            ),
            kind="CLIENT",
        ),
    ]


def test_content_captured_only_when_on() -> None:
    """Inputs and outputs are recorded as JSON only with capture on (D2); absent otherwise."""
    with capture_spans() as off:
        retrieve("q", k=1)
    assert "otelite.input" not in off.spans[0].attributes
    assert "otelite.output" not in off.spans[0].attributes
    with capture_spans(capture_content=True) as on:
        retrieve("q", k=1)
    attrs = on.as_dicts()[0]["attributes"]
    assert attrs["otelite.input"] == '{"query": "q", "k": 1}'
    assert attrs["otelite.output"] == '["q-0"]'


def test_per_function_capture_overrides() -> None:
    """capture_input=False keeps a function's inputs out even when capture is on, and True opts in."""

    @otelite.trace(capture_input=False)
    def secret(password: str) -> str:
        return "ok"

    @otelite.trace(capture_output=True)
    def public(x: int) -> int:
        return x + 1

    with capture_spans(capture_content=True) as cap:
        secret("hunter2")
    assert "otelite.input" not in cap.spans[0].attributes
    assert cap.spans[0].attributes["otelite.output"] == '"ok"'
    with capture_spans() as cap2:
        public(1)
    assert "otelite.input" not in cap2.spans[0].attributes
    assert cap2.spans[0].attributes["otelite.output"] == "2"


class Doc(pydantic.BaseModel):
    id: int
    text: str


@dataclasses.dataclass
class Hit:
    doc: str
    score: float


def test_pydantic_and_dataclass_serialised() -> None:
    """pydantic models and dataclasses are recorded as their JSON fields."""

    @otelite.trace
    def rank(docs: list[Doc]) -> list[Hit]:
        return [Hit(d.text, 0.5) for d in docs]

    with capture_spans(capture_content=True) as cap:
        rank([Doc(id=1, text="a")])
    attrs = cap.spans[0].attributes
    assert attrs["otelite.input"] == '{"docs": [{"id": 1, "text": "a"}]}'
    assert attrs["otelite.output"] == '[{"doc": "a", "score": 0.5}]'


def test_large_content_truncated_with_marker() -> None:
    """A value over max_content_length is cut and says how much was dropped."""

    @otelite.trace
    def echo(text: str) -> str:
        return text

    with capture_spans(capture_content=True, max_content_length=20) as cap:
        echo("x" * 100)
    value = cap.spans[0].attributes["otelite.output"]
    assert value == '"' + "x" * 19 + "…[truncated 82 chars]"


def test_redaction_applies_to_inputs() -> None:
    """The user's redact hook and the built-in patterns run before content reaches the span."""

    @otelite.trace
    def send(to: str, body: str) -> None:
        return None

    with capture_spans(capture_content=True, redact=lambda s: s.replace("secret", "***")) as cap:
        send("ana@example.com", "the secret is sk-abcdefghijklmnopqrstuvwxyz123456")
    assert cap.spans[0].attributes["otelite.input"] == (
        '{"to": "[REDACTED:email]", "body": "the *** is [REDACTED:api_key]"}'
    )


def test_exception_recorded_and_reraised_unchanged() -> None:
    """The same exception object propagates; the span has ERROR status, error.type and the event."""

    class Boom(Exception):
        pass

    err = Boom("bad")

    @otelite.trace
    def fail() -> None:
        raise err

    with capture_spans() as cap, pytest.raises(Boom) as info:
        fail()
    assert info.value is err
    qual = "test_exception_recorded_and_reraised_unchanged.<locals>"
    assert cap.as_dicts() == [
        span_dict(
            f"{qual}.fail",
            1,
            None,
            1,
            3,
            fn_attrs(f"{qual}.fail", **{"error.type": f"{MOD}.{qual}.Boom"}),
            status="ERROR",
            description="Boom: bad",
            events=[exception_event(2, f"{MOD}.{qual}.Boom", "bad", f"{MOD}.{qual}.Boom: bad")],
        )
    ]


def test_signature_and_metadata_preserved() -> None:
    """The wrapper keeps name, docstring, signature and function kind."""

    @otelite.trace
    async def fetch(url: str, *, timeout: float = 1.0) -> bytes:
        """Fetch a URL."""
        return b""

    @otelite.trace
    def numbers(n: int):  # type: ignore[no-untyped-def]
        yield from range(n)

    @otelite.trace
    async def stream(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            yield i

    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a URL."
    assert str(inspect.signature(fetch)) == "(url: 'str', *, timeout: 'float' = 1.0) -> 'bytes'"
    assert inspect.iscoroutinefunction(fetch)
    assert inspect.isgeneratorfunction(numbers)
    assert inspect.isasyncgenfunction(stream)


@asyncio_test
async def test_coroutine_span_and_gather_parents() -> None:
    """Coroutines gathered under a parent each get their own child span of that parent."""

    @otelite.trace(name="step")
    async def step(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @otelite.trace(name="fan_out")
    async def fan_out() -> list[int]:
        return list(await asyncio.gather(*(step(i) for i in range(3))))

    with capture_spans() as cap:
        assert await fan_out() == [0, 1, 2]
    spans = cap.as_dicts()
    root = spans[0]
    assert root["name"] == "fan_out"
    children = spans[1:]
    assert [c["name"] for c in children] == ["step"] * 3
    assert all(c["parent_id"] == root["span_id"] and c["trace_id"] == 1 for c in children)
    assert all(c["end_time"] < root["end_time"] for c in children)


def test_thread_pool_parents_with_context_executor() -> None:
    """Spans started in worker threads get the submitting span as parent."""

    @otelite.trace(name="work")
    def work(i: int) -> int:
        return i * 2

    @otelite.trace(name="batch")
    def batch() -> list[int]:
        with otelite.ContextThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(work, range(6)))

    with capture_spans() as cap:
        assert batch() == [0, 2, 4, 6, 8, 10]
    root = cap.span("batch")
    workers = [s for s in cap.spans if s.name == "work"]
    assert len(workers) == 6
    assert all(s.parent is not None and s.parent.span_id == root.context.span_id for s in workers)


@otelite.trace(kind="tool", name="lookup")
def lookup(key: str) -> dict[str, str]:
    return {"key": key}


def test_tool_kind_uses_genai_tool_attributes() -> None:
    """A tool span is `execute_tool {name}` with the tool arguments/result attributes."""
    with capture_spans(capture_content=True) as cap:
        lookup("k")
    assert cap.as_dicts() == [
        span_dict(
            "execute_tool lookup",
            1,
            None,
            1,
            2,
            fn_attrs(
                "lookup",
                **{
                    "otelite.span.kind": "tool",
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "lookup",
                    "gen_ai.tool.type": "function",
                    "gen_ai.tool.call.arguments": '{"key": "k"}',
                    "gen_ai.tool.call.result": '{"key": "k"}',
                },
            ),
        )
    ]


def test_agent_and_other_kinds() -> None:
    """agent maps to invoke_agent; an unknown kind is kept only in otelite.span.kind."""

    @otelite.trace(kind="agent", name="planner")
    def plan() -> None: ...

    @otelite.trace(kind="rerank", attributes={"top_k": 3, "model": "bge"})
    def rerank() -> None: ...

    with capture_spans() as cap:
        plan()
        rerank()
    agent, other = cap.as_dicts()
    assert agent["name"] == "invoke_agent planner"
    assert agent["attributes"] == fn_attrs(
        "test_agent_and_other_kinds.<locals>.plan",
        **{
            "otelite.span.kind": "agent",
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "planner",
        },
    )
    assert other["name"] == "test_agent_and_other_kinds.<locals>.rerank"
    assert other["attributes"] == fn_attrs(
        "test_agent_and_other_kinds.<locals>.rerank",
        **{"otelite.span.kind": "rerank", "top_k": 3, "model": "bge"},
    )


class Service:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @otelite.trace
    def method(self, x: int) -> str:
        return f"{self.prefix}{x}"

    @otelite.trace
    @classmethod
    def build(cls, prefix: str) -> Service:
        return cls(prefix)

    @otelite.trace
    @staticmethod
    def helper(x: int) -> int:
        return x + 1


def test_methods_classmethods_staticmethods() -> None:
    """Methods keep self out of the recorded inputs; class and static methods work in any order."""
    with capture_spans(capture_content=True) as cap:
        svc = Service.build("p")
        assert svc.method(1) == "p1"
        assert Service.helper(1) == 2
        assert svc.helper(2) == 3
    spans = {s["name"]: s for s in cap.as_dicts()}
    assert spans["Service.build"]["attributes"]["otelite.input"] == '{"prefix": "p"}'
    assert spans["Service.method"]["attributes"]["otelite.input"] == '{"x": 1}'
    assert spans["Service.helper"]["attributes"]["otelite.input"] == '{"x": 2}'
    assert len(cap.spans) == 4


@otelite.trace
def count(n: int):  # type: ignore[no-untyped-def]
    for i in range(n):
        with otelite.span("inner", i=i):
            pass
        yield i
    return "done"


def test_generator_exhausted_span_covers_iteration() -> None:
    """A generator's span starts at the call, ends when exhausted, and parents spans in its body."""
    with capture_spans(capture_content=True) as cap, otelite.span("consumer"):
        items = []
        for item in count(2):
            with otelite.span("per-item"):
                items.append(item)
    assert items == [0, 1]
    spans = {(s["name"], s["attributes"].get("i")): s for s in cap.as_dicts()}
    gen = spans[("count", None)]
    consumer = spans[("consumer", None)]
    assert gen["parent_id"] == consumer["span_id"]
    assert gen["attributes"]["otelite.output"] == "[0, 1]"
    assert gen["status"] == "UNSET"
    # Spans inside the generator body nest under it; the consumer's own spans do not.
    assert spans[("inner", 0)]["parent_id"] == gen["span_id"]
    assert spans[("inner", 1)]["parent_id"] == gen["span_id"]
    per_item = [s for s in cap.as_dicts() if s["name"] == "per-item"]
    assert [s["parent_id"] for s in per_item] == [consumer["span_id"]] * 2
    assert gen["end_time"] > max(s["end_time"] for s in per_item)


def test_generator_break_and_gc_end_span_once() -> None:
    """Breaking out of a generator (then dropping it) ends its span once, without error status."""
    with capture_spans() as cap:
        gen = count(10)
        for item in gen:
            if item == 1:
                break
        assert cap.spans == [s for s in cap.spans if s.name == "inner"]
        del gen
        gc.collect()
    names = [s.name for s in cap.spans]
    assert names.count("count") == 1
    assert cap.span("count").status.status_code.name == "UNSET"


def test_generator_close_and_send_throw() -> None:
    """send() and throw() reach the inner generator; close() ends the span once."""

    @otelite.trace
    def echo():  # type: ignore[no-untyped-def]
        received = None
        while True:
            try:
                received = yield received
            except KeyError:
                received = "caught"

    with capture_spans() as cap:
        gen = echo()
        assert next(gen) is None
        assert gen.send("a") == "a"
        assert gen.throw(KeyError("k")) == "caught"
        gen.close()
        gen.close()
    assert len(cap.spans) == 1
    assert cap.spans[0].status.status_code.name == "UNSET"


def test_generator_error_mid_way() -> None:
    """An exception inside the generator ends its span with ERROR and reaches the consumer."""

    @otelite.trace
    def broken():  # type: ignore[no-untyped-def]
        yield 1
        raise ValueError("mid-way")

    with capture_spans() as cap:
        gen = broken()
        assert next(gen) == 1
        with pytest.raises(ValueError, match="mid-way"):
            next(gen)
    span = cap.span("test_generator_error_mid_way.<locals>.broken")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "ValueError"


@asyncio_test
async def test_async_generator_lifecycle() -> None:
    """An async generator's span ends once on exhaustion, on break + aclose, and on error."""

    @otelite.trace
    async def ticks(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    @otelite.trace
    async def bad():  # type: ignore[no-untyped-def]
        yield 1
        raise RuntimeError("x")

    with capture_spans(capture_content=True) as cap:
        assert [i async for i in ticks(3)] == [0, 1, 2]
        agen = ticks(5)
        async for i in agen:
            if i == 1:
                break
        await agen.aclose()
        with pytest.raises(RuntimeError):
            async for _ in bad():
                pass
    spans = cap.as_dicts()
    tick_spans = [s for s in spans if s["name"].endswith("ticks")]
    assert [s["attributes"]["otelite.output"] for s in tick_spans] == ["[0, 1, 2]", "[0, 1]"]
    assert [s["status"] for s in tick_spans] == ["UNSET", "UNSET"]
    bad_span = next(s for s in spans if s["name"].endswith("bad"))
    assert bad_span["status"] == "ERROR"
    assert bad_span["attributes"]["error.type"] == "RuntimeError"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in 3.11")
@asyncio_test
async def test_asyncio_timeout_still_works() -> None:
    """asyncio.timeout around a traced coroutine raises TimeoutError as without otelite."""

    @otelite.trace
    async def slow() -> None:
        await asyncio.sleep(10)

    with capture_spans() as cap, pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):  # type: ignore[attr-defined]
            await slow()
    span = cap.spans[0]
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "asyncio.exceptions.CancelledError"


@asyncio_test
async def test_wait_for_and_cancel() -> None:
    """wait_for times out and task.cancel() cancels through a traced coroutine."""

    @otelite.trace
    async def slow() -> None:
        await asyncio.sleep(10)

    with capture_spans() as cap:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(slow(), 0.01)
        task = asyncio.ensure_future(slow())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
    assert len(cap.spans) == 2
    assert all(s.end_time is not None for s in cap.spans)


def test_span_context_manager() -> None:
    """otelite.span yields the current span, nests, and records errors."""
    with capture_spans() as cap:
        with otelite.span("outer", step="a") as outer:
            assert otel_trace.get_current_span() is outer
            with otelite.span("inner"):
                pass
        with pytest.raises(KeyError), otelite.span("failing"):
            raise KeyError("k")
    outer_d, inner_d, failing = cap.as_dicts()
    assert outer_d["attributes"] == {"step": "a"}
    assert inner_d["parent_id"] == outer_d["span_id"]
    assert failing["status"] == "ERROR"
    assert failing["attributes"] == {"error.type": "KeyError"}


def test_suppressed_instrumentation_makes_no_span() -> None:
    """Inside suppress_instrumentation() decorated functions run without spans."""
    with capture_spans() as cap, suppress_instrumentation():
        assert rewrite(" A ") == "a"
        with otelite.span("nothing"):
            pass
    assert cap.spans == []


def test_bad_decorator_arguments() -> None:
    """@trace on a non-callable, or with wrong option types, is a TypeError naming the problem."""
    with pytest.raises(TypeError, match="expected a function or method, got int"):
        otelite.trace(42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="kind must be a non-empty str"):
        otelite.trace(kind=3)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="capture_input must be True, False or None"):
        otelite.trace(capture_input="yes")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="attributes must be a mapping"):
        otelite.trace(attributes=[1])  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        otelite.span("")


def test_positional_name() -> None:
    """@otelite.trace("name") sets the span name."""

    @otelite.trace("custom-name")
    def f() -> int:
        return 1

    with capture_spans() as cap:
        f()
    assert cap.spans[0].name == "custom-name"


def test_no_configuration_is_a_silent_noop() -> None:
    """Without configure() or a capture, decorated functions just run."""
    assert not otelite.is_configured()
    assert pipeline(" X ") == ["x-0", "x-1"]


def test_internal_failure_never_reaches_user(
    contained_errors: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing redact hook is contained: the function returns normally and one warning is logged."""

    def broken_redact(text: str) -> str:
        raise RuntimeError("hook bug")

    @otelite.trace
    def f(x: int) -> int:
        return x

    with capture_spans(capture_content=True, redact=broken_redact) as cap:
        assert f(1) == 1
        assert f(2) == 2
    attrs = cap.spans[0].attributes
    assert attrs["otelite.input"] == "[otelite: content dropped because the redact hook failed]"
    warnings = [r for r in caplog.records if r.name == "otelite" and r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "redact hook" in warnings[0].getMessage()
