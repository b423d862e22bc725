"""Browser-test helpers shared by the app's Playwright tests (their fixtures are in
conftest.py): a streamlit server on a free port (``streamlit run app/serve.py``, stopped by
its process id) and a watch on the page that fails the test on any console error, failed
request, request to the internet or traceback; and the steps every walk takes (open a
page from the sidebar, wait for streamlit to finish a run, retry what a rerun swallowed)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
LOCAL = ("http://127.0.0.1", "data:", "blob:", "about:")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"streamlit did not answer within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


@contextmanager
def streamlit_server(project: Path, log: Path) -> Iterator[str]:
    """The app served for ``project`` on a free loopback port; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, FHN_PROJECT=str(project))
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(ROOT / "app" / "serve.py"),
             "--server.headless", "true", "--server.address", "127.0.0.1",
             "--server.port", str(port), "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        _wait_healthy(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class PageWatch:
    """What went wrong on a page: console errors, failed requests (4xx/5xx), requests to
    the internet, and tracebacks shown by streamlit. :meth:`check` fails the test."""

    def __init__(self, page) -> None:
        self.page = page
        self.console: list[str] = []
        self.failed: list[str] = []
        self.external: list[str] = []
        page.on("console", self._on_console)
        page.on("response", self._on_response)
        page.on("request", self._on_request)
        page.on("pageerror", lambda err: self.console.append(f"page error: {err}"))

    def _on_console(self, message) -> None:
        if message.type == "error":
            self.console.append(f"{message.text} ({message.location.get('url', '')})")

    def _on_response(self, response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def _on_request(self, request) -> None:
        if not request.url.startswith(LOCAL):
            self.external.append(request.url)

    def tracebacks(self) -> list[str]:
        """Exceptions streamlit shows on the page (its traceback boxes)."""
        boxes = self.page.locator('[data-testid="stException"]')
        return [boxes.nth(i).inner_text()[:500] for i in range(boxes.count())]

    def check(self, where: str = "") -> None:
        shown = self.tracebacks()
        problems = ([f"console: {c}" for c in self.console]
                    + [f"request failed: {f}" for f in self.failed]
                    + [f"fetched from the internet: {e}" for e in self.external]
                    + [f"traceback on the page: {t}" for t in shown])
        assert not problems, f"{where}: " + "\n".join(problems)


PAGE_URLS = {"Project & data": "data", "View & label": "label",
             "Wells & validation": "wells", "Train": "train", "Results": "results",
             "3D view": "view3d", "Export": "export"}


def goto(page, watch: PageWatch, title: str) -> None:
    """Open a page from the sidebar and wait until it is at its own URL (a click made
    while the current page is still running may be dropped: click again)."""
    pattern = re.compile(rf"/{PAGE_URLS[title]}(\?|$)")

    def follow_link() -> None:
        page.get_by_role("link", name=title, exact=True).click()
        page.wait_for_url(pattern, timeout=5_000)

    retry(follow_link, 5, f"the sidebar link {title!r} did not open its page")
    settle(page)
    watch.check(f"opening {title}")


def retry(attempt, tries: int, failure: str) -> None:
    """Run ``attempt`` until it goes through, at most ``tries`` times: a page that
    streamlit is still drawing again can swallow a click or hide a box being filled."""
    for _ in range(tries):
        try:
            attempt()
            return
        except Exception:  # noqa: BLE001 - drawn again under us: look again
            continue
    pytest.fail(failure)


def settle(page, quiet: float = 0.4, timeout: float = 30.0) -> None:
    """Wait until streamlit has finished running the page (its running indicator gone
    for ``quiet`` seconds)."""
    running = page.locator('[data-testid="stStatusWidget"]')
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        if running.count() == 0 or not running.first.is_visible():
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since >= quiet:
                return
        else:
            calm_since = None
        time.sleep(0.1)
