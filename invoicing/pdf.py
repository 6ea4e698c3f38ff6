"""Invoice PDFs: an invoice rendered through ``templates/invoices/invoice.html`` and WeasyPrint.

Read-only: nothing here writes (``invoicing.services.invoice_pdfs`` stores rendered PDFs and serves them;
``invoicing.pdf_process`` runs WeasyPrint, in-process or in a child process under a time limit). Every
amount reaches the template already formatted (Babel, through ``format_minor``) from integer minor units;
rates are basis points turned into exact ``Decimal`` strings; dates are ISO dates in UTC. WeasyPrint is
imported inside the render function, so Django startup and every process that never renders a PDF do not
pay for it. Rendering never touches the network: the template uses generic font families (system fonts
through fontconfig) and the URL fetcher only allows ``data:`` URLs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from django.conf import settings
from django.template.loader import render_to_string

from billing_project.core.money import format_minor
from invoicing import pdf_process
from invoicing.models import Invoice, InvoiceLineItem, InvoiceTaxLine

TEMPLATE = "invoices/invoice.html"
_BADGES = {
    Invoice.STATUS_PAID: "PAID",
    Invoice.STATUS_VOID: "VOID",
    Invoice.STATUS_UNCOLLECTIBLE: "UNCOLLECTIBLE",
}


def invoice_pdf_filename(invoice: Invoice) -> str:
    """``INV-0001.pdf`` once finalized, ``draft-<public_id>.pdf`` before."""
    return f"{invoice.number_str}.pdf" if invoice.number_str else f"draft-{invoice.public_id}.pdf"


def invoice_pdf_render(invoice: Invoice, *, lines: Iterable[InvoiceLineItem] | None = None,
                       tax_lines: Iterable[InvoiceTaxLine] | None = None) -> bytes:
    """The invoice as PDF bytes (A4).

    ``lines`` / ``tax_lines`` default to ``invoice.line_items.all()`` / ``invoice.tax_lines.all()`` (use
    ``invoicing.selectors.invoices.invoice_get`` to have them prefetched); pass them explicitly to render
    an unsaved invoice (previews, benchmarks)."""
    return pdf_process.html_to_pdf(invoice_pdf_html(invoice, lines=lines, tax_lines=tax_lines), base_url())


def base_url() -> str:
    """Where the template's relative URLs resolve (only ``data:`` URLs are ever fetched)."""
    return f"{settings.BASE_DIR / 'templates' / 'invoices'}/"


def invoice_pdf_html(invoice: Invoice, *, lines: Iterable[InvoiceLineItem] | None = None,
                     tax_lines: Iterable[InvoiceTaxLine] | None = None) -> str:
    """The HTML the PDF is made from (handy to inspect the document in a browser)."""
    if lines is None:
        lines = invoice.line_items.all()
    if tax_lines is None:
        tax_lines = invoice.tax_lines.all()
    return render_to_string(TEMPLATE, _context(invoice, list(lines), list(tax_lines)))


def _totals(invoice: Invoice, tax_lines: list[InvoiceTaxLine], money) -> list[tuple[str, str, bool]]:
    totals = [("Subtotal", money(invoice.subtotal), False)]
    if invoice.discount:
        totals.append(("Discount", money(-invoice.discount), False))
    if invoice.tax or any(not t.inclusive for t in tax_lines):
        totals.append(("Tax", money(invoice.tax), False))
    totals.append(("Total", money(invoice.total), True))
    # amount_paid counts credits too: show credits and the rest of the payments apart, each subtracted once.
    for label, amount in (("Credits applied", invoice.credit_applied),
                          ("Credit notes", invoice.credit_notes_amount),
                          ("Amount paid", invoice.amount_paid - invoice.credit_applied)):
        if amount:
            totals.append((label, money(-amount), False))
    return totals


def _dates(invoice: Invoice) -> dict:
    return {
        "issue_date": _date(invoice.finalized_at or invoice.created_at),
        "due_date": _date(invoice.due_date),
        "paid_date": _date(invoice.paid_at) if invoice.status == Invoice.STATUS_PAID else "",
        "voided_date": _date(invoice.voided_at) if invoice.status == Invoice.STATUS_VOID else "",
    }


def _discount(invoice: Invoice, money) -> dict | None:
    if not invoice.discount:
        return None
    return {"name": invoice.discount_name or "Discount",
            "rate": percent_from_bp(invoice.discount_bp) if invoice.discount_bp else "",
            "amount": money(-invoice.discount)}


def _context(invoice: Invoice, lines: list[InvoiceLineItem], tax_lines: list[InvoiceTaxLine]) -> dict:
    currency = invoice.currency

    def money(amount: int) -> str:
        return format_minor(amount, currency)

    title_number = invoice.number_str or "DRAFT"
    invoice_period = _period(invoice.period_start, invoice.period_end)
    return {
        **_dates(invoice),
        "title": f"Invoice {title_number}",
        "number": title_number,
        "is_draft": not invoice.number_str,
        "badge": _BADGES.get(invoice.status, ""),
        "status": invoice.status,
        "seller": invoice.organization.name,
        "customer": invoice.customer,
        "customer_email": invoice.customer_email,
        "subscription_id": invoice.subscription_id,
        "reference": invoice.public_id if not invoice.number_str else "",
        "currency": currency.upper(),
        "period": invoice_period,
        "tax_address": ", ".join(p for p in (invoice.tax_state, invoice.tax_country) if p),
        "lines": [_line(line, currency, invoice_period) for line in lines],
        "discount": _discount(invoice, money),
        "tax_lines": [{
            "description": t.description,
            "jurisdiction": t.jurisdiction,
            "rate": percent_from_bp(t.percentage_bp),
            "inclusive": t.inclusive,
            "taxable_amount": money(t.taxable_amount),
            "amount": money(t.amount),
        } for t in tax_lines],
        "tax_inclusive": money(invoice.tax_inclusive) if invoice.tax_inclusive else "",
        "totals": _totals(invoice, tax_lines, money),
        "amount_due": money(invoice.amount_due),
    }


def _line(line: InvoiceLineItem, invoice_currency: str, invoice_period: str) -> dict:
    currency = line.currency or invoice_currency
    period = _period(line.period_start, line.period_end)
    # Each column only when the line has it: a line given as a fixed amount (no unit price) shows no
    # "× 0.00", and one given only as an amount shows neither quantity nor unit price.
    return {
        "description": line.description,
        # Only a period that differs from the invoice's (prorations, arrears usage) is worth a line.
        "period": period if period != invoice_period else "",
        "quantity": f"{line.quantity:,}" if line.quantity else "",
        "unit_price": format_minor(line.unit_price, currency) if line.unit_price else "",
        "amount": format_minor(line.amount, currency),
    }


def percent_from_bp(bp: int) -> str:
    """Basis points as an exact percentage: 875 → ``8.75 %``, 1000 → ``10 %``, 5 → ``0.05 %``."""
    return f"{Decimal(bp) / 100:f} %"


def _date(value: datetime | None) -> str:
    return value.astimezone(UTC).date().isoformat() if value is not None else ""


def _period(start: datetime | None, end: datetime | None) -> str:
    if start is not None and end is not None:
        return f"{_date(start)} – {_date(end)}"
    if start is not None:
        return f"from {_date(start)}"
    return f"until {_date(end)}" if end is not None else ""
