"""otelite's exception tree.

Only misconfiguration raises; telemetry failures are contained (see ``_guard``)::

    OteliteError
    ├── ConfigurationError      bad argument or environment variable given to configure()
    └── StoreError              the local SQLite store cannot be used
        └── StoreSchemaError    the store file was written by a newer otelite
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
