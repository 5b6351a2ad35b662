"""OpenTelemetry ``BaseInstrumentor`` for otelite's OpenAI instrumentation.

Registered under the ``opentelemetry_instrumentor`` entry point as
``otelite-openai``, so ``opentelemetry-instrument python app.py`` instruments
OpenAI clients with otelite, exporting through whatever SDK the auto
instrumentation configured. ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=otelite-openai``
turns it off. When another OpenAI instrumentation (the official
``opentelemetry-instrumentation-openai-v2``, entry point ``openai``) records
the same calls, otelite steps back for them and warns once, so each call has
one LLM span (docs/zero-code.md).

Example:
    >>> from otelite.instrumentation import OpenAIInstrumentor
    >>> OpenAIInstrumentor().instrument()
    >>> OpenAIInstrumentor().uninstrument()
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined,unused-ignore]
    BaseInstrumentor,
)

from otelite._integrations.openai import instrument_openai, uninstrument_openai

__all__ = ["OpenAIInstrumentor"]

_SUPPORTED = ("openai >= 1.66",)


class OpenAIInstrumentor(BaseInstrumentor):  # type: ignore[misc,unused-ignore]
    """Instruments the ``openai`` client (the same as ``otelite.instrument_openai()``)."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _SUPPORTED

    def _instrument(self, **kwargs: Any) -> None:
        instrument_openai()

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument_openai()
