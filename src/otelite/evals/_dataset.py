"""Datasets of examples to evaluate: from a list, JSONL, CSV, or the local store's recorded calls."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Protocol, Union

from otelite import _semconv as sc
from otelite._exceptions import DatasetError
from otelite._jsonl import write_jsonl as write_jsonl_atomic
from otelite._messages import text_of

PathLike = Union[str, "os.PathLike[str]"]
_RESERVED = ("input", "expected", "metadata", "id")


@dataclass(frozen=True)
class Example:
    """One dataset row: the task's input, the reference answer if any, and free metadata."""

    input: Any
    expected: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", example_id(self.input, self.expected))

    def as_dict(self) -> dict[str, Any]:
        """The row as written to JSONL."""
        out: dict[str, Any] = {"id": self.id, "input": self.input}
        if self.expected is not None:
            out["expected"] = self.expected
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out


def example_id(input: Any, expected: Any) -> str:
    """A stable id from the input and expected answer (matches rows across runs)."""
    text = json.dumps([input, expected], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def _row(data: Any, where: str) -> Example:
    if not isinstance(data, Mapping):
        raise DatasetError(f"{where}: expected an object with 'input', got {type(data).__name__}")
    if "input" not in data or data["input"] is None or data["input"] == "":
        raise DatasetError(f"{where}: missing required field 'input'")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        raise DatasetError(f"{where}: 'metadata' must be an object")
    extra = {k: v for k, v in data.items() if k not in _RESERVED}
    row_id = data.get("id")
    if row_id is not None and not isinstance(row_id, str):
        row_id = str(row_id)
    return Example(data["input"], data.get("expected"), {**extra, **metadata}, row_id or "")


class RecordedCalls(Protocol):
    """What :meth:`Dataset.from_store` needs of a store (``otelite.store.LocalStore`` fits)."""

    def llm_spans(
        self,
        *,
        since_ns: Optional[int] = None,
        until_ns: Optional[int] = None,
        model: Optional[str] = None,
    ) -> Iterator[Any]: ...


def _loads(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


class Dataset:
    """An ordered list of :class:`Example` rows, with a name.

    Example:
        >>> from otelite.evals import Dataset
        >>> data = Dataset.from_list([{"input": "2+2?", "expected": "4"}], name="arith")
        >>> len(data), data[0].expected
        (1, '4')
    """

    def __init__(self, examples: Iterable[Example], name: str = "dataset") -> None:
        self.examples = list(examples)
        self.name = name

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def __getitem__(self, index: int) -> Example:
        return self.examples[index]

    def __repr__(self) -> str:
        return f"<Dataset {self.name!r} rows={len(self)}>"

    @classmethod
    def from_list(cls, rows: Sequence[Mapping[str, Any]], name: str = "dataset") -> Dataset:
        """Rows as dicts with ``input`` and optionally ``expected``, ``metadata``, ``id``.

        Other keys go into the row's metadata. A bad row raises DatasetError naming its number.
        """
        if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
            raise DatasetError("data: give a list of dicts, each with an 'input'")
        return cls([_row(r, f"row {i + 1}") for i, r in enumerate(rows)], name)

    @classmethod
    def from_jsonl(cls, path: PathLike, name: Optional[str] = None) -> Dataset:
        """One JSON object per line (blank lines skipped)."""
        file = Path(path)
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise DatasetError(f"{file}: cannot read the dataset ({exc.strerror})") from None
        examples = []
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{file} line {number}: not valid JSON ({exc.msg})") from None
            examples.append(_row(data, f"{file} line {number}"))
        return cls(examples, name or file.stem)

    @classmethod
    def from_csv(cls, path: PathLike, name: Optional[str] = None) -> Dataset:
        """A header row with ``input`` (required) and ``expected``; other columns become metadata."""
        file = Path(path)
        try:
            with file.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                if not reader.fieldnames or "input" not in reader.fieldnames:
                    raise DatasetError(f"{file}: the header row needs an 'input' column")
                examples = []
                for data in reader:
                    number = reader.line_num
                    row = {k: v for k, v in data.items() if k is not None and v != ""}
                    examples.append(_row(row, f"{file} row {number}"))
        except OSError as exc:
            raise DatasetError(f"{file}: cannot read the dataset ({exc.strerror})") from None
        return cls(examples, name or file.stem)

    @classmethod
    def load(cls, path: PathLike, name: Optional[str] = None) -> Dataset:
        """``from_csv`` for ``.csv`` files, ``from_jsonl`` otherwise."""
        if str(path).lower().endswith(".csv"):
            return cls.from_csv(path, name)
        return cls.from_jsonl(path, name)

    @classmethod
    def from_store(
        cls,
        store: RecordedCalls,
        *,
        model: Optional[str] = None,
        since_ns: Optional[int] = None,
        limit: Optional[int] = None,
        name: str = "recorded",
    ) -> Dataset:
        """Recorded chat calls: the last user message as input, the model's answer as expected.

        Only calls recorded with content capture on have the text; others are skipped.
        Each row's metadata keeps the call's trace and span ids and model.
        """
        examples: list[Example] = []
        seen: set[str] = set()
        for span in store.llm_spans(model=model, since_ns=since_ns):
            attrs = span.attributes
            messages = _loads(attrs.get(sc.GEN_AI_INPUT_MESSAGES))
            output = _loads(attrs.get(sc.GEN_AI_OUTPUT_MESSAGES))
            if not isinstance(messages, list) or not isinstance(output, list) or not output:
                continue
            users = [m for m in messages if isinstance(m, Mapping) and m.get("role") == "user"]
            if not users:
                continue
            question = text_of(users[-1].get("parts"))
            answer = text_of(output[0].get("parts") if isinstance(output[0], Mapping) else None)
            if not question.strip():
                continue
            example = Example(
                question,
                answer or None,
                {
                    "trace_id": span.trace_id,
                    "span_id": span.span_id,
                    "model": attrs.get(sc.GEN_AI_REQUEST_MODEL)
                    or attrs.get(sc.GEN_AI_RESPONSE_MODEL),
                    "source": "store",
                },
            )
            if example.id in seen:
                continue
            seen.add(example.id)
            examples.append(example)
            if limit is not None and len(examples) >= limit:
                break
        return cls(examples, name)

    def to_jsonl(self, path: PathLike) -> Path:
        """Write the rows as JSONL, atomically (a failed write leaves no partial file)."""
        return write_jsonl_atomic(Path(path), (e.as_dict() for e in self.examples))


def as_dataset(data: Union[Dataset, Sequence[Mapping[str, Any]]]) -> Dataset:
    """A Dataset as is; a list of dicts checked row by row."""
    if isinstance(data, Dataset):
        return data
    return Dataset.from_list(data)
