"""``otelite ui``: a local, read-only web view of the store, the prompt registry and eval runs.

Server-rendered HTML from the standard library's HTTP server: no extra dependency, no
JavaScript. It listens on 127.0.0.1 by default; on any other address every request must
carry a token (``--token``, or one generated and printed with the URL). Nothing it serves
can write: any method but GET/HEAD is a 405.

Example:
    >>> from otelite.ui import App
    >>> App("/nonexistent/store").handle("/traces").status
    503
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otelite.ui._app import App, Response
    from otelite.ui._server import UIServer

__all__ = ["App", "Response", "UIServer", "add_parser", "run"]


def __getattr__(name: str) -> Any:
    # The server and pages load on first use: `otelite --help` and the other commands
    # do not pay for them.
    if name in ("App", "Response"):
        from otelite.ui import _app

        return getattr(_app, name)
    if name == "UIServer":
        from otelite.ui import _server

        return _server.UIServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``ui`` command to the CLI's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "ui", help="a local, read-only web view of the store (traces, stats, prompts, evaluations)"
    )
    parser.add_argument(
        "--store", help="store directory or .db file (default $OTELITE_HOME or .otelite)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    parser.add_argument(
        "--token",
        help="required on every request when --host is not loopback (generated if absent)",
    )
    parser.add_argument(
        "--prompts-dir", help="prompt registry (default $OTELITE_PROMPTS_DIR or ./prompts)"
    )
    parser.add_argument("--runs", help="directory of `otelite eval --out` files (*.jsonl) to show")
    parser.add_argument("--open", action="store_true", help="open the URL in a web browser")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted (Ctrl-C); 2 when the address cannot be used."""
    if not 0 <= args.port <= 65535:
        print(f"otelite: --port {args.port}: give 0 (any free port) to 65535", file=sys.stderr)
        return 2
    from otelite.ui._app import App
    from otelite.ui._server import is_loopback, new_token

    server_class = sys.modules[__name__].UIServer  # looked up here, so tests can replace it
    token = args.token
    if token is None and not is_loopback(args.host):
        token = new_token()
    app = App(
        args.store or os.environ.get("OTELITE_HOME") or None,
        prompts_dir=args.prompts_dir,
        runs_dir=args.runs,
    )
    try:
        server = server_class(app, args.host, args.port, token)
    except OSError as exc:
        print(
            f"otelite: cannot listen on {args.host}:{args.port} ({exc.strerror or exc})",
            file=sys.stderr,
        )
        return 2
    print(f"otelite ui: serving {app.store_path} at {server.url}", flush=True)
    if token is not None:
        print("anyone with this URL (it holds the token) can read the store", flush=True)
    print("press Ctrl-C to stop", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
