"""Synthetic inputs: an OpenAI-compatible model paraphrases or extends seed examples."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Optional, Union

from otelite._exceptions import ConfigurationError
from otelite.evals._client import ChatEndpoint, EndpointError
from otelite.evals._dataset import Dataset, Example
from otelite.evals._heuristics import normalize

_DEFAULT_INSTRUCTIONS = (
    "Write new user inputs for testing an application. Vary wording, length, tone and "
    "difficulty; keep each input realistic and self-contained; do not answer them."
)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def _seed_text(seed: Any) -> str:
    if isinstance(seed, Example):
        seed = seed.input
    elif isinstance(seed, dict):
        seed = seed.get("input")
    return seed if isinstance(seed, str) else json.dumps(seed, ensure_ascii=False, default=str)


def parse_items(text: str) -> list[str]:
    """The inputs in a model's reply: a JSON array of strings, else one per line.

    Example:
        >>> parse_items('Here you go: ["a?", "b?"]')
        ['a?', 'b?']
        >>> parse_items("1. first\\n2) second")
        ['first', 'second']
    """
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            found = json.loads(text[start : end + 1])
        except ValueError:
            found = None
        if isinstance(found, list):
            return [str(item).strip() for item in found if isinstance(item, (str, int, float))]
    items = []
    for line in text.splitlines():
        line = _BULLET.sub("", line).strip().strip('"').strip()
        if line and not line.endswith(":") and not line.startswith("```"):
            items.append(line)
    return items


def synthesize(
    examples: Union[Dataset, Sequence[Any]],
    n: int,
    *,
    instructions: Optional[str] = None,
    client: Any = None,
    model: Optional[str] = None,
    base_url: Optional[str] = None,
    api_key: Optional[str] = None,
    temperature: float = 0.9,
    max_calls: Optional[int] = None,
    transport: Any = None,
    name: str = "synthetic",
) -> Dataset:
    """Ask a model for ``n`` new inputs like the seed ``examples``; return them for review.

    Seeds are strings, dicts with ``input`` or a Dataset. Duplicates (of each other
    or of a seed, compared normalized) and empty rows are dropped; the model is
    asked again until ``n`` rows are found or ``max_calls`` (default 3) is spent,
    so fewer than ``n`` rows can come back. Every row's metadata has
    ``synthetic: True``. The calls are traced as evaluation traffic.

    Example:
        >>> from otelite import evals
        >>> evals.synthesize(["How do I reset my password?"], 0, model="m", base_url="http://127.0.0.1:9/v1").name
        'synthetic'
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ConfigurationError(f"n: give the number of inputs wanted (0 or more), got {n!r}")
    seeds = [_seed_text(s) for s in examples]
    if not seeds or not all(s.strip() for s in seeds):
        raise ConfigurationError("examples: give at least one non-empty seed input")
    if instructions is not None and (not isinstance(instructions, str) or not instructions.strip()):
        raise ConfigurationError("instructions: give a non-empty string, or leave it out")
    calls = 3 if max_calls is None else max_calls
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ConfigurationError(f"max_calls: give 1 or more, got {max_calls!r}")
    endpoint = ChatEndpoint(
        client=client,
        model=model,
        base_url=base_url,
        api_key=api_key,
        transport=transport,
        who="synthesize",
    )
    seen = {normalize(s) for s in seeds}
    rows: list[Example] = []
    for _ in range(calls if n else 0):
        wanted = n - len(rows)
        if wanted <= 0:
            break
        prompt = (
            f"{instructions or _DEFAULT_INSTRUCTIONS}\n\nExamples:\n"
            + "\n".join(f"- {s}" for s in seeds)
            + f"\n\nReturn exactly {wanted} new inputs as a JSON array of strings, nothing else."
        )
        try:
            done = endpoint.complete([{"role": "user", "content": prompt}], temperature=temperature)
        except EndpointError as exc:
            if rows:
                break
            raise RuntimeError(f"synthesize: the model endpoint failed ({exc})") from exc
        for item in parse_items(done.text):
            key = normalize(item)
            if not key or key in seen:
                continue
            seen.add(key)
            rows.append(Example(item, None, {"synthetic": True, "model": endpoint.model}))
            if len(rows) >= n:
                break
    return Dataset(rows, name)
