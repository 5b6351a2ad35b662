"""The command line's one error type and its exit codes.

``main()`` turns a :class:`UsageError`, any other ``OteliteError`` (a store that cannot
be read, a refused prompt, a bad setting), a ``ValueError`` or an ``OSError`` raised by a
command into one line on stderr and :data:`EXIT_USAGE`; a command returns
:data:`EXIT_OK` or :data:`EXIT_FAILED` itself.
"""

from __future__ import annotations

import sqlite3

from otelite._exceptions import OteliteError

EXIT_OK = 0
EXIT_FAILED = 1  # a gate or check failed, or nothing matched
EXIT_USAGE = 2  # bad input, or a store, registry or setting that cannot be used
# A shell reports 128 + SIGPIPE (13) for a Unix tool killed by writing into a closed pipe
# (`otelite traces --json | head`); otelite exits with the same code, quietly.
EXIT_BROKEN_PIPE = 141


class UsageError(OteliteError):
    """A command-line argument is invalid: printed without a traceback, exit code 2."""


# What a command may raise for main() to report as a usage error (exit code 2). A
# ValueError is a bad value the library refused; OSError and sqlite3.Error a file that
# cannot be read or written.
USAGE_ERRORS: tuple[type[BaseException], ...] = (OteliteError, ValueError, OSError, sqlite3.Error)
