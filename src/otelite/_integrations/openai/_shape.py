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

# usage's detail objects (chat: prompt/completion; Responses API: input/output).
_DETAILS = tuple(
    (key, f"usage.{key}")
    for key in (
        "prompt_tokens_details",
        "completion_tokens_details",
        "input_tokens_details",
        "output_tokens_details",
    )
)
# Lists whose first item is read, and the object inside that item that is read too.
_ITEMS = (("choices", "choices[]", "message", "choices[].message"), ("data", "data[]", None, None))
# Keys a provider uses to say a model or endpoint is going away.
_NOTICE_KEYS = ("deprecation", "deprecation_notice", "deprecated", "warning", "warnings", "sunset")


# Straight-line code below: it runs on every call. A model's field values are read from
# its __dict__, never through pydantic's __getattr__ (slow for absent names).


def _names(obj: Any) -> Optional[Iterable[str]]:
    """The field names ``obj`` was built with (a model's fields-set and extras, a dict's keys)."""
    if type(obj) is dict:
        return obj.keys()
    names = getattr(obj, "__pydantic_fields_set__", None)
    if names is None:
        names = getattr(obj, "__fields_set__", None)  # pydantic v1
        if names is None:
            return None
    extra = getattr(obj, "__pydantic_extra__", None)
    found: Iterable[str] = names | extra.keys() if extra else names
    return found


def structure(response: Any) -> Optional[dict[str, Iterable[str]]]:
    """Field names by path prefix (``""``: the top level), or ``None`` for an unreadable object."""
    top = _names(response)
    if top is None:
        return None
    levels: dict[str, Iterable[str]] = {"": top}
    values = response if type(response) is dict else response.__dict__
    if "usage" in top:
        usage = values.get("usage")
        names = _names(usage) if usage is not None else None
        if names is not None:
            levels["usage"] = names
            usage_values = usage if type(usage) is dict else usage.__dict__
            for key, prefix in _DETAILS:
                if key in names:
                    detail = usage_values.get(key)
                    if detail is not None:
                        found = _names(detail)
                        if found is not None:
                            levels[prefix] = found
    for key, prefix, inner, inner_prefix in _ITEMS:
        if key in top:
            items = values.get(key)
            if type(items) is list and items:
                item = items[0]
                names = _names(item)
                if names is not None:
                    levels[prefix] = names
                    if inner is not None and inner in names:
                        child = (item if type(item) is dict else item.__dict__).get(inner)
                        if child is not None:
                            found = _names(child)
                            if found is not None:
                                levels[inner_prefix] = found  # type: ignore[index]
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
