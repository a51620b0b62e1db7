"""Debian's chromium driven by Playwright, over the whole stack (``full_stack``: the SMSC
simulator, a gateway with every role, the admin with its background tasks, on loopback
ports against the test PostgreSQL and Redis).

The browser is ``/usr/bin/chromium`` (``make test`` installs Debian's package when it runs
as root; ``SMSGW_CHROMIUM`` names another); nothing downloads one. Without it, or without
the ``playwright`` package, the browser tests skip and say why. Screenshots go to
``$SMSGW_SCREENSHOTS`` or ``tests/browser/screenshots/``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from admin.adapters import user_store
from admin.core import passwords
from admin.core.roles import Role
from tests.admin.conftest import PASSWORD, Stack, admin_clean, admin_db, full_stack

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

__all__ = ["admin_clean", "admin_db", "full_stack"]  # the admin tests' fixtures, reused

CHROMIUM = Path(os.environ.get("SMSGW_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 15_000


def skip_reason() -> str | None:
    if not CHROMIUM.exists():
        return (
            f"no browser at {CHROMIUM}: `make test` run as root installs Debian's chromium "
            "(apt-get install chromium chromium-driver), or set SMSGW_CHROMIUM"
        )
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package (a dev dependency) is missing: pip install -e '.[dev]'"
    return None


@dataclass
class Browsing:
    stack: Stack
    browser: Browser
    shots: Path

    async def log_in(self, role: Role, email: str) -> Page:
        """A new browser context (its own cookies) logged in as a new user of ``role``."""
        hashed = passwords.hash_password(PASSWORD)
        await user_store.create_user(self.stack.admin.pool, email, role.value.title(), role, hashed)
        context = await self.browser.new_context(
            base_url=self.stack.app.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = await context.new_page()
        await page.goto("/login")
        await page.fill("#email", email)
        await page.fill("#password", PASSWORD)
        async with page.expect_navigation():
            await page.click("#login")
        return page

    async def shot(self, page: Page, name: str) -> None:
        await page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)


@pytest.fixture(scope="session")
def shots() -> Path:
    found = Path(os.environ.get("SMSGW_SCREENSHOTS") or Path(__file__).parent / "screenshots")
    found.mkdir(parents=True, exist_ok=True)
    return found


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium's sandbox refuses root
    async with async_playwright() as driver:
        found = await driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        try:
            yield found
        finally:
            await found.close()


@pytest.fixture
async def browsing(full_stack: Stack, browser: Browser, shots: Path) -> AsyncIterator[Browsing]:
    found = Browsing(full_stack, browser, shots)
    yield found
    for context in browser.contexts:
        await context.close()
