"""What API-change detection reads from an openai response: its field names and notices.

The field names come from what the parsed object was built with (pydantic's
fields-set plus the extra keys openai keeps), never from serialising the body.
Only the levels whose shape is the same in every answer are read: the top level,
``usage`` and its details, the first choice and its message (chat), the first
data item (embeddings); tool calls and content parts vary with the answer and
are left out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Optional

# (prefix, path of attribute names or list indexes from the top level)
_LEVELS: tuple[tuple[str, tuple[Any, ...]], ...] = (
    ("usage", ("usage",)),
    ("usage.prompt_tokens_details", ("usage", "prompt_tokens_details")),
    ("usage.completion_tokens_details", ("usage", "completion_tokens_details")),
    ("usage.input_tokens_details", ("usage", "input_tokens_details")),
    ("usage.output_tokens_details", ("usage", "output_tokens_details")),
    ("choices[]", ("choices", 0)),
    ("choices[].message", ("choices", 0, "message")),
    ("data[]", ("data", 0)),
)
# Keys a provider uses to say a model or endpoint is going away.
_NOTICE_KEYS = ("deprecation", "deprecation_notice", "deprecated", "warning", "warnings", "sunset")


def _names(obj: Any) -> Optional[Iterable[str]]:
    """The field names ``obj`` was built with (a model's fields-set and extras, a dict's keys)."""
    names = getattr(obj, "__pydantic_fields_set__", None)
    if names is None:
        names = getattr(obj, "__fields_set__", None)  # pydantic v1
    if names is not None:
        extra = getattr(obj, "__pydantic_extra__", None)
        found: Iterable[str] = names | extra.keys() if extra else names
        return found
    if isinstance(obj, dict):
        return obj.keys()
    return None


def _step(obj: Any, part: Any) -> Any:
    if isinstance(part, int):
        return obj[part] if isinstance(obj, list) and len(obj) > part else None
    if isinstance(obj, dict):
        return obj.get(part)
    return getattr(obj, part, None)


def structure(response: Any) -> Optional[dict[str, Iterable[str]]]:
    """Field names by path prefix (``""``: the top level), or ``None`` for an unreadable object."""
    top = _names(response)
    if top is None:
        return None
    levels: dict[str, Iterable[str]] = {"": top}
    for prefix, path in _LEVELS:
        if path[0] not in top:
            continue
        obj = response
        for part in path:
            obj = _step(obj, part)
            if obj is None:
                break
        else:
            names = _names(obj)
            if names is not None:
                levels[prefix] = names
    return levels


def notices(response: Any) -> list[str]:
    """Deprecation notices in the body: top-level keys openai's models do not define."""
    extra = getattr(response, "__pydantic_extra__", None)
    if isinstance(response, dict):
        extra = response
    if not extra:
        return []
    found = []
    for key in _NOTICE_KEYS:
        value = extra.get(key)
        if value:
            found.append(f"body {key}: {str(value)[:200]}")
    return found
