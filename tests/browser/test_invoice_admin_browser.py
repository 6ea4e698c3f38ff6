"""The invoice back office in a real browser (Debian's Chromium via Playwright, as test_admin_browser.py):
list with money, the overdue filter, the Void action with its "Why?" page, and the PDF link."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from billing_project.core.models import AuditLog
from invoicing.models import Invoice
from invoicing.services import invoices as invoice_services
from invoicing.services.invoice_lines import LineInput
from tests.browser.conftest import CHROMIUM, log_in

SCREENSHOT = Path(os.environ.get("INVOICE_ADMIN_SCREENSHOT", "/tmp/invoice_admin.png"))

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make browser-deps)"),
    pytest.mark.django_db(transaction=True),
]


def make_invoice(org, customer: str, amount: int) -> Invoice:
    draft = invoice_services.invoice_create(organization=org, customer=customer,
                                            lines=[LineInput(description="Pro plan", amount=amount)])
    return invoice_services.invoice_finalize(organization=org, invoice_id=draft.public_id)


def test_finance_staff_filter_overdue_void_with_a_reason_and_download_the_pdf(page, live_server, finance_user,
                                                                               org_acme):
    overdue = make_invoice(org_acme, "alice", 12_345)
    current = make_invoice(org_acme, "bob", 500)
    Invoice.objects.filter(pk=overdue.pk).update(due_date=timezone.now() - timedelta(days=3))
    base = f"{live_server.url}/admin/invoicing/invoice/"

    log_in(page, live_server.url, finance_user)
    page.goto(base)
    rows = page.locator("#result_list tbody tr")
    assert rows.count() == 2
    listing = page.locator("#result_list").inner_text()
    assert "INV-0001" in listing and "$123.45" in listing and "INV-0002" in listing

    page.locator('#changelist-filter details[data-filter-title="overdue"]').get_by_role(
        "link", name="Overdue", exact=True).click()
    page.wait_for_url(re.compile(r"overdue=overdue"))
    assert rows.count() == 1
    assert "INV-0001" in rows.first.inner_text() and current.number_str not in rows.first.inner_text()

    # The PDF link of the row, fetched with the logged-in session.
    href = rows.first.locator("a.invoice-pdf").get_attribute("href")
    pdf = page.request.get(f"{live_server.url}{href}")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    assert 'filename="INV-0001.pdf"' in pdf.headers["content-disposition"]

    rows.first.locator("input.action-select").check()
    page.select_option('select[name="action"]', "void_invoices")
    page.click('button[name="index"]')
    page.wait_for_selector("#id_reason")
    assert page.get_by_role("heading", name="Void invoices").count() >= 1
    assert "INV-0001 alice: $123.45 (open)" in page.locator("#content").inner_text()
    page.fill("#id_reason", "customer cancelled before service start")
    page.screenshot(path=str(SCREENSHOT.with_name(f"{SCREENSHOT.stem}_reason.png")))
    page.click('input[name="apply"]')

    message = page.locator(".messagelist li.success")
    assert message.inner_text() == "Void invoices: 1 done."
    page.goto(f"{base}?status__exact=void")
    assert rows.count() == 1
    voided = rows.first.inner_text()
    assert "INV-0001" in voided and "void" in voided
    page.goto(base)
    page.locator("#result_list").wait_for()
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The read-only detail page: amounts, the line, the PDF link, no save button.
    page.get_by_role("link", name="INV-0001").click()
    page.wait_for_selector(".inline-group")
    assert "Pro plan" in page.locator(".inline-group").first.inner_text()
    assert page.get_by_role("link", name="Download PDF").count() == 1
    assert page.locator('input[name="_save"]').count() == 0
    page.screenshot(path=str(SCREENSHOT.with_name(f"{SCREENSHOT.stem}_detail.png")), full_page=True)

    overdue.refresh_from_db()
    assert overdue.status == Invoice.STATUS_VOID
    audit = AuditLog.objects.get(action="invoice.void", object_id=overdue.public_id)
    assert (audit.actor, audit.reason) == ("finance", "customer cancelled before service start")
