"""Fixtures of the app's browser tests: Debian's Chromium and Playwright's sync API."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.app.browser_support import CHROMIUM


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed with apt-get when missing (skip if that cannot be done)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and apt-get cannot install it here (needs root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(
            "apt-get update -q && apt-get install -y -q --no-install-recommends chromium",
            shell=True, env=env, capture_output=True, text=True, timeout=900,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("installing chromium with apt-get took more than 15 minutes")
    if done.returncode != 0 or not CHROMIUM.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        pytest.skip(f"apt-get could not install chromium: {' | '.join(tail)}")
    return CHROMIUM


@pytest.fixture(scope="session")
def sync_playwright():
    """Playwright's sync API (from the dev extra); its own browser download is never used."""
    api = pytest.importorskip("playwright.sync_api",
                              reason="playwright is not installed (pip install -e '.[dev]')")
    return api.sync_playwright
