"""Fixtures of the app's tests: a fresh demo project per test (no training job left running),
Debian's Chromium and Playwright's sync API for the browser tests."""

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


JOB_WAIT = 120.0  # seconds a stopped training job gets to finish its checkpoint


@pytest.fixture()
def demo(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh copy of the test module's demo project ``template`` (a module-scoped fixture
    each module defines with its own survey shape); FHN_PROJECT points at it. A training job
    still running afterwards is stopped, never left running into the next test."""
    from app import jobs

    folder = tmp_path / "demo"
    shutil.copytree(template, folder)
    monkeypatch.setenv("FHN_PROJECT", str(folder))
    yield folder
    active = jobs.registry().active()
    if active is not None:
        active.stop()
        active.wait(JOB_WAIT)
