"""otelite's exception tree.

Only misconfiguration raises; telemetry failures are contained (see ``_guard``)::

    OteliteError
    ├── ConfigurationError      bad argument or environment variable given to configure()
    ├── StoreError              the local SQLite store cannot be used
    │   └── StoreSchemaError    the store file was written by a newer otelite
    └── PromptError             the prompt registry refused a request
        ├── PromptNotFoundError     no such prompt, version or label (lists what exists)
        ├── PromptNameError         an invalid prompt or label name (also a ValueError)
        ├── PromptVariableError     a missing or unexpected template variable (also a KeyError)
        └── PromptFileError         a version, labels or history file is corrupt
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
