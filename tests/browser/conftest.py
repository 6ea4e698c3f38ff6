"""Browser fixtures: Debian's Chromium driven by Playwright against the live server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# Playwright's sync API keeps an event loop running in this thread; the ORM calls made between page
# actions are still plain synchronous code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(15_000)
            yield context.new_page()
        finally:
            browser.close()
            # While that loop runs, Django keeps its connections in a separate (context-local) slot;
            # close them here, or the test database cannot be dropped at the end of the session.
            connections.close_all()


@pytest.fixture
def finance_user(django_user_model):
    django_user_model.objects.create_superuser("finance", "finance@example.com", "correct horse battery")
    return "finance", "correct horse battery"


def log_in(page, base_url: str, credentials: tuple[str, str]) -> None:
    page.goto(f"{base_url}/admin/")
    page.fill("#id_username", credentials[0])
    page.fill("#id_password", credentials[1])
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert page.locator("#user-tools").inner_text().upper().startswith("WELCOME")
