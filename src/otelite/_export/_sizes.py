"""How big a span is: in an OTLP request (to split requests) and in memory (to cap queues)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from opentelemetry.sdk.trace import ReadableSpan

from otelite import _env
from otelite._export._bounds import _positive_env

MAX_REQUEST_BYTES = 4 * 1024 * 1024
"""The OpenTelemetry Collector's default limit for one OTLP request (4 MiB)."""

_REQUEST_MARGIN = 64 * 1024  # room for the resource, the scope and the framing

DEFAULT_MAX_QUEUE_MB = 64.0
"""Memory a batch queue may hold before new spans are dropped (``OTELITE_MAX_QUEUE_MB``)."""


def _value_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, (list, tuple)):
        return sum(_value_size(item) + 8 for item in value)
    return 11


def _attributes_size(attributes: Optional[Mapping[str, Any]]) -> int:
    if not attributes:
        return 0
    # Per attribute: the KeyValue, key, AnyValue and value headers (tag + length each).
    return sum(len(key) + _value_size(value) + 16 for key, value in attributes.items())


def span_size(span: ReadableSpan) -> int:
    """An upper estimate of the bytes ``span`` takes in an OTLP request."""
    size = 96 + _value_size(span.name) + _attributes_size(span.attributes)
    description = span.status.description if span.status is not None else None
    if description:
        size += _value_size(description)
    for event in span.events or ():
        size += 32 + _value_size(event.name) + _attributes_size(event.attributes)
    for link in span.links or ():
        size += 64 + _attributes_size(link.attributes)
    return size


# Memory a finished span holds while queued, measured with tracemalloc on CPython 3.12
# (opentelemetry-sdk 1.3x): about 2.6 kB for a bare span, about 60 bytes more per
# attribute plus its value. Rounded up, so that the cap errs on the safe side.
_SPAN_BYTES = 3072
_ATTRIBUTE_BYTES = 96
_EVENT_BYTES = 512


def _strings_size(attributes: Optional[Mapping[str, Any]]) -> int:
    size = 0
    for value in attributes.values() if attributes else ():
        if value.__class__ is str:
            size += len(value)
    return size


def _plain(attributes: Any) -> Optional[Mapping[str, Any]]:
    # The SDK's BoundedAttributes takes a lock and calls __getitem__ per key when
    # iterated; its inner dict (private: looked up with getattr and checked) does not.
    inner = getattr(attributes, "_dict", None)
    return inner if type(inner) is dict else attributes


def span_memory(span: ReadableSpan) -> int:
    """A cheap upper estimate of the memory (bytes) ``span`` holds while it waits in a queue.

    Runs on the caller's thread for every span: a few lookups, and a walk over the
    attribute values only to add the length of strings (captured content is where
    the memory goes).
    """
    attributes = _plain(getattr(span, "_attributes", None))
    if attributes is None:
        attributes = span.attributes
    size = _SPAN_BYTES
    if attributes:
        size += _ATTRIBUTE_BYTES * len(attributes) + _strings_size(attributes)
    events = getattr(span, "_events", None)  # the property copies them into a new tuple
    if events is None:
        events = span.events
    if events:
        for event in events:
            attrs = _plain(event.attributes)
            size += _EVENT_BYTES
            if attrs:
                size += _ATTRIBUTE_BYTES * len(attrs) + _strings_size(attrs)
    return size


def max_queue_bytes() -> int:
    """The memory cap of each batch queue, from ``OTELITE_MAX_QUEUE_MB`` (default 64 MB)."""
    return int(_positive_env(_env.OTELITE_MAX_QUEUE_MB, DEFAULT_MAX_QUEUE_MB) * 1024 * 1024)
