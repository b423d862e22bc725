"""The server entry: ``streamlit run app/serve.py`` serves :mod:`app.main` as an ``st.App``.

Why not ``streamlit run app/main.py``: opened at a page's own URL (``/label``), Streamlit's
front end does not know where the server's root is and asks ``/label/_stcore/health`` and
``/label/_stcore/host-config`` first (two "404 Not Found" errors in the browser console per
page opened by URL) before it falls back to ``/``. This wrapper writes the server's root
into the page (``window.__streamlit.BACKEND_BASE_URL``, which the front end reads before
it guesses), so every page answers at its URL with no failed request. Everything else is
Streamlit's own server.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import streamlit as st

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                   Awaitable[None]]

# paths served by Streamlit itself (never the app's HTML page)
_NOT_PAGES = ("/_stcore/", "/static/", "/media/", "/component/", "/app/static/", "/favicon")


def base_url_script(base_path: str = "") -> bytes:
    """The script that tells Streamlit's front end where the server's root is."""
    path = "/" + base_path.strip("/") + ("/" if base_path.strip("/") else "")
    return (b"<script>window.__streamlit=Object.assign(window.__streamlit||{},"
            b"{BACKEND_BASE_URL:window.location.origin+" + json.dumps(path).encode()
            + b"});</script>")


def is_page_request(scope: Scope) -> bool:
    """True for a GET of an app page (``/``, ``/label``, ...), not an asset or endpoint."""
    if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
        return False
    path = str(scope.get("path", ""))
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return not any(part in path for part in _NOT_PAGES) and "." not in last


def inject_base_url(html: bytes, script: bytes) -> bytes:
    """The page with ``script`` as the first element of its <head> (unchanged if none)."""
    marker = b"<head>"
    at = html.find(marker)
    if at < 0:
        return html
    at += len(marker)
    return html[:at] + script + html[at:]


class BaseUrlMiddleware:
    """ASGI middleware: writes :func:`base_url_script` into every app page it serves."""

    def __init__(self, app: ASGIApp, base_path: str = "") -> None:
        self.app = app
        self.script = base_url_script(base_path)

    async def __call__(self, scope: Scope, receive, send) -> None:
        if not is_page_request(scope):
            await self.app(scope, receive, send)
            return
        # ask for the page uncompressed: the script goes into the plain HTML
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", [])
                            if k.lower() != b"accept-encoding"]
        start: dict[str, Any] = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            headers = list(start.get("headers", []))
            content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
            data = bytes(body)
            if start.get("status") == 200 and content_type.startswith(b"text/html"):
                data = inject_base_url(data, self.script)
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(data)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body",
                        "body": data if scope["method"] == "GET" else b""})

        await self.app(scope, receive, capture)


def _base_path() -> str:
    try:
        return str(st.get_option("server.baseUrlPath") or "")
    except Exception:  # noqa: BLE001 - config not loaded (imported outside a server)
        return ""


class _PageMiddleware:
    """Starlette middleware factory shape: ``Middleware(_PageMiddleware)``."""

    def __new__(cls, app: ASGIApp) -> BaseUrlMiddleware:  # type: ignore[misc]
        return BaseUrlMiddleware(app, _base_path())


def _middleware() -> list:
    from starlette.middleware import Middleware

    return [Middleware(_PageMiddleware)]


app = st.App("main.py", middleware=_middleware())


def _warm_up() -> None:
    """Import torch and the network in the background while the first page is read: the
    first visit to Train (or the first run) then does not wait for them."""
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        import fhn_core.training  # noqa: F401
    except Exception:  # noqa: BLE001 - the pages report import problems themselves
        pass


threading.Thread(target=_warm_up, name="fhn-warm-up", daemon=True).start()
