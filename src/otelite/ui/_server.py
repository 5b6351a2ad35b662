"""The HTTP side of the web view: a standard-library threading server, read-only, with a token
check whenever it listens beyond the loopback interface."""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit

from otelite.ui._app import App, Response
from otelite.ui._html import esc, page

TOKEN_COOKIE = "otelite_ui_token"
_SECURITY_HEADERS = {
    # Pages carry no script of their own: nothing injected could run even if escaping failed.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    """Whether ``host`` names the loopback interface only (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A random token for a server reachable beyond this machine."""
    return secrets.token_urlsafe(24)


class UIServer(ThreadingHTTPServer):
    """Serves ``app`` on ``(host, port)``; with ``token`` every request must carry it."""

    daemon_threads = True

    def __init__(
        self, app: App, host: str = "127.0.0.1", port: int = 0, token: Optional[str] = None
    ) -> None:
        self.app = app
        self.token = token
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """The address to open (with the token when one is needed)."""
        host, port = self.server_address[:2]
        text = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{text}]" if ":" in text else text
        base = f"http://{shown}:{port}/traces"
        return base + ("?" + urlencode({"token": self.token}) if self.token else "")

    def server_close(self) -> None:
        """Stop listening and close the store connections."""
        super().server_close()
        self.app.close()

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, ``--open``); stop with ``shutdown()``."""
        thread = threading.Thread(target=self.serve_forever, name="otelite-ui", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: UIServer
    server_version = "otelite-ui"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the terminal shows the URL, not every request

    def _send(
        self, status: int, body: str, headers: Optional[dict[str, str]] = None, head: bool = False
    ) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in {**_SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _authorised(self, query: list[tuple[str, str]]) -> tuple[bool, Optional[str]]:
        """Whether the request carries the token (query, cookie or bearer); a cookie to set."""
        token = self.server.token
        if token is None:
            return True, None
        given = dict(query).get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            # Later requests (links, forms) carry it as a cookie, not in every URL.
            return True, f"{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie", ""))
        except Exception:  # a malformed Cookie header is simply no token
            cookie = SimpleCookie()
        if TOKEN_COOKIE in cookie and hmac.compare_digest(
            cookie[TOKEN_COOKIE].value.encode(), token.encode()
        ):
            return True, None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer ") and hmac.compare_digest(
            auth[7:].strip().encode(), token.encode()
        ):
            return True, None
        return False, None

    def _deny(self, head: bool = False) -> None:
        self._send(
            401,
            page(
                "Token required",
                "<p class=err>this view needs its token: open the URL otelite ui printed</p>",
            ),
            head=head,
        )

    def _get(self, head: bool) -> None:
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        ok, cookie = self._authorised(query)
        if not ok:
            self._deny(head)
            return
        kept = urlencode([(k, v) for k, v in query if k != "token"])
        try:
            response = self.server.app.handle(parts.path, kept)
        except Exception as exc:  # a bug must not take the server down; say what happened
            response = Response(
                500, page("Error", f"<p class=err>{esc(type(exc).__name__)}: {esc(exc)}</p>")
            )
        headers = {"Set-Cookie": cookie} if cookie else {}
        if response.location is not None:
            headers["Location"] = response.location
        self._send(response.status, response.body, headers, head=head)

    def do_GET(self) -> None:
        self._get(head=False)

    def do_HEAD(self) -> None:
        self._get(head=True)

    def _refuse(self) -> None:
        # Without the token even the method is not discussed: 401 first.
        if not self._authorised(parse_qsl(urlsplit(self.path).query))[0]:
            self._deny()
            return
        self._send(
            405,
            page("Read-only", "<p class=err>this view is read-only: only GET</p>"),
            {"Allow": "GET, HEAD"},
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse
