"""Defence in depth: error data is scrubbed of credentials again on its way out."""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Status

from otelite._content import redact_error_secrets

_EXCEPTION_TEXT_KEYS = ("exception.message", "exception.stacktrace")


class _ScrubbedSpan(ReadableSpan):
    """A copy of an ended span with scrubbed events and status; everything else is the original's."""

    def __init__(self, original: ReadableSpan, status: Status, events: Sequence[Event]) -> None:
        super().__init__(
            name=original.name,
            context=original.context,
            parent=original.parent,
            resource=original.resource,
            attributes=original.attributes,
            events=events,
            links=original.links,
            kind=original.kind,
            status=status,
            start_time=original.start_time,
            end_time=original.end_time,
            instrumentation_scope=original.instrumentation_scope,
        )
        self._original = original

    @property
    def dropped_attributes(self) -> int:
        return int(getattr(self._original, "dropped_attributes", 0))

    @property
    def dropped_events(self) -> int:
        return int(getattr(self._original, "dropped_events", 0))

    @property
    def dropped_links(self) -> int:
        return int(getattr(self._original, "dropped_links", 0))


def scrub_error_data(span: ReadableSpan) -> ReadableSpan:
    """``span``, or a copy whose exception events and status description hold no credentials.

    otelite records its own errors already redacted (``_spans.record_error``); this
    catches what other code records on spans that reach otelite's exporters and
    store: ``record_exception`` by another instrumentation (httpx's "Illegal header
    value b'Bearer sk-…'"), the SDK's ``use_span``, the application. Only the
    built-in credential patterns run here (they leave redacted text as it is), not
    the user's hook. Spans without error data are returned as they are, at the cost
    of two attribute reads.
    """
    status = span.status
    description = status.description
    events = span.events
    if not description and not any(e.name == "exception" for e in events):
        return span
    changed = False
    if description:
        scrubbed = redact_error_secrets(description)
        if scrubbed != description:
            status, changed = Status(status.status_code, scrubbed), True
    new_events: list[Event] = []
    for event in events:
        attributes = event.attributes
        if event.name == "exception" and attributes:
            updates = {}
            for key in _EXCEPTION_TEXT_KEYS:
                value = attributes.get(key)
                if isinstance(value, str):
                    scrubbed = redact_error_secrets(value)
                    if scrubbed != value:
                        updates[key] = scrubbed
            if updates:
                event = Event(event.name, {**attributes, **updates}, event.timestamp)
                changed = True
        new_events.append(event)
    return _ScrubbedSpan(span, status, new_events) if changed else span
