"""otelite's exception tree.

Only misconfiguration and bad input raise; telemetry failures are contained (see
``_guard``). Every exception otelite raises on purpose is an :class:`OteliteError`,
and also an instance of the builtin a caller would expect (``except ValueError``
keeps working). Arguments of the wrong type still raise a plain ``TypeError``, as
Python does for a call with the wrong arguments::

    OteliteError
    ├── ConfigurationError      bad argument or environment variable (also a ValueError):
    │   │                       configure(), register_provider(), enable_stream_usage(),
    │   │                       score(), Score, evaluators, judges, evaluate(), synthesize(), ...
    │   └── DecorationError     @trace/@span on something it cannot wrap (also a TypeError)
    ├── StoreError              the local SQLite store cannot be used
    │   └── StoreSchemaError    the store file was written by a newer otelite
    ├── PromptError             the prompt registry refused a request
    │   ├── PromptNotFoundError     no such prompt, version or label (also a LookupError)
    │   ├── PromptNameError         an invalid prompt or label name (also a ValueError)
    │   ├── PromptVariableError     a missing or unexpected template variable (also a KeyError);
    │   │                           judge templates raise it too (one template engine)
    │   └── PromptFileError         a version, labels or history file is corrupt
    ├── evals.DatasetError      a dataset or saved-run file, or a row, is malformed (also a ValueError)
    └── evals.EndpointError     a judge or synthesizer endpoint failed (status_code, type, code)

    AssertionError
    └── evals.EvalGateError     an evaluation gate failed (``EvalRun.check``); deliberately
                                NOT an OteliteError: it is a test failure, which pytest
                                reports as one, not a fault in otelite or its configuration

``EndpointError`` lives with the client that raises it (``otelite.evals._client``);
``DecorationError`` with the decorators. ``tests/test_public_api.py`` walks every
public exception and checks it is in this tree.
"""

from __future__ import annotations


class OteliteError(Exception):
    """Base class of every error otelite raises on purpose."""


class ConfigurationError(OteliteError, ValueError):
    """An argument or environment variable given to otelite is invalid.

    The message names the argument (or variable) and says how to fix it.

    Example:
        >>> import otelite
        >>> try:
        ...     otelite.configure(sample_ratio=-1, local_store=False)
        ... except otelite.ConfigurationError as exc:
        ...     print(str(exc).split(":")[0])
        sample_ratio
    """


class StoreError(OteliteError):
    """The local store could not be opened, read or written."""


class StoreSchemaError(StoreError):
    """The store file was created by a newer otelite; it is left untouched."""


class PromptError(OteliteError):
    """The prompt registry could not do what was asked."""


class PromptNotFoundError(PromptError, LookupError):
    """No such prompt, version or label; the message lists what exists."""


class PromptNameError(PromptError, ValueError):
    """A prompt or label name is invalid (characters, traversal, reserved names)."""


class PromptVariableError(PromptError, KeyError):
    """A template variable is missing, or a value was given for no placeholder."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PromptFileError(PromptError):
    """A file in the registry is corrupt or hand-broken; the message names it."""


class DatasetError(OteliteError, ValueError):
    """A dataset file, a saved run (``EvalRun.from_jsonl``) or a row is malformed; the
    message names the file and row.

    Example:
        >>> from otelite import evals
        >>> try:
        ...     evals.Dataset.from_list([{"output": "no input"}])
        ... except evals.DatasetError as exc:
        ...     print(exc)
        row 1: missing required field 'input'
    """
