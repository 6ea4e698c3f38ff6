"""Invoice PDFs: the rendered document (read back with pypdf) and ``GET /invoices/<id>/pdf``.

Invoices are built directly with the ORM: rendering is read-only, and the states shown here (paid, void,
credit notes, several currencies) would otherwise take a long detour through the services."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import pypdf
import pytest

from invoicing import pdf as invoice_pdf
from invoicing.models import Invoice, InvoiceLineItem, InvoiceTaxLine, TaxRate
from invoicing.selectors import invoices as invoice_selectors
from tests.conftest import assert_error

pytestmark = pytest.mark.django_db

CUSTOMER = "hanzo/alice"
EMAIL = "alice@hanzo.example"
JAN = datetime(2025, 1, 1, tzinfo=UTC)
FEB = datetime(2025, 2, 1, tzinfo=UTC)


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _invoice(org, *, currency: str = "usd", status: str = Invoice.STATUS_OPEN, number: int | None = 42,
             lines: list[tuple[str, int, int]] | None = None, tax_bp: int = 875, inclusive: bool = False,
             discount: int = 5000, **fields) -> Invoice:
    """An invoice whose amounts add up: lines − discount, then tax on the rest."""
    lines = lines if lines is not None else [("Pro plan", 1, 99000), ("API calls", 19523, 1)]
    subtotal = sum(q * p for _, q, p in lines)
    taxable = subtotal - discount
    if inclusive:  # the tax already inside ``taxable``: taxable − taxable / (1 + rate)
        tax_amount = taxable - (taxable * 10000 + (10000 + tax_bp) // 2) // (10000 + tax_bp)
    else:
        tax_amount = (taxable * tax_bp + 5000) // 10000
    exclusive_tax = 0 if inclusive else tax_amount
    total = taxable + exclusive_tax
    values = dict(
        organization=org, customer=CUSTOMER, customer_email=EMAIL, currency=currency, status=status,
        subtotal=subtotal, discount=discount, discount_name="Launch promo" if discount else "",
        tax=exclusive_tax, tax_inclusive=tax_amount if inclusive else 0, tax_country="US", tax_state="CA",
        amount_due=total, period_start=JAN, period_end=FEB,
        number=number, number_str=f"INV-{number:04d}" if number else "",
        finalized_at=datetime(2025, 2, 1, 9, tzinfo=UTC) if number else None,
        due_date=datetime(2025, 3, 3, tzinfo=UTC) if number else None,
    )
    values.update(fields)
    invoice = Invoice.objects.create(**values)
    for description, quantity, unit_price in lines:
        InvoiceLineItem.objects.create(invoice=invoice, description=description, quantity=quantity,
                                       unit_price=unit_price, amount=quantity * unit_price, currency=currency,
                                       period_start=JAN, period_end=FEB)
    if tax_bp:
        rate = TaxRate.objects.create(organization=org, country="US", state="CA", percentage_bp=tax_bp,
                                      inclusive=inclusive, display_name="CA State Tax")
        InvoiceTaxLine.objects.create(invoice=invoice, tax_rate=rate, description="CA State Tax",
                                      percentage_bp=tax_bp, inclusive=inclusive, jurisdiction="US-CA",
                                      taxable_amount=taxable, amount=tax_amount)
    return invoice


def _render(invoice: Invoice) -> str:
    loaded = invoice_selectors.invoice_get(organization=invoice.organization, invoice_id=invoice.public_id)
    pdf = invoice_pdf.invoice_pdf_render(loaded)
    assert pdf.startswith(b"%PDF")
    return _text(pdf)


# --- the document ---------------------------------------------------------------------------------------

def test_open_invoice_shows_parties_lines_tax_and_totals(org_acme):
    text = _render(_invoice(org_acme, subscription_id="sub_123"))

    assert "Invoice" in text
    assert "INV-0042" in text
    assert "Acme Corp" in text
    assert CUSTOMER in text and EMAIL in text
    assert "Pro plan" in text and "API calls" in text
    assert "19,523" in text  # quantity
    assert "$990.00" in text  # unit price and amount of the plan line
    assert "Launch promo" in text and "-$50.00" in text
    assert "CA State Tax" in text and "US-CA" in text and "8.75 %" in text
    assert "$99.33" in text  # tax: 8.75 % of $1,135.23
    assert "$1,185.23" in text  # subtotal
    assert "$1,234.56" in text  # total and amount due
    assert "2025-02-01" in text  # issue date (finalized_at)
    assert "2025-03-03" in text  # due date
    assert "2025-01-01 – 2025-02-01" in text  # billing period
    assert text.count("2025-01-01 – 2025-02-01") == 1  # lines with the invoice's period don't repeat it
    assert "sub_123" in text
    assert "Page 1 of 1" in text
    for badge in ("DRAFT", "VOID", "PAID", "UNCOLLECTIBLE"):
        assert badge not in text


def test_jpy_has_no_decimals(org_acme):
    text = _render(_invoice(org_acme, currency="jpy", lines=[("Pro plan", 1, 1200)], discount=0, tax_bp=291))

    assert "¥1,235" in text  # 1,200 + 2.91 % → 34.92 → 35
    assert "¥1,200" in text
    assert not re.search(r"¥[\d,]+\.\d", text)


def test_kwd_has_three_decimals(org_acme):
    text = _render(_invoice(org_acme, currency="kwd", lines=[("Pro plan", 1, 1234567)], discount=0, tax_bp=0))

    assert "KWD1,234.567" in text
    assert "CA State Tax" not in text


def test_draft_is_marked_and_has_no_number(org_acme):
    invoice = _invoice(org_acme, status=Invoice.STATUS_DRAFT, number=None)
    text = _render(invoice)

    assert "DRAFT" in text
    assert "INV-" not in text
    assert invoice_pdf.invoice_pdf_filename(invoice) == f"draft-{invoice.public_id}.pdf"


@pytest.mark.parametrize("status, badge, stamp", [
    (Invoice.STATUS_VOID, "VOID", "voided_at"),
    (Invoice.STATUS_PAID, "PAID", "paid_at"),
    (Invoice.STATUS_UNCOLLECTIBLE, "UNCOLLECTIBLE", "marked_uncollectible_at"),
])
def test_closed_statuses_carry_a_badge(org_acme, status, badge, stamp):
    text = _render(_invoice(org_acme, status=status, **{stamp: datetime(2025, 2, 10, tzinfo=UTC)}))

    assert badge in text
    assert "INV-0042" in text


def test_paid_invoice_shows_payments_and_credits(org_acme):
    text = _render(_invoice(org_acme, status=Invoice.STATUS_PAID, paid_at=datetime(2025, 2, 10, tzinfo=UTC),
                            credit_applied=23456, deposits_applied=99000, credit_notes_amount=1000,
                            amount_paid=23456 + 99000, amount_due=0))

    assert "Credits applied" in text and "-$234.56" in text
    assert "Credit notes" in text and "-$10.00" in text
    assert "Amount paid" in text and "-$990.00" in text  # the part not paid by credits
    assert "Paid on" in text and "2025-02-10" in text
    assert re.search(r"Amount due\s*\$0\.00", text)


def test_inclusive_tax_is_marked_and_not_added(org_acme):
    text = _render(_invoice(org_acme, discount=0, tax_bp=2000, inclusive=True, tax_country="DE", tax_state=""))

    assert "incl." in text and "20 %" in text
    assert "Amounts include tax of $197.54" in text  # $1,185.23 − $1,185.23 / 1.2
    assert re.search(r"Total\s*\$1,185\.23", text)


def test_long_invoice_breaks_over_pages(org_acme):
    lines = [(f"Usage line {n:03d}", n, 100) for n in range(1, 121)]
    text = _render(_invoice(org_acme, lines=lines, discount=0))

    assert "Usage line 001" in text and "Usage line 120" in text
    assert re.search(r"Page 2 of [2-9]", text)


def test_unsaved_invoice_renders_with_explicit_lines(org_acme):
    invoice = Invoice(organization=org_acme, customer=CUSTOMER, currency="eur", subtotal=4200, discount=420,
                      discount_bp=1000, discount_name="Ten off", amount_due=3780)
    line = InvoiceLineItem(invoice=invoice, description="Proration", quantity=2, unit_price=2100, amount=4200,
                           currency="eur", period_start=datetime(2025, 1, 15, tzinfo=UTC), period_end=FEB)

    text = _text(invoice_pdf.invoice_pdf_render(invoice, lines=[line], tax_lines=[]))

    assert "Proration" in text and "2025-01-15 – 2025-02-01" in text  # a line's own period
    assert "€42.00" in text and "Ten off" in text and "10 %" in text and "-€4.20" in text
    assert "€37.80" in text
    assert "DRAFT" in text and invoice.public_id in text


def test_customer_text_is_escaped_not_markup(org_acme):
    html = invoice_pdf.invoice_pdf_html(_invoice(org_acme, customer='<img src="http://example.com/x.png">'))

    assert "<img" not in html
    assert "&lt;img" in html


@pytest.mark.parametrize("bp, expected", [(875, "8.75 %"), (1000, "10 %"), (5, "0.05 %"), (0, "0 %"),
                                          (1950, "19.5 %")])
def test_percent_from_basis_points(bp, expected):
    assert invoice_pdf.percent_from_bp(bp) == expected


def test_filename_is_the_number(org_acme):
    assert invoice_pdf.invoice_pdf_filename(_invoice(org_acme)) == "INV-0042.pdf"


# --- the endpoint -----------------------------------------------------------------------------------------

def test_get_pdf(api, org_acme):
    invoice = _invoice(org_acme)

    response = api.get(f"/invoices/{invoice.public_id}/pdf")

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="INV-0042.pdf"'
    assert response.content.startswith(b"%PDF")
    assert "$1,234.56" in _text(response.content)


def test_get_pdf_of_a_draft(api, org_acme):
    invoice = _invoice(org_acme, status=Invoice.STATUS_DRAFT, number=None)

    response = api.get(f"/invoices/{invoice.public_id}/pdf", HTTP_ACCEPT="application/pdf")

    assert response.status_code == 200, response.content
    assert response["Content-Disposition"] == f'inline; filename="draft-{invoice.public_id}.pdf"'


def test_unknown_invoice_is_404(api):
    assert_error(api.get("/invoices/in_missing/pdf"), 404, "invoice not found")


def test_unknown_invoice_is_json_even_when_asking_for_pdf(api):
    assert_error(api.get("/invoices/in_missing/pdf", HTTP_ACCEPT="application/pdf"), 404, "invoice not found")


def test_another_tenants_invoice_is_404(globex_api, org_acme):
    invoice = _invoice(org_acme)

    assert_error(globex_api.get(f"/invoices/{invoice.public_id}/pdf"), 404, "invoice not found")


def test_requires_an_api_key(anon_api, org_acme):
    invoice = _invoice(org_acme)

    response = anon_api.get(f"/invoices/{invoice.public_id}/pdf")

    assert response.status_code == 401, response.content


def test_fixed_amount_line_prints_no_unit_price(org_acme):
    """A line given as a fixed amount (a quantity but no unit price) prints its quantity and amount, never
    "× 0.00"; a line with neither prints only its amount; a priced line prints all three."""
    invoice = _invoice(org_acme, lines=[("API calls", 19523, 1)], discount=0, tax_bp=0,
                       subtotal=19523 + 5000 + 700, amount_due=19523 + 5000 + 700)
    InvoiceLineItem.objects.create(invoice=invoice, description="Setup fee", quantity=1, unit_price=0,
                                   amount=5000, currency="usd")
    InvoiceLineItem.objects.create(invoice=invoice, description="Support hours", quantity=0, unit_price=0,
                                   amount=700, currency="usd")
    text = _render(invoice)

    rows = {row.split()[0] + " " + row.split()[1]: row for row in text.splitlines() if len(row.split()) > 1}
    assert re.fullmatch(r"Setup fee\s+1\s+\$50\.00", rows["Setup fee"].strip())
    assert re.fullmatch(r"Support hours\s+\$7\.00", rows["Support hours"].strip())
    assert re.fullmatch(r"API calls\s+19,523\s+\$0\.01\s+\$195\.23", rows["API calls"].strip())
    assert "$0.00" not in text
