from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import connections
from playwright.sync_api import expect

from tests.servers import PATIENCE_S

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


PATIENCE_MS = int(PATIENCE_S * 1000)
expect.set_options(timeout=PATIENCE_MS)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never a downloaded browser), for one test module.

    Playwright's sync API runs an event loop in this thread. While it runs, the tests' ORM calls are
    still plain synchronous code between browser steps (hence DJANGO_ALLOW_ASYNC_UNSAFE), but asgiref,
    under Django's `connections`, takes a thread with a running loop for an async one and keeps its
    database connections apart: they are closed here before the loop stops, or they would outlive the
    test database (PostgreSQL then refuses to drop it)."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it when run as root)")
    from playwright.sync_api import sync_playwright

    with mock.patch.dict(os.environ, {"DJANGO_ALLOW_ASYNC_UNSAFE": "true"}), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()
        connections.close_all()


@pytest.fixture
def page(browser: Any, request: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    # Waits end when their condition holds: a long limit costs a quiet machine nothing and lets a
    # loaded one (other work on every core) finish (`tests.servers.PATIENCE_S`).
    page.set_default_timeout(PATIENCE_MS)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-end.png"), full_page=True)
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
