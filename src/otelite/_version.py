"""The installed otelite version, kept in one place for packaging and spans."""

__version__ = "0.1.0"
