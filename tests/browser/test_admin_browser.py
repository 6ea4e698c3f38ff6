"""The back office in a real browser: Debian's Chromium driven by Playwright against the live server."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from billing_project.core.models import ApiKey, api_key_hash
from ledger import services
from tests.browser.conftest import CHROMIUM, log_in

SCREENSHOT = Path(os.environ.get("ADMIN_SCREENSHOT", "/tmp/admin.png"))

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make browser-deps)"),
    pytest.mark.django_db(transaction=True),
]


def test_finance_staff_browse_transactions_and_create_an_api_key(page, live_server, finance_user, org_acme):
    deposit = services.deposit_create(organization=org_acme, user="alice", amount=10_000, currency="usd")
    usage = services.usage_record(organization=org_acme, user="alice", amount=250, currency="usd")
    services.starter_credit_grant(organization=org_acme, user="bob")

    log_in(page, live_server.url, finance_user)

    page.goto(f"{live_server.url}/admin/ledger/balancetransaction/")
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 3

    page.locator('#changelist-filter details[data-filter-title="type"] a', has_text="withdraw").click()
    page.wait_for_url(re.compile(r"type__exact=withdraw"))
    assert rows.count() == 1
    assert usage.public_id in rows.first.inner_text()
    assert deposit.public_id not in page.locator("#result_list").inner_text()

    page.get_by_role("link", name=usage.public_id).click()
    page.wait_for_selector(".inline-group")
    entries = page.locator(".inline-group tbody tr.has_original")
    assert entries.count() == 2
    text = page.locator(".inline-group").inner_text()
    assert "wallet:alice:usd" in text and "usage_revenue:house:usd" in text
    assert "debit" in text and "credit" in text and "$2.50" in text
    assert page.locator('input[name="_save"]').count() == 0  # read-only
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The customer box filters the list by exact customer.
    page.goto(f"{live_server.url}/admin/ledger/balancetransaction/")
    page.fill('#changelist-filter input[name="customer"]', "bob")
    page.press('#changelist-filter input[name="customer"]', "Enter")
    page.wait_for_url(re.compile(r"customer=bob"))
    assert rows.count() == 1 and "bob" in rows.first.inner_text()

    page.goto(f"{live_server.url}/admin/core/apikey/add/")
    page.select_option("#id_organization", label="acme")
    page.fill("#id_name", "finance export")
    assert page.locator('input[name="scopes"][value="admin"]').is_checked()
    page.click('input[name="_save"]')
    message = page.locator(".messagelist li.success", has_text="will not be shown again")
    secret = message.inner_text().rsplit(" ", 1)[1].strip()
    assert secret.startswith("tk_")
    key = ApiKey.objects.get(name="finance export")
    assert key.key_hash == api_key_hash(secret)
    assert key.prefix in page.locator("#result_list").inner_text()

    page.reload()
    assert secret not in page.content()
