"""The local prompt registry: prompts as versioned files in your repository.

Each prompt has immutable numbered versions and labels (``production``,
``staging``, ...) that can be moved and rolled back; running apps see a label
move within a second, without a redeploy. Templates use ``{{variable}}``
placeholders and never execute anything. A compiled prompt passed to an
instrumented LLM call links that call's span to the prompt version.

Example:
    >>> import tempfile
    >>> from otelite.prompts import PromptRegistry
    >>> registry = PromptRegistry(tempfile.mkdtemp())
    >>> _ = registry.push("qa", messages=[
    ...     {"role": "system", "content": "Answer from the context."},
    ...     {"role": "user", "content": "{{question}}"},
    ... ], config={"model": "gpt-4o-mini"}, labels=["production"])
    >>> registry.get("qa").compile(question="What is OTLP?")[1]["content"]
    'What is OTLP?'
"""

from __future__ import annotations

from contextlib import suppress as _suppress

from otelite._exceptions import (
    PromptError,
    PromptFileError,
    PromptNameError,
    PromptNotFoundError,
    PromptVariableError,
)
from otelite._template import escape
from otelite.prompts._registry import (
    DEFAULT_LABEL,
    CompiledMessages,
    CompiledPrompt,
    PromptLink,
    PromptRegistry,
    PromptVersion,
    default_registry,
    get_prompt,
    reset_default_registry,
)

__all__ = [
    "DEFAULT_LABEL",
    "CompiledMessages",
    "CompiledPrompt",
    "PromptError",
    "PromptFileError",
    "PromptLink",
    "PromptNameError",
    "PromptNotFoundError",
    "PromptRegistry",
    "PromptVariableError",
    "PromptVersion",
    "default_registry",
    "escape",
    "get_prompt",
    "reset_default_registry",
]

# Users see public paths (otelite.prompts.PromptRegistry, not otelite.prompts._registry...).
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(("otelite.prompts._", "otelite._")):
        with _suppress(AttributeError, TypeError):
            _obj.__module__ = __name__
del _name, _obj
