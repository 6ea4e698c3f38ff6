"""Ledger accounts in a real browser: house and receivable accounts show the sum of their entries while an
invoice is open (no running balance to read), and each account page links to its entries."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from ledger.models import Account
from tests.browser.conftest import CHROMIUM, log_in

SCREENSHOT = Path(os.environ.get("ACCOUNT_ADMIN_SCREENSHOT", "/tmp/account_admin.png"))

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make browser-deps)"),
    pytest.mark.django_db(transaction=True),
]


def test_open_invoice_shows_on_receivable_and_revenue_and_the_account_links_to_its_entries(
        page, live_server, finance_user, org_acme):
    draft = invoice_services.invoice_create(organization=org_acme, customer="alice",
                                            lines=[LineInput(description="Pro plan", amount=12_345)])
    invoice_services.invoice_finalize(organization=org_acme, invoice_id=draft.public_id)
    receivable = Account.objects.get(organization=org_acme, kind="receivable", customer="alice")

    log_in(page, live_server.url, finance_user)
    page.goto(f"{live_server.url}/admin/ledger/account/")
    rows = page.locator("#result_list tbody tr")
    by_kind = {row.locator("th, td").nth(1).inner_text(): row.inner_text() for row in rows.all()}
    assert "$123.45" in by_kind["Customer receivable (invoices finalized, not yet paid)"]
    assert "$123.45" in by_kind["House: invoiced revenue"]
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    page.goto(f"{live_server.url}/admin/ledger/account/{receivable.pk}/change/")
    assert "$123.45" in page.locator("#content-main").inner_text()
    page.screenshot(path=str(SCREENSHOT.with_name(f"{SCREENSHOT.stem}_detail.png")), full_page=True)
    page.get_by_role("link", name="entries", exact=True).click()
    page.wait_for_url(re.compile(rf"account__id__exact={receivable.pk}"))
    entries = page.locator("#result_list tbody tr")
    assert entries.count() == 1
    assert "receivable:alice:usd" in entries.first.inner_text() and "$123.45" in entries.first.inner_text()
